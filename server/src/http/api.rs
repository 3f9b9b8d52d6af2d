//! The console's JSON views of this server: what it is (build, uptime, data directory,
//! listeners, durability settings), its tables and regions, one region's files, and the
//! TTL set service (counters, and one key's members and TTL).
//!
//! Every view only reads, and every list is bounded ([`MAX_FILES`], [`MAX_MEMBERS`]);
//! a view that was cut says so (`truncated`). Keys and rows are shown as text, with
//! bytes outside printable ASCII as `\xNN`. This module does not route requests (`mod`).

use std::collections::BTreeMap;

use serde::Serialize;
use speedlayer_storage::{Db, DbStats};

use crate::resp::server::Shared;
use crate::resp::view::RespView;

/// Files listed on a region's page at most.
pub const MAX_FILES: usize = 1000;
/// Members a key lookup returns at most.
pub const MAX_MEMBERS: usize = 1000;

/// Bytes as text: printable ASCII as is, anything else as `\xNN`.
pub fn printable(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        if (0x20..0x7f).contains(&c) && c != b'\\' {
            s.push(c as char);
        } else {
            s.push_str(&format!("\\x{c:02x}"));
        }
    }
    s
}

/// What the server page shows.
#[derive(Debug, Serialize)]
pub struct ServerView {
    /// Binary name.
    pub binary: String,
    /// Workspace version.
    pub version: &'static str,
    /// Git commit of the build.
    pub commit: &'static str,
    /// Cargo profile.
    pub profile: &'static str,
    /// Seconds since start.
    pub uptime_s: f64,
    /// Settings and listeners, in display order.
    pub about: Vec<(String, String)>,
    /// Cluster mode: the regions this server hosts (`table`, `region id`).
    pub cluster_hosted: Option<Vec<(String, u64)>>,
}

/// One store of a region.
#[derive(Debug, Serialize)]
pub struct StoreView {
    /// Family.
    pub family: String,
    /// HFiles.
    pub files: u64,
    /// HFile bytes.
    pub file_bytes: u64,
    /// Memstore bytes of the family.
    pub memstore_bytes: u64,
    /// Compactions done (all kinds).
    pub compactions: u64,
    /// Of which major.
    pub major_compactions: u64,
}

/// One region of a table.
#[derive(Debug, Serialize)]
pub struct RegionView {
    /// Region id.
    pub id: u64,
    /// First row (inclusive); empty: the table's start.
    pub start: String,
    /// End row (exclusive); empty: the table's end.
    pub end: String,
    /// Memstore bytes.
    pub memstore_bytes: u64,
    /// Frozen memstores waiting for the flusher.
    pub frozen_memstores: u64,
    /// HFiles over all stores.
    pub files: u64,
    /// HFile bytes over all stores.
    pub file_bytes: u64,
    /// Flushes since open.
    pub flushes: u64,
    /// Compactions since open (all stores).
    pub compactions: u64,
    /// Cells written since open.
    pub cells_written: u64,
    /// WAL fsyncs since open.
    pub wal_syncs: u64,
    /// Writes refused as too busy.
    pub too_busy: u64,
    /// Why the region refuses writes, if it does.
    pub poisoned: Option<String>,
    /// When the console's sampler last saw the flush count move (Unix s; since start).
    pub last_flush_seen: Option<f64>,
    /// When the console's sampler last saw the compaction count move.
    pub last_compaction_seen: Option<f64>,
    /// `below threshold (N %)`, `due` (at or past the split size) or `no local splits`.
    pub split_state: String,
    /// Per family.
    pub stores: Vec<StoreView>,
}

/// One table.
#[derive(Debug, Serialize)]
pub struct TableView {
    /// Name.
    pub name: String,
    /// Column families.
    pub families: Vec<String>,
    /// Regions hosted here.
    pub regions: Vec<RegionView>,
}

/// The tables page.
#[derive(Debug, Serialize)]
pub struct TablesView {
    /// Tables.
    pub tables: Vec<TableView>,
    /// Block cache hits since start.
    pub block_cache_hits: u64,
    /// Block cache misses since start.
    pub block_cache_misses: u64,
    /// Bytes in the block cache.
    pub block_cache_bytes: u64,
    /// Size at which regions split (`null`: no local splits, cluster mode).
    pub split_bytes: Option<u64>,
}

/// Last time (Unix s) the sampler saw each region's flush and compaction counts move.
pub type LastSeen = BTreeMap<(String, u64), (Option<f64>, Option<f64>)>;

