//! The RESP service on its own event loop thread, as Redis runs one.
//!
//! With many clients each sending one small command per round trip (`redis-benchmark -P 1`),
//! the cost is in wake-ups, not in work: a multi-threaded runtime hands a connection's
//! readiness from one worker thread to another and parks and unparks threads that compete
//! with the clients for the same cores. A single-threaded loop serves the same load with
//! no cross-thread wake-ups. `threads` (`--resp-threads`, default 1) chooses: 1 is a
//! current-thread runtime on a thread named `resp`; more is a multi-threaded runtime with
//! that many workers (useful with `appendfsync always`, where each fsync blocks a worker).
//! Blocking work (the AOF writer's fsyncs and rewrites, the shutdown snapshot) runs on the
//! runtime's blocking pool in both cases.
//!
//! Busy polling (`--resp-busy-poll-us`, default 10 µs): before the loop sleeps, it spins
//! that long. A sleeping loop must be woken by the kernel when a command arrives, and the
//! sender pays for that wake-up; at `-P 1` a client's next command usually arrives within
//! microseconds of our reply, and the client (one `redis-benchmark` thread, say) is the
//! bottleneck. Spinning keeps the loop awake for it, as Go's scheduler spins before it
//! parks. Measured: +2–5 % requests/s at `-P 1` with 10–20 µs (BENCHMARKS.md). The cost is
//! at most the spin per idle moment: an idle server wakes ~11 times a second (active expiry
//! and AOF fsync timers), so about 0.1 ms of CPU per second.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::config::RespConfig;
use super::server::{RespHandle, RespServer};
use crate::error::ServerError;

/// Busy-waits for `d`: called just before the event loop sleeps in `epoll_wait`. Whatever
/// arrives meanwhile (a client's next command, typically microseconds after our reply) is
/// then picked up by an `epoll_wait` that returns at once, with no sleep and no wake-up.
fn spin(d: Duration) {
    let until = Instant::now() + d;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// The thread running the RESP runtime; [`RespThread::stop`] ends it after the handle shut
/// down.
#[derive(Debug)]
pub struct RespThread {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RespThread {
    /// Ends the runtime thread (call after [`RespHandle::shutdown`]) and waits for it.
    pub async fn stop(mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

impl Drop for RespThread {
    fn drop(&mut self) {
        // Without `stop`: the runtime ends on its own thread; nothing waits for it here.
        self.stop.take();
    }
}

/// Starts the RESP service on its own runtime of `config.threads` threads.
///
/// # Errors
/// As [`RespServer::start`], plus [`ServerError::Config`] when the runtime or its thread
/// cannot be created.
pub async fn start_on_own_runtime(
    config: RespConfig,
) -> Result<(RespHandle, RespThread), ServerError> {
    let threads = config.threads.max(1);
    let busy_poll = config.busy_poll;
    let runtime_error = |e: std::io::Error| ServerError::Config {
        what: format!("RESP runtime ({threads} threads)"),
        reason: e.to_string(),
    };
    let mut builder = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads).thread_name("resp-worker");
        b
    };
    if !busy_poll.is_zero() {
        builder.on_thread_park(move || spin(busy_poll));
    }
    let runtime = builder.enable_all().build().map_err(runtime_error)?;
    let (started_tx, started_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("resp".into())
        .spawn(move || {
            runtime.block_on(async move {
                let started = RespServer::start(config).await;
                let ok = started.is_ok();
                let _ = started_tx.send(started);
                if ok {
                    // Serve until told to stop (or the owner is gone).
                    let _ = stop_rx.await;
                }
            });
        })
        .map_err(runtime_error)?;
    let mut owner = RespThread {
        stop: Some(stop_tx),
        thread: Some(thread),
    };
    match started_rx.await {
        Ok(Ok(handle)) => Ok((handle, owner)),
        Ok(Err(e)) => {
            owner.stop.take();
            Err(e)
        }
        Err(_) => Err(ServerError::Task {
            what: "RESP runtime",
            reason: "its thread ended before the service started".into(),
        }),
    }
}
