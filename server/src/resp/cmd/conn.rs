//! Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT and CLIENT.
//!
//! They change only the calling connection (protocol version, authentication, name);
//! none touches the keyspace.

use bytes::Bytes;

use super::{ERR_NOT_INT, ERR_SYNTAX, arg_i64, is, quoting};
use crate::resp::state::Client;
use crate::resp::state::Shared;

/// The version we report in HELLO and INFO: the Redis release whose behaviour we follow.
pub const REDIS_VERSION: &str = "7.2.0";

/// PING [message]
pub fn ping(_: &Shared, c: &mut Client, args: &[Bytes]) {
    if c.subs.count() > 0 && !c.out.resp3 && args.len() <= 2 {
        // A subscribed RESP2 connection gets `[pong, message]` (message empty by default).
        c.out.array_len(2);
        c.out.bulk(b"pong");
        c.out.bulk(args.get(1).map_or(&b""[..], |m| &m[..]));
        return;
    }
    match args.len() {
        1 => c.out.simple("PONG"),
        2 => c.out.bulk(&args[1]),
        _ => c
            .out
            .error("ERR wrong number of arguments for 'ping' command"),
    }
}

/// ECHO message
pub fn echo(_: &Shared, c: &mut Client, args: &[Bytes]) {
    c.out.bulk(&args[1]);
}

/// QUIT
pub fn quit(_: &Shared, c: &mut Client, _: &[Bytes]) {
    c.out.ok();
    c.close = true;
}

/// RESET: back to RESP2, unnamed, unauthenticated when a password is set, out of any
/// transaction and watching nothing.
pub fn reset(s: &Shared, c: &mut Client, _: &[Bytes]) {
    super::multi::forget(s, c);
    super::pubsub::forget(s, c);
    c.out.resp3 = false;
    c.authed = s.config.requirepass.is_none();
    if let Some(m) = s.clients.lock().get_mut(&c.id) {
        m.name.clear();
        m.resp = 2;
    }
    c.out.simple("RESET");
}

fn check_password(s: &Shared, user: Option<&[u8]>, pass: &[u8]) -> bool {
    if user.is_some_and(|u| u != b"default") {
        return false;
    }
    match &s.config.requirepass {
        None => true,
        Some(p) => p.as_bytes() == pass,
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// AUTH [username] password
pub fn auth(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        c.out.error(ERR_SYNTAX);
        return;
    }
    let (user, pass) = if args.len() == 2 {
        if s.config.requirepass.is_none() {
            c.out.error("ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?");
            return;
        }
        (None, &args[1])
    } else {
        (Some(&args[1][..]), &args[2])
    };
    if check_password(s, user, pass) {
        c.authed = true;
        c.out.ok();
    } else {
        c.out.error(WRONGPASS);
    }
}

fn valid_name(n: &[u8]) -> bool {
    n.iter().all(|&b| (b'!'..=b'~').contains(&b))
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ver = None;
    let mut i = 1;
    if args.len() >= 2 {
        match arg_i64(&args[1]) {
            None => {
                c.out
                    .error("ERR Protocol version is not an integer or out of range");
                return;
            }
            Some(v) if !(2..=3).contains(&v) => {
                c.out.error("NOPROTO unsupported protocol version");
                return;
            }
            Some(v) => ver = Some(v),
        }
        i = 2;
    }
    let mut creds = None;
    let mut name = None;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "auth") && more >= 2 {
            creds = Some((&args[i + 1], &args[i + 2]));
            i += 3;
        } else if is(&args[i], "setname") && more >= 1 {
            if !valid_name(&args[i + 1]) {
                c.out.error(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                );
                return;
            }
            name = Some(&args[i + 1]);
            i += 2;
        } else {
            c.out.error_bytes(&quoting(
                "ERR Syntax error in HELLO option '",
                &args[i],
                usize::MAX,
                "'",
            ));
            return;
        }
    }
    if let Some((u, p)) = creds {
        if !check_password(s, Some(u), p) {
            c.out.error(WRONGPASS);
            return;
        }
        c.authed = true;
    }
    if !c.authed {
        c.out.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if let Some(v) = ver {
        c.out.resp3 = v == 3;
        if let Some(ob) = &c.subs.outbox {
            ob.set_resp3(c.out.resp3);
        }
    }
    {
        let mut clients = s.clients.lock();
        if let Some(m) = clients.get_mut(&c.id) {
            if let Some(n) = name {
                m.name = String::from_utf8_lossy(n).into_owned();
            }
            m.resp = c.proto();
        }
    }
    let o = &mut c.out;
    o.map_len(7);
    o.bulk(b"server");
    o.bulk(b"redis");
    o.bulk(b"version");
    o.bulk(REDIS_VERSION.as_bytes());
    o.bulk(b"proto");
    o.int(if o.resp3 { 3 } else { 2 });
    o.bulk(b"id");
    o.int(c.id as i64);
    o.bulk(b"mode");
    o.bulk(b"standalone");
    o.bulk(b"role");
    o.bulk(b"master");
    o.bulk(b"modules");
    o.array_len(0);
}

