//! The database: a data directory of tables, each split into regions, each region with
//! its stores, WAL and memstores.
//!
//! `Db` routes each row to the region whose key range holds it, runs the background
//! flusher thread, and keeps the catalog (tables, schemas, region ranges) durable. It is
//! the API the server and benches use (`docs/api.md`). It does not know the network.
//!
//! Layout: `<dir>/LOCK` (held while open, see `lock`), `<dir>/catalog`,
//! `<dir>/<table>/<region id>/…` (see `region`).

mod bulk;
pub mod catalog;
pub mod compactor;
mod hosted;
pub mod lock;
mod scanner;
mod split;
mod stats;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};

use crate::error::{Error, Result};
use crate::files::Shared;
use crate::filter::{CompareOp, compare_values};
use crate::mutation::Mutation;
use crate::options::{Durability, EngineOptions};
use crate::read::{Column, Get, ReadOptions, Row, Scan};
use crate::region::{Region, RegionInfo};
use crate::scan::rows::{ReadSpec, get_row};
use crate::schema::TableSchema;
pub use bulk::BulkLoaded;
use catalog::{Catalog, RegionEntry, TableEntry};
pub use lock::DirLock;
pub use scanner::DbScan;
pub use stats::{DbStats, TableStats};

/// An open table: its schema and regions sorted by start key.
struct Table {
    schema: Arc<TableSchema>,
    regions: Vec<Arc<Region>>,
    /// Cluster mode: the regions are the ones held here, so a row outside them is on
    /// another server ([`Error::NotServing`]), not a hole in the table.
    hosted: bool,
}

impl Table {
    fn locate(&self, row: &[u8]) -> Result<&Arc<Region>> {
        // The last region starting at or before `row`.
        let i = self
            .regions
            .partition_point(|r| r.info.start[..] <= *row)
            .saturating_sub(1);
        self.regions
            .get(i)
            .filter(|r| r.info.contains(row))
            .ok_or_else(|| {
                let what = format!(
                    "no region of table '{}' holds row {:?}",
                    self.schema.name,
                    String::from_utf8_lossy(row)
                );
                if self.hosted {
                    Error::NotServing(format!("{what} here"))
                } else {
                    Error::InvalidArgument(what)
                }
            })
    }
}

struct Inner {
    dir: PathBuf,
    /// Held while the database is open: a second `Db::open` of the directory fails.
    /// `None` in cluster mode, where each region is guarded by its `FENCE` instead.
    _lock: Option<DirLock>,
    /// Cluster mode (`Db::open_hosted`): the epoch each hosted region was opened for.
    /// `None` alone, where the catalog file lists the regions.
    hosted: Option<Mutex<BTreeMap<(String, u64), u64>>>,
    opts: Arc<EngineOptions>,
    shared: Shared,
    /// The catalog as stored; its lock also serialises create/drop.
    catalog: Mutex<Catalog>,
    tables: RwLock<BTreeMap<String, Arc<Table>>>,
    wake: crossbeam_channel::Sender<()>,
    stop: AtomicBool,
    /// Background compaction, on-demand compaction and flush backpressure.
    compactor: Arc<compactor::Compactor>,
    /// Names the next bulk-load staging directory (the staging area is empty at open).
    next_bulk_load: AtomicU64,
}

/// What `Db::assemble` starts the background work over.
struct Parts {
    lock: Option<DirLock>,
    hosted: bool,
    catalog: Catalog,
    tables: BTreeMap<String, Arc<Table>>,
    opts: Arc<EngineOptions>,
    shared: Shared,
    wake: crossbeam_channel::Sender<()>,
    rx: crossbeam_channel::Receiver<()>,
}

