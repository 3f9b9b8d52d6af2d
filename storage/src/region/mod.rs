//! A region: one key range of a table, with one store per family, a write-ahead log, the
//! region's memstores and its MVCC read point.
//!
//! Directory layout (`docs/api.md`): `<region dir>/wal/` (WAL segments),
//! `<region dir>/MANIFEST-*` + `CURRENT` (live files), `<region dir>/<family>/<id>.hfile`.
//!
//! The region owns the write path (`write`: validate, assign sequences, log, insert,
//! publish), flushing (`flush`: freeze, write files, record them, trim the log) and hands
//! readers a consistent [`ReadView`]. It does not route rows between regions (`db` does).

pub mod flush;
pub mod mvcc;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::cell::SeqNo;
use crate::error::{Error, Result};
use crate::files::{RegionFiles, Shared};
use crate::memstore::Memstore;
use crate::options::EngineOptions;
use crate::scan::rows::{FamilyView, ReadView};
use crate::schema::TableSchema;
use crate::store::Store;
use crate::wal::{Wal, WalOptions};
use mvcc::Mvcc;

/// Where a region sits: its table and key range `[start, end)` (empty = unbounded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionInfo {
    pub id: u64,
    pub table: String,
    /// First row (inclusive); empty = −∞.
    pub start: Bytes,
    /// End row (exclusive); empty = +∞.
    pub end: Bytes,
}

impl RegionInfo {
    /// True if `row` belongs to this region.
    pub fn contains(&self, row: &[u8]) -> bool {
        row >= &self.start[..] && (self.end.is_empty() || row < &self.end[..])
    }
}

/// One generation of memstores (one per family), frozen and flushed together.
#[derive(Debug)]
pub(crate) struct MemGen {
    pub(crate) stores: Vec<Arc<Memstore>>,
    bytes: AtomicUsize,
    /// Writers that took a sequence for this generation and have not finished inserting.
    writers: AtomicUsize,
    /// Last sequence allocated before this generation was frozen (0 while active).
    sealed_seq: AtomicU64,
}

impl MemGen {
    fn new(families: usize) -> MemGen {
        MemGen {
            stores: (0..families).map(|_| Arc::new(Memstore::new())).collect(),
            bytes: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            sealed_seq: AtomicU64::new(0),
        }
    }

    fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The active generation and the frozen ones waiting for flush (oldest first).
#[derive(Debug)]
pub(crate) struct MemState {
    active: Arc<MemGen>,
    frozen: Vec<Arc<MemGen>>,
}

/// Counters of a region.
#[derive(Debug, Default)]
struct Counters {
    flushes: AtomicU64,
    flush_failures: AtomicU64,
    cells_written: AtomicU64,
    writes: AtomicU64,
    too_busy: AtomicU64,
}

/// Stats of one store of a region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub family: String,
    pub memstore_bytes: u64,
    pub files: u64,
    pub file_bytes: u64,
    /// Files a get did not read thanks to bloom filter or key/time range.
    pub bloom_skipped_files: u64,
    /// Compactions, bytes read/written, files in/out, flush and user bytes.
    pub compaction: crate::compaction::CompactionStats,
}

/// Stats of one region.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RegionStats {
    pub id: u64,
    pub start: Bytes,
    pub end: Bytes,
    pub memstore_bytes: u64,
    pub frozen_memstores: u64,
    pub flushes: u64,
    /// Flushes that failed (a full disk: retried; anything else poisons the region).
    pub flush_failures: u64,
    pub writes: u64,
    pub cells_written: u64,
    pub too_busy: u64,
    pub wal_appends: u64,
    pub wal_syncs: u64,
    pub wal_bytes: u64,
    /// WAL group writes refused for lack of space.
    pub wal_no_space_failures: u64,
    /// Torn WAL tails cut when the region opened.
    pub wal_tails_truncated: u64,
    /// Why the region refuses writes, if it does.
    pub poisoned: Option<String>,
    pub read_point: SeqNo,
    pub stores: Vec<StoreStats>,
}

