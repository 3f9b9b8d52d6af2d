//! The write-ahead log: segment files of checksummed, length-framed records, one record
//! per atomic batch, with group commit for `Sync` writes and a background sync for
//! `Async` ones. Format: `storage/docs/wal_format.md`.
//!
//! The WAL does not assign sequence numbers, apply edits or decide when segments are
//! flushed; the region does, and tells the log through [`Wal::mark_flushed`].

mod record;
mod segment;
mod writer;

pub use record::{MAX_RECORD_BYTES, RECORD_VERSION, WalEntry};
pub use segment::{
    HEADER_BYTES, MARKER_BYTES, MARKER_TAG, SEGMENT_MAGIC, SEGMENT_VERSION,
    header as segment_header, marker_payload, parse_segment_name, segment_name,
};
pub use writer::Wal;

use crate::fs::SharedFs;
use crate::log::RecoveryMode;

/// How durable one write must be before it is acknowledged (wal_format.md §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// Not logged: lost on a crash before the memstore is flushed. Fastest.
    SkipWal,
    /// Written to the OS before returning, `fdatasync`ed in the background every
    /// `async_interval_ms`: survives a process crash, may lose the last interval on power
    /// loss.
    Async,
    /// `fdatasync`ed before returning (shared by concurrent writers: group commit).
    #[default]
    Sync,
}

/// WAL tuning, and the file system it lives on.
#[derive(Clone, Debug)]
pub struct WalOptions {
    /// A segment is closed and a new one started once it holds at least this many bytes
    /// (checked before each group write, so a segment may exceed it by one group).
    /// Default 128 MiB: fewer files vs. finer-grained deletion after flushes.
    pub segment_bytes: u64,
    /// Period of the background `fdatasync` for `Async` writes. Default 100 ms.
    pub async_interval_ms: u64,
    /// What recovery does with a damaged tail (default: cut a torn tail, refuse anything
    /// else; `log_format.md` §4).
    pub recovery: RecoveryMode,
    /// The file system (default: the real one; tests pass a fault-injecting one).
    pub fs: SharedFs,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_bytes: 128 << 20,
            async_interval_ms: 100,
            recovery: RecoveryMode::default(),
            fs: speedlayer_vfs::real(),
        }
    }
}

/// Counters of one log, for stats and to make group commit visible.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WalStats {
    /// Records appended (`Async` + `Sync`; `SkipWal` is not counted).
    pub appends: u64,
    /// Framed bytes appended.
    pub bytes: u64,
    /// `fdatasync` calls issued (group commit makes this far below `appends`).
    pub syncs: u64,
    /// Segment files currently live.
    pub segments: u64,
    /// Segment files deleted by `mark_flushed`.
    pub segments_deleted: u64,
    /// Group writes refused because the disk was full (each is retried by later appends).
    pub no_space_failures: u64,
    /// Torn tails cut at open (a crash or power cut during a write).
    pub tails_truncated: u64,
    /// Bytes cut with those tails.
    pub tail_bytes_truncated: u64,
}