/// A data directory of tables. `Send + Sync`; share it in an `Arc`.
pub struct Db {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Db {
    /// Opens (or creates) the database in `dir`: locks the directory (`<dir>/LOCK`) before
    /// anything else, reads the catalog, removes table directories it does not list, opens
    /// every region (replaying its WAL), and starts the background flusher.
    ///
    /// # Errors
    /// [`Error::DirInUse`] if another process (or another `Db` of this one) has `dir` open;
    /// I/O, checksum or corruption errors of the catalog or any region.
    pub fn open(dir: &Path, opts: EngineOptions) -> Result<Db> {
        let fs = opts.fs.clone();
        let lock = DirLock::acquire(dir)?;
        let catalog = Catalog::load(&*fs, dir)?;
        remove_unlisted(&*fs, dir, &catalog)?;
        bulk::recover(&fs, opts.recovery, dir, &catalog)?;
        let opts = Arc::new(opts);
        let shared = Shared::new(opts.block_cache_bytes, opts.fs.clone(), opts.recovery);
        let (wake, rx) = crossbeam_channel::bounded::<()>(1);
        let mut tables = BTreeMap::new();
        for t in &catalog.tables {
            let schema = Arc::new(t.schema.clone());
            let mut regions = Vec::with_capacity(t.regions.len());
            for r in &t.regions {
                regions.push(Arc::new(open_region(
                    dir, &schema, r, &opts, &shared, &wake, None,
                )?));
            }
            tables.insert(
                t.schema.name.clone(),
                Arc::new(Table {
                    schema,
                    regions,
                    hosted: false,
                }),
            );
        }
        tracing::info!(dir = %dir.display(), tables = tables.len(), "opened database");
        Db::assemble(
            dir,
            Parts {
                lock: Some(lock),
                hosted: false,
                catalog,
                tables,
                opts,
                shared,
                wake,
                rx,
            },
        )
    }

