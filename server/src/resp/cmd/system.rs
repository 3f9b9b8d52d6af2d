//! Server commands: COMMAND (COUNT, DOCS, INFO, LIST), INFO, DBSIZE, FLUSHDB/FLUSHALL,
//! CONFIG GET and TIME.
//!
//! COMMAND answers from the dispatch table so clients' handshakes and redis-cli's hints see
//! exactly the commands we serve. CONFIG is read-only: settings come from flags and file.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::{COMMANDS, ERR_SYNTAX, Spec, is, lookup, redis_docs};
use crate::resp::frame::Frame;
use crate::resp::glob;
use crate::resp::memory;
use crate::resp::reply::Out;
use crate::resp::state::Client;
use crate::resp::state::Shared;

/// Redis's ACL categories in the order COMMAND INFO lists them (its category ids).
const CATEGORY_ORDER: &[&str] = &[
    "@keyspace",
    "@read",
    "@write",
    "@set",
    "@sortedset",
    "@list",
    "@hash",
    "@string",
    "@bitmap",
    "@hyperloglog",
    "@geo",
    "@stream",
    "@pubsub",
    "@admin",
    "@fast",
    "@slow",
    "@blocking",
    "@dangerous",
    "@connection",
    "@transaction",
    "@scripting",
];

/// ACL categories for a command Redis 7.0 has no entry for, as Redis derives the implicit
/// ones (write, read, admin + dangerous, fast or slow) plus its group's.
fn derived_categories(s: &Spec) -> Vec<&'static str> {
    let mut c: Vec<&'static str> = Vec::new();
    if s.flags.contains(&"write") {
        c.push("@write");
    }
    if s.flags.contains(&"readonly") {
        c.push("@read");
    }
    if s.flags.contains(&"admin") {
        c.extend(["@admin", "@dangerous"]);
    }
    c.push(if s.flags.contains(&"fast") {
        "@fast"
    } else {
        "@slow"
    });
    let group = match s.group {
        "transactions" => "@transaction",
        "generic" => "@keyspace",
        "connection" => "@connection",
        "set" => "@set",
        _ => "",
    };
    if !group.is_empty() {
        c.push(group);
    }
    c.sort_by_key(|x| CATEGORY_ORDER.iter().position(|o| o == x));
    c.dedup();
    c
}

fn fullname(s: &Spec, parent: Option<&str>) -> String {
    match parent {
        Some(p) => format!("{p}|{}", s.name),
        None => s.name.to_owned(),
    }
}

/// The ACL categories COMMAND INFO reports for `s`.
fn categories(s: &Spec, parent: Option<&str>) -> Vec<&'static str> {
    match redis_docs::get(&fullname(s, parent)) {
        Some(e) => redis_docs::categories(e),
        None => derived_categories(s),
    }
}

fn spec_info(o: &mut Out, s: &Spec, parent: Option<&str>) {
    let name = fullname(s, parent);
    o.array_len(10);
    match redis_docs::get(&name).map(|e| &e.info) {
        // Redis's own entry; the subcommands are the ones we serve.
        Some(Frame::Array(v)) if v.len() == 10 => {
            v[..9].iter().for_each(|f| redis_docs::write(o, f));
        }
        _ => {
            o.bulk(name.as_bytes());
            o.int(i64::from(s.arity));
            o.set_len(s.flags.len());
            for f in s.flags {
                o.simple(f);
            }
            o.int(i64::from(s.keys.0));
            o.int(i64::from(s.keys.1));
            o.int(i64::from(s.keys.2));
            let cats = derived_categories(s);
            o.set_len(cats.len());
            cats.iter().for_each(|c| o.simple(c));
            o.set_len(0);
            o.array_len(0);
        }
    }
    // As Redis replies: an empty set for a command without subcommands, else an array.
    if s.subs.is_empty() {
        o.set_len(0);
    } else {
        o.array_len(s.subs.len());
    }
    for sub in s.subs {
        spec_info(o, sub, Some(s.name));
    }
}

