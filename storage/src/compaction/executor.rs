//! Executing a plan's rewrite: merge the input files' cells in store order, keep what
//! [`retain`](super::retain) keeps, write it to one output, pay the I/O throttle.
//!
//! The merge is the read path's k-way merge (`scan::merge`) with no read point limit; the
//! output is anything implementing [`OutputSink`] (the store's HFile writer in the engine,
//! a vector in tests). Recording the plan in the manifest, installing the new version and
//! deleting inputs are the store's job; [`FailPoint`] names the steps of that protocol so
//! tests can stop a compaction at each one as if the process died there.
//!
//! This module does not choose files (`policy`) and does not schedule (`worker`).

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use super::retain::{RetainRules, RetainStats, Retainer};
use super::throttle::SharedThrottle;
use crate::cell::{CellKey, SeqNo};
use crate::error::Result;
use crate::scan::merge::{MergeIter, Source};

/// Where a compaction's cells go.
pub trait OutputSink {
    /// Appends the next cell; keys arrive strictly increasing in store order.
    ///
    /// # Errors
    /// Whatever the underlying writer fails with (I/O, ordering).
    fn push(&mut self, key: &CellKey, value: &Bytes) -> Result<()>;
}

impl OutputSink for Vec<(CellKey, Bytes)> {
    fn push(&mut self, key: &CellKey, value: &Bytes) -> Result<()> {
        self.push((key.clone(), value.clone()));
        Ok(())
    }
}

/// A step of the compaction protocol at which a test can make the compaction fail, as if
/// the process died right there. Steps in order:
/// 1. `compaction_begin {id, inputs}` is durable in the manifest → [`FailPoint::AfterBegin`];
/// 2. the output file is written and fsynced → [`FailPoint::AfterOutputWritten`];
/// 3. one manifest edit adds the output, removes the inputs and ends the compaction →
///    [`FailPoint::AfterCommit`];
/// 4. the new version is installed; inputs wait for their last reader →
///    [`FailPoint::BeforeDeleteInputs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// After the begin edit, before any output byte.
    AfterBegin,
    /// After the output file is complete, before the commit edit.
    AfterOutputWritten,
    /// After the commit edit, before the new version is installed.
    AfterCommit,
    /// After the new version is installed, before the inputs are deleted.
    BeforeDeleteInputs,
}

impl FailPoint {
    /// Every step, in protocol order.
    pub const ALL: [FailPoint; 4] = [
        FailPoint::AfterBegin,
        FailPoint::AfterOutputWritten,
        FailPoint::AfterCommit,
        FailPoint::BeforeDeleteInputs,
    ];
}

/// Cells of accounting between two throttle charges.
const THROTTLE_CHUNK_BYTES: u64 = 64 * 1024;

/// What one merge did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MergeOutcome {
    /// Keep/drop counts.
    pub retain: RetainStats,
    /// Raw key + value bytes pushed to the sink (before encoding and compression).
    pub raw_bytes_out: u64,
    /// Highest sequence number among the kept cells (0 if none).
    pub max_seq: SeqNo,
}

/// Merges `inputs` (each sorted in store order) through the retention `rules` into `sink`,
/// charging the throttle for every ~64 KiB pushed.
///
/// # Errors
/// The first error of an input or of the sink; the output is then incomplete and must be
/// discarded by the caller.
pub fn merge_into(
    inputs: Vec<Source>,
    rules: RetainRules,
    throttle: Option<&SharedThrottle>,
    sink: &mut dyn OutputSink,
) -> Result<MergeOutcome> {
    let mut merge = MergeIter::new(inputs, SeqNo::MAX)?;
    let mut retainer = Retainer::new(rules);
    let mut out = MergeOutcome::default();
    let mut unpaid = 0u64;
    while let Some((key, value)) = merge.next_cell()? {
        if !retainer.keep(&key) {
            continue;
        }
        sink.push(&key, &value)?;
        let n = (key.row.len() + key.qualifier.len() + value.len() + 17) as u64;
        out.raw_bytes_out += n;
        out.max_seq = out.max_seq.max(key.seq);
        unpaid += n;
        if unpaid >= THROTTLE_CHUNK_BYTES {
            if let Some(t) = throttle {
                t.consume(unpaid);
            }
            unpaid = 0;
        }
    }
    if unpaid > 0
        && let Some(t) = throttle
    {
        t.consume(unpaid);
    }
    out.retain = retainer.stats();
    Ok(out)
}

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
    use crate::cell::CellKind;

    fn source(cells: Vec<(&'static str, u64, CellKind, u64)>) -> Source {
        let mut v: Vec<(CellKey, Bytes)> = cells
            .into_iter()
            .map(|(row, ts, kind, seq)| {
                (
                    CellKey {
                        row: Bytes::from_static(row.as_bytes()),
                        qualifier: Bytes::from_static(b"q"),
                        timestamp: ts,
                        kind,
                        seq,
                    },
                    Bytes::from(format!("{row}{seq}")),
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Box::new(v.into_iter().map(Ok))
    }

    #[test]
    fn merge_orders_dedups_and_retains() {
        use CellKind::*;
        let a = source(vec![("r1", 5, Put, 1), ("r2", 5, Put, 2)]);
        // The same cell in two inputs (a retried flush) comes out once.
        let b = source(vec![
            ("r1", 5, Put, 1),
            ("r1", 7, Put, 3),
            ("r2", 6, DeleteColumn, 4),
        ]);
        let mut out: Vec<(CellKey, Bytes)> = Vec::new();
        let minor = merge_into(
            vec![a, b],
            RetainRules::new(false, 1, None, 10),
            None,
            &mut out,
        )
        .unwrap();
        let got: Vec<(&[u8], u64, CellKind)> = out
            .iter()
            .map(|(k, _)| (&k.row[..], k.timestamp, k.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (&b"r1"[..], 7, Put),
                (b"r1", 5, Put),
                (b"r2", 6, DeleteColumn)
            ]
        );
        assert_eq!(
            (
                minor.retain.kept,
                minor.retain.dropped_masked,
                minor.max_seq
            ),
            (3, 1, 4)
        );
        assert!(minor.raw_bytes_out > 0);

        let a = source(vec![("r1", 5, Put, 1), ("r2", 5, Put, 2)]);
        let b = source(vec![("r1", 7, Put, 3), ("r2", 6, DeleteColumn, 4)]);
        let mut out: Vec<(CellKey, Bytes)> = Vec::new();
        let major = merge_into(
            vec![a, b],
            RetainRules::new(true, 1, None, 10),
            None,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1, "only r1@7 survives a major");
        assert_eq!(major.retain.dropped(), 3);
    }

    #[test]
    fn input_errors_surface() {
        let bad: Source = Box::new(std::iter::once(Err(crate::error::Error::InvalidArgument(
            "boom".into(),
        ))));
        let mut out: Vec<(CellKey, Bytes)> = Vec::new();
        let err = merge_into(
            vec![bad],
            RetainRules::new(true, 1, None, 0),
            None,
            &mut out,
        );
        assert!(err.is_err());
    }

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
