//! The master loop: while this member holds the election, bring meta towards the plan
//! (`assign::plan`) one guarded transaction at a time, and delete dropped tables whose
//! regions are all closed. Runs on every member; only the elected one writes, and its
//! writes apply only while its election key exists.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etcd_client::{Client, GetOptions};
use tokio::sync::watch;

use crate::assign::plan;
use crate::changes::Changes;
use crate::client::bounded;
use crate::error::Result;
use crate::keys::Keys;
use crate::member::Member;
use crate::meta::{MasterGuard, MetaStore, TableState, Writer};
use crate::region_state::{Event, RegionState};

/// What the master did, for metrics.
#[derive(Debug, Default)]
pub struct MasterStats {
    /// Regions assigned.
    pub assigned: AtomicU64,
    /// Regions taken from members that were gone.
    pub lost: AtomicU64,
    /// Regions asked to close.
    pub closes: AtomicU64,
    /// Tables deleted after a drop.
    pub purged: AtomicU64,
    /// Transactions refused because meta had changed (read again and retried).
    pub conflicts: AtomicU64,
}

/// The member ids alive now (their lease-bound keys exist).
///
/// # Errors
/// etcd errors.
pub async fn live_members(
    client: &Client,
    keys: &Keys,
    limit: Duration,
) -> Result<BTreeSet<String>> {
    let mut c = client.clone();
    let prefix = keys.servers();
    let resp = bounded(
        "read members",
        limit,
        c.get(
            prefix.clone(),
            Some(GetOptions::new().with_prefix().with_keys_only()),
        ),
    )
    .await?;
    Ok(resp
        .kvs()
        .iter()
        .filter_map(|kv| {
            String::from_utf8_lossy(kv.key())
                .strip_prefix(&prefix)
                .map(str::to_owned)
        })
        .collect())
}

/// Runs until `stop`; does something only while `member` is master.
pub async fn run_master(
    member: Arc<Member>,
    client: Client,
    store: MetaStore,
    keys: Keys,
    limit: Duration,
    stats: Arc<MasterStats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = Changes::new(
        client.clone(),
        keys.root().to_owned(),
        Duration::from_millis(500),
        limit,
    );
    loop {
        if let Some(guard) = member.master_guard()
            && let Err(e) = round(&client, &store, &keys, limit, &guard, &stats).await
        {
            tracing::warn!("master: {e}; trying again");
        }
        if !changes.wait(&mut stop).await {
            return;
        }
    }
}

/// One pass: read, plan, write until a write is refused (then the next pass re-reads).
async fn round(
    client: &Client,
    store: &MetaStore,
    keys: &Keys,
    limit: Duration,
    guard: &MasterGuard,
    stats: &MasterStats,
) -> Result<()> {
    let live = live_members(client, keys, limit).await?;
    let view = store.load().await?;
    for step in plan(&view, &live) {
        match store
            .transition(
                &view,
                &step.table,
                step.id,
                &step.event,
                Writer::Master(guard),
            )
            .await?
        {
            Some(next) => {
                let counter = match &step.event {
                    Event::Assign(_) => &stats.assigned,
                    Event::Lost(_) => &stats.lost,
                    _ => &stats.closes,
                };
                counter.fetch_add(1, Ordering::Relaxed);
                tracing::info!(table = %step.table, region = step.id, event = ?step.event, epoch = next.epoch, "master: region transition");
            }
            None => {
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    }
    for (name, t) in &view.tables {
        if t.value.state != TableState::Dropping {
            continue;
        }
        let closed = view
            .regions
            .get(name)
            .into_iter()
            .flatten()
            .all(|(_, r)| matches!(r.value.state, RegionState::Offline | RegionState::Split));
        if closed && store.purge_table(&view, name, guard).await? {
            stats.purged.fetch_add(1, Ordering::Relaxed);
            tracing::info!(table = %name, "master: dropped table deleted from meta");
        }
    }
    Ok(())
}
