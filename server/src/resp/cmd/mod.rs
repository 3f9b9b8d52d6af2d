//! The command table and dispatch: lookup, arity, authentication, then the handler.
//!
//! Checks run in Redis's order (unknown command, unknown subcommand, arity, NOAUTH,
//! MISCONF) with Redis's exact error text; inside MULTI a request that passes them is
//! queued instead (`multi`). Handlers live one group per file; each takes the keyspace
//! lock itself, never across an `.await`. The same table answers COMMAND.

use bytes::Bytes;

use super::frame::parse_i64;
use super::state::Client;
use super::state::Shared;

pub mod config;
pub mod conn;
pub mod expire;
pub mod keys;
pub mod multi;
pub mod pubsub;
pub mod redis_docs;
pub mod repl;
pub mod setops;
pub mod sets;
pub mod system;
pub mod table;

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
    pub(crate) fn is_write(&self) -> bool {
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

/// Case-insensitive comparison of an argument with an ASCII keyword, as Redis's
/// `strcasecmp` on the argument's C string: the argument ends at its first NUL byte
/// (`COUNT\0x` is `COUNT`).
pub fn is(arg: &[u8], kw: &str) -> bool {
    c_str(arg, usize::MAX).eq_ignore_ascii_case(kw.as_bytes())
}

/// Parses a SCAN-family cursor as Redis 7.0's `parseScanCursorOrReply` does with
/// `strtoul(.., 10)` on the C string: a leading space is refused, then an optional sign
/// (a `-` negates modulo 2^64, so `-1` is the largest cursor), decimal digits (none at all
/// reads as 0, so the empty string is cursor 0, but a lone sign is refused), and nothing
/// after them but the end of the C string (a NUL ends it); overflow is refused.
pub fn parse_cursor(arg: &[u8]) -> Option<u64> {
    let s = c_str(arg, usize::MAX);
    if s.is_empty() {
        return Some(0);
    }
    let (neg, digits) = match s[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut v: u64 = 0;
    for &d in digits {
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(if neg { v.wrapping_neg() } else { v })
}

pub use table::COMMANDS;

/// Finds a top-level command by (any-case) name.
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    find(COMMANDS, name)
}

/// The command-table index and name of a top-level command (for the per-command metrics).
pub fn index(name: &[u8]) -> Option<(usize, &'static str)> {
    let spec = lookup(name)?;
    // `spec` is an element of COMMANDS: its index is its offset, no scan needed.
    let i =
        (spec as *const Spec as usize - COMMANDS.as_ptr() as usize) / std::mem::size_of::<Spec>();
    Some((i, spec.name))
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

/// An error line quoting a client's argument as Redis's `%s`/`%.Ns` does: the argument's
/// raw bytes up to its first NUL (at most `max`), not re-encoded; [`Out::error_bytes`]
/// then turns CR and LF into spaces, as Redis does.
///
/// [`Out::error_bytes`]: crate::resp::reply::Out::error_bytes
pub fn quoting(prefix: &str, arg: &[u8], max: usize, suffix: &str) -> Vec<u8> {
    let mut msg = prefix.as_bytes().to_vec();
    msg.extend_from_slice(c_str(arg, max));
    msg.extend_from_slice(suffix.as_bytes());
    msg
}

fn c_str(b: &[u8], max: usize) -> &[u8] {
    let nul = b.iter().position(|&x| x == 0).unwrap_or(b.len());
    &b[..nul.min(max)]
}

/// Finds the command (or subcommand) `args` names and checks its arity; the error line
/// (without its `-`) if it is unknown or the arity is wrong.
pub(crate) fn resolve(args: &[Bytes]) -> Result<&'static Spec, Vec<u8>> {
    let Some(mut spec) = lookup(&args[0]) else {
        let mut msg = b"ERR unknown command '".to_vec();
        msg.extend_from_slice(c_str(&args[0], 128));
        msg.extend_from_slice(b"', with args beginning with: ");
        quote_args(&mut msg, &args[1..]);
        return Err(msg);
    };
    let mut fullname = std::borrow::Cow::Borrowed(spec.name);
    if !spec.subs.is_empty() && args.len() >= 2 {
        match find(spec.subs, &args[1]) {
            Some(sub) => {
                fullname = format!("{}|{}", spec.name, sub.name).into();
                spec = sub;
            }
            None => {
                return Err(quoting(
                    "ERR unknown subcommand '",
                    &args[1],
                    128,
                    &format!("'. Try {} HELP.", spec.name.to_ascii_uppercase()),
                ));
            }
        }
    }
    if !arity_ok(spec.arity, args.len()) {
        return Err(format!("ERR wrong number of arguments for '{fullname}' command").into_bytes());
    }
    Ok(spec)
}

/// Executes one request; returns true if it wrote (the connection then flushes the AOF
/// before replying).
///
/// Inside MULTI, a request that passes the checks is queued (`+QUEUED`) unless it is one
/// of the commands that act on the transaction itself; one that fails them dooms the
/// transaction (EXEC replies `-EXECABORT`), as in Redis.
pub fn execute(shared: &Shared, client: &mut Client, args: &[Bytes]) -> bool {
    let spec = match checked(shared, client, args) {
        Ok(spec) => spec,
        Err(msg) => {
            if is(&args[0], "exec") {
                // Redis answers a refused EXEC by discarding the transaction, in MULTI or not.
                multi::abort(shared, client, &msg);
            } else {
                if let Some(tx) = &mut client.tx {
                    tx.failed = true;
                }
                client.out.error_bytes(&msg);
            }
            return false;
        }
    };
    if client.tx.is_some() && !multi::acts_on_transaction(spec) {
        multi::queue(shared, client, spec, args);
        return false;
    }
    let write = spec.is_write() || multi::exec_writes(spec, client);
    (spec.handler)(shared, client, args);
    write
}

/// [`resolve`], then authentication and the refusal of writes while the AOF fails.
fn checked(shared: &Shared, client: &Client, args: &[Bytes]) -> Result<&'static Spec, Vec<u8>> {
    let spec = resolve(args)?;
    if !client.authed && !spec.no_auth() {
        return Err(b"NOAUTH Authentication required.".to_vec());
    }
    if spec.is_write() && !client.master_link && shared.repl.is_replica() {
        return Err(b"READONLY You can't write against a read only replica.".to_vec());
    }
    if client.subs.count() > 0 && !client.out.resp3 && !pubsub::allowed_while_subscribed(spec.name)
    {
        let mut name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        if lookup(&args[0]).is_some_and(|parent| !std::ptr::eq(parent, spec)) {
            name = format!("{name}|{}", spec.name);
        }
        return Err(format!("ERR Can't execute '{name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context").into_bytes());
    }
    if client.tx.is_some() && spec.flags.contains(&"no_multi") {
        return Err(b"ERR Command not allowed inside a transaction".to_vec());
    }
    // Redis refuses PING too while persistence fails, so health checks see it; and an
    // EXEC whose queue writes.
    if (spec.is_write() || spec.name == "ping" || multi::exec_writes(spec, client))
        && let Some(errno) = shared.aof_write_error()
    {
        return Err(format!(
            "MISCONF Errors writing to the AOF file: {}",
            super::aof::strerror(errno)
        )
        .into_bytes());
    }
    Ok(spec)
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
    let Some(cursor) = parse_cursor(&args[0]) else {
        client.out.error("ERR invalid cursor");
        return None;
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

#[cfg(test)]
mod tests {
    use super::table::{CLIENT_SUBS, COMMAND_SUBS, CONFIG_SUBS, PUBSUB_SUBS};
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        for t in [
            COMMANDS,
            CLIENT_SUBS,
            COMMAND_SUBS,
            CONFIG_SUBS,
            PUBSUB_SUBS,
        ] {
            for w in t.windows(2) {
                assert!(w[0].name < w[1].name, "{} >= {}", w[0].name, w[1].name);
            }
        }
        assert!(lookup(b"SaDd").is_some());
        assert!(lookup(b"set").is_none());
    }

    #[test]
    fn cursors_parse_like_strtoul() {
        assert_eq!(parse_cursor(b""), Some(0));
        assert_eq!(parse_cursor(b"+7"), Some(7));
        assert_eq!(parse_cursor(b"007"), Some(7));
        assert_eq!(parse_cursor(b"-1"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"-18446744073709551615"), Some(1));
        assert_eq!(parse_cursor(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_cursor(b"18446744073709551616"), None);
        assert_eq!(parse_cursor(b"5\0junk"), Some(5));
        for bad in [&b" 5"[..], b"5 ", b"+", b"-", b"0x10", b"1e3"] {
            assert_eq!(parse_cursor(bad), None, "{bad:?}");
        }
    }
}