/// Finds a command or, as `container|sub`, a subcommand (any case), with its parent.
fn lookup_full(name: &[u8]) -> Option<(&'static Spec, Option<&'static str>)> {
    match name.iter().position(|&b| b == b'|') {
        None => lookup(name).map(|s| (s, None)),
        Some(bar) => {
            let parent = lookup(&name[..bar])?;
            let sub = parent
                .subs
                .iter()
                .find(|s| s.name.as_bytes().eq_ignore_ascii_case(&name[bar + 1..]))?;
            Some((sub, Some(parent.name)))
        }
    }
}

/// COMMAND: information about every command.
pub fn command(_: &Shared, c: &mut Client, _: &[Bytes]) {
    c.out.array_len(COMMANDS.len());
    for s in COMMANDS {
        spec_info(&mut c.out, s, None);
    }
}

/// COMMAND COUNT
pub fn command_count(_: &Shared, c: &mut Client, _: &[Bytes]) {
    c.out.int(COMMANDS.len() as i64);
}

/// Whether COMMAND LIST's filter keeps a command (with its parent, for a subcommand).
type ListFilter = dyn Fn(&Spec, Option<&str>) -> bool;

/// COMMAND LIST [FILTERBY MODULE name | ACLCAT category | PATTERN pattern]: names of
/// commands, and with a filter of subcommands too (`client|list`), as Redis 7.0.
pub fn command_list(_: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() == 2 {
        c.out.array_len(COMMANDS.len());
        for s in COMMANDS {
            c.out.bulk(s.name.as_bytes());
        }
        return;
    }
    if args.len() != 5 || !is(&args[2], "filterby") {
        c.out.error(ERR_SYNTAX);
        return;
    }
    let arg = &args[4];
    let keep: Box<ListFilter> = if is(&args[3], "module") {
        // No modules here.
        Box::new(|_, _| false)
    } else if is(&args[3], "aclcat") {
        let cat = format!("@{}", String::from_utf8_lossy(arg).to_ascii_lowercase());
        Box::new(move |s, p| categories(s, p).contains(&cat.as_str()))
    } else if is(&args[3], "pattern") {
        let pattern = arg.clone();
        Box::new(move |s, p| glob::matches(&pattern, fullname(s, p).as_bytes(), true))
    } else {
        c.out.error(ERR_SYNTAX);
        return;
    };
    let mut names = Vec::new();
    for s in COMMANDS {
        if keep(s, None) {
            names.push(s.name.to_owned());
        }
        for sub in s.subs {
            if keep(sub, Some(s.name)) {
                names.push(fullname(sub, Some(s.name)));
            }
        }
    }
    c.out.array_len(names.len());
    for n in names {
        c.out.bulk(n.as_bytes());
    }
}

/// COMMAND INFO [name ...]: unknown names are nulls, `container|sub` names a subcommand.
pub fn command_info(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() == 2 {
        return command(s, c, args);
    }
    c.out.array_len(args.len() - 2);
    for a in &args[2..] {
        match lookup_full(a) {
            Some((s, parent)) => spec_info(&mut c.out, s, parent),
            None => c.out.null(),
        }
    }
}

fn spec_docs(o: &mut Out, s: &Spec, parent: Option<&str>) {
    let name = fullname(s, parent);
    // Subcommands are named `parent|sub`; redis-cli splits on the `|`.
    o.bulk(name.as_bytes());
    let has_subs = !s.subs.is_empty();
    match redis_docs::get(&name).map(|e| &e.docs) {
        Some(Frame::Map(pairs)) => {
            let kept: Vec<_> = pairs
                .iter()
                .filter(|(k, _)| *k != Frame::Bulk(Bytes::from_static(b"subcommands")))
                .collect();
            o.map_len(kept.len() + usize::from(has_subs));
            for (k, v) in kept {
                redis_docs::write(o, k);
                redis_docs::write(o, v);
            }
        }
        _ => {
            o.map_len(4 + usize::from(has_subs));
            o.bulk(b"summary");
            o.bulk(s.summary.as_bytes());
            o.bulk(b"since");
            o.bulk(s.since.as_bytes());
            o.bulk(b"group");
            o.bulk(s.group.as_bytes());
            o.bulk(b"complexity");
            o.bulk(s.complexity.as_bytes());
        }
    }
    if has_subs {
        o.bulk(b"subcommands");
        o.map_len(s.subs.len());
        for sub in s.subs {
            spec_docs(o, sub, Some(s.name));
        }
    }
}

