//! The k-way merge of sorted cell sources (memstores and files) into one sorted stream.
//!
//! A binary heap holds the head of every source; the smallest key in store order comes out
//! first. Cells newer than the read point are dropped here, and a key seen twice (the same
//! cell in a frozen memstore and in the file it was just flushed to) is emitted once. It
//! does not apply masking or versions: that is `scan::visibility`.
//! It sits below both the read path (`scan`) and compaction, which share it: compaction
//! and gets use the owned [`MergeIter`]; forward scans use [`MergeCursor`], which lends
//! each cell from its source instead of moving owned copies through the heap.
//!
//! Invariant: [`MergeIter::peek`] shows exactly the key the next [`MergeIter::next_cell`]
//! returns. Duplicates are therefore removed when their first copy comes out, not when the
//! next one would: readers drain a row with "while peek is in the row, take next", and a
//! lazily skipped duplicate at the end of a row would hand them the next row's first cell.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;

use bytes::Bytes;

use crate::cell::{CellKey, KeyRef, SeqNo};
use crate::error::Result;
use crate::hfile::HFileCursor;
use crate::memstore::MemstoreCursor;

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

/// One sorted source of a [`MergeCursor`]: a memstore or a file, positioned on a cell
/// whose key and value it lends until its next `advance`.
pub enum SourceCursor {
    Mem(MemstoreCursor),
    File(HFileCursor),
}

impl SourceCursor {
    #[inline(always)]
    fn key(&self) -> Option<KeyRef<'_>> {
        match self {
            SourceCursor::Mem(m) => m.current().map(|(k, _)| k),
            SourceCursor::File(f) => f.key(),
        }
    }

    #[inline(always)]
    fn value(&self) -> &[u8] {
        match self {
            SourceCursor::Mem(m) => m.current().map_or(&[], |(_, v)| v),
            SourceCursor::File(f) => f.value(),
        }
    }

    #[inline]
    fn advance(&mut self) -> Result<()> {
        match self {
            SourceCursor::Mem(m) => {
                m.advance();
                Ok(())
            }
            SourceCursor::File(f) => f.advance(),
        }
    }
}

/// The lending form of [`MergeIter`]: the same sorted, de-duplicated stream of cells with
/// seq ≤ read point, but the current cell is borrowed from its source (a slice of a
/// cached block or of a memstore chunk) until [`advance`](Self::advance). Scans read
/// through it without an allocation or a reference count per cell.
///
/// A min-heap of source indices ordered by (current key, index). Invariant: every source
/// in the heap is positioned on a visible cell, and no source other than the top holds
/// the top's key once `advance` returns (the copies of a key are dropped together, so
/// [`key`](Self::key) always shows the next distinct cell).
pub struct MergeCursor {
    sources: Vec<SourceCursor>,
    heap: Vec<usize>,
    read_point: SeqNo,
}

impl MergeCursor {
    /// Builds the merge over sources positioned on their first cells.
    ///
    /// # Errors
    /// The first error a source returns while skipping cells above the read point.
    pub fn new(sources: Vec<SourceCursor>, read_point: SeqNo) -> Result<MergeCursor> {
        let mut m = MergeCursor {
            heap: Vec::with_capacity(sources.len()),
            sources,
            read_point,
        };
        for i in 0..m.sources.len() {
            m.skip_invisible(i)?;
            if m.sources[i].key().is_some() {
                m.heap.push(i);
            }
        }
        for pos in (0..m.heap.len() / 2).rev() {
            m.sift_down(pos);
        }
        m.drop_copies_of_top()?;
        Ok(m)
    }

