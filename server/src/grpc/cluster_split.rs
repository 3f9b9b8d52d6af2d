//! Size-driven splits in cluster mode (`server/docs/cluster_design.md` §4): every
//! `every`, this server looks at the regions it holds; one whose flushed files reach the
//! split size is split in three steps around one etcd transaction:
//!
//! 1. reserve two region ids in meta (never handed out again, used or not);
//! 2. prepare in storage: the parent refuses writes (retryable), is flushed under its
//!    fence, and both daughter directories are built and synced under the storage root;
//! 3. commit in meta: parent `split`, daughters `opening` on this server at the parent's
//!    next epoch, compared on the parent's revision. Then the parent is dropped and the
//!    assignment agent opens the daughters like any assigned region.
//!
//! If the commit is refused (the region moved or was lost meanwhile), the daughters are
//! removed and the parent takes writes again. If its outcome is unknown (etcd did not
//! answer), nothing is removed until meta has been read again and says which happened:
//! whichever side meta lists, its directories are intact. One split at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use speedlayer_cluster::{Member, MetaStore, RegionState};
use speedlayer_storage::Db;
use tokio::sync::watch;

/// What the split loop did, for metrics.
#[derive(Debug, Default)]
pub struct SplitStats {
    /// Splits committed in meta.
    pub splits: AtomicU64,
    /// Splits abandoned (refused by meta, or failed in storage).
    pub failed: AtomicU64,
}

/// When to split.
#[derive(Debug, Clone, Copy)]
pub struct SplitPolicy {
    /// A region splits once its flushed files hold this many bytes.
    pub bytes: u64,
    /// How often the held regions are checked.
    pub every: Duration,
}

/// Runs until `stop`.
pub async fn run(
    member: Arc<Member>,
    store: MetaStore,
    db: Arc<Db>,
    policy: SplitPolicy,
    stats: Arc<SplitStats>,
    mut stop: watch::Receiver<bool>,
) {
    // Regions over the size with no split point (one row), with the bytes they had.
    let mut no_point: HashMap<(String, u64), u64> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(policy.every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if !member.fence().serving() {
            continue;
        }
        let d = db.clone();
        let seen = std::mem::take(&mut no_point);
        let Ok((candidates, seen)) =
            tokio::task::spawn_blocking(move || oversized(&d, policy.bytes, seen)).await
        else {
            continue;
        };
        no_point = seen;
        for c in candidates {
            if *stop.borrow() {
                return;
            }
            match split_one(&member, &store, &db, &c).await {
                Ok(true) => {
                    stats.splits.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(table = %c.table, region = c.id, "split not done: {e}");
                }
            }
        }
    }
}

/// A held region to split.
#[derive(Debug, Clone)]
struct Candidate {
    table: String,
    id: u64,
    epoch: u64,
    key: Bytes,
}

/// The held regions whose files reach `limit`, with their split keys. Blocking.
fn oversized(
    db: &Db,
    limit: u64,
    mut no_point: HashMap<(String, u64), u64>,
) -> (Vec<Candidate>, HashMap<(String, u64), u64>) {
    let epochs: HashMap<(String, u64), u64> = db
        .hosted_regions()
        .into_iter()
        .map(|(t, id, e)| ((t, id), e))
        .collect();
    let mut out = Vec::new();
    for t in &db.stats().tables {
        for r in &t.regions {
            let bytes: u64 = r.stores.iter().map(|s| s.file_bytes).sum();
            let k = (t.name.clone(), r.id);
            if bytes < limit || no_point.get(&k) == Some(&bytes) {
                continue;
            }
            let Some(&epoch) = epochs.get(&k) else {
                continue;
            };
            match db.split_point(&t.name, r.id) {
                Ok(Some(key)) => out.push(Candidate {
                    table: t.name.clone(),
                    id: r.id,
                    epoch,
                    key,
                }),
                Ok(None) => {
                    no_point.insert(k, bytes);
                }
                Err(e) => tracing::warn!(table = %t.name, region = r.id, "split point: {e}"),
            }
        }
    }
    no_point.retain(|k, _| epochs.contains_key(k));
    (out, no_point)
}

/// Splits one region. `Ok(true)`: committed; `Ok(false)`: meta refused (aborted).
async fn split_one(
    member: &Member,
    store: &MetaStore,
    db: &Arc<Db>,
    c: &Candidate,
) -> Result<bool, String> {
    let me = member.id();
    let view = store.load().await.map_err(|e| e.to_string())?;
    let current = view
        .regions
        .get(&c.table)
        .and_then(|r| r.get(&c.id))
        .map(|r| &r.value);
    let ours = current.is_some_and(|r| {
        r.state == RegionState::Open
            && r.server.as_deref() == Some(me.as_str())
            && r.epoch == c.epoch
    });
    if !ours {
        return Ok(false);
    }
    let first = store
        .reserve_region_ids(2)
        .await
        .map_err(|e| e.to_string())?;
    let ids = [first, first + 1];
    let (d, t, key) = (db.clone(), c.table.clone(), c.key.clone());
    let id = c.id;
    tokio::task::spawn_blocking(move || d.prepare_hosted_split(&t, id, &key, ids))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("prepare: {e}"))?;
    let committed = match store
        .split(&view, &c.table, c.id, &me, c.epoch, &c.key, ids)
        .await
    {
        Ok(done) => done,
        Err(e) => {
            tracing::warn!(table = %c.table, region = c.id, "split commit unanswered ({e}); reading meta to learn its outcome");
            resolve(store, &c.table, c.id, ids).await
        }
    };
    let (d, t) = (db.clone(), c.table.clone());
    if committed {
        let closed = tokio::task::spawn_blocking(move || d.finish_hosted_split(&t, id)).await;
        if let Ok(Err(e)) = closed {
            tracing::warn!(table = %c.table, region = c.id, "closing the split parent: {e}");
        }
        tracing::info!(table = %c.table, parent = c.id, left = ids[0], right = ids[1], split_key = %String::from_utf8_lossy(&c.key), "region split (committed in meta)");
    } else {
        let _ = tokio::task::spawn_blocking(move || d.abort_hosted_split(&t, id, ids)).await;
        tracing::info!(table = %c.table, region = c.id, "split refused by meta (the region moved); aborted");
    }
    Ok(committed)
}

/// Whether a split whose commit went unanswered happened: reads meta until it answers.
/// Nothing is removed meanwhile (the parent stays closed to writes, which clients retry).
async fn resolve(store: &MetaStore, table: &str, id: u64, ids: [u64; 2]) -> bool {
    let mut pause = Duration::from_millis(100);
    loop {
        match store.load().await {
            Ok(view) => {
                return view
                    .regions
                    .get(table)
                    .and_then(|r| r.get(&id))
                    .is_some_and(|r| r.value.split == Some(ids));
            }
            Err(e) => {
                tracing::warn!(
                    table,
                    region = id,
                    "reading meta for a split's outcome: {e}"
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}
