//! The command table and dispatch: lookup, arity, authentication, then the handler.
//!
//! Checks run in Redis's order (unknown command, unknown subcommand, arity, NOAUTH,
//! MISCONF) with Redis's exact error text. Handlers live one group per file; each takes
//! the keyspace lock itself, never across an `.await`. The same table answers COMMAND.

use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::connection::Client;
use super::frame::parse_i64;
use super::server::Shared;

pub mod conn;
pub mod expire;
pub mod keys;
pub mod setops;
pub mod sets;
pub mod system;

/// A command handler.
pub type Handler = fn(&Shared, &mut Client, &[Bytes]);

/// One entry of the command table (also what COMMAND INFO/DOCS report).
#[derive(Debug)]
pub struct Spec {
    /// Lower-case name (`client|setname` for subcommands is built from the parent).
    pub name: &'static str,
    /// Redis arity: positive = exact argc, negative = at least `-arity`.
    pub arity: i32,
    /// Redis command flags.
    pub flags: &'static [&'static str],
    /// First key position, last key position (-1 = last arg), step.
    pub keys: (i32, i32, i32),
    /// Command group (COMMAND DOCS).
    pub group: &'static str,
    /// One-line summary (COMMAND DOCS).
    pub summary: &'static str,
    /// Redis version that introduced it.
    pub since: &'static str,
    /// Time complexity (COMMAND DOCS).
    pub complexity: &'static str,
    /// The handler (unused for containers).
    pub handler: Handler,
    /// Subcommands, for containers (CLIENT, COMMAND, CONFIG).
    pub subs: &'static [Spec],
}

impl Spec {
    fn is_write(&self) -> bool {
        self.flags.contains(&"write")
    }
    fn no_auth(&self) -> bool {
        self.flags.contains(&"no_auth")
    }
}

/// `-ERR value is not an integer or out of range`
pub const ERR_NOT_INT: &str = "ERR value is not an integer or out of range";
/// `-ERR syntax error`
pub const ERR_SYNTAX: &str = "ERR syntax error";

