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

use crate::assign::{MAX_MOVES_AT_ONCE, balance, balance_bytes, in_transition, plan};
use crate::changes::Changes;
use crate::client::bounded;
use crate::error::Result;
use crate::keys::Keys;
use crate::member::Member;
use crate::meta::{MasterGuard, MetaStore, TableState, Writer};
use crate::region_state::{Event, RegionState};
use crate::requests;

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
    /// Moves started for operators (`admin move`).
    pub moves: AtomicU64,
    /// Moves started by the balancer.
    pub balanced: AtomicU64,
    /// Of those, moves by the byte rule (counts were already even).
    pub balanced_by_size: AtomicU64,
    /// Operators' requests dropped because they could never apply.
    pub requests_refused: AtomicU64,
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

/// How the master behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterOptions {
    /// Balance whenever nothing is in transition and the regions per member differ by
    /// more than one (a member joined or left); when false, only on `admin balance`.
    pub auto_balance: bool,
    /// The shared storage root, where the balancer reads region sizes (`None`: count
    /// only).
    pub storage_root: Option<std::path::PathBuf>,
    /// The byte rule acts only when members' bytes differ by at least this much.
    pub balance_min_bytes: u64,
}

impl Default for MasterOptions {
    fn default() -> Self {
        MasterOptions {
            auto_balance: true,
            storage_root: None,
            balance_min_bytes: crate::assign::DEFAULT_BALANCE_MIN_BYTES,
        }
    }
}

/// How often the balancer reads region sizes from the storage root.
const SIZES_EVERY: Duration = Duration::from_secs(30);

/// Region sizes read from the storage root, and when.
#[derive(Debug, Default)]
struct Sizes {
    read_at: Option<std::time::Instant>,
    bytes: std::collections::BTreeMap<(String, u64), u64>,
}

