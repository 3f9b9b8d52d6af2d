//! Size-driven region splits: a background task that, every `split_check_interval`,
//! finds regions whose flushed files reach `region_split_bytes`, asks the storage engine
//! for a middle row key (`Db::split_point`) and splits there (`Db::split_region`).
//!
//! Writes keep flowing during a split: the parent refuses them with a retryable `TooBusy`
//! (gRPC `RESOURCE_EXHAUSTED`, which clients retry with backoff) only while it is flushed
//! and rewritten into its daughters; afterwards they route to the daughters. Crash safety
//! is the engine's (the catalog write is the commit point). This module does not decide
//! where a region is served: every region stays on this server.
//!
//! Bounds: one split at a time, on one blocking task; a region whose data is a single row
//! (no split point) is remembered with its size and not re-read until it changes.

use std::collections::HashMap;
use std::time::Duration;

use speedlayer_storage::Db;
use tokio::sync::watch;

use crate::grpc::Backend;

/// What one check did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    /// Regions split: `(table, parent id)`.
    pub split: Vec<(String, u64)>,
    /// Splits that failed, with the reason (the parent stays in service).
    pub failed: Vec<(String, u64, String)>,
}

/// Regions over the limit that had no split point, by `(table, region)`, with the file
/// bytes they had then. Holds at most one entry per live region.
#[derive(Debug, Default)]
pub struct NoSplitPoint(HashMap<(String, u64), u64>);

/// Splits every region whose files hold at least `limit` bytes. Blocking (flushes and
/// rewrites files); run it on a blocking thread.
pub fn split_oversized(db: &Db, limit: u64, skip: &mut NoSplitPoint) -> CheckOutcome {
    let mut out = CheckOutcome::default();
    let stats = db.stats();
    let mut live = Vec::new();
    for t in &stats.tables {
        for r in &t.regions {
            live.push((t.name.clone(), r.id));
            let bytes: u64 = r.stores.iter().map(|s| s.file_bytes).sum();
            if bytes < limit || skip.0.get(&(t.name.clone(), r.id)) == Some(&bytes) {
                continue;
            }
            let key = match db.split_point(&t.name, r.id) {
                Ok(Some(key)) => key,
                Ok(None) => {
                    tracing::info!(table = %t.name, region = r.id, bytes, "region over the split size has no split point (one row)");
                    skip.0.insert((t.name.clone(), r.id), bytes);
                    continue;
                }
                Err(e) => {
                    out.failed.push((t.name.clone(), r.id, e.to_string()));
                    continue;
                }
            };
            match db.split_region(&t.name, r.id, &key) {
                Ok((left, right)) => {
                    tracing::info!(
                        table = %t.name,
                        parent = r.id,
                        left = left.id,
                        right = right.id,
                        split_key = %String::from_utf8_lossy(&key),
                        bytes,
                        "region split"
                    );
                    out.split.push((t.name.clone(), r.id));
                }
                Err(e) => out.failed.push((t.name.clone(), r.id, e.to_string())),
            }
        }
    }
    skip.0.retain(|k, _| live.contains(k));
    out
}

/// Runs the split checks until `stop` turns true. A check in progress finishes first, so
/// awaiting this task before `Db::close` leaves no split half-done by the server.
pub async fn run(
    backend: Backend,
    limit: u64,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut skip = NoSplitPoint::default();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let db = backend.db.clone();
        let mut s = std::mem::take(&mut skip);
        let done = tokio::task::spawn_blocking(move || {
            let out = split_oversized(&db, limit, &mut s);
            (out, s)
        })
        .await;
        match done {
            Ok((out, s)) => {
                skip = s;
                for _ in &out.split {
                    backend.metrics.add_split();
                }
                for (table, region, reason) in &out.failed {
                    backend.metrics.add_split_failure();
                    tracing::warn!(%table, region, %reason, "region split failed; will retry");
                }
            }
            Err(e) => tracing::error!("split check task failed: {e}"),
        }
    }
}