/// COMMAND DOCS [name ...]: unknown names are left out.
pub fn command_docs(_: &Shared, c: &mut Client, args: &[Bytes]) {
    let specs: Vec<(&Spec, Option<&str>)> = if args.len() == 2 {
        COMMANDS.iter().map(|s| (s, None)).collect()
    } else {
        args[2..].iter().filter_map(|a| lookup_full(a)).collect()
    };
    c.out.map_len(specs.len());
    for (s, parent) in specs {
        spec_docs(&mut c.out, s, parent);
    }
}

/// COMMAND GETKEYS command [arg ...]: the keys of a command line, by Redis's key specs.
pub fn command_getkeys(_: &Shared, c: &mut Client, args: &[Bytes]) {
    getkeys(c, args, false);
}

/// COMMAND GETKEYSANDFLAGS command [arg ...]: the keys and their key-spec flags.
pub fn command_getkeysandflags(_: &Shared, c: &mut Client, args: &[Bytes]) {
    getkeys(c, args, true);
}

fn getkeys(c: &mut Client, args: &[Bytes], with_flags: bool) {
    let argv = &args[2..];
    // Redis's `lookupCommand`: a container with an argument names its subcommand.
    let found = lookup(&argv[0]).and_then(|top| {
        if top.subs.is_empty() || argv.len() < 2 {
            Some((top, None))
        } else {
            top.subs
                .iter()
                .find(|s| s.name.as_bytes().eq_ignore_ascii_case(&argv[1]))
                .map(|s| (s, Some(top.name)))
        }
    });
    let Some((spec, parent)) = found else {
        c.out.error("ERR Invalid command specified");
        return;
    };
    let Some(entry) = redis_docs::get(&fullname(spec, parent)).filter(|e| redis_docs::has_keys(e))
    else {
        c.out.error("ERR The command has no key arguments");
        return;
    };
    let argc = argv.len() as i64;
    let arity = i64::from(spec.arity);
    if (arity > 0 && arity != argc) || argc < -arity {
        c.out
            .error("ERR Invalid number of arguments specified for command");
        return;
    }
    let keys = match redis_docs::keys_of(entry, argv) {
        Some(k) if !k.is_empty() => k,
        _ => {
            c.out.error("ERR Invalid arguments specified for command");
            return;
        }
    };
    c.out.array_len(keys.len());
    for (pos, flags) in keys {
        if with_flags {
            c.out.array_len(2);
            c.out.bulk(&argv[pos]);
            redis_docs::write(&mut c.out, flags);
        } else {
            c.out.bulk(&argv[pos]);
        }
    }
}

/// COMMAND HELP
pub fn command_help(_: &Shared, c: &mut Client, _: &[Bytes]) {
    // Redis 7.0's text, word for word: every subcommand it names is served.
    let lines = [
        "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "(no subcommand)",
        "    Return details about all Redis commands.",
        "COUNT",
        "    Return the total number of commands in this Redis server.",
        "LIST",
        "    Return a list of all commands in this Redis server.",
        "INFO [<command-name> ...]",
        "    Return details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "DOCS [<command-name> ...]",
        "    Return documentation details about multiple Redis commands.",
        "    If no command names are given, documentation details for all",
        "    commands are returned.",
        "GETKEYS <full-command>",
        "    Return the keys from a full Redis command.",
        "GETKEYSANDFLAGS <full-command>",
        "    Return the keys and the access flags from a full Redis command.",
        "HELP",
        "    Prints this help.",
    ];
    c.out.help(&lines);
}