    /// Starts the compactor and the flusher over opened parts.
    fn assemble(dir: &Path, p: Parts) -> Result<Db> {
        let compactor = Arc::new(compactor::Compactor::start(
            &p.opts.compaction,
            p.opts.clock.clone(),
        )?);
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            _lock: p.lock,
            hosted: p.hosted.then(|| Mutex::new(BTreeMap::new())),
            opts: p.opts,
            shared: p.shared,
            catalog: Mutex::new(p.catalog),
            tables: RwLock::new(p.tables),
            wake: p.wake,
            stop: AtomicBool::new(false),
            compactor,
            next_bulk_load: AtomicU64::new(1),
        });
        let weak = Arc::downgrade(&inner);
        let rx = p.rx;
        let flusher = std::thread::Builder::new()
            .name("memstore-flusher".into())
            .spawn(move || flusher_loop(&weak, &rx))
            .map_err(|e| Error::io(dir, e))?;
        Ok(Db {
            inner,
            flusher: Mutex::new(Some(flusher)),
        })
    }

    /// `InvalidArgument` in cluster mode, where meta (not this process) owns the catalog.
    fn refuse_in_cluster_mode(&self, what: &str) -> Result<()> {
        match self.inner.hosted {
            Some(_) => Err(Error::InvalidArgument(format!(
                "cannot {what} in a hosted database: in cluster mode, meta in etcd decides"
            ))),
            None => Ok(()),
        }
    }

    fn table(&self, name: &str) -> Result<Arc<Table>> {
        self.inner
            .tables
            .read()
            .get(name)
            .cloned()
            .ok_or_else(|| match self.inner.hosted {
                Some(_) => Error::NotServing(format!("no region of table '{name}' is held here")),
                None => Error::UnknownTable(name.to_string()),
            })
    }

    /// Creates a table with one region covering every row.
    ///
    /// # Errors
    /// `TableExists`, `InvalidArgument` for a bad schema, I/O errors.
    pub fn create_table(&self, schema: TableSchema) -> Result<()> {
        self.refuse_in_cluster_mode("create a table")?;
        schema.validate()?;
        let mut cat = self.inner.catalog.lock();
        if cat.tables.iter().any(|t| t.schema.name == schema.name) {
            return Err(Error::TableExists(schema.name));
        }
        let entry = RegionEntry {
            id: cat.next_region_id,
            start: Bytes::new(),
            end: Bytes::new(),
        };
        let schema = Arc::new(schema);
        let region = open_region(
            &self.inner.dir,
            &schema,
            &entry,
            &self.inner.opts,
            &self.inner.shared,
            &self.inner.wake,
            None,
        )?;
        let mut next = cat.clone();
        next.next_region_id += 1;
        next.tables.push(TableEntry {
            schema: (*schema).clone(),
            regions: vec![entry],
        });
        // IMPORTANT: the table exists once the catalog says so; a crash before this
        // leaves a directory that the next open removes.
        next.store(&*self.inner.opts.fs, &self.inner.dir)?;
        *cat = next;
        self.inner.tables.write().insert(
            schema.name.clone(),
            Arc::new(Table {
                schema,
                regions: vec![Arc::new(region)],
                hosted: false,
            }),
        );
        Ok(())
    }

    /// Drops a table and deletes its data.
    ///
    /// # Errors
    /// `UnknownTable`, I/O errors.
    pub fn drop_table(&self, name: &str) -> Result<()> {
        self.refuse_in_cluster_mode("drop a table")?;
        let mut cat = self.inner.catalog.lock();
        if !cat.tables.iter().any(|t| t.schema.name == name) {
            return Err(Error::UnknownTable(name.to_string()));
        }
        let mut next = cat.clone();
        next.tables.retain(|t| t.schema.name != name);
        next.store(&*self.inner.opts.fs, &self.inner.dir)?;
        *cat = next;
        if let Some(t) = self.inner.tables.write().remove(name) {
            for r in &t.regions {
                r.close_writes(true);
            }
        }
        let path = self.inner.dir.join(name);
        let fs = &*self.inner.opts.fs;
        fs.remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
        crate::fs::sync_dir(fs, &self.inner.dir)
    }

    /// Every table's schema, by name.
    pub fn list_tables(&self) -> Vec<TableSchema> {
        self.inner
            .tables
            .read()
            .values()
            .map(|t| (*t.schema).clone())
            .collect()
    }

    /// One table's schema.
    ///
    /// # Errors
    /// `UnknownTable`.
    pub fn describe_table(&self, name: &str) -> Result<TableSchema> {
        Ok((*self.table(name)?.schema).clone())
    }

    /// Applies a batch: each row atomically, in the region that holds it.
    ///
    /// # Errors
    /// `UnknownTable`, `UnknownFamily`, `InvalidArgument` (empty or oversize row,
    /// qualifier, value, batch), `TooBusy`, `Poisoned`, `Io`. Rows of other regions may
    /// have been applied when one region fails.
    pub fn write(&self, table: &str, batch: Vec<Mutation>, durability: Durability) -> Result<()> {
        // A region split between routing and writing refuses the write before applying
        // anything; route again against the new regions (bounded retries).
        let mut attempt = 0;
        loop {
            let t = self.table(table)?;
            match self.write_routed(&t, &batch, durability) {
                Err(Error::TooBusy(msg))
                    if attempt < 3 && t.regions.iter().any(|r| r.is_closed()) =>
                {
                    attempt += 1;
                    tracing::debug!(table, %msg, "write hit a closed region; routing again");
                }
                other => return other,
            }
        }
    }

    fn write_routed(&self, t: &Table, batch: &[Mutation], durability: Durability) -> Result<()> {
        if let [only] = &t.regions[..]
            && !t.hosted
        {
            return only.write(batch, durability);
        }
        let mut per: BTreeMap<u64, (Arc<Region>, Vec<Mutation>)> = BTreeMap::new();
        for m in batch {
            self.inner.opts.limits.check_row(&m.row)?;
            let r = t.locate(&m.row)?;
            per.entry(r.info.id)
                .or_insert_with(|| (Arc::clone(r), Vec::new()))
                .1
                .push(m.clone());
        }
        for (r, muts) in per.values() {
            r.write(muts, durability)?;
            self.check_fence(r)?;
        }
        Ok(())
    }

    fn spec(&self, read: &ReadOptions) -> ReadSpec {
        ReadSpec {
            read: read.clone(),
            now: self.inner.opts.clock.now_ms(),
        }
    }

    /// Reads one row; `None` if nothing of it is visible.
    ///
    /// # Errors
    /// `UnknownTable`, `UnknownFamily`, `InvalidArgument` (empty row), read errors.
    pub fn get(&self, table: &str, get: &Get) -> Result<Option<Row>> {
        let t = self.table(table)?;
        self.inner.opts.limits.check_row(&get.row)?;
        check_families(&t.schema, table, &get.read.columns)?;
        let spec = self.spec(&get.read);
        get_row(&t.locate(&get.row)?.view(), &get.row, &spec)
    }

    /// Scans rows in key order (descending if `reversed`), region by region; each region
    /// is read at its own consistent snapshot taken when the scan reaches it.
    ///
    /// # Errors
    /// `UnknownTable`, `UnknownFamily`. Read errors come out of the iterator.
    pub fn scan(&self, table: &str, scan: &Scan) -> Result<DbScan> {
        let t = self.table(table)?;
        check_families(&t.schema, table, &scan.read.columns)?;
        if t.hosted {
            hosted::check_scan_covered(&t.regions, scan)?;
        }
        let spec = self.spec(&scan.read);
        Ok(DbScan::new(t.regions.clone(), scan, spec))
    }

    /// Applies `mutation` if the newest value of (row, family, qualifier) satisfies
    /// `current <op> expected` (values compared as in filters), or, with `expected: None`,
    /// if the column is absent. Atomic with respect to other `check_and_mutate` calls on
    /// the region. Returns whether it applied.
    ///
    /// # Errors
    /// As [`Db::get`] and [`Db::write`]; `InvalidArgument` if `mutation.row != row`.
    #[allow(clippy::too_many_arguments)]
    pub fn check_and_mutate(
        &self,
        table: &str,
        row: &[u8],
        family: &[u8],
        qualifier: &[u8],
        op: CompareOp,
        expected: Option<Bytes>,
        mutation: Mutation,
        durability: Durability,
    ) -> Result<bool> {
        if mutation.row != row {
            return Err(Error::InvalidArgument(
                "check_and_mutate: the mutation's row differs from the checked row".into(),
            ));
        }
        let t = self.table(table)?;
        self.inner.opts.limits.check_row(row)?;
        let region = t.locate(row)?;
        let _g = region.check_lock().lock();
        let get = Get::new(Bytes::copy_from_slice(row)).column(Column::qualified(
            Bytes::copy_from_slice(family),
            Bytes::copy_from_slice(qualifier),
        ));
        let spec = self.spec(&get.read);
        let current = get_row(&region.view(), row, &spec)?
            .and_then(|r| r.cells.into_iter().next().map(|c| c.value));
        let pass = match (&current, &expected) {
            (None, None) => true,
            (Some(cur), Some(exp)) => op.holds(compare_values(cur, exp)),
            _ => false,
        };
        if pass {
            region.write(&[mutation], durability)?;
            self.check_fence(region)?;
        }
        Ok(pass)
    }

    /// Flushes every region of the table and waits for the files.
    ///
    /// # Errors
    /// `UnknownTable`, flush errors.
    pub fn flush(&self, table: &str) -> Result<()> {
        for r in &self.table(table)?.regions {
            r.flush()?;
        }
        Ok(())
    }

    /// Flushes the table, then compacts every store of it in the caller's thread: with
    /// `major`, each store's files into one file without dead data; otherwise minor
    /// compactions until the policy finds nothing more to do.
    ///
    /// # Errors
    /// `UnknownTable`, flush and compaction errors.
    pub fn compact(&self, table: &str, major: bool) -> Result<()> {
        self.flush(table)?;
        for r in &self.table(table)?.regions {
            self.inner.compactor.compact_now(r, major)?;
        }
        Ok(())
    }

    /// The table's regions in key order.
    ///
    /// # Errors
    /// `UnknownTable`.
    pub fn regions(&self, table: &str) -> Result<Vec<RegionInfo>> {
        Ok(self
            .table(table)?
            .regions
            .iter()
            .map(|r| r.info.clone())
            .collect())
    }

    /// The region holding `row`.
    ///
    /// # Errors
    /// `UnknownTable`.
    pub fn locate(&self, table: &str, row: &[u8]) -> Result<RegionInfo> {
        Ok(self.table(table)?.locate(row)?.info.clone())
    }

    /// The open region with this id, for tests and tools.
    #[doc(hidden)]
    pub fn region(&self, table: &str, id: u64) -> Result<Arc<Region>> {
        self.table(table)?
            .regions
            .iter()
            .find(|r| r.info.id == id)
            .cloned()
            .ok_or_else(|| Error::InvalidArgument(format!("no region {id} in '{table}'")))
    }

    /// Counters of every table, region and store, and of the block cache.
    pub fn stats(&self) -> DbStats {
        let tables = self.inner.tables.read();
        let mut s = DbStats::collect(
            tables.values().map(|t| (&t.schema.name, &t.regions[..])),
            &self.inner.shared,
        );
        let worker = self.inner.compactor.stats();
        s.compactions_failed = worker.failed;
        s.compactions_queued = worker.queued;
        s
    }

    /// Flushes every memstore and syncs every WAL; later writes are refused.
    ///
    /// # Errors
    /// The first flush or sync error (every region is still attempted).
    pub fn close(&self) -> Result<()> {
        let tables: Vec<Arc<Table>> = self.inner.tables.read().values().cloned().collect();
        let mut first = Ok(());
        for t in tables {
            for r in &t.regions {
                if let Err(e) = r.close()
                    && first.is_ok()
                {
                    first = Err(e);
                }
            }
        }
        self.stop_flusher();
        first
    }

    fn stop_flusher(&self) {
        self.inner.stop.store(true, Ordering::Release);
        // Compaction hook: a flush waiting for compaction room must not delay shutdown.
        self.inner.compactor.stop_waiting();
        let _ = self.inner.wake.try_send(());
        if let Some(h) = self.flusher.lock().take() {
            let _ = h.join();
        }
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        self.stop_flusher();
    }
}