    /// The current cell's key; `None` when every source is exhausted.
    #[inline]
    pub fn key(&self) -> Option<KeyRef<'_>> {
        self.sources.get(*self.heap.first()?)?.key()
    }

    /// The current cell's value (empty at the end).
    #[inline]
    pub fn value(&self) -> &[u8] {
        self.heap
            .first()
            .and_then(|&i| self.sources.get(i))
            .map_or(&[], SourceCursor::value)
    }

    /// Moves to the next distinct cell.
    ///
    /// # Errors
    /// An error of the source that was read; that source is then out of the merge.
    #[inline]
    pub fn advance(&mut self) -> Result<()> {
        if self.heap.is_empty() {
            return Ok(());
        }
        self.step(0)?;
        self.drop_copies_of_top()
    }

    fn skip_invisible(&mut self, i: usize) -> Result<()> {
        let rp = self.read_point;
        let src = &mut self.sources[i];
        while src.key().is_some_and(|k| k.seq > rp) {
            src.advance()?;
        }
        Ok(())
    }

    /// True if the source at heap position `a` sorts before the one at `b`.
    #[inline]
    fn less(&self, a: usize, b: usize) -> bool {
        let (ia, ib) = (self.heap[a], self.heap[b]);
        match (self.sources[ia].key(), self.sources[ib].key()) {
            (Some(x), Some(y)) => x.cmp(&y).then(ia.cmp(&ib)) == Ordering::Less,
            (Some(_), None) => true,
            _ => false,
        }
    }

    fn sift_down(&mut self, mut pos: usize) {
        let n = self.heap.len();
        loop {
            let l = 2 * pos + 1;
            if l >= n {
                return;
            }
            let r = l + 1;
            let c = if r < n && self.less(r, l) { r } else { l };
            if !self.less(c, pos) {
                return;
            }
            self.heap.swap(c, pos);
            pos = c;
        }
    }

    fn sift_up(&mut self, mut pos: usize) {
        while pos > 0 {
            let p = (pos - 1) / 2;
            if !self.less(pos, p) {
                return;
            }
            self.heap.swap(p, pos);
            pos = p;
        }
    }

    /// Advances the source at heap position `pos` to its next visible cell and restores
    /// the heap (removing the source when it is exhausted or failed).
    fn step(&mut self, pos: usize) -> Result<()> {
        let i = self.heap[pos];
        let res = match self.sources[i].advance() {
            Ok(()) => self.skip_invisible(i),
            Err(e) => Err(e),
        };
        if res.is_err() || self.sources[i].key().is_none() {
            let last = self.heap.len() - 1;
            self.heap.swap(pos, last);
            self.heap.pop();
            if pos < self.heap.len() {
                self.sift_down(pos);
                self.sift_up(pos);
            }
        } else {
            self.sift_down(pos);
        }
        res
    }

    /// Drops every other copy of the top key (the same cell in a frozen memstore and
    /// the file it was flushed to). A copy, if any, is a child of the root: the heap
    /// orders by (key, index), so every ancestor of an equal key is equal too.
    fn drop_copies_of_top(&mut self) -> Result<()> {
        loop {
            let Some(top) = self.key() else {
                return Ok(());
            };
            let copy = (1..self.heap.len().min(3)).find(|&pos| {
                self.sources[self.heap[pos]]
                    .key()
                    .is_some_and(|k| k.seq == top.seq && k == top)
            });
            match copy {
                Some(pos) => self.step(pos)?,
                None => return Ok(()),
            }
        }
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

    /// The lending merge yields exactly what the owned one does: order, duplicates
    /// dropped (three copies of one cell), cells above the read point hidden.
    #[test]
    fn cursor_matches_the_owned_merge() {
        use crate::memstore::Memstore;
        use std::sync::Arc;
        let sets = [
            vec![k("a", 5, 1), k("b", 1, 2), k("d", 1, 3), k("e", 1, 12)],
            vec![k("a", 9, 4), k("b", 1, 2), k("c", 1, 5)],
            vec![k("b", 1, 2), k("c", 1, 5), k("c", 0, 11)],
            vec![],
        ];
        let mems: Vec<Arc<Memstore>> = sets
            .iter()
            .map(|s| {
                let m = Arc::new(Memstore::new());
                for key in s {
                    m.insert(key.clone(), Bytes::from(key.seq.to_string()));
                }
                m
            })
            .collect();
        let owned = drain(
            MergeIter::new(
                mems.iter()
                    .map(|m| Box::new(m.iter_from(None)) as Source)
                    .collect(),
                10,
            )
            .unwrap(),
        );
        let mut c = MergeCursor::new(
            mems.iter()
                .map(|m| SourceCursor::Mem(m.cursor_from(None)))
                .collect(),
            10,
        )
        .unwrap();
        let mut lent = Vec::new();
        while let Some(key) = c.key() {
            assert_eq!(c.value(), key.seq.to_string().as_bytes());
            lent.push(key.to_owned_key());
            c.advance().unwrap();
        }
        assert_eq!(lent, owned);
        assert_eq!(lent.len(), 5, "{lent:?}");
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
