//! I/O counters of a store: what flushes and compactions wrote and read, so `Db::stats`
//! can show write amplification per family.

use std::sync::atomic::{AtomicU64, Ordering};

/// Per-store compaction counters, updated by the worker, read by `Db::stats`.
#[derive(Debug, Default)]
pub struct CompactionCounters {
    runs: AtomicU64,
    majors: AtomicU64,
    dropped_files: AtomicU64,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    files_in: AtomicU64,
    files_out: AtomicU64,
    cells_dropped: AtomicU64,
    failures: AtomicU64,
    flush_bytes: AtomicU64,
    user_bytes: AtomicU64,
}

/// A snapshot of [`CompactionCounters`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactionStats {
    /// Compactions completed (minor, major and drop-expired).
    pub runs: u64,
    /// Of which major.
    pub majors: u64,
    /// Files deleted whole because every cell had expired.
    pub dropped_files: u64,
    /// Bytes of input files read.
    pub bytes_read: u64,
    /// Bytes of output files written.
    pub bytes_written: u64,
    /// Input files consumed.
    pub files_in: u64,
    /// Output files produced.
    pub files_out: u64,
    /// Cells left out of outputs (dead, expired, excess versions, markers in majors).
    pub cells_dropped: u64,
    /// Compactions that failed (the store kept its old files).
    pub failures: u64,
    /// Bytes of files written by flushes of this store.
    pub flush_bytes: u64,
    /// Bytes users wrote to this store: row + qualifier + value of every flushed cell.
    pub user_bytes: u64,
}

impl CompactionStats {
    /// (flush bytes + compaction bytes written) / user bytes; `None` before any flush.
    pub fn write_amplification(&self) -> Option<f64> {
        write_amplification(self.flush_bytes, self.bytes_written, self.user_bytes)
    }
}

impl CompactionCounters {
    /// Records a finished rewrite of `files_in` files (`bytes_read`) into `files_out` files
    /// (`bytes_written`).
    pub fn record_rewrite(
        &self,
        major: bool,
        files_in: u64,
        bytes_read: u64,
        files_out: u64,
        bytes_written: u64,
        cells_dropped: u64,
    ) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        if major {
            self.majors.fetch_add(1, Ordering::Relaxed);
        }
        self.files_in.fetch_add(files_in, Ordering::Relaxed);
        self.files_out.fetch_add(files_out, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes_read, Ordering::Relaxed);
        self.bytes_written
            .fetch_add(bytes_written, Ordering::Relaxed);
        self.cells_dropped
            .fetch_add(cells_dropped, Ordering::Relaxed);
    }

    /// Records `files` deleted whole (TTL).
    pub fn record_drop(&self, files: u64) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.dropped_files.fetch_add(files, Ordering::Relaxed);
        self.files_in.fetch_add(files, Ordering::Relaxed);
    }

    /// Records a flush of `user_bytes` of memstore into a file of `file_bytes`.
    pub fn record_flush(&self, user_bytes: u64, file_bytes: u64) {
        self.user_bytes.fetch_add(user_bytes, Ordering::Relaxed);
        self.flush_bytes.fetch_add(file_bytes, Ordering::Relaxed);
    }

    /// Records a failed compaction.
    pub fn record_failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> CompactionStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CompactionStats {
            runs: get(&self.runs),
            majors: get(&self.majors),
            dropped_files: get(&self.dropped_files),
            bytes_read: get(&self.bytes_read),
            bytes_written: get(&self.bytes_written),
            files_in: get(&self.files_in),
            files_out: get(&self.files_out),
            cells_dropped: get(&self.cells_dropped),
            failures: get(&self.failures),
            flush_bytes: get(&self.flush_bytes),
            user_bytes: get(&self.user_bytes),
        }
    }
}

/// Write amplification: bytes written to disk (flushes + compactions) per byte users
/// wrote; `None` before any user byte.
pub fn write_amplification(
    flush_bytes: u64,
    compaction_bytes: u64,
    user_bytes: u64,
) -> Option<f64> {
    (user_bytes > 0).then(|| (flush_bytes + compaction_bytes) as f64 / user_bytes as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_amplification() {
        let c = CompactionCounters::default();
        c.record_rewrite(true, 3, 300, 1, 200, 7);
        c.record_drop(2);
        let s = c.snapshot();
        assert_eq!((s.runs, s.majors, s.files_in, s.files_out), (2, 1, 5, 1));
        assert_eq!(
            (s.bytes_read, s.bytes_written, s.cells_dropped),
            (300, 200, 7)
        );
        assert_eq!(write_amplification(100, 200, 100), Some(3.0));
        assert_eq!(write_amplification(100, 200, 0), None);
    }
}
