//! Cluster mode's database: a storage root shared by every server (`<root>/<table>/<id>/`),
//! of which this process holds the regions meta assigns to it (`server/docs/
//! cluster_design.md` §1, §5b). There is no catalog file and no directory lock: meta in
//! etcd lists the regions, and each region's `FENCE` file says which owner may append.
//!
//! Opening a region for epoch `e`: write `FENCE = e` (temp file, fsync, rename, directory
//! fsync) *before* the WAL is listed; replay; flush what was replayed; raise the region's
//! sequence floor to `e << 40`, so the new owner's sequence numbers and WAL segment names
//! never meet the deposed owner's. Every acknowledged write is followed by a read of
//! `FENCE`: a write that finds a newer epoch is not acknowledged ([`Error::Fenced`]).
//! Because the old owner fsyncs before it reads `FENCE`, and the new owner writes `FENCE`
//! before it lists the WAL, every write the old owner acknowledged is in what the new owner
//! replays (the argument is in the design document).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::catalog::{Catalog, RegionEntry};
use super::{Db, Parts, Table, open_region};
use crate::cell::SeqNo;
use crate::error::{Error, Result};
use crate::fence::{FENCE_FILE, FenceFile};
use crate::files::Shared;
use crate::options::EngineOptions;
use crate::region::Region;
use crate::schema::TableSchema;

/// Bits of the sequence space below an epoch: epoch `e`'s writes start above `e << 40`.
pub const EPOCH_SEQ_SHIFT: u32 = 40;

impl Db {
    /// Opens a hosted (cluster-mode) database over a shared storage root, holding no region
    /// until [`Db::host_region`] is called.
    ///
    /// # Errors
    /// I/O errors creating the root; the background threads failing to start.
    pub fn open_hosted(root: &Path, opts: EngineOptions) -> Result<Db> {
        crate::fs::create_dir_synced(&*opts.fs, root)?;
        let opts = Arc::new(opts);
        let shared = Shared::new(opts.block_cache_bytes, opts.fs.clone(), opts.recovery);
        let (wake, rx) = crossbeam_channel::bounded::<()>(1);
        tracing::info!(root = %root.display(), "opened hosted database (cluster mode)");
        Db::assemble(
            root,
            Parts {
                lock: None,
                hosted: true,
                catalog: Catalog::default(),
                tables: BTreeMap::new(),
                opts,
                shared,
                wake,
                rx,
            },
        )
    }

    /// Opens region `id` of `schema`'s table, covering `[start, end)`, for `epoch`: fences
    /// it, replays its WAL, flushes, and serves it. Holding it already for the same epoch
    /// does nothing; for an older epoch it is closed and opened again.
    ///
    /// # Errors
    /// `InvalidArgument` outside cluster mode or for epoch 0; I/O and corruption errors
    /// (the region is then not held).
    pub fn host_region(
        &self,
        schema: TableSchema,
        id: u64,
        start: Bytes,
        end: Bytes,
        epoch: u64,
    ) -> Result<()> {
        let Some(hosted) = &self.inner.hosted else {
            return Err(Error::InvalidArgument(
                "host_region needs a hosted database (Db::open_hosted)".into(),
            ));
        };
        if epoch == 0 || epoch >= 1 << (64 - EPOCH_SEQ_SHIFT) {
            return Err(Error::InvalidArgument(format!(
                "region epoch {epoch} out of range"
            )));
        }
        schema.validate()?;
        let key = (schema.name.clone(), id);
        let held = hosted.lock().get(&key).copied();
        match held {
            Some(e) if e == epoch => return Ok(()),
            Some(_) => {
                let _ = self.unhost_region(&schema.name, id);
            }
            None => {}
        }
        let fs = &*self.inner.opts.fs;
        let dir = region_dir(&self.inner.dir, &schema.name, id);
        crate::fs::create_dir_synced(fs, &self.inner.dir.join(&schema.name))?;
        crate::fs::create_dir_synced(fs, &dir)?;
        let fence = Arc::new(FenceFile {
            path: dir.join(FENCE_FILE),
            epoch,
            table: schema.name.clone(),
            region: id,
        });
        // IMPORTANT: the fence comes before the WAL is listed (Region::open lists it).
        fence.claim(fs)?;
        let schema = Arc::new(schema);
        let entry = RegionEntry { id, start, end };
        let region = open_region(
            &self.inner.dir,
            &schema,
            &entry,
            &self.inner.opts,
            &self.inner.shared,
            &self.inner.wake,
            Some(fence),
        )?;
        let floor: SeqNo = epoch << EPOCH_SEQ_SHIFT;
        // A log and file names of this epoch's own: a deposed owner still appending to
        // or rolling the old log, or writing files, never touches what this owner reads.
        region.take_file_namespace(floor)?;
        region.flush()?;
        if !region.raise_seq_floor(floor) {
            tracing::warn!(table = %schema.name, region = id, epoch, "sequence floor not raised: the region is already past it");
        }
        let region = Arc::new(region);
        {
            let mut tables = self.inner.tables.write();
            let mut regions: Vec<Arc<Region>> = tables
                .get(&schema.name)
                .map(|t| {
                    t.regions
                        .iter()
                        .filter(|r| r.info.id != id)
                        .cloned()
                        .collect()
                })
                .unwrap_or_default();
            regions.push(region);
            regions.sort_by(|a, b| a.info.start.cmp(&b.info.start));
            tables.insert(
                schema.name.clone(),
                Arc::new(Table {
                    schema: schema.clone(),
                    regions,
                    hosted: true,
                }),
            );
        }
        hosted.lock().insert(key, epoch);
        tracing::info!(table = %schema.name, region = id, epoch, "hosting region");
        Ok(())
    }