/// `UnknownFamily` naming the table if a selected column's family is not in `schema`.
fn check_families(schema: &TableSchema, table: &str, columns: &[Column]) -> Result<()> {
    match columns.iter().find(|c| schema.family(&c.family).is_none()) {
        Some(c) => Err(Error::UnknownFamily {
            family: String::from_utf8_lossy(&c.family).into_owned(),
            table: table.to_string(),
        }),
        None => Ok(()),
    }
}

fn open_region(
    dir: &Path,
    schema: &Arc<TableSchema>,
    r: &RegionEntry,
    opts: &Arc<EngineOptions>,
    shared: &Shared,
    wake: &crossbeam_channel::Sender<()>,
    fence: Option<Arc<crate::fence::FenceFile>>,
) -> Result<Region> {
    Region::open(
        &dir.join(&schema.name).join(r.id.to_string()),
        RegionInfo {
            id: r.id,
            table: schema.name.clone(),
            start: r.start.clone(),
            end: r.end.clone(),
        },
        Arc::clone(schema),
        Arc::clone(opts),
        shared,
        Some(wake.clone()),
        fence,
    )
}

/// Deletes table and region directories the catalog does not list (a crash during
/// create, drop or split).
fn remove_unlisted(fs: &dyn crate::fs::Fs, dir: &Path, cat: &Catalog) -> Result<()> {
    for (path, name) in subdirs(fs, dir)? {
        if name == crate::bulk::STAGING_DIR {
            // Bulk loads: finished or forgotten by `bulk::recover`, not removed blind.
            continue;
        }
        match cat.tables.iter().find(|t| t.schema.name == name) {
            None => {
                tracing::warn!(dir = %path.display(), "removing table directory not in the catalog");
                fs.remove_dir_all(&path).map_err(|e| Error::io(&path, e))?;
            }
            Some(t) => {
                for (rpath, rname) in subdirs(fs, &path)? {
                    if !t.regions.iter().any(|r| r.id.to_string() == rname) {
                        tracing::warn!(dir = %rpath.display(), "removing region directory not in the catalog");
                        fs.remove_dir_all(&rpath)
                            .map_err(|e| Error::io(&rpath, e))?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn subdirs(fs: &dyn crate::fs::Fs, dir: &Path) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::new();
    for p in crate::fs::read_dir(fs, dir)? {
        if fs.is_dir(&p).map_err(|e| Error::io(&p, e))? {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            out.push((p, name));
        }
    }
    Ok(out)
}

/// How often every store is offered to the compaction worker even without flushes.
const COMPACTION_TICK_SECS: u64 = 60;

/// The background flusher: wakes on demand (or every second) and flushes every region
/// holding frozen memstores.
fn flusher_loop(inner: &Weak<Inner>, rx: &crossbeam_channel::Receiver<()>) {
    let mut last_tick = std::time::Instant::now();
    loop {
        let _ = rx.recv_timeout(Duration::from_secs(1));
        let Some(inner) = inner.upgrade() else { return };
        if inner.stop.load(Ordering::Acquire) {
            return;
        }
        let regions: Vec<Arc<Region>> = inner
            .tables
            .read()
            .values()
            .flat_map(|t| t.regions.iter().cloned())
            .collect();
        let compactor = Arc::clone(&inner.compactor);
        drop(inner);
        // Compaction hook: periodic look at every store (TTL drops, periodic majors).
        let tick = last_tick.elapsed() >= Duration::from_secs(COMPACTION_TICK_SECS);
        if tick {
            last_tick = std::time::Instant::now();
        }
        for r in regions {
            if r.has_frozen() {
                // Compaction hook: flushes wait (bounded) while a store is at its blocking
                // file count; writes meanwhile slow down and fail with TooBusy.
                compactor.wait_for_room(&r);
                match r.flush_frozen() {
                    Ok(()) => compactor.schedule_region(&r),
                    Err(e) => {
                        tracing::error!(table = %r.info.table, region = r.info.id, error = %e, "background flush failed");
                    }
                }
            } else if tick {
                compactor.schedule_region(&r);
            }
        }
    }
}