/// SELECT index (only database 0 exists)
pub fn select(_: &Shared, c: &mut Client, args: &[Bytes]) {
    match arg_i64(&args[1]) {
        Some(0) => c.out.ok(),
        Some(n) if i32::try_from(n).is_ok() => c.out.error("ERR DB index is out of range"),
        Some(_) => c
            .out
            .error("ERR value is out of range, value must between -2147483648 and 2147483647"),
        None => c.out.error(ERR_NOT_INT),
    }
}

/// CLIENT ID
pub fn client_id(_: &Shared, c: &mut Client, _: &[Bytes]) {
    c.out.int(c.id as i64);
}

/// CLIENT GETNAME
pub fn client_getname(s: &Shared, c: &mut Client, _: &[Bytes]) {
    let name = s
        .clients
        .lock()
        .get(&c.id)
        .map(|m| m.name.clone())
        .unwrap_or_default();
    if name.is_empty() {
        c.out.null();
    } else {
        c.out.bulk(name.as_bytes());
    }
}

/// CLIENT SETNAME name (empty clears it)
pub fn client_setname(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if !valid_name(&args[2]) {
        c.out
            .error("ERR Client names cannot contain spaces, newlines or special characters.");
        return;
    }
    if let Some(m) = s.clients.lock().get_mut(&c.id) {
        m.name = String::from_utf8_lossy(&args[2]).into_owned();
    }
    c.out.ok();
}

/// CLIENT SETINFO LIB-NAME|LIB-VER value
pub fn client_setinfo(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let lib_name = is(&args[2], "lib-name");
    if !lib_name && !is(&args[2], "lib-ver") {
        c.out.error_bytes(&quoting(
            "ERR Unrecognized option '",
            &args[2],
            usize::MAX,
            "'",
        ));
        return;
    }
    if !valid_name(&args[3]) && !args[3].is_empty() {
        c.out.error(&format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            if lib_name { "lib-name" } else { "lib-ver" }
        ));
        return;
    }
    if let Some(m) = s.clients.lock().get_mut(&c.id) {
        let v = String::from_utf8_lossy(&args[3]).into_owned();
        if lib_name {
            m.lib_name = v;
        } else {
            m.lib_ver = v;
        }
    }
    c.out.ok();
}

/// CLIENT LIST's `flags=`: `S` a replica link, `P` a subscriber, `x` in MULTI, else `N`.
fn client_flags(m: &crate::resp::state::ClientMeta) -> String {
    let mut f = String::new();
    if m.kind == "slave" {
        f.push('S');
    }
    if m.sub + m.psub > 0 {
        f.push('P');
    }
    if m.multi >= 0 {
        f.push('x');
    }
    if f.is_empty() {
        f.push('N');
    }
    f
}

fn client_line(id: u64, m: &crate::resp::state::ClientMeta) -> String {
    format!(
        "id={id} addr={} laddr={} fd=0 name={} age={} idle=0 flags={} db=0 sub={} psub={} ssub=0 multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
        m.addr,
        m.laddr,
        m.name,
        m.created.elapsed().as_secs(),
        client_flags(m),
        m.sub,
        m.psub,
        m.multi,
        m.last_cmd,
        m.resp,
        m.lib_name,
        m.lib_ver
    )
}

/// CLIENT INFO
pub fn client_info(s: &Shared, c: &mut Client, _: &[Bytes]) {
    let line = s
        .clients
        .lock()
        .get(&c.id)
        .map(|m| client_line(c.id, m))
        .unwrap_or_default();
    c.out.verbatim(&line);
}

/// CLIENT LIST [TYPE normal] [ID id ...]
pub fn client_list(s: &Shared, c: &mut Client, args: &[Bytes]) {
    // Redis 7.0's argument rules: `TYPE t` only as the sole filter, with Redis's client
    // type names (our master link is not a listed connection, so `master` lists none); `ID`
    // followed by integers, each id listed in the order given, once per mention (0,
    // negative and unknown ids list nothing).
    let text = if args.len() == 2 {
        s.clients
            .lock()
            .iter()
            .map(|(id, m)| client_line(*id, m))
            .collect::<String>()
    } else if args.len() == 4 && is(&args[2], "type") {
        let t = &args[3];
        let kind = if is(t, "replica") { "slave" } else { "" };
        if let Some(kind) = ["normal", "master", "slave", "pubsub"]
            .into_iter()
            .find(|n| is(t, n))
            .or((!kind.is_empty()).then_some(kind))
        {
            s.clients
                .lock()
                .iter()
                .filter(|(_, m)| m.kind == kind)
                .map(|(id, m)| client_line(*id, m))
                .collect::<String>()
        } else {
            c.out
                .error_bytes(&quoting("ERR Unknown client type '", t, usize::MAX, "'"));
            return;
        }
    } else if args.len() > 3 && is(&args[2], "id") {
        let mut ids = Vec::with_capacity(args.len() - 3);
        for a in &args[3..] {
            match arg_i64(a) {
                Some(n) => ids.push(n),
                None => {
                    c.out.error("ERR Invalid client ID");
                    return;
                }
            }
        }
        let clients = s.clients.lock();
        ids.iter()
            .filter_map(|&id| {
                let id = u64::try_from(id).ok()?;
                clients.get(&id).map(|m| client_line(id, m))
            })
            .collect::<String>()
    } else {
        c.out.error(ERR_SYNTAX);
        return;
    };
    c.out.verbatim(&text);
}

