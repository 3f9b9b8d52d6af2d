//! Executing a plan's rewrite: merge the input files' cells in store order, keep what
//! [`retain`](super::retain) keeps, write it to one output, pay the I/O throttle.
//!
//! The merge is the read path's k-way merge (`merge`) with no read point limit; the
//! output is anything implementing [`OutputSink`] (the store's HFile writer in the engine,
//! a vector in tests). Recording the plan in the manifest, installing the new version and
//! deleting inputs are `run`'s job (its steps are named by `store::FailPoint`).
//!
//! This module does not choose files (`policy`) and does not schedule (`worker`).

use bytes::Bytes;

use super::retain::{RetainRules, RetainStats, Retainer};
use super::throttle::SharedThrottle;
use crate::cell::{CellKey, SeqNo};
use crate::error::Result;
use crate::merge::{MergeIter, Source};

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
}