/// Parses an integer argument the way Redis does (strict decimal, fits in i64).
pub fn arg_i64(b: &[u8]) -> Option<i64> {
    parse_i64(b)
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

fn nop(_: &Shared, _: &mut Client, _: &[Bytes]) {}

macro_rules! spec {
    ($name:literal, $arity:expr, [$($flag:literal),*], ($f:expr, $l:expr, $s:expr), $group:literal,
     $since:literal, $cx:literal, $summary:literal, $handler:expr) => {
        Spec { name: $name, arity: $arity, flags: &[$($flag),*], keys: ($f, $l, $s), group: $group,
               summary: $summary, since: $since, complexity: $cx, handler: $handler, subs: &[] }
    };
}

const CLIENT_SUBS: &[Spec] = &[
    spec!(
        "getname",
        2,
        ["noscript", "loading", "stale"],
        (0, 0, 0),
        "connection",
        "2.6.9",
        "O(1)",
        "Returns the name of the connection.",
        conn::client_getname
    ),
    spec!(
        "help",
        2,
        ["loading", "stale"],
        (0, 0, 0),
        "connection",
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
        conn::client_help
    ),
    spec!(
        "id",
        2,
        ["noscript", "loading", "stale"],
        (0, 0, 0),
        "connection",
        "5.0.0",
        "O(1)",
        "Returns the unique client ID of the connection.",
        conn::client_id
    ),
    spec!(
        "info",
        2,
        ["noscript", "loading", "stale"],
        (0, 0, 0),
        "connection",
        "6.2.0",
        "O(1)",
        "Returns information about the connection.",
        conn::client_info
    ),
    spec!(
        "list",
        -2,
        ["admin", "noscript", "loading", "stale"],
        (0, 0, 0),
        "connection",
        "2.4.0",
        "O(N)",
        "Lists open connections.",
        conn::client_list
    ),
    spec!(
        "setinfo",
        4,
        ["noscript", "loading", "stale"],
        (0, 0, 0),
        "connection",
        "7.2.0",
        "O(1)",
        "Sets information specific to the client or connection.",
        conn::client_setinfo
    ),
    spec!(
        "setname",
        3,
        ["noscript", "loading", "stale"],
        (0, 0, 0),
        "connection",
        "2.6.9",
        "O(1)",
        "Sets the connection name.",
        conn::client_setname
    ),
];

const COMMAND_SUBS: &[Spec] = &[
    spec!(
        "count",
        2,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "2.8.13",
        "O(1)",
        "Returns a count of commands.",
        system::command_count
    ),
    spec!(
        "docs",
        -2,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "7.0.0",
        "O(N)",
        "Returns documentary information about one, multiple or all commands.",
        system::command_docs
    ),
    spec!(
        "help",
        2,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
        system::command_help
    ),
    spec!(
        "info",
        -2,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "2.8.13",
        "O(N)",
        "Returns information about one, multiple or all commands.",
        system::command_info
    ),
    spec!(
        "list",
        -2,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "7.0.0",
        "O(N)",
        "Returns a list of command names.",
        system::command_list
    ),
];

const CONFIG_SUBS: &[Spec] = &[
    spec!(
        "get",
        -3,
        ["admin", "noscript", "loading", "stale"],
        (0, 0, 0),
        "server",
        "2.0.0",
        "O(N)",
        "Returns the effective values of configuration parameters.",
        system::config_get
    ),
    spec!(
        "help",
        2,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "5.0.0",
        "O(1)",
        "Returns helpful text about the different subcommands.",
        system::config_help
    ),
];

/// Every command we serve, sorted by name.
pub const COMMANDS: &[Spec] = &[
    spec!(
        "auth",
        -2,
        [
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy"
        ],
        (0, 0, 0),
        "connection",
        "1.0.0",
        "O(N)",
        "Authenticates the connection.",
        conn::auth
    ),
    Spec {
        name: "client",
        arity: -2,
        flags: &[],
        keys: (0, 0, 0),
        group: "connection",
        summary: "A container for client connection commands.",
        since: "2.4.0",
        complexity: "Depends on subcommand.",
        handler: nop,
        subs: CLIENT_SUBS,
    },
    Spec {
        name: "command",
        arity: -1,
        flags: &["loading", "stale"],
        keys: (0, 0, 0),
        group: "server",
        summary: "Returns detailed information about all commands.",
        since: "2.8.13",
        complexity: "O(N)",
        handler: system::command,
        subs: COMMAND_SUBS,
    },
    Spec {
        name: "config",
        arity: -2,
        flags: &[],
        keys: (0, 0, 0),
        group: "server",
        summary: "A container for server configuration commands.",
        since: "2.0.0",
        complexity: "Depends on subcommand.",
        handler: nop,
        subs: CONFIG_SUBS,
    },
    spec!(
        "dbsize",
        1,
        ["readonly", "fast"],
        (0, 0, 0),
        "server",
        "1.0.0",
        "O(1)",
        "Returns the number of keys in the database.",
        system::dbsize
    ),
    spec!(
        "del",
        -2,
        ["write"],
        (1, -1, 1),
        "generic",
        "1.0.0",
        "O(N)",
        "Deletes one or more keys.",
        keys::del
    ),
    spec!(
        "echo",
        2,
        ["fast"],
        (0, 0, 0),
        "connection",
        "1.0.0",
        "O(1)",
        "Returns the given string.",
        conn::echo
    ),
    spec!(
        "exists",
        -2,
        ["readonly", "fast"],
        (1, -1, 1),
        "generic",
        "1.0.0",
        "O(N)",
        "Determines whether one or more keys exist.",
        keys::exists
    ),
    spec!(
        "expire",
        -3,
        ["write", "fast"],
        (1, 1, 1),
        "generic",
        "1.0.0",
        "O(1)",
        "Sets the expiration time of a key in seconds.",
        expire::expire
    ),
    spec!(
        "expireat",
        -3,
        ["write", "fast"],
        (1, 1, 1),
        "generic",
        "1.2.0",
        "O(1)",
        "Sets the expiration time of a key to a Unix timestamp.",
        expire::expireat
    ),
    spec!(
        "expiretime",
        2,
        ["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "7.0.0",
        "O(1)",
        "Returns the expiration time of a key as a Unix timestamp.",
        expire::expiretime
    ),
    spec!(
        "flushall",
        -1,
        ["write"],
        (0, 0, 0),
        "server",
        "1.0.0",
        "O(N)",
        "Removes all keys from all databases.",
        system::flushall
    ),
    spec!(
        "flushdb",
        -1,
        ["write"],
        (0, 0, 0),
        "server",
        "1.0.0",
        "O(N)",
        "Remove all keys from the current database.",
        system::flushall
    ),
    spec!(
        "hello",
        -1,
        [
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy"
        ],
        (0, 0, 0),
        "connection",
        "6.0.0",
        "O(1)",
        "Handshakes with the Redis server.",
        conn::hello
    ),
    spec!(
        "info",
        -1,
        ["loading", "stale"],
        (0, 0, 0),
        "server",
        "1.0.0",
        "O(1)",
        "Returns information and statistics about the server.",
        system::info
    ),
    spec!(
        "keys",
        2,
        ["readonly"],
        (0, 0, 0),
        "generic",
        "1.0.0",
        "O(N)",
        "Returns all key names that match a pattern.",
        keys::keys
    ),
    spec!(
        "persist",
        2,
        ["write", "fast"],
        (1, 1, 1),
        "generic",
        "2.2.0",
        "O(1)",
        "Removes the expiration time of a key.",
        expire::persist
    ),
    spec!(
        "pexpire",
        -3,
        ["write", "fast"],
        (1, 1, 1),
        "generic",
        "2.6.0",
        "O(1)",
        "Sets the expiration time of a key in milliseconds.",
        expire::pexpire
    ),
    spec!(
        "pexpireat",
        -3,
        ["write", "fast"],
        (1, 1, 1),
        "generic",
        "2.6.0",
        "O(1)",
        "Sets the expiration time of a key to a Unix milliseconds timestamp.",
        expire::pexpireat
    ),
    spec!(
        "pexpiretime",
        2,
        ["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "7.0.0",
        "O(1)",
        "Returns the expiration time of a key as a Unix milliseconds timestamp.",
        expire::pexpiretime
    ),
    spec!(
        "ping",
        -1,
        ["fast"],
        (0, 0, 0),
        "connection",
        "1.0.0",
        "O(1)",
        "Returns the server's liveliness response.",
        conn::ping
    ),
    spec!(
        "pttl",
        2,
        ["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "2.6.0",
        "O(1)",
        "Returns the expiration time in milliseconds of a key.",
        expire::pttl
    ),
    spec!(
        "quit",
        -1,
        [
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy"
        ],
        (0, 0, 0),
        "connection",
        "1.0.0",
        "O(1)",
        "Closes the connection.",
        conn::quit
    ),
    spec!(
        "rename",
        3,
        ["write"],
        (1, 2, 1),
        "generic",
        "1.0.0",
        "O(1)",
        "Renames a key and overwrites the destination.",
        keys::rename
    ),
    spec!(
        "reset",
        1,
        [
            "noscript",
            "loading",
            "stale",
            "fast",
            "no_auth",
            "allow_busy"
        ],
        (0, 0, 0),
        "connection",
        "6.2.0",
        "O(1)",
        "Resets the connection.",
        conn::reset
    ),
    spec!(
        "sadd",
        -3,
        ["write", "denyoom", "fast"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(1)",
        "Adds one or more members to a set. Creates the key if it doesn't exist.",
        sets::sadd
    ),
    spec!(
        "scan",
        -2,
        ["readonly"],
        (0, 0, 0),
        "generic",
        "2.8.0",
        "O(1)",
        "Iterates over the key names in the database.",
        keys::scan
    ),
    spec!(
        "scard",
        2,
        ["readonly", "fast"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(1)",
        "Returns the number of members in a set.",
        sets::scard
    ),
    spec!(
        "sdiff",
        -2,
        ["readonly"],
        (1, -1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Returns the difference of multiple sets.",
        setops::sdiff
    ),
    spec!(
        "sdiffstore",
        -3,
        ["write", "denyoom"],
        (1, -1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Stores the difference of multiple sets in a key.",
        setops::sdiffstore
    ),
    spec!(
        "select",
        2,
        ["loading", "stale", "fast"],
        (0, 0, 0),
        "connection",
        "1.0.0",
        "O(1)",
        "Changes the selected database.",
        conn::select
    ),
    spec!(
        "sinter",
        -2,
        ["readonly"],
        (1, -1, 1),
        "set",
        "1.0.0",
        "O(N*M)",
        "Returns the intersect of multiple sets.",
        setops::sinter
    ),
    spec!(
        "sintercard",
        -3,
        ["readonly"],
        (0, 0, 0),
        "set",
        "7.0.0",
        "O(N*M)",
        "Returns the number of members of the intersect of multiple sets.",
        setops::sintercard
    ),
    spec!(
        "sinterstore",
        -3,
        ["write", "denyoom"],
        (1, -1, 1),
        "set",
        "1.0.0",
        "O(N*M)",
        "Stores the intersect of multiple sets in a key.",
        setops::sinterstore
    ),
    spec!(
        "sismember",
        3,
        ["readonly", "fast"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(1)",
        "Determines whether a member belongs to a set.",
        sets::sismember
    ),
    spec!(
        "smembers",
        2,
        ["readonly"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Returns all members of a set.",
        sets::smembers
    ),
    spec!(
        "smismember",
        -3,
        ["readonly", "fast"],
        (1, 1, 1),
        "set",
        "6.2.0",
        "O(N)",
        "Determines whether multiple members belong to a set.",
        sets::smismember
    ),
    spec!(
        "smove",
        4,
        ["write", "fast"],
        (1, 2, 1),
        "set",
        "1.0.0",
        "O(1)",
        "Moves a member from one set to another.",
        sets::smove
    ),
    spec!(
        "spop",
        -2,
        ["write", "fast"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
        sets::spop
    ),
    spec!(
        "srandmember",
        -2,
        ["readonly"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Get one or multiple random members from a set",
        sets::srandmember
    ),
    spec!(
        "srem",
        -3,
        ["write", "fast"],
        (1, 1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Removes one or more members from a set. Deletes the set if the last member was removed.",
        sets::srem
    ),
    spec!(
        "sscan",
        -3,
        ["readonly"],
        (1, 1, 1),
        "set",
        "2.8.0",
        "O(1)",
        "Iterates over members of a set.",
        sets::sscan
    ),
    spec!(
        "sunion",
        -2,
        ["readonly"],
        (1, -1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Returns the union of multiple sets.",
        setops::sunion
    ),
    spec!(
        "sunionstore",
        -3,
        ["write", "denyoom"],
        (1, -1, 1),
        "set",
        "1.0.0",
        "O(N)",
        "Stores the union of multiple sets in a key.",
        setops::sunionstore
    ),
    spec!(
        "ttl",
        2,
        ["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "1.0.0",
        "O(1)",
        "Returns the expiration time in seconds of a key.",
        expire::ttl
    ),
    spec!(
        "type",
        2,
        ["readonly", "fast"],
        (1, 1, 1),
        "generic",
        "1.0.0",
        "O(1)",
        "Determines the type of value stored at a key.",
        keys::type_
    ),
    spec!(
        "unlink",
        -2,
        ["write", "fast"],
        (1, -1, 1),
        "generic",
        "4.0.0",
        "O(1)",
        "Asynchronously deletes one or more keys.",
        keys::del
    ),
];

/// Finds a top-level command by (any-case) name.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    find(COMMANDS, name)
}

fn find(table: &'static [Spec], name: &[u8]) -> Option<&'static Spec> {
    if name.len() > 16 {
        return None;
    }
    let mut lower = [0u8; 16];
    for (d, s) in lower.iter_mut().zip(name) {
        *d = s.to_ascii_lowercase();
    }
    let lower = &lower[..name.len()];
    table
        .binary_search_by(|s| s.name.as_bytes().cmp(lower))
        .ok()
        .map(|i| &table[i])
}

fn arity_ok(arity: i32, argc: usize) -> bool {
    let argc = argc as i64;
    let arity = i64::from(arity);
    if arity > 0 {
        argc == arity
    } else {
        argc >= -arity
    }
}

fn quote_args(out: &mut Vec<u8>, args: &[Bytes]) {
    // Redis: "'%.*s' " per argument while the text is shorter than 128 bytes.
    let start = out.len();
    for a in args {
        let used = out.len() - start;
        if used >= 128 {
            break;
        }
        let nul = a.iter().position(|&b| b == 0).unwrap_or(a.len());
        let take = nul.min(128 - used);
        out.push(b'\'');
        out.extend_from_slice(&a[..take]);
        out.extend_from_slice(b"' ");
    }
}

fn c_str(b: &[u8], max: usize) -> &[u8] {
    let nul = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    &b[..nul.min(max)]
}

/// Executes one request; returns true if it was a write (for `appendfsync always`).
pub fn execute(shared: &Shared, client: &mut Client, args: &[Bytes]) -> bool {
    shared
        .stats
        .total_commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let Some(mut spec) = lookup(&args[0]) else {
        let mut msg = b"ERR unknown command '".to_vec();
        msg.extend_from_slice(c_str(&args[0], 128));
        msg.extend_from_slice(b"', with args beginning with: ");
        quote_args(&mut msg, &args[1..]);
        client.out.error(&String::from_utf8_lossy(&msg));
        return false;
    };
    let mut fullname = std::borrow::Cow::Borrowed(spec.name);
    if !spec.subs.is_empty() && args.len() >= 2 {
        match find(spec.subs, &args[1]) {
            Some(sub) => {
                fullname = format!("{}|{}", spec.name, sub.name).into();
                spec = sub;
            }
            None => {
                client.out.error(&format!(
                    "ERR unknown subcommand '{}'. Try {} HELP.",
                    String::from_utf8_lossy(c_str(&args[1], 128)),
                    spec.name.to_ascii_uppercase()
                ));
                return false;
            }
        }
    }
    if !arity_ok(spec.arity, args.len()) {
        client.out.error(&format!(
            "ERR wrong number of arguments for '{fullname}' command"
        ));
        return false;
    }
    if !client.authed && !spec.no_auth() {
        client.out.error("NOAUTH Authentication required.");
        return false;
    }
    let write = spec.is_write();
    if write && shared.aof_failed() {
        client.out.error("MISCONF Errors writing to the AOF file: the last write or fsync failed; writes are refused until the server is restarted");
        return false;
    }
    (spec.handler)(shared, client, args);
    write
}

/// Parses SCAN/SSCAN options after the cursor: `MATCH`, `COUNT`, and `TYPE` (SCAN only).
pub struct ScanOpts<'a> {
    /// MATCH pattern.
    pub pattern: Option<&'a [u8]>,
    /// COUNT hint (default 10).
    pub count: usize,
    /// TYPE filter.
    pub type_: Option<&'a [u8]>,
}

/// Parses a cursor and the options after it; writes the error reply on failure.
pub fn scan_opts<'a>(
    client: &mut Client,
    args: &'a [Bytes],
    allow_type: bool,
) -> Option<(u64, ScanOpts<'a>)> {
    let cursor = match std::str::from_utf8(&args[0])
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        Some(c) if !args[0].starts_with(b"+") => c,
        _ => {
            client.out.error("ERR invalid cursor");
            return None;
        }
    };
    let mut o = ScanOpts {
        pattern: None,
        count: 10,
        type_: None,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - i - 1;
        if is(&args[i], "count") && more >= 1 {
            match arg_i64(&args[i + 1]) {
                None => {
                    client.out.error(ERR_NOT_INT);
                    return None;
                }
                Some(n) if n < 1 => {
                    client.out.error(ERR_SYNTAX);
                    return None;
                }
                Some(n) => o.count = n as usize,
            }
            i += 2;
        } else if is(&args[i], "match") && more >= 1 {
            o.pattern = Some(&args[i + 1]);
            i += 2;
        } else if allow_type && is(&args[i], "type") && more >= 1 {
            o.type_ = Some(&args[i + 1]);
            i += 2;
        } else {
            client.out.error(ERR_SYNTAX);
            return None;
        }
    }
    Some((cursor, o))
}

/// The stable 64-bit hash SCAN cursors are based on.
pub fn scan_hash(b: &[u8]) -> u64 {
    // FNV-1a: stable across processes and calls, which cursors need.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &x in b {
        h ^= u64::from(x);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// One SCAN page over `items`: elements whose hash is `>= cursor`, in hash order, about
/// `count` of them (more for large collections, so a full scan takes a bounded number of
/// calls). Returns the next cursor (0 when done) and the page.
pub fn scan_page<'a, I>(items: I, len: usize, cursor: u64, count: usize) -> (u64, Vec<&'a [u8]>)
where
    I: Iterator<Item = &'a [u8]>,
{
    let want = count.max(len / 16).max(1);
    let mut cand: Vec<(u64, &'a [u8])> = items
        .map(|b| (scan_hash(b), b))
        .filter(|(h, _)| *h >= cursor)
        .collect();
    if cand.len() <= want {
        return (0, cand.into_iter().map(|(_, b)| b).collect());
    }
    cand.select_nth_unstable_by_key(want - 1, |(h, _)| *h);
    let boundary = cand[want - 1].0;
    // Everything sharing the boundary hash goes in this page, so nothing is skipped.
    let page: Vec<&[u8]> = cand
        .iter()
        .filter(|(h, _)| *h <= boundary)
        .map(|(_, b)| *b)
        .collect();
    let more = cand.iter().any(|(h, _)| *h > boundary);
    let next = if more { boundary.wrapping_add(1) } else { 0 };
    (next, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        for t in [COMMANDS, CLIENT_SUBS, COMMAND_SUBS, CONFIG_SUBS] {
            for w in t.windows(2) {
                assert!(w[0].name < w[1].name, "{} >= {}", w[0].name, w[1].name);
            }
        }
        assert!(lookup(b"SaDd").is_some());
        assert!(lookup(b"set").is_none());
    }

    #[test]
    fn scan_pages_cover_everything() {
        let items: Vec<Vec<u8>> = (0..1000).map(|i| format!("k{i}").into_bytes()).collect();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, page) = scan_page(items.iter().map(|v| &v[..]), items.len(), cursor, 10);
            seen.extend(page.into_iter().map(<[u8]>::to_vec));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert_eq!(seen.len(), 1000);
    }
}
