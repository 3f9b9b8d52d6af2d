//! One client connection: read, parse every complete request, execute, flush once.
//!
//! Pipelining falls out of the loop: all requests already in the buffer are executed and
//! their replies collected in one output buffer, written with one syscall. The query buffer
//! and the output buffer are both bounded; a protocol error gets Redis's `-ERR Protocol
//! error: ...` reply and the connection is closed, as Redis does. This module does not
//! know individual commands (see `cmd`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::aof::FlushMode;
use super::cmd;
use super::config::AppendFsync;
use super::frame::{FrameError, RequestParser};
use super::reply::Out;
use super::state::{Client, Shared};

/// Serves one accepted connection until it closes or the server shuts down.
pub async fn serve(
    shared: Arc<Shared>,
    mut stream: TcpStream,
    addr: SocketAddr,
    id: u64,
    mut shutdown: watch::Receiver<bool>,
) {
    let laddr = stream.local_addr().unwrap_or(addr);
    let mut client = Client {
        id,
        addr,
        laddr,
        authed: shared.config.requirepass.is_none(),
        out: Out::default(),
        close: false,
        created: Instant::now(),
        tx: None,
        watched: Vec::new(),
        replica: None,
        repl_port: 0,
        wait: None,
        woff: 0,
        in_exec: false,
        master_link: false,
        subs: Default::default(),
    };
    let link_shutdown = shutdown.clone();
    // CLIENT KILL wakes this (a permit is kept if it comes while a batch runs).
    let kill = shared
        .clients
        .lock()
        .get(&id)
        .map(|m| m.kill.clone())
        .unwrap_or_default();
    let _ = stream.set_nodelay(true);
    let limits = shared.config.limits.clone();
    let mut inbuf = BytesMut::with_capacity(16 * 1024);
    let mut args: Vec<Bytes> = Vec::with_capacity(8);
    let mut parser = RequestParser::default();
    // One shutdown waiter for the connection's life, not one registration per read.
    let mut shutdown_signal = std::pin::pin!(shutdown.changed());
    'conn: loop {
        let mut wrote = false;
        let mut commands = 0u64;
        let batch_started = Instant::now();
        loop {
            match parser.parse(&mut inbuf, &limits, client.authed, &mut args) {
                Ok(true) => {
                    if args.is_empty() {
                        continue;
                    }
                    commands += 1;
                    // Messages that came before this command go before its reply.
                    if let Some(ob) = &client.subs.outbox {
                        ob.take_into(&mut client.out.buf);
                    }
                    let mark = client.out.buf.len();
                    wrote |= cmd::execute(&shared, &mut client, &args);
                    // Metrics (issue 14): by command and outcome; an error reply starts `-`.
                    let error = client.out.buf.get(mark) == Some(&b'-');
                    shared.metrics.command(cmd::index(&args[0]), error);
                    if client.close || client.replica.is_some() || client.wait.is_some() {
                        break;
                    }
                    if client.out.buf.len() > limits.output_buffer_limit {
                        tracing::warn!(client = id, %addr, bytes = client.out.buf.len(),
                            "closing client: output buffer limit reached");
                        break 'conn;
                    }
                }
                Ok(false) => break,
                Err(FrameError::Protocol(msg)) => {
                    tracing::info!(client = id, %addr, error = %msg, "protocol error from client");
                    client.out.error(&format!("ERR Protocol error: {msg}"));
                    client.close = true;
                    break;
                }
                Err(e @ FrameError::QueryBufferLimit { .. }) => {
                    // As Redis does when a query buffer passes the limit: no reply, close.
                    tracing::warn!(client = id, %addr, error = %e, "closing client");
                    break 'conn;
                }
                Err(FrameError::Incomplete) => break,
            }
        }
        if commands > 0 {
            shared.metrics.batch(commands, batch_started.elapsed());
            // One shared-counter update per batch, not per command.
            shared
                .stats
                .total_commands_processed
                .fetch_add(commands, Ordering::Relaxed);
        }
        if wrote {
            // IMPORTANT: writes reach the file (and with `always` the disk) before their
            // acknowledgement leaves, as Redis writes its AOF buffer before replying. A
            // concurrent flush may already have taken this batch: then this one just waits
            // for it, a group commit.
            let mode = if shared.config.appendfsync == AppendFsync::Always {
                FlushMode::Sync
            } else {
                FlushMode::Write
            };
            if let Err(e) = shared.flush_aof(mode) {
                // The batch's writes are applied and stay pending for the AOF's retry, but
                // were not written (or synced) as promised: no acknowledgement leaves. The
                // client sees a closed connection, as a Redis client does when Redis exits
                // on this error; later writes get `-MISCONF` until the retry succeeds.
                tracing::warn!(client = id, %addr, error = %e,
                    "AOF write failed; closing client without acknowledging its writes");
                break;
            }
            // What WAIT waits for: the stream up to this client's writes.
            client.woff = shared.repl.offset();
        }
        let waited = client.wait.is_some();
        if let Some((n, timeout)) = client.wait.take() {
            // Earlier replies first; then the client (only it) blocks, as in Redis.
            if !client.out.buf.is_empty() {
                shared.stats.add_output(client.out.buf.len());
                if stream.write_all(&client.out.buf).await.is_err() {
                    break;
                }
                client.out.buf.clear();
            }
            let acked = super::replica_link::wait_for_acks(&shared, client.woff, n, timeout).await;
            client.out.int(acked as i64);
        }
        if let Some(ob) = &client.subs.outbox {
            if ob.dropped() {
                // Past the pub/sub output limit (`pubsub`): disconnected, as Redis does.
                tracing::warn!(client = id, %addr, "closing client: pub/sub output buffer limit reached");
                break;
            }
            ob.take_into(&mut client.out.buf);
        }
        if !client.out.buf.is_empty() {
            shared.stats.add_output(client.out.buf.len());
            if stream.write_all(&client.out.buf).await.is_err() {
                break;
            }
            client.out.buf.clear();
            if client.out.buf.capacity() > 1024 * 1024 {
                client.out.buf.shrink_to(64 * 1024);
            }
        }
        if client.close {
            break;
        }
        if let Some(start) = client.replica.take() {
            if let Some(m) = shared.clients.lock().get_mut(&id) {
                m.kind = "slave";
            }
            // PSYNC/SYNC: the preamble (and the RDB) went out above; from here on this
            // connection is a replica link.
            super::replica_link::serve(
                &shared,
                &mut stream,
                inbuf,
                (id, addr, client.repl_port),
                start.from,
                link_shutdown,
                &kill,
            )
            .await;
            break;
        }
        if inbuf.len() >= limits.query_buffer_limit {
            tracing::warn!(client = id, %addr, bytes = inbuf.len(),
                "closing client: query buffer limit reached");
            break;
        }
        if waited && !inbuf.is_empty() {
            // Requests pipelined behind a WAIT are still in the buffer.
            continue;
        }
        inbuf.reserve(16 * 1024);
        let outbox = client.subs.outbox.clone();
        let message = async {
            match &outbox {
                Some(ob) => ob.ready.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Shutdown first: nothing new is executed once the final snapshot is due.
            biased;
            _ = &mut shutdown_signal => break,
            _ = kill.notified() => break,
            // A published message (or the output limit): written at the loop's top.
            () = message => {}
            r = stream.read_buf(&mut inbuf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => shared.stats.add_input(n),
            },
        }
    }
    let _ = stream.shutdown().await;
    cmd::multi::forget(&shared, &mut client);
    cmd::pubsub::forget(&shared, &mut client);
    shared.unregister_client(id);
}
