//! The region-server side of assignment: open what meta assigns to this member, close what
//! it asks to close, report each outcome for the epoch it was assigned with, and close at
//! once anything hosted that meta no longer gives this member (a zombie's regions after its
//! lease ended, or a region moved away while it was cut off).

use std::sync::Arc;
use std::time::Duration;

use etcd_client::Client;
use tokio::sync::watch;

use crate::changes::Changes;
use crate::error::Result;
use crate::keys::Keys;
use crate::member::Member;
use crate::meta::{MetaStore, MetaView, TableMeta, Writer};
use crate::region_state::{Event, RegionMeta, RegionState};

/// What hosts regions: the storage engine on the shared storage root. Calls may block
/// (WAL replay, flush); the agent runs them on the blocking pool.
///
/// A hosted region may serve only while the member's [`Fence`](crate::Fence) serves *and*
/// its lease is still the `lease` the region was opened under: a member that lost its lease
/// and joined again (a new member) must not serve what it opened in its earlier life, even
/// in the moment before the agent closes it.
pub trait RegionHost: Send + Sync + 'static {
    /// Opens region `id` of `table` for `region.epoch` under `lease`: fence it (the new
    /// owner's epoch, written before the WAL is listed), replay, then serve. Opening a
    /// region already hosted for the same epoch and lease does nothing.
    ///
    /// # Errors
    /// Why it cannot be opened; the region goes offline and is assigned again.
    fn open(
        &self,
        table: &str,
        id: u64,
        region: &RegionMeta,
        schema: &TableMeta,
        lease: i64,
    ) -> std::result::Result<(), String>;

    /// Flushes and closes a hosted region; closing one not hosted does nothing.
    ///
    /// # Errors
    /// Why it could not be closed cleanly (it is dropped from serving anyway).
    fn close(&self, table: &str, id: u64) -> std::result::Result<(), String>;

    /// Every hosted region, with the epoch it was opened for.
    fn hosted(&self) -> Vec<(String, u64, u64)>;
}

/// Runs until `stop`.
pub async fn run_agent(
    member: Arc<Member>,
    client: Client,
    store: MetaStore,
    keys: Keys,
    limit: Duration,
    host: Arc<dyn RegionHost>,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = Changes::new(client, keys.meta(), Duration::from_millis(500), limit);
    loop {
        if let Err(e) = round(&member, &store, &host).await {
            tracing::warn!("region assignment: {e}; trying again");
        }
        if !changes.wait(&mut stop).await {
            return;
        }
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    tokio::task::spawn_blocking(f).await.ok()
}

async fn round(member: &Member, store: &MetaStore, host: &Arc<dyn RegionHost>) -> Result<()> {
    let me = member.id();
    let view = store.load().await?;
    // Zombie check first: anything hosted that meta does not give this member, for the
    // epoch it was opened with, is closed before anything else happens.
    let h = host.clone();
    for (table, id, epoch) in blocking(move || h.hosted()).await.unwrap_or_default() {
        let keep = region(&view, &table, id).is_some_and(|r| {
            r.server.as_deref() == Some(me.as_str())
                && r.epoch == epoch
                && matches!(r.state, RegionState::Opening | RegionState::Open)
        });
        if !keep {
            tracing::warn!(table = %table, region = id, epoch, "closing a region meta no longer assigns here");
            let h = host.clone();
            let t = table.clone();
            if let Some(Err(e)) = blocking(move || h.close(&t, id)).await {
                tracing::warn!(table = %table, region = id, "close: {e}");
            }
        }
    }
    if !member.fence().serving() {
        return Ok(());
    }
    for (table, regions) in &view.regions {
        for (id, r) in regions {
            let r = &r.value;
            if r.server.as_deref() != Some(me.as_str()) {
                continue;
            }
            let event = match r.state {
                RegionState::Opening => {
                    let Some(t) = view.tables.get(table).map(|t| t.value.clone()) else {
                        continue;
                    };
                    let (h, tb, meta, id) = (host.clone(), table.clone(), r.clone(), *id);
                    let lease = member.fence().lease();
                    match blocking(move || h.open(&tb, id, &meta, &t, lease)).await {
                        Some(Ok(())) => Event::Opened(me.clone(), r.epoch),
                        Some(Err(e)) => {
                            tracing::warn!(table = %table, region = id, "open failed: {e}");
                            Event::Failed(me.clone(), r.epoch)
                        }
                        None => Event::Failed(me.clone(), r.epoch),
                    }
                }
                RegionState::Closing => {
                    let (h, tb, id) = (host.clone(), table.clone(), *id);
                    if let Some(Err(e)) = blocking(move || h.close(&tb, id)).await {
                        tracing::warn!(table = %table, region = id, "close: {e}");
                    }
                    Event::Closed(me.clone(), r.epoch)
                }
                _ => continue,
            };
            // A refused report (meta moved on) changes nothing; the next round sees why.
            let done = store
                .transition(&view, table, *id, &event, Writer::Server)
                .await?;
            tracing::info!(table = %table, region = id, event = ?event, written = done.is_some(), "region report");
        }
    }
    Ok(())
}

fn region<'a>(view: &'a MetaView, table: &str, id: u64) -> Option<&'a RegionMeta> {
    view.regions.get(table)?.get(&id).map(|v| &v.value)
}