/// Bytes under `<root>/<table>/<region>/`, outside `wal/`, for every region there.
/// Bounded: at most 100,000 directory entries are looked at.
fn region_sizes(root: &std::path::Path) -> std::collections::BTreeMap<(String, u64), u64> {
    fn walk(dir: &std::path::Path, budget: &mut usize) -> u64 {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return 0;
        };
        let mut total = 0;
        for e in rd.flatten() {
            if *budget == 0 {
                break;
            }
            *budget -= 1;
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() {
                if e.file_name() != "wal" {
                    total += walk(&e.path(), budget);
                }
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
        total
    }
    let mut budget = 100_000usize;
    let mut out = std::collections::BTreeMap::new();
    let Ok(tables) = std::fs::read_dir(root) else {
        return out;
    };
    for t in tables.flatten() {
        let Ok(regions) = std::fs::read_dir(t.path()) else {
            continue;
        };
        let table = t.file_name().to_string_lossy().into_owned();
        for r in regions.flatten() {
            if let Ok(id) = r.file_name().to_string_lossy().parse::<u64>() {
                out.insert((table.clone(), id), walk(&r.path(), &mut budget));
            }
        }
    }
    out
}

/// Runs until `stop`; does something only while `member` is master.
#[allow(clippy::too_many_arguments)]
pub async fn run_master(
    member: Arc<Member>,
    client: Client,
    store: MetaStore,
    keys: Keys,
    limit: Duration,
    stats: Arc<MasterStats>,
    options: MasterOptions,
    mut stop: watch::Receiver<bool>,
) {
    let mut changes = Changes::new(
        client.clone(),
        keys.root().to_owned(),
        Duration::from_millis(500),
        limit,
    );
    let mut sizes = Sizes::default();
    loop {
        if let Some(guard) = member.master_guard()
            && let Err(e) = round(
                &client, &store, &keys, limit, &guard, &stats, &options, &mut sizes,
            )
            .await
        {
            tracing::warn!("master: {e}; trying again");
        }
        if !changes.wait(&mut stop).await {
            return;
        }
    }
}

/// One pass: read, plan, write until a write is refused (then the next pass re-reads).
#[allow(clippy::too_many_arguments)]
/// Operators' requests and the balancer act only on a pass that had nothing else to do,
/// so they always see regions where the plan left them.
async fn round(
    client: &Client,
    store: &MetaStore,
    keys: &Keys,
    limit: Duration,
    guard: &MasterGuard,
    stats: &MasterStats,
    options: &MasterOptions,
    sizes: &mut Sizes,
) -> Result<()> {
    let live = live_members(client, keys, limit).await?;
    let view = store.load().await?;
    let steps = plan(&view, &live);
    let planned = !steps.is_empty();
    for step in steps {
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
    if planned {
        return Ok(());
    }
    requests_and_balance(
        client, store, keys, limit, guard, stats, options, sizes, &view, &live,
    )
    .await
}

/// Acts on operators' move requests, then balances (if automatic or asked for).
#[allow(clippy::too_many_arguments)]
async fn requests_and_balance(
    client: &Client,
    store: &MetaStore,
    keys: &Keys,
    limit: Duration,
    guard: &MasterGuard,
    stats: &MasterStats,
    options: &MasterOptions,
    sizes: &mut Sizes,
    view: &crate::meta::MetaView,
    live: &BTreeSet<String>,
) -> Result<()> {
    let req = requests::read(client, keys, limit).await?;
    for key in &req.unreadable {
        tracing::warn!(key = %key, "master: deleting a request this version cannot read");
        stats.requests_refused.fetch_add(1, Ordering::Relaxed);
        requests::done(client, key, limit).await?;
    }
    let mut moved = false;
    for m in &req.moves {
        let enabled = view
            .tables
            .get(&m.table)
            .is_some_and(|t| t.value.state == TableState::Enabled);
        let region = view
            .regions
            .get(&m.table)
            .and_then(|r| r.get(&m.id))
            .map(|r| &r.value);
        let refuse = match region {
            _ if !enabled => Some("no such enabled table"),
            None => Some("no such region"),
            Some(_) if !live.contains(&m.target) => Some("the target is not a live member"),
            Some(r) if r.state == RegionState::Split => Some("the region was split"),
            Some(_) => None,
        };
        if let Some(why) = refuse {
            tracing::warn!(table = %m.table, region = m.id, target = %m.target, "master: move request dropped: {why}");
            stats.requests_refused.fetch_add(1, Ordering::Relaxed);
            requests::done(client, &m.key, limit).await?;
            continue;
        }
        let Some(r) = region else { continue };
        let here = r.server.as_deref() == Some(m.target.as_str());
        let under_way = r.target.as_deref() == Some(m.target.as_str());
        match (r.state, &r.server) {
            (RegionState::Open | RegionState::Opening, _) if here => {
                requests::done(client, &m.key, limit).await?;
            }
            _ if under_way => requests::done(client, &m.key, limit).await?,
            (RegionState::Open, Some(s)) => {
                let event = Event::Move(s.clone(), r.epoch, m.target.clone());
                match store
                    .transition(view, &m.table, m.id, &event, Writer::Master(guard))
                    .await?
                {
                    Some(next) => {
                        stats.moves.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(table = %m.table, region = m.id, from = %s, to = %m.target, epoch = next.epoch, "master: moving a region for an operator");
                        requests::done(client, &m.key, limit).await?;
                        moved = true;
                    }
                    None => {
                        stats.conflicts.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                }
            }
            // In transition: act on it once it settles.
            _ => {}
        }
    }
    if moved || !(options.auto_balance || req.balance) || in_transition(view) {
        return Ok(());
    }
    let mut steps = balance(view, live, MAX_MOVES_AT_ONCE);
    let by_size = steps.is_empty();
    if by_size && let Some(root) = options.storage_root.clone() {
        // An operator's `admin balance` sees the sizes of now; the automatic runs read
        // them at most every SIZES_EVERY (the walk touches every store file's metadata).
        if req.balance || sizes.read_at.is_none_or(|t| t.elapsed() >= SIZES_EVERY) {
            if let Ok(bytes) = tokio::task::spawn_blocking(move || region_sizes(&root)).await {
                sizes.bytes = bytes;
            }
            sizes.read_at = Some(std::time::Instant::now());
        }
        steps.extend(balance_bytes(
            view,
            live,
            &sizes.bytes,
            options.balance_min_bytes,
        ));
    }
    for step in steps {
        match store
            .transition(
                view,
                &step.table,
                step.id,
                &step.event,
                Writer::Master(guard),
            )
            .await?
        {
            Some(next) => {
                stats.balanced.fetch_add(1, Ordering::Relaxed);
                if by_size {
                    stats.balanced_by_size.fetch_add(1, Ordering::Relaxed);
                }
                let rule = if by_size { "bytes" } else { "count" };
                tracing::info!(table = %step.table, region = step.id, event = ?step.event, epoch = next.epoch, rule, "master: balancing");
            }
            None => {
                stats.conflicts.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
    }
    if req.balance {
        requests::done(client, &keys.balance_request(), limit).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::region_sizes;

    #[test]
    fn region_sizes_count_store_files_not_the_log() {
        let root = tempfile::tempdir().unwrap();
        let put = |rel: &str, n: usize| {
            let p = root.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, vec![0u8; n]).unwrap();
        };
        put("t/1/f/00000001.hfile", 1000);
        put("t/1/f/00000002.hfile", 500);
        put("t/1/MANIFEST", 20);
        put("t/1/wal/000001.log", 99_999);
        put("t/2/f/00000001.hfile", 7);
        put("u/9/f/x", 3);
        put("t/not-a-region/f/x", 5);
        let sizes = region_sizes(root.path());
        assert_eq!(sizes.get(&("t".to_owned(), 1)), Some(&1520));
        assert_eq!(sizes.get(&("t".to_owned(), 2)), Some(&7));
        assert_eq!(sizes.get(&("u".to_owned(), 9)), Some(&3));
        assert_eq!(sizes.len(), 3);
    }
}
