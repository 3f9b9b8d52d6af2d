//! Replication commands of a master (`server/docs/replication.md`): REPLCONF, PSYNC and
//! SYNC (which turn the connection into a replica link, served by `repl::master`), WAIT,
//! ROLE, and REPLICAOF (the link to a master is the `upstream` task).

use bytes::Bytes;

use super::{ERR_NOT_INT, ERR_SYNTAX, arg_i64, is, quoting};
use crate::resp::rdb;
use crate::resp::repl::Upstream;
use crate::resp::state::{Client, ReplicaStart, Shared, unix_seconds};

/// REPLCONF <option> <value> [<option> <value> ...]
pub fn replconf(_: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len().is_multiple_of(2) {
        c.out.error(ERR_SYNTAX);
        return;
    }
    for pair in args[1..].chunks(2) {
        let (opt, val) = (&pair[0], &pair[1]);
        if is(opt, "listening-port") {
            match arg_i64(val) {
                Some(p) => c.repl_port = u16::try_from(p).unwrap_or(0),
                None => {
                    c.out.error(ERR_NOT_INT);
                    return;
                }
            }
        } else if is(opt, "ack") || is(opt, "fack") || is(opt, "getack") {
            // From a link that is not (yet) a replica's, or to a master: no reply, as Redis.
            return;
        } else if ["ip-address", "capa", "rdb-only", "rdb-filter-only"]
            .iter()
            .any(|o| is(opt, o))
        {
        } else {
            c.out.error_bytes(&quoting(
                "ERR Unrecognized REPLCONF option: ",
                opt,
                usize::MAX,
                "",
            ));
            return;
        }
    }
    c.out.ok();
}

/// PSYNC replid offset, and SYNC: a partial resync from the backlog if it still holds
/// what the replica needs, else a full one (an RDB of the keyspace at a stream offset).
pub fn psync(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if !c.out.buf.is_empty() {
        c.out
            .error("ERR SYNC and PSYNC are invalid with pending output");
        return;
    }
    let repl = &s.repl;
    let psync = is(&args[0], "psync");
    if psync {
        let wanted = arg_i64(&args[2]).unwrap_or(-1);
        if args[1][..] == *repl.replid.as_bytes() && wanted > 0 && repl.can_continue(wanted as u64)
        {
            repl.count(&repl.sync_partial_ok);
            c.out
                .buf
                .extend_from_slice(format!("+CONTINUE {}\r\n", repl.replid).as_bytes());
            c.replica = Some(ReplicaStart {
                from: wanted as u64,
            });
            return;
        }
        if &args[1][..] != b"?" {
            repl.count(&repl.sync_partial_err);
        }
    }
    let Some(aof) = &s.aof else {
        c.out.error("ERR replication needs the append-only file");
        return;
    };
    // Keep the stream from here on (the RDB below covers what came before).
    repl.activate();
    let (bytes, offset) = aof.at_sync_point(&s.ks, |ks, offset| {
        (
            rdb::encode(ks, unix_seconds(), ks.approx_bytes() as u64),
            offset,
        )
    });
    repl.count(&repl.sync_full);
    tracing::info!(client = c.id, addr = %c.addr, offset, rdb_bytes = bytes.len(),
        "full resync of a replica");
    if psync {
        c.out
            .buf
            .extend_from_slice(format!("+FULLRESYNC {} {offset}\r\n", repl.replid).as_bytes());
    }
    c.out
        .buf
        .extend_from_slice(format!("${}\r\n", bytes.len()).as_bytes());
    c.out.buf.extend_from_slice(&bytes);
    c.replica = Some(ReplicaStart { from: offset + 1 });
}

/// WAIT numreplicas timeout: the connection blocks (see `connection`) until that many
/// replicas acknowledged this client's writes, or the timeout (ms; 0 = forever).
pub fn wait(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let Some(n) = arg_i64(&args[1]) else {
        c.out.error(ERR_NOT_INT);
        return;
    };
    let timeout = match arg_i64(&args[2]) {
        Some(t) if t < 0 => {
            c.out.error("ERR timeout is negative");
            return;
        }
        Some(t) => t as u64,
        None => {
            c.out.error("ERR timeout is not an integer or out of range");
            return;
        }
    };
    let acked = s.repl.acked(c.woff);
    if acked as i64 >= n || c.in_exec {
        c.out.int(acked as i64);
        return;
    }
    c.wait = Some((n, timeout));
}

/// ROLE
pub fn role(s: &Shared, c: &mut Client, _: &[Bytes]) {
    if let Some(u) = s.repl.upstream.lock().clone() {
        c.out.array_len(5);
        c.out.bulk(b"slave");
        c.out.bulk(u.host.as_bytes());
        c.out.int(i64::from(u.port));
        c.out.bulk(u.state.as_bytes());
        c.out.int(u.offset as i64);
        return;
    }
    let replicas = s.repl.replicas();
    c.out.array_len(3);
    c.out.bulk(b"master");
    c.out.int(s.repl.offset() as i64);
    c.out.array_len(replicas.len());
    for r in replicas {
        c.out.array_len(3);
        c.out.bulk(r.addr.ip().to_string().as_bytes());
        c.out.bulk(r.port.to_string().as_bytes());
        c.out.bulk(r.ack.to_string().as_bytes());
    }
}

/// REPLICAOF / SLAVEOF host port | NO ONE: follow a master (the upstream task connects;
/// clients' writes are refused from now on) or stop following one (keeping the data).
pub fn replicaof(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let repl = &s.repl;
    if is(&args[1], "no") && is(&args[2], "one") {
        if repl.master_of_us.send_replace(None).is_some() {
            *repl.upstream.lock() = None;
            *repl.resume.lock() = None;
            s.ks.lock().replica = false;
            tracing::info!("MASTER MODE enabled (REPLICAOF NO ONE)");
        }
        c.out.ok();
        return;
    }
    let port = match arg_i64(&args[2]) {
        Some(p) if (0..=65535).contains(&p) => p as u16,
        Some(_) => {
            c.out.error("ERR Invalid master port");
            return;
        }
        None => {
            c.out.error(ERR_NOT_INT);
            return;
        }
    };
    let host = String::from_utf8_lossy(&args[1]).into_owned();
    if repl.master_of_us.borrow().as_ref() == Some(&(host.clone(), port)) {
        c.out.simple("OK Already connected to specified master");
        return;
    }
    follow(s, host, port);
    c.out.ok();
}

/// Makes us a replica of `host:port` (REPLICAOF, and the `replicaof` setting at start):
/// clients' writes are refused and the `upstream` task connects.
pub fn follow(s: &Shared, host: String, port: u16) {
    let repl = &s.repl;
    s.ks.lock().replica = true;
    *repl.upstream.lock() = Some(Upstream {
        host: host.clone(),
        port,
        state: "connect",
        error: None,
        offset: 0,
        last_io: std::time::Instant::now(),
    });
    tracing::info!(%host, port, "REPLICAOF: following a master");
    repl.master_of_us.send_replace(Some((host, port)));
}