    /// Stops holding a region: no new request reaches it, then its memstore is flushed
    /// and its WAL synced. Not holding it does nothing.
    ///
    /// # Errors
    /// The flush or sync error (the region is not held either way).
    pub fn unhost_region(&self, table: &str, id: u64) -> Result<()> {
        let Some(hosted) = &self.inner.hosted else {
            return Err(Error::InvalidArgument(
                "unhost_region needs a hosted database".into(),
            ));
        };
        let region = {
            let mut tables = self.inner.tables.write();
            let Some(t) = tables.get(table).cloned() else {
                hosted.lock().remove(&(table.to_owned(), id));
                return Ok(());
            };
            let (gone, kept): (Vec<_>, Vec<_>) =
                t.regions.iter().cloned().partition(|r| r.info.id == id);
            if kept.is_empty() {
                tables.remove(table);
            } else {
                tables.insert(
                    table.to_owned(),
                    Arc::new(Table {
                        schema: t.schema.clone(),
                        regions: kept,
                        hosted: true,
                    }),
                );
            }
            gone.into_iter().next()
        };
        hosted.lock().remove(&(table.to_owned(), id));
        match region {
            Some(r) => {
                tracing::info!(table, region = id, "closing hosted region");
                r.close()
            }
            None => Ok(()),
        }
    }

    /// Every held region with the epoch it was opened for.
    pub fn hosted_regions(&self) -> Vec<(String, u64, u64)> {
        match &self.inner.hosted {
            Some(h) => h
                .lock()
                .iter()
                .map(|((t, id), e)| (t.clone(), *id, *e))
                .collect(),
            None => Vec::new(),
        }
    }

    /// After a write to `r` was made durable: in cluster mode, `Ok` only if `FENCE` still
    /// names the epoch this process opened `r` for.
    pub(super) fn check_fence(&self, r: &Region) -> Result<()> {
        let Some(hosted) = &self.inner.hosted else {
            return Ok(());
        };
        let epoch = hosted
            .lock()
            .get(&(r.info.table.clone(), r.info.id))
            .copied()
            .unwrap_or(0);
        FenceFile {
            path: r.dir().join(FENCE_FILE),
            epoch,
            table: r.info.table.clone(),
            region: r.info.id,
        }
        .check(&*self.inner.opts.fs)
    }
}

/// Cluster mode: a scan is served only if the regions held here cover its whole key range
/// (the client scans region by region, each on its server); otherwise rows of regions held
/// elsewhere would be missing without a word.
pub(super) fn check_scan_covered(regions: &[Arc<Region>], scan: &crate::read::Scan) -> Result<()> {
    let mut lo: Bytes = scan.start.clone().unwrap_or_default();
    let mut hi: Option<Bytes> = scan.stop.clone().filter(|s| !s.is_empty());
    if let Some(p) = &scan.prefix {
        if p[..] > lo[..] {
            lo = p.clone();
        }
        if let Some(succ) = crate::read::prefix_end(p) {
            hi = Some(match hi {
                Some(h) if h < succ => h,
                _ => succ,
            });
        }
    }
    if hi.as_ref().is_some_and(|h| *h <= lo) {
        return Ok(());
    }
    let mut at = lo;
    for r in regions {
        if r.info.start[..] > at[..] {
            break;
        }
        if !r.info.end.is_empty() && r.info.end[..] <= at[..] {
            continue;
        }
        if r.info.end.is_empty() || hi.as_ref().is_some_and(|h| r.info.end[..] >= h[..]) {
            return Ok(());
        }
        at = r.info.end.clone();
    }
    let table = regions
        .first()
        .map(|r| r.info.table.as_str())
        .unwrap_or("?");
    Err(Error::NotServing(format!(
        "rows from {:?} of table '{table}' are in a region not held here; scan region by region",
        String::from_utf8_lossy(&at)
    )))
}

fn region_dir(root: &Path, table: &str, id: u64) -> PathBuf {
    root.join(table).join(id.to_string())
}