/// SAVE: writes the keyspace as Redis's RDB to `dump.rdb` in the RESP directory
/// (atomically: temporary file, fsync, rename, directory fsync); `-ERR` if that fails, as
/// Redis replies. See `server/docs/rdb.md`.
pub fn save(s: &Shared, c: &mut Client, _: &[Bytes]) {
    if s.saves.running.load(Ordering::SeqCst) {
        c.out.error("ERR Background save already in progress");
        return;
    }
    let (bytes, now) = encode_rdb(s);
    let path = s.config.dir.join(crate::resp::rdb::RDB_FILE);
    match speedlayer_vfs::durable::write_atomic(&*s.config.fs, &path, &bytes) {
        Ok(()) => {
            s.saves.last_save.store(now, Ordering::Relaxed);
            tracing::info!(path = %path.display(), bytes = bytes.len(), "DB saved on disk");
            c.out.ok();
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "SAVE failed");
            c.out.error("ERR");
        }
    }
}

fn encode_rdb(s: &Shared) -> (Vec<u8>, i64) {
    let now = crate::resp::state::unix_seconds();
    let ks = s.ks.lock();
    (
        crate::resp::rdb::encode(&ks, now, ks.approx_bytes() as u64),
        now,
    )
}

/// Starts a background save: the keyspace is encoded now (under its lock, where Redis
/// forks) and written by a thread of its own; false if one is already running.
pub fn start_bgsave(s: &Shared) -> bool {
    if s.saves.running.swap(true, Ordering::SeqCst) {
        return false;
    }
    let (bytes, now) = encode_rdb(s);
    let fs = s.config.fs.clone();
    let path = s.config.dir.join(crate::resp::rdb::RDB_FILE);
    let saves = s.saves.clone();
    let spawned = std::thread::Builder::new()
        .name("resp-bgsave".into())
        .spawn(move || {
            let r = speedlayer_vfs::durable::write_atomic(&*fs, &path, &bytes);
            match &r {
                Ok(()) => {
                    saves.last_save.store(now, Ordering::Relaxed);
                    tracing::info!(path = %path.display(), bytes = bytes.len(), "Background saving terminated with success");
                }
                Err(e) => tracing::warn!(path = %path.display(), error = %e, "Background saving failed"),
            }
            saves.last_failed.store(r.is_err(), Ordering::Relaxed);
            saves.running.store(false, Ordering::SeqCst);
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start a background save");
        s.saves.last_failed.store(true, Ordering::Relaxed);
        s.saves.running.store(false, Ordering::SeqCst);
        return false;
    }
    true
}

/// BGSAVE [SCHEDULE]: as Redis 7.0's replies; inside EXEC the save is scheduled for when
/// the transaction is over (a save in the middle of one would catch half of it).
pub fn bgsave(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let schedule = match args.len() {
        1 => false,
        2 if is(&args[1], "schedule") => true,
        _ => {
            c.out.error(ERR_SYNTAX);
            return;
        }
    };
    if s.saves.running.load(Ordering::SeqCst) {
        c.out.error("ERR Background save already in progress");
    } else if c.in_exec {
        s.saves.scheduled.store(true, Ordering::SeqCst);
        c.out.simple("Background saving scheduled");
    } else if start_bgsave(s) {
        c.out.simple("Background saving started");
    } else if schedule {
        s.saves.scheduled.store(true, Ordering::SeqCst);
        c.out.simple("Background saving scheduled");
    } else {
        c.out.error("ERR");
    }
}

/// LASTSAVE: Unix time of the last successful SAVE (the start time before any).
pub fn lastsave(s: &Shared, c: &mut Client, _: &[Bytes]) {
    c.out.int(s.saves.last_save.load(Ordering::Relaxed));
}

/// TIME: seconds and microseconds since the Unix epoch, as two bulk strings.
pub fn time(_: &Shared, c: &mut Client, _: &[Bytes]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    c.out.array_len(2);
    c.out.bulk(now.as_secs().to_string().as_bytes());
    c.out.bulk(now.subsec_micros().to_string().as_bytes());
}

/// DBSIZE
pub fn dbsize(s: &Shared, c: &mut Client, _: &[Bytes]) {
    let n = s.ks.lock().len();
    c.out.int(n as i64);
}

/// FLUSHDB / FLUSHALL [ASYNC|SYNC]
pub fn flushall(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() > 2 || (args.len() == 2 && !is(&args[1], "async") && !is(&args[1], "sync")) {
        c.out.error(ERR_SYNTAX);
        return;
    }
    let mut ks = s.ks.lock();
    ks.clear();
    ks.propagate(&[b"FLUSHALL"]);
    drop(ks);
    c.out.ok();
}

const SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "keyspace",
];

