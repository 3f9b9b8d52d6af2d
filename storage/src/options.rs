//! Engine-wide options: memstore and WAL sizing, the shared block cache, write limits.
//!
//! Per-family options live in `schema`; per-write durability is [`Durability`].

pub use crate::wal::Durability;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::schema::Limits;

/// Where the engine reads "now" (ms since the Unix epoch): the system clock, or a manual
/// clock tests move by hand (TTL tests must not sleep).
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that returns whatever is stored in `now` (ms).
    pub fn manual(now: Arc<AtomicU64>) -> Clock {
        Clock { manual: Some(now) }
    }

    /// Now, in ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            Some(n) => n.load(Ordering::Relaxed),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(n) => write!(f, "Clock::manual({})", n.load(Ordering::Relaxed)),
            None => f.write_str("Clock::system"),
        }
    }
}

/// Options of a whole [`crate::Db`]. Every field documents its default and trade-off.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// A region's memstore is frozen and flushed once it holds this many bytes
    /// (default 64 MiB). Larger: fewer, bigger files; more memory and longer replay.
    pub memstore_flush_bytes: usize,
    /// Frozen memstores a region may hold while the flusher catches up (default 2). Beyond
    /// it, writes wait briefly (`write_stall_ms`) and then fail with `Error::TooBusy`.
    pub max_frozen_memstores: usize,
    /// How long a write waits for a flush before failing with `TooBusy` (default 200 ms).
    pub write_stall_ms: u64,
    /// WAL segment size before rolling (default 128 MiB).
    pub wal_segment_bytes: u64,
    /// Interval of the background sync of `Async` writes (default 100 ms).
    pub wal_async_interval_ms: u64,
    /// Capacity of the block cache shared by all regions (default 256 MiB).
    pub block_cache_bytes: usize,
    /// Size at which a region should split (default 1 GiB); used by the server.
    pub region_split_bytes: u64,
    /// Limits on row, qualifier, value and batch sizes.
    pub limits: Limits,
    /// The clock for default timestamps and TTL (default: the system clock).
    pub clock: Clock,
    /// Compaction policy, threads, throttle and backpressure (see its fields' defaults).
    pub compaction: crate::compaction::CompactionOptions,
    /// What WAL and manifest recovery do with a damaged tail at open (default: cut a torn
    /// tail that no later frame proves was synced, refuse anything else; `Strict` refuses
    /// every damage). See `storage/docs/log_format.md` §4.
    pub recovery: crate::log::RecoveryMode,
    /// The file system every file of the engine goes through (default: the real one;
    /// power-cut and full-disk tests pass a fault-injecting one).
    pub fs: crate::fs::SharedFs,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            memstore_flush_bytes: 64 * 1024 * 1024,
            max_frozen_memstores: 2,
            write_stall_ms: 200,
            wal_segment_bytes: 128 * 1024 * 1024,
            wal_async_interval_ms: 100,
            block_cache_bytes: 256 * 1024 * 1024,
            region_split_bytes: 1024 * 1024 * 1024,
            limits: Limits::default(),
            clock: Clock::system(),
            compaction: crate::compaction::CompactionOptions::default(),
            recovery: crate::log::RecoveryMode::default(),
            fs: speedlayer_vfs::real(),
        }
    }
}
