//! [`KvEngine`] over Speedlayer's storage engine: one table, one family, one qualifier.
//!
//! Each db_bench key is a row of table `dbbench`, family `f`, qualifier `v`; the value is
//! the cell value, written with one `Db::write` call per key. Durability follows the flags:
//! `--sync=1` is `Durability::Sync`, `--disable_wal=1` is `Durability::SkipWal`, and the
//! default (db_bench's `--sync=0 --disable_wal=0`) is `Durability::Async`: every write is
//! appended to the WAL, and the WAL is fsynced in the background every
//! `--wal_sync_interval_ms`, never on the write path.
//!
//! A `TooBusy` refusal (flushes behind) is retried after a short pause, as RocksDB's write
//! stall would block the writer; the retries are counted and a single write gives up after
//! [`MAX_STALL`]. "Fresh database" deletes the directory only when it is empty or carries
//! the driver's marker file, so `--db` pointing at unrelated data is refused, not wiped.
//!
//! This is not a general client of the engine; it covers what db_bench needs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use speedlayer_storage::{
    Compression, Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, MutationOp, Scan,
    TableSchema,
};

use crate::engine::KvEngine;
use crate::error::{BenchError, Result};
use crate::flags::{CompressionFlag, DbBenchFlags};

/// The benchmark table.
pub const TABLE: &str = "dbbench";
/// Its one family.
pub const FAMILY: &str = "f";
/// The one qualifier every row uses.
pub const QUALIFIER: &[u8] = b"v";
/// File that marks a directory as a dbbench database the driver may delete.
pub const MARKER: &str = "DBBENCH_SPEEDLAYER";
/// How long one write keeps retrying `TooBusy` before the run fails.
pub const MAX_STALL: Duration = Duration::from_secs(60);

/// The storage engine, opened on a benchmark directory.
pub struct SpeedlayerEngine {
    dir: PathBuf,
    options: EngineOptions,
    compression: Compression,
    block_size: u32,
    durability: Durability,
    wal_interval_ms: u64,
    family: Bytes,
    qualifier: Bytes,
    db: Option<Db>,
    busy_retries: AtomicU64,
}

fn storage(during: &str) -> impl FnOnce(speedlayer_storage::Error) -> BenchError + '_ {
    move |e| BenchError::storage(during, e)
}

impl SpeedlayerEngine {
    /// Opens (or, unless `--use_existing_db`, recreates) the database in `dir`.
    ///
    /// # Errors
    /// [`BenchError::Io`] on the directory, [`BenchError::InvalidFlag`] when `dir` holds
    /// data that is not a dbbench database, and engine errors from `Db::open`.
    pub fn open(dir: &Path, flags: &DbBenchFlags) -> Result<SpeedlayerEngine> {
        let options = EngineOptions {
            memstore_flush_bytes: usize::try_from(flags.write_buffer_size).unwrap_or(usize::MAX),
            max_frozen_memstores: usize::try_from(flags.max_write_buffer_number.saturating_sub(1))
                .unwrap_or(usize::MAX)
                .max(1),
            block_cache_bytes: usize::try_from(flags.cache_size).unwrap_or(usize::MAX),
            wal_async_interval_ms: flags.wal_sync_interval_ms,
            ..EngineOptions::default()
        };
        let durability = if flags.disable_wal {
            Durability::SkipWal
        } else if flags.sync {
            Durability::Sync
        } else {
            Durability::Async
        };
        let compression = match flags.compression {
            CompressionFlag::None => Compression::None,
            CompressionFlag::Lz4 => Compression::Lz4,
        };
        let mut engine = SpeedlayerEngine {
            dir: dir.to_path_buf(),
            options,
            compression,
            block_size: flags.block_size,
            durability,
            wal_interval_ms: flags.wal_sync_interval_ms,
            family: Bytes::from_static(FAMILY.as_bytes()),
            qualifier: Bytes::from_static(QUALIFIER),
            db: None,
            busy_retries: AtomicU64::new(0),
        };
        if flags.use_existing_db {
            engine.reopen()?;
        } else {
            engine.destroy_and_reopen()?;
        }
        Ok(engine)
    }

    /// Writes that were refused with `TooBusy` and retried.
    pub fn busy_retries(&self) -> u64 {
        self.busy_retries.load(Ordering::Relaxed)
    }