/// One open region.
pub struct Region {
    pub info: RegionInfo,
    dir: PathBuf,
    schema: Arc<TableSchema>,
    /// Stores sorted by family name.
    stores: Vec<Arc<Store>>,
    opts: Arc<EngineOptions>,
    mvcc: Mvcc,
    mem: ArcSwap<MemState>,
    /// Serialises sequence allocation with the choice of active generation and freezing.
    alloc: Mutex<()>,
    /// One flush at a time.
    flush_lock: Mutex<()>,
    /// Serialises check-and-mutate on this region.
    check: Mutex<()>,
    /// Signalled after every flush; writers stalled on too many frozen memstores wait here.
    flushed: (Mutex<u64>, Condvar),
    poisoned: Mutex<Option<String>>,
    is_poisoned: AtomicBool,
    closed: AtomicBool,
    /// Test hook: flushes of frozen memstores are skipped while set.
    flush_paused: AtomicBool,
    /// Test hook: writes wait between logging and inserting while set.
    insert_paused: AtomicBool,
    wal: Wal,
    files: RegionFiles,
    counters: Counters,
    flush_wake: Option<crossbeam_channel::Sender<()>>,
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("info", &self.info)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl Region {
    /// Opens (or creates) the region in `dir`: reads the manifest, removes files it does
    /// not list, opens the live files, replays WAL entries newer than the flushed sequence.
    ///
    /// # Errors
    /// I/O, corruption or checksum errors of the manifest, files or WAL.
    pub fn open(
        dir: &Path,
        info: RegionInfo,
        schema: Arc<TableSchema>,
        opts: Arc<EngineOptions>,
        shared: &Shared,
        flush_wake: Option<crossbeam_channel::Sender<()>>,
        fence: Option<Arc<crate::fence::FenceFile>>,
    ) -> Result<Region> {
        crate::fs::create_dir_synced(&*opts.fs, dir)?;
        let mut fams = schema.families.clone();
        fams.sort_by(|a, b| a.name.cmp(&b.name));
        let (files, per_family, flushed_seq) =
            RegionFiles::open(dir, &fams, shared, info.id, &info.table, fence)?;
        // Close compactions a crash interrupted (their unlisted outputs were swept above).
        crate::compaction::run::abort_pending(&mut files.manifest().lock())?;
        let stores: Vec<Arc<Store>> = fams
            .into_iter()
            .zip(per_family)
            .map(|(f, files)| {
                let d = dir.join(&f.name);
                Arc::new(Store::new(f, d, files))
            })
            .collect();
        let file_seq = stores
            .iter()
            .flat_map(|s| {
                s.current()
                    .files
                    .iter()
                    .map(|f| f.meta.max_seq)
                    .collect::<Vec<_>>()
            })
            .max()
            .unwrap_or(0);
        let (wal, entries) = Wal::open(
            &dir.join("wal"),
            WalOptions {
                segment_bytes: opts.wal_segment_bytes,
                async_interval_ms: opts.wal_async_interval_ms,
                recovery: opts.recovery,
                fs: opts.fs.clone(),
            },
        )?;
        let active = MemGen::new(stores.len());
        let mut last_seq = flushed_seq.max(file_seq);
        let (mut replayed, mut skipped) = (0usize, 0usize);
        for e in entries {
            last_seq = last_seq.max(e.max_seq());
            if e.max_seq() <= flushed_seq {
                skipped += 1;
                continue;
            }
            replayed += 1;
            for c in e.cells {
                if c.seq <= flushed_seq {
                    continue;
                }
                let Some(i) = stores.iter().position(|s| s.name == c.family) else {
                    return Err(Error::Corruption {
                        file: dir.join("wal"),
                        offset: 0,
                        reason: format!(
                            "WAL cell of unknown family '{}' (seq {})",
                            String::from_utf8_lossy(&c.family),
                            c.seq
                        ),
                    });
                };
                let n = active.stores[i].insert(c.key(), c.value);
                active.bytes.fetch_add(n, Ordering::Relaxed);
            }
        }
        tracing::info!(
            table = %info.table,
            region = info.id,
            replayed,
            skipped,
            flushed_seq,
            last_seq,
            "opened region"
        );
        Ok(Region {
            info,
            dir: dir.to_path_buf(),
            schema,
            stores,
            opts,
            mvcc: Mvcc::new(last_seq),
            mem: ArcSwap::from_pointee(MemState {
                active: Arc::new(active),
                frozen: Vec::new(),
            }),
            alloc: Mutex::new(()),
            flush_lock: Mutex::new(()),
            check: Mutex::new(()),
            flushed: (Mutex::new(0), Condvar::new()),
            poisoned: Mutex::new(None),
            is_poisoned: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            flush_paused: AtomicBool::new(false),
            insert_paused: AtomicBool::new(false),
            wal,
            files,
            counters: Counters::default(),
            flush_wake,
        })
    }

    /// Cluster mode, when a region is opened for a new epoch: file ids from `floor` up and
    /// a manifest log of its own numbered from `floor` (see `Manifest::roll_to`).
    ///
    /// # Errors
    /// The manifest roll's errors.
    pub(crate) fn take_file_namespace(&self, floor: u64) -> Result<()> {
        self.files.raise_file_id_floor(floor);
        self.files.manifest().lock().roll_to(floor)
    }

    /// Raises the region's sequence floor (see `Mvcc::raise_floor`); cluster mode only.
    pub(crate) fn raise_seq_floor(&self, floor: crate::cell::SeqNo) -> bool {
        self.mvcc.raise_floor(floor)
    }

    /// The region's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The table schema this region serves.
    pub fn schema(&self) -> &Arc<TableSchema> {
        &self.schema
    }

    /// The stores, sorted by family name.
    pub fn stores(&self) -> &[Arc<Store>] {
        &self.stores
    }

    /// The highest sequence a reader starting now sees (compaction keeps cells above it).
    pub fn read_point(&self) -> SeqNo {
        self.mvcc.read_point()
    }

    /// A consistent snapshot for one read: read point, memstores, file versions.
    pub fn view(&self) -> ReadView {
        // IMPORTANT: read point first, then memstores, then versions. A flush installs the
        // file before it drops the frozen memstore, so in this order no visible cell can
        // be missing from both (it may be in both; the merge de-duplicates).
        let read_point = self.mvcc.read_point();
        let st = self.mem.load_full();
        let families = self
            .stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut mems = Vec::with_capacity(1 + st.frozen.len());
                mems.push(Arc::clone(&st.active.stores[i]));
                for g in st.frozen.iter().rev() {
                    mems.push(Arc::clone(&g.stores[i]));
                }
                FamilyView {
                    store: Arc::clone(s),
                    mems,
                    version: s.current(),
                }
            })
            .collect();
        ReadView {
            read_point,
            families,
        }
    }

    /// Refuses writes if an earlier durability step failed or the region is closed.
    fn check_writable(&self) -> Result<()> {
        // A poisoned WAL reports itself on append; only the region's own flag is checked
        // here, lock-free on the common path.
        if self.is_poisoned.load(Ordering::Acquire)
            && let Some(p) = self.poisoned.lock().as_ref()
        {
            return Err(Error::Poisoned(p.clone()));
        }
        if self.closed.load(Ordering::Acquire) {
            return Err(self.closed_error());
        }
        Ok(())
    }

    /// The error for writes to a closed (shut down or split) region: retryable, after
    /// locating the row again.
    pub(crate) fn closed_error(&self) -> Error {
        Error::TooBusy(format!(
            "region {} of table '{}' is closed (split or shut down); locate the row again and retry",
            self.info.id, self.info.table
        ))
    }

    /// Refuses further writes; writes already holding sequence numbers finish normally.
    pub(crate) fn close_writes(&self, closed: bool) {
        let _g = self.alloc.lock();
        self.closed.store(closed, Ordering::Release);
    }

    /// True once the region refuses writes (closed or split).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// The last sequence number handed out.
    pub fn last_seq(&self) -> SeqNo {
        self.mvcc.last_allocated()
    }

    fn poison(&self, why: String) {
        tracing::error!(table = %self.info.table, region = self.info.id, %why, "region poisoned");
        let mut p = self.poisoned.lock();
        if p.is_none() {
            *p = Some(why);
        }
        self.is_poisoned.store(true, Ordering::Release);
    }

    /// The lock check-and-mutate holds across its read and write.
    pub fn check_lock(&self) -> &Mutex<()> {
        &self.check
    }

    /// True if frozen memstores wait for a flush.
    pub fn has_frozen(&self) -> bool {
        !self.mem.load().frozen.is_empty()
    }

    /// Test hook: while `paused`, frozen memstores are not flushed (to make flushes lag).
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn pause_flushes(&self, paused: bool) {
        self.flush_paused.store(paused, Ordering::Release);
    }

    /// Test hook: while `paused`, writes stop after logging and before inserting (they
    /// hold their sequence numbers), to open the window a close or split must cover.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn pause_inserts(&self, paused: bool) {
        self.insert_paused.store(paused, Ordering::Release);
    }

    /// Writes that hold sequence numbers of the active memstore and have not inserted yet.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn writes_in_flight(&self) -> usize {
        self.mem.load().active.writers.load(Ordering::Acquire)
    }

    /// The WAL, for tests that inject failures.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn wal(&self) -> &Wal {
        &self.wal
    }

    /// Stats of this region and its stores.
    pub fn stats(&self) -> RegionStats {
        let st = self.mem.load_full();
        let ws = self.wal.stats();
        let stores = self
            .stores
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let v = s.current();
                let mem: usize = std::iter::once(&st.active)
                    .chain(st.frozen.iter())
                    .map(|g| g.stores[i].bytes())
                    .sum();
                StoreStats {
                    family: s.opts.name.clone(),
                    memstore_bytes: mem as u64,
                    files: v.files.len() as u64,
                    file_bytes: v.bytes(),
                    bloom_skipped_files: s.bloom_skipped.load(Ordering::Relaxed),
                    compaction: s.lifecycle.counters.snapshot(),
                }
            })
            .collect::<Vec<_>>();
        RegionStats {
            id: self.info.id,
            start: self.info.start.clone(),
            end: self.info.end.clone(),
            memstore_bytes: stores.iter().map(|s| s.memstore_bytes).sum(),
            frozen_memstores: st.frozen.len() as u64,
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            flush_failures: self.counters.flush_failures.load(Ordering::Relaxed),
            wal_no_space_failures: ws.no_space_failures,
            wal_tails_truncated: ws.tails_truncated,
            poisoned: self.poisoned.lock().clone(),
            writes: self.counters.writes.load(Ordering::Relaxed),
            cells_written: self.counters.cells_written.load(Ordering::Relaxed),
            too_busy: self.counters.too_busy.load(Ordering::Relaxed),
            wal_appends: ws.appends,
            wal_syncs: ws.syncs,
            wal_bytes: ws.bytes,
            read_point: self.mvcc.read_point(),
            stores,
        }
    }

    /// Flushes every memstore and syncs the WAL; later writes are refused.
    ///
    /// # Errors
    /// Errors of the flush or the final sync.
    pub fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        self.close_writes(true);
        let flushed = self.flush();
        let synced = self.wal.sync();
        // Replaced files that no reader holds any more go now, not at the next open's
        // sweep of unlisted files (a file still held stays: reap checks).
        self.reap_replaced_files();
        flushed.and(synced)
    }
}
