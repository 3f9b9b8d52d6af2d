//! Engine-wide options: memstore and WAL sizing, the shared block cache, write limits.
//!
//! Per-family options live in `schema`; per-write durability is [`Durability`].

pub use crate::filecfg::Durability;
use crate::schema::Limits;

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
        }
    }
}