fn section(s: &Shared, name: &str, out: &mut String) {
    let ks_counts = || {
        let ks = s.ks.lock();
        (ks.len(), ks.volatile_len(), ks.stats, ks.dirty)
    };
    match name {
        "server" => {
            let up = s.started.elapsed().as_secs();
            let _ = write!(
                out,
                "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\nserver_name:speedlayer\r\nspeedlayer_version:{}\r\nos:{}\r\narch_bits:64\r\nmultiplexing_api:tokio\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nhz:{}\r\nexecutable:speedlayer-server\r\n",
                super::conn::REDIS_VERSION,
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::process::id(),
                s.run_id,
                s.local_addr.port(),
                up / 86400,
                s.config.hz
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n",
                s.client_count(),
                s.config.maxclients
            );
        }
        "memory" => {
            // The estimate walks every member; only pay for it without the counting allocator.
            let (used, counted) = match memory::allocated() {
                Some(n) => (n, true),
                None => (
                    s.ks.lock().approx_bytes()
                        + s.stats.multi_queued_bytes.load(Ordering::Relaxed) as usize,
                    false,
                ),
            };
            let _ = write!(
                out,
                "# Memory\r\nused_memory:{used}\r\nused_memory_human:{:.2}M\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\nmem_allocator:{}\r\n",
                used as f64 / (1024.0 * 1024.0),
                if counted {
                    "libc (counted)"
                } else {
                    "libc (estimated)"
                }
            );
        }
        "persistence" => {
            let (_, _, _, dirty) = ks_counts();
            let info = s.aof.as_ref().map(|a| a.info()).unwrap_or_default();
            let _ = write!(
                out,
                "# Persistence\r\nloading:0\r\nrdb_changes_since_last_save:{dirty}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\naof_enabled:1\r\naof_rewrite_in_progress:0\r\naof_last_bgrewrite_status:{}\r\naof_rewrites:{}\r\naof_rewrites_consecutive_failures:{}\r\naof_last_write_status:{}\r\naof_current_size:{}\r\naof_base_size:{}\r\nappendfsync:{}\r\n",
                u8::from(s.saves.running.load(Ordering::SeqCst)),
                s.saves.last_save.load(Ordering::Relaxed),
                if s.saves.last_failed.load(Ordering::Relaxed) {
                    "err"
                } else {
                    "ok"
                },
                if info.last_rewrite_failed {
                    "err"
                } else {
                    "ok"
                },
                info.rewrites,
                info.rewrite_failures,
                if info.write_errno.is_some() {
                    "err"
                } else {
                    "ok"
                },
                info.size,
                info.base_size,
                s.config.appendfsync.as_str()
            );
        }
        "stats" => {
            let (_, _, st, _) = ks_counts();
            let r = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\nrejected_connections:{}\r\nexpired_keys:{}\r\nevicted_keys:0\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\n",
                r(&s.stats.total_connections_received),
                r(&s.stats.total_commands_processed),
                r(&s.stats.total_net_input_bytes),
                r(&s.stats.total_net_output_bytes),
                r(&s.stats.rejected_connections),
                st.expired_keys,
                st.keyspace_hits,
                st.keyspace_misses
            );
            let _ = write!(
                out,
                "sync_full:{}\r\nsync_partial_ok:{}\r\nsync_partial_err:{}\r\n",
                r(&s.repl.sync_full),
                r(&s.repl.sync_partial_ok),
                r(&s.repl.sync_partial_err)
            );
            let _ = write!(
                out,
                "pubsub_channels:{}\r\npubsub_patterns:{}\r\nclient_output_buffer_limit_disconnections:{}\r\n",
                s.pubsub.channels(None).len(),
                s.pubsub.numpat(),
                r(&s.pubsub.disconnections)
            );
        }
        "replication" => {
            let repl = &s.repl;
            let offset = repl.offset();
            let replicas = repl.replicas();
            match repl.upstream.lock().clone() {
                Some(u) => {
                    let _ = write!(
                        out,
                        "# Replication\r\nrole:slave\r\nmaster_host:{}\r\nmaster_port:{}\r\nmaster_link_status:{}\r\nmaster_last_io_seconds_ago:{}\r\nmaster_sync_in_progress:{}\r\nslave_read_repl_offset:{}\r\nslave_repl_offset:{}\r\n",
                        u.host,
                        u.port,
                        if u.state == "connected" { "up" } else { "down" },
                        u.last_io.elapsed().as_secs(),
                        u8::from(u.state == "sync"),
                        u.offset,
                        u.offset,
                    );
                    if u.state != "connected" {
                        // Since the link last changed state: when it went down.
                        let _ = write!(
                            out,
                            "master_link_down_since_seconds:{}\r\n",
                            u.last_io.elapsed().as_secs()
                        );
                    }
                    let _ = write!(
                        out,
                        "slave_priority:{}\r\nslave_read_only:1\r\nreplica_announced:1\r\n",
                        s.runtime.lock().replica_priority
                    );
                    if let Some(e) = &u.error {
                        let _ = write!(out, "master_link_error:{e}\r\n");
                    }
                    let _ = write!(out, "connected_slaves:{}\r\n", replicas.len());
                }
                None => {
                    let _ = write!(
                        out,
                        "# Replication\r\nrole:master\r\nconnected_slaves:{}\r\n",
                        replicas.len()
                    );
                }
            }
            for (i, r) in replicas.iter().enumerate() {
                let _ = write!(
                    out,
                    "slave{i}:ip={},port={},state=online,offset={},lag={}\r\n",
                    r.addr.ip(),
                    r.port,
                    r.ack,
                    r.last_ack.elapsed().as_secs()
                );
            }
            let (first, histlen, size) = repl.backlog_info();
            let _ = write!(
                out,
                "master_failover_state:no-failover\r\nmaster_replid:{}\r\nmaster_replid2:0000000000000000000000000000000000000000\r\nmaster_repl_offset:{offset}\r\nsecond_repl_offset:-1\r\nrepl_backlog_active:{}\r\nrepl_backlog_size:{size}\r\nrepl_backlog_first_byte_offset:{first}\r\nrepl_backlog_histlen:{histlen}\r\n",
                repl.replid,
                u8::from(repl.is_active())
            );
        }
        "keyspace" => {
            let (keys, expires, _, _) = ks_counts();
            out.push_str("# Keyspace\r\n");
            if keys > 0 {
                let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        _ => {}
    }
}

/// INFO [section ...]
pub fn info(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut wanted: Vec<&str> = Vec::new();
    if args.len() == 1 {
        wanted.extend(SECTIONS);
    }
    for a in &args[1..] {
        let a = String::from_utf8_lossy(a).to_ascii_lowercase();
        if a == "all" || a == "everything" || a == "default" {
            wanted.extend(SECTIONS);
        } else if let Some(sec) = SECTIONS.iter().find(|x| **x == a) {
            wanted.push(sec);
        }
    }
    let mut text = String::new();
    for name in SECTIONS.iter().filter(|n| wanted.contains(n)) {
        if !text.is_empty() {
            text.push_str("\r\n");
        }
        section(s, name, &mut text);
    }
    c.out.verbatim(&text);
}
