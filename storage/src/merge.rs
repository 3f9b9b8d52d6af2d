//! The k-way merge of sorted cell sources (memstores and files) into one sorted stream.
//!
//! A binary heap holds the head of every source; the smallest key in store order comes out
//! first. Cells newer than the read point are dropped here, and a key seen twice (the same
//! cell in a frozen memstore and in the file it was just flushed to) is emitted once. It
//! does not apply masking or versions: that is `scan::visibility`.
//! It sits below both the read path (`scan`) and compaction, which share it.
//!
//! Invariant: [`MergeIter::peek`] shows exactly the key the next [`MergeIter::next_cell`]
//! returns. Duplicates are therefore removed when their first copy comes out, not when the
//! next one would: readers drain a row with "while peek is in the row, take next", and a
//! lazily skipped duplicate at the end of a row would hand them the next row's first cell.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use bytes::Bytes;

use crate::cell::{CellKey, SeqNo};
use crate::error::Result;

/// A sorted source of cells (store order), e.g. a memstore or file iterator.
pub type Source = Box<dyn Iterator<Item = Result<(CellKey, Bytes)>> + Send>;

struct Head {
    key: CellKey,
    value: Bytes,
    src: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    // Reversed: BinaryHeap is a max-heap and we want the smallest key first.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .key
            .cmp(&self.key)
            .then_with(|| other.src.cmp(&self.src))
    }
}

/// Merges sources into one sorted, de-duplicated stream of cells with seq ≤ read point.
///
/// The smallest head is replaced in place by the next cell of its source (one sift of the
/// heap instead of a pop and a push), and a key equal to the one just returned is dropped
/// while it is still at the top, so no copy of the last key is kept.
pub struct MergeIter {
    sources: Vec<Source>,
    heap: BinaryHeap<Head>,
    read_point: SeqNo,
    pending_err: Option<crate::error::Error>,
}

impl MergeIter {
    /// Builds the merge; pulls the first cell of every source.
    ///
    /// # Errors
    /// The first error any source returns.
    pub fn new(sources: Vec<Source>, read_point: SeqNo) -> Result<Self> {
        let mut m = MergeIter {
            heap: BinaryHeap::with_capacity(sources.len()),
            sources,
            read_point,
            pending_err: None,
        };
        for i in 0..m.sources.len() {
            if let Some(h) = m.next_of(i)? {
                m.heap.push(h);
            }
        }
        Ok(m)
    }

    /// The next cell of source `src` visible at the read point.
    fn next_of(&mut self, src: usize) -> Result<Option<Head>> {
        for item in self.sources[src].by_ref() {
            let (key, value) = item?;
            if key.seq <= self.read_point {
                return Ok(Some(Head { key, value, src }));
            }
        }
        Ok(None)
    }

    /// Removes the top of the heap, replacing it by the next cell of its source.
    fn advance_top(&mut self) -> Option<Head> {
        let src = self.heap.peek()?.src;
        let next = match self.next_of(src) {
            Ok(n) => n,
            Err(e) => {
                self.pending_err = Some(e);
                None
            }
        };
        let mut top = self.heap.peek_mut()?;
        match next {
            Some(n) => Some(std::mem::replace(&mut *top, n)),
            None => Some(PeekMut::pop(top)),
        }
    }

    /// The key that `next` would return, without consuming it.
    pub fn peek(&self) -> Option<&CellKey> {
        self.heap.peek().map(|h| &h.key)
    }

    /// The next cell in store order.
    ///
    /// # Errors
    /// An error of the source the next cell would have come from.
    pub fn next_cell(&mut self) -> Result<Option<(CellKey, Bytes)>> {
        if let Some(e) = self.pending_err.take() {
            return Err(e);
        }
        let Some(head) = self.advance_top() else {
            return Ok(None);
        };
        // IMPORTANT: drop every other copy of this key (the same cell in a frozen memstore
        // and the file it was flushed to) now, so that `peek` shows what the next call
        // returns. Every copy is a source head at this point: each source is sorted and
        // none of its heads is smaller than this key. After a source error the next call
        // returns that error, so the loop may stop early. Sequence numbers first: a cheap
        // test that fails for almost every other cell.
        while self.pending_err.is_none()
            && self
                .heap
                .peek()
                .is_some_and(|h| h.key.seq == head.key.seq && h.key == head.key)
        {
            self.advance_top();
        }
        Ok(Some((head.key, head.value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::CellKind;

    fn k(row: &str, ts: u64, seq: u64) -> CellKey {
        CellKey {
            row: Bytes::copy_from_slice(row.as_bytes()),
            qualifier: Bytes::from_static(b"q"),
            timestamp: ts,
            kind: CellKind::Put,
            seq,
        }
    }

    fn src(keys: Vec<CellKey>) -> Source {
        Box::new(keys.into_iter().map(|k| Ok((k, Bytes::new()))))
    }

    fn drain(mut m: MergeIter) -> Vec<CellKey> {
        let mut out = Vec::new();
        while let Some((k, _)) = m.next_cell().unwrap() {
            out.push(k);
        }
        out
    }

    #[test]
    fn merges_in_order_and_dedups() {
        let a = vec![k("a", 5, 1), k("b", 1, 2), k("d", 1, 3)];
        let b = vec![k("a", 9, 4), k("b", 1, 2), k("c", 1, 5)];
        let got = drain(MergeIter::new(vec![src(a), src(b), src(vec![])], 100).unwrap());
        assert_eq!(
            got,
            vec![
                k("a", 9, 4),
                k("a", 5, 1),
                k("b", 1, 2),
                k("c", 1, 5),
                k("d", 1, 3)
            ]
        );
    }

    /// `peek` must show what `next_cell` returns even when the previous key is still
    /// the head of another source (a duplicate at the end of a row).
    #[test]
    fn peek_is_the_next_cell_across_duplicates() {
        let a = vec![k("a", 5, 1), k("b", 2, 3)];
        let b = vec![k("a", 5, 1), k("b", 2, 3), k("b", 1, 2)];
        let c = vec![k("a", 5, 1)];
        let mut m = MergeIter::new(vec![src(a), src(b), src(c)], 100).unwrap();
        let mut got = Vec::new();
        loop {
            let peeked = m.peek().cloned();
            let next = m.next_cell().unwrap().map(|(key, _)| key);
            assert_eq!(peeked, next);
            let Some(key) = next else { break };
            got.push(key);
        }
        assert_eq!(got, vec![k("a", 5, 1), k("b", 2, 3), k("b", 1, 2)]);
    }

    #[test]
    fn hides_cells_above_the_read_point() {
        let a = vec![k("a", 5, 10), k("b", 1, 2), k("c", 1, 11)];
        let got = drain(MergeIter::new(vec![src(a)], 9).unwrap());
        assert_eq!(got, vec![k("b", 1, 2)]);
    }

    #[test]
    fn source_errors_surface() {
        let bad: Source = Box::new(
            vec![
                Ok((k("a", 1, 1), Bytes::new())),
                Err(crate::error::Error::InvalidArgument("boom".into())),
            ]
            .into_iter(),
        );
        let mut m = MergeIter::new(vec![bad], 10).unwrap();
        assert!(m.next_cell().is_err() || m.next_cell().is_err());
    }
}