/// The tables and regions this server hosts.
pub fn tables(db: &Db, stats: &DbStats, split_bytes: Option<u64>, seen: &LastSeen) -> TablesView {
    let schemas = db.list_tables();
    let tables = stats
        .tables
        .iter()
        .map(|t| TableView {
            name: t.name.clone(),
            families: schemas
                .iter()
                .find(|s| s.name == t.name)
                .map(|s| s.families.iter().map(|f| f.name.clone()).collect())
                .unwrap_or_default(),
            regions: t
                .regions
                .iter()
                .map(|r| {
                    let files = r.stores.iter().map(|s| s.files).sum();
                    let file_bytes: u64 = r.stores.iter().map(|s| s.file_bytes).sum();
                    let (last_flush_seen, last_compaction_seen) = seen
                        .get(&(t.name.clone(), r.id))
                        .copied()
                        .unwrap_or((None, None));
                    RegionView {
                        id: r.id,
                        start: printable(&r.start),
                        end: printable(&r.end),
                        memstore_bytes: r.memstore_bytes,
                        frozen_memstores: r.frozen_memstores,
                        files,
                        file_bytes,
                        flushes: r.flushes,
                        compactions: r.stores.iter().map(|s| s.compaction.runs).sum(),
                        cells_written: r.cells_written,
                        wal_syncs: r.wal_syncs,
                        too_busy: r.too_busy,
                        poisoned: r.poisoned.clone(),
                        last_flush_seen,
                        last_compaction_seen,
                        split_state: match split_bytes {
                            None | Some(u64::MAX) => "no local splits".to_owned(),
                            Some(limit) if file_bytes >= limit => "due".to_owned(),
                            Some(limit) => format!(
                                "below threshold ({} %)",
                                file_bytes.saturating_mul(100) / limit.max(1)
                            ),
                        },
                        stores: r
                            .stores
                            .iter()
                            .map(|s| StoreView {
                                family: s.family.clone(),
                                files: s.files,
                                file_bytes: s.file_bytes,
                                memstore_bytes: s.memstore_bytes,
                                compactions: s.compaction.runs,
                                major_compactions: s.compaction.majors,
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect();
    TablesView {
        tables,
        block_cache_hits: stats.block_cache_hits,
        block_cache_misses: stats.block_cache_misses,
        block_cache_bytes: stats.block_cache_bytes,
        split_bytes: split_bytes.filter(|b| *b != u64::MAX),
    }
}

/// One HFile of a region.
#[derive(Debug, Serialize)]
pub struct FileView {
    /// Family.
    pub family: String,
    /// File id.
    pub id: u64,
    /// File name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// First row.
    pub first_row: String,
    /// Last row.
    pub last_row: String,
    /// Cells.
    pub cells: u64,
    /// Delete markers.
    pub tombstones: u64,
    /// Smallest cell timestamp (ms).
    pub min_ts: u64,
    /// Largest cell timestamp (ms).
    pub max_ts: u64,
}

/// A region's page.
#[derive(Debug, Serialize)]
pub struct RegionFiles {
    /// Table.
    pub table: String,
    /// Region id.
    pub id: u64,
    /// Region directory.
    pub dir: String,
    /// Files, newest first per family (at most [`MAX_FILES`]).
    pub files: Vec<FileView>,
    /// More files exist than listed.
    pub truncated: bool,
}

/// The files of region `id` of `table`.
///
/// # Errors
/// The storage error if the table or region does not exist here.
pub fn region_files(
    db: &Db,
    table: &str,
    id: u64,
) -> Result<RegionFiles, speedlayer_storage::Error> {
    let region = db.region(table, id)?;
    let mut files = Vec::new();
    let mut truncated = false;
    for store in region.stores() {
        for f in &store.current().files {
            if files.len() == MAX_FILES {
                truncated = true;
                break;
            }
            files.push(FileView {
                family: String::from_utf8_lossy(&store.name).into_owned(),
                id: f.id,
                name: f
                    .path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                size: f.meta.size,
                first_row: printable(&f.meta.first_row),
                last_row: printable(&f.meta.last_row),
                cells: f.meta.cells,
                tombstones: f.meta.tombstones,
                min_ts: f.meta.min_ts,
                max_ts: f.meta.max_ts,
            });
        }
    }
    Ok(RegionFiles {
        table: table.to_owned(),
        id,
        dir: region.dir().display().to_string(),
        files,
        truncated,
    })
}

/// The TTL set page.
#[derive(Debug, Serialize)]
pub struct RespPage {
    /// Counters and state.
    #[serde(flatten)]
    pub view: RespView,
    /// Commands so far by name: `(name, ok, errors)`.
    pub commands: Vec<(&'static str, u64, u64)>,
}

/// One key of the TTL set service.
#[derive(Debug, Serialize)]
pub struct KeyView {
    /// The key.
    pub key: String,
    /// Whether it exists (and has not expired).
    pub exists: bool,
    /// Remaining TTL in ms; -1 without one, -2 when the key does not exist (Redis PTTL).
    pub pttl_ms: i64,
    /// Members, sorted (at most [`MAX_MEMBERS`]).
    pub members: Vec<String>,
    /// Members in the set.
    pub cardinality: u64,
}

/// Reads one key without touching it: an expired key is reported missing but not
/// deleted (lazy expiry stays the service's business), and no hit/miss is counted.
pub fn resp_key(shared: &Shared, key: &[u8]) -> KeyView {
    let ks = shared.ks.lock();
    let now = ks.now_ms();
    match ks.iter_get(key).filter(|e| ks.is_live_at(e, now)) {
        None => KeyView {
            key: printable(key),
            exists: false,
            pttl_ms: -2,
            members: Vec::new(),
            cardinality: 0,
        },
        Some(e) => {
            let mut members: Vec<String> = e
                .set
                .iter()
                .take(MAX_MEMBERS)
                .map(|m| printable(m.as_bytes()))
                .collect();
            members.sort();
            KeyView {
                key: printable(key),
                exists: true,
                pttl_ms: e.expire_at.map_or(-1, |t| (t - now).max(0)),
                members,
                cardinality: e.set.len() as u64,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_escapes_control_and_high_bytes() {
        assert_eq!(printable(b"V0042#2026"), "V0042#2026");
        assert_eq!(printable(b"a\x00\xff\\"), "a\\x00\\xff\\x5c");
    }
}
