//! The background tasks of a RESP server, each a loop until shutdown:
//! - active expiry, Redis's sampling loop, so keys nobody reads again still free their
//!   memory;
//! - the AOF writer, which writes and fsyncs what commands recorded, retries a failing
//!   AOF and starts rewrites.
//!
//! Active expiry: `hz` times a second: sample 20 keys that have a TTL, delete the expired ones, and repeat
//! while more than a quarter of the sample had expired, within a time budget of 25% of the
//! cycle. Lazy expiry on access is in the keyspace; this loop only reclaims.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::aof::FlushMode;
use super::state::Shared;

/// Keys sampled per round (Redis's `ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP`).
pub const KEYS_PER_LOOP: usize = 20;

/// Runs rounds of sampling until few sampled keys are expired or `budget` is spent.
/// Returns the number of keys deleted.
pub fn active_expire_cycle(shared: &Shared, budget: Duration) -> usize {
    let start = Instant::now();
    let mut total = 0;
    loop {
        // The lock is taken per round so clients are served between rounds.
        let (sampled, expired) = shared.ks.lock().expire_sample(KEYS_PER_LOOP);
        total += expired;
        if sampled == 0 || expired * 4 <= sampled || start.elapsed() >= budget {
            return total;
        }
    }
}

/// The background task: one cycle every `1/hz` seconds until shutdown.
pub async fn active_expire_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let hz = shared.config.hz.max(1);
    let period = Duration::from_millis(1000 / u64::from(hz));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.changed() => return,
        }
        active_expire_cycle(&shared, period / 4);
    }
}

/// Background task: writes recorded commands every 10 ms (fsync per policy), retries a
/// failing AOF, and starts a rewrite when the file outgrew its threshold. Errors are logged
/// where they happen (in [`Aof`]).
pub async fn aof_writer_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        let s = shared.clone();
        let r = tokio::task::spawn_blocking(move || {
            // A BGSAVE asked for inside EXEC (or with SCHEDULE while one ran): now.
            if s.saves.scheduled.load(std::sync::atomic::Ordering::SeqCst)
                && super::cmd::system::start_bgsave(&s)
            {
                s.saves
                    .scheduled
                    .store(false, std::sync::atomic::Ordering::SeqCst);
            }
            let Some(aof) = &s.aof else { return };
            let _ = aof.retry(&s.ks);
            let _ = s.flush_aof(if stop {
                FlushMode::Sync
            } else {
                FlushMode::Periodic
            });
            if aof.needs_rewrite(
                s.config.auto_aof_rewrite_percentage,
                s.config.auto_aof_rewrite_min_size,
            ) {
                let _ = aof.rewrite(&s.ks);
            }
        })
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "AOF writer task failed");
        }
        if stop {
            return;
        }
    }
}