/// CLIENT KILL addr | CLIENT KILL [ID id] [TYPE type] [USER user] [ADDR ip:port]
/// [LADDR ip:port] [SKIPME yes|no]: Redis 7.0's rules and replies. The killed connections
/// close at once; this one (old form, or SKIPME no) after its reply.
pub fn client_kill(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut addr: Option<&[u8]> = None;
    let mut laddr: Option<&[u8]> = None;
    let mut id: Option<u64> = None;
    let mut kind: Option<&str> = None;
    let old_form = args.len() == 3;
    let mut skipme = !old_form;
    if old_form {
        addr = Some(&args[2]);
    } else {
        for pair in args[2..].chunks(2) {
            let [opt, val] = pair else {
                c.out.error(ERR_SYNTAX);
                return;
            };
            if is(opt, "id") {
                match arg_i64(val) {
                    Some(n) if n >= 1 => id = Some(n as u64),
                    _ => {
                        c.out.error("ERR client-id should be greater than 0");
                        return;
                    }
                }
            } else if is(opt, "type") {
                kind = Some(if is(val, "normal") {
                    "normal"
                } else if is(val, "slave") || is(val, "replica") {
                    "slave"
                } else if is(val, "master") {
                    "master"
                } else if is(val, "pubsub") {
                    "pubsub"
                } else {
                    c.out
                        .error_bytes(&quoting("ERR Unknown client type '", val, usize::MAX, "'"));
                    return;
                });
            } else if is(opt, "addr") {
                addr = Some(val);
            } else if is(opt, "laddr") {
                laddr = Some(val);
            } else if is(opt, "user") {
                // Users are case-sensitive; `default` is the only one.
                if val[..] != *b"default" {
                    c.out
                        .error_bytes(&quoting("ERR No such user '", val, usize::MAX, "'"));
                    return;
                }
            } else if is(opt, "skipme") {
                if is(val, "yes") {
                    skipme = true;
                } else if is(val, "no") {
                    skipme = false;
                } else {
                    c.out.error(ERR_SYNTAX);
                    return;
                }
            } else {
                c.out.error(ERR_SYNTAX);
                return;
            }
        }
    }
    let mut killed = 0;
    let mut me = false;
    for (cid, m) in s.clients.lock().iter() {
        if addr.is_some_and(|a| a != m.addr.to_string().as_bytes())
            || laddr.is_some_and(|a| a != m.laddr.to_string().as_bytes())
            || kind.is_some_and(|k| k != m.kind)
            || id.is_some_and(|i| i != *cid)
            || (*cid == c.id && skipme)
        {
            continue;
        }
        if *cid == c.id {
            me = true;
        } else {
            m.kill.notify_one();
        }
        killed += 1;
    }
    if old_form {
        if killed == 0 {
            c.out.error("ERR No such client");
        } else {
            c.out.ok();
        }
    } else {
        c.out.int(killed);
    }
    if me {
        c.close = true;
    }
}

/// CLIENT HELP
pub fn client_help(_: &Shared, c: &mut Client, _: &[Bytes]) {
    let lines = [
        "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GETNAME",
        "    Return the name of the current connection.",
        "ID",
        "    Return the ID of the current connection.",
        "INFO",
        "    Return information about the current client connection.",
        "KILL <ip:port>",
        "    Kill connection made from <ip:port>.",
        "KILL <option> <value> [<option> <value> [...]]",
        "    Kill connections. Options are:",
        "    * ADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made from the specified address",
        "    * LADDR (<ip:port>|<unixsocket>:0)",
        "      Kill connections made to specified local address",
        "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
        "      Kill connections by type.",
        "    * USER <username>",
        "      Kill connections authenticated by <username>.",
        "    * SKIPME (YES|NO)",
        "      Skip killing current connection (default: yes).",
        "    * ID <client-id>",
        "      Kill connections by client id.",
        "LIST [TYPE normal] [ID <id> ...]",
        "    Return information about client connections.",
        "SETINFO <option> <value>",
        "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
        "SETNAME <name>",
        "    Assign the name <name> to the current connection.",
        "HELP",
        "    Print this help.",
    ];
    c.out.help(&lines);
}