    /// The engine's statistics, for the report after the run.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    fn db_ref(&self) -> Result<&Db> {
        self.db.as_ref().ok_or_else(|| {
            BenchError::Unsupported("the database is closed; reopen it first".into())
        })
    }

    fn reopen(&mut self) -> Result<()> {
        let db = Db::open(&self.dir, self.options.clone()).map_err(storage("open"))?;
        if db.describe_table(TABLE).is_err() {
            let mut family = FamilyOptions::new(FAMILY);
            family.compression = self.compression;
            family.block_size = self.block_size;
            db.create_table(TableSchema {
                name: TABLE.into(),
                families: vec![family],
            })
            .map_err(storage("create_table"))?;
        }
        self.db = Some(db);
        Ok(())
    }

    /// Removes the directory if it is ours (marker) or empty, then recreates it.
    fn wipe_dir(&self) -> Result<()> {
        let dir = &self.dir;
        if dir.exists() {
            let mut entries = std::fs::read_dir(dir).map_err(|e| BenchError::io(dir, e))?;
            let empty = entries.next().is_none();
            if !empty && !dir.join(MARKER).exists() {
                return Err(BenchError::InvalidFlag {
                    flag: "db".into(),
                    value: dir.display().to_string(),
                    reason: format!(
                        "directory is not empty and has no {MARKER} marker; refusing to delete it"
                    ),
                });
            }
            std::fs::remove_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
        }
        std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
        let marker = dir.join(MARKER);
        std::fs::write(&marker, b"created by speedlayer dbbench; safe to delete\n")
            .map_err(|e| BenchError::io(marker, e))
    }
}

impl KvEngine for SpeedlayerEngine {
    fn durability_note(&self) -> String {
        match self.durability {
            Durability::SkipWal => "off (Durability::SkipWal, --disable_wal=1)".into(),
            Durability::Sync => "on, fsync on every write (Durability::Sync, --sync=1)".into(),
            Durability::Async => format!(
                "on, appended on every write, no fsync per write (Durability::Async; \
                 background WAL sync every {} ms)",
                self.wal_interval_ms
            ),
        }
    }

    fn destroy_and_reopen(&mut self) -> Result<()> {
        if let Some(db) = self.db.take() {
            db.close().map_err(storage("close"))?;
        }
        self.wipe_dir()?;
        self.reopen()
    }

    fn put(&self, key: Bytes, value: Bytes) -> Result<()> {
        let durability = self.durability;
        let mutation = Mutation {
            row: key,
            ops: vec![MutationOp::Put {
                family: self.family.clone(),
                qualifier: self.qualifier.clone(),
                timestamp: None,
                value,
            }],
        };
        let mut stalled_since: Option<Instant> = None;
        loop {
            let db = self.db_ref()?;
            match db.write(TABLE, vec![mutation.clone()], durability) {
                Ok(()) => return Ok(()),
                Err(speedlayer_storage::Error::TooBusy(reason)) => {
                    let since = *stalled_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > MAX_STALL {
                        return Err(BenchError::storage(
                            "write",
                            speedlayer_storage::Error::TooBusy(reason),
                        ));
                    }
                    self.busy_retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(BenchError::storage("write", e)),
            }
        }
    }

    fn get(&self, key: &[u8]) -> Result<Option<usize>> {
        let row = self
            .db_ref()?
            .get(TABLE, &Get::new(Bytes::copy_from_slice(key)))
            .map_err(storage("get"))?;
        Ok(row.and_then(|r| r.cells.first().map(|c| c.value.len())))
    }

    fn scan(
        &self,
        start: Option<&[u8]>,
        limit: u64,
        visit: &mut dyn FnMut(&[u8], usize),
    ) -> Result<()> {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let mut scan = Scan::new().limit(limit);
        if let Some(start) = start {
            scan = scan.start(Bytes::copy_from_slice(start));
        }
        let mut rows = self.db_ref()?.scan(TABLE, &scan).map_err(storage("scan"))?;
        // The lending cursor: each row's key and value are borrowed until the next call.
        for _ in 0..limit {
            let Some(row) = rows.next_view().map_err(storage("scan"))? else {
                break;
            };
            let value_len = row.cell(0).map_or(0, |c| c.value.len());
            visit(row.row(), value_len);
        }
        Ok(())
    }

    fn close(&mut self) -> Result<()> {
        match self.db.take() {
            Some(db) => db.close().map_err(storage("close")),
            None => Ok(()),
        }
    }
}
