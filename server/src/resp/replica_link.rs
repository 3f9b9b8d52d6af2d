//! A replica's link (the connection side of `repl`), once PSYNC/SYNC made a connection one: the stream from the replica's
//! offset (first from the backlog, then as it is fed), and its `REPLCONF ACK`s
//! (`server/docs/replication.md`). Also the master's stream PINGs and WAIT's waiting. What a
//! link has not sent is bounded by Redis's replica output limit (256 MiB): past it the
//! replica is disconnected and comes back for a full resync.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::repl::Replica;
use crate::resp::frame::parse_i64;
use crate::resp::frame::{FrameError, RequestParser};
use crate::resp::state::Shared;

/// Redis's `repl-ping-replica-period`.
const PING_EVERY: Duration = Duration::from_secs(10);

/// Serves the replica link `(id, addr, listening port)` from stream offset `from` until it
/// closes, falls out of the backlog, or the server shuts down.
pub async fn serve(
    shared: &Arc<Shared>,
    stream: &mut TcpStream,
    mut inbuf: BytesMut,
    (id, addr, port): (u64, SocketAddr, u16),
    from: u64,
    mut shutdown: watch::Receiver<bool>,
    kill: &tokio::sync::Notify,
) {
    let repl = &shared.repl;
    let replica = Replica {
        addr,
        port,
        ack: from.saturating_sub(1),
        last_ack: Instant::now(),
    };
    let Some(link) = repl.attach(id, replica, from) else {
        tracing::warn!(client = id, %addr, from, "replica's offset left the backlog");
        return;
    };
    tracing::info!(client = id, %addr, port, from, "replica link up");
    let mut offsets = repl.subscribe();
    let mut parser = RequestParser::default();
    let mut args: Vec<Bytes> = Vec::new();
    let limits = shared.config.limits.clone();
    'link: loop {
        // Seen before taking, so a feed after the take wakes the select below.
        offsets.borrow_and_update();
        let data = link.take();
        if link.overflowed() {
            tracing::warn!(client = id, %addr,
                "replica fell client-output-buffer-limit behind; disconnecting it (it will resync)");
            break 'link;
        }
        if !data.is_empty() && stream.write_all(&data).await.is_err() {
            break 'link;
        }
        inbuf.reserve(1024);
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = kill.notified() => break,
            r = offsets.changed() => if r.is_err() { break },
            r = stream.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(_) => loop {
                    match parser.parse(&mut inbuf, &limits, true, &mut args) {
                        Ok(true) => {
                            // REPLCONF ACK <offset> [FACK <aof offset>]
                            if args.len() >= 3
                                && args[0].eq_ignore_ascii_case(b"replconf")
                                && args[1].eq_ignore_ascii_case(b"ack")
                                && let Some(off) = parse_i64(&args[2])
                            {
                                repl.ack(id, u64::try_from(off).unwrap_or(0));
                            }
                        }
                        Ok(false) | Err(FrameError::Incomplete) => break,
                        Err(e) => {
                            tracing::warn!(client = id, %addr, error = %e, "bad bytes from a replica");
                            break 'link;
                        }
                    }
                },
            },
        }
    }
    repl.remove_replica(id);
    tracing::info!(client = id, %addr, "replica link down");
}

/// Puts a PING into the stream every [`PING_EVERY`] while replicas are connected, as
/// Redis does so replicas can tell a quiet master from a dead link.
pub async fn ping_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PING_EVERY);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => shared.repl.feed_command(&[b"PING"]),
        }
    }
}

/// WAIT: how many replicas acknowledged `offset`, once `n` of them did or `timeout_ms`
/// passed (0 = no timeout). Asks the replicas for an acknowledgement at once
/// (`REPLCONF GETACK *`), as Redis does.
pub async fn wait_for_acks(shared: &Shared, offset: u64, n: i64, timeout_ms: u64) -> usize {
    let repl = &shared.repl;
    let mut acks = repl.acks();
    let deadline =
        (timeout_ms > 0).then(|| tokio::time::Instant::now() + Duration::from_millis(timeout_ms));
    repl.feed_command(&[b"REPLCONF", b"GETACK", b"*"]);
    loop {
        acks.borrow_and_update();
        let acked = repl.acked(offset);
        if acked as i64 >= n {
            return acked;
        }
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = sleep => return repl.acked(offset),
            r = acks.changed() => if r.is_err() { return repl.acked(offset) },
        }
    }
}
