//! The memstore: the in-memory sorted buffer of one store (one family of one region).
//!
//! A lock-free skiplist (crossbeam-skiplist) keyed by [`CellKey`] in store order, with byte
//! accounting. Writers insert concurrently; readers iterate with [`MemstoreIter`], which
//! copies small chunks out of the skiplist so it owns no borrow and can live in a
//! `'static` scan, or with [`MemstoreCursor`], which copies each chunk into one reused
//! buffer and lends the current cell (forward scans). It is not durable (the WAL is) and
//! knows nothing of visibility: readers filter by read point.

use std::collections::VecDeque;
use std::ops::Bound;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;

use crate::cell::{CellKey, CellKind, KeyRef, SeqNo, Timestamp};
use crate::error::Result;

/// Per-entry overhead charged on top of key and value bytes (skiplist node, Bytes headers).
const ENTRY_OVERHEAD: usize = 80;

/// Entries copied out of the skiplist by an iterator's first refill: small, because a get
/// reads one row. Each refill doubles it up to [`ITER_CHUNK_MAX`] for scans.
const ITER_CHUNK_MIN: usize = 8;
/// Largest refill.
const ITER_CHUNK_MAX: usize = 256;

/// One family's in-memory sorted cells.
#[derive(Debug, Default)]
pub struct Memstore {
    map: SkipMap<CellKey, Bytes>,
    bytes: AtomicUsize,
    min_ts: AtomicU64,
    max_ts: AtomicU64,
    max_seq: AtomicU64,
}

impl Memstore {
    /// An empty memstore.
    pub fn new() -> Self {
        Memstore {
            min_ts: AtomicU64::new(u64::MAX),
            ..Memstore::default()
        }
    }

    /// Inserts one cell; returns the bytes charged for it.
    pub fn insert(&self, key: CellKey, value: Bytes) -> usize {
        let charged = key.row.len() + key.qualifier.len() + value.len() + ENTRY_OVERHEAD;
        self.min_ts.fetch_min(key.timestamp, Ordering::Relaxed);
        self.max_ts.fetch_max(key.timestamp, Ordering::Relaxed);
        self.max_seq.fetch_max(key.seq, Ordering::Relaxed);
        self.map.insert(key, value);
        self.bytes.fetch_add(charged, Ordering::Relaxed);
        charged
    }

    /// Bytes charged so far.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Number of cells.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True if no cell was inserted.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Highest sequence number inserted (0 if empty).
    pub fn max_seq(&self) -> SeqNo {
        self.max_seq.load(Ordering::Relaxed)
    }

    /// `(min, max)` timestamps inserted, `None` if empty.
    pub fn ts_range(&self) -> Option<(Timestamp, Timestamp)> {
        let min = self.min_ts.load(Ordering::Relaxed);
        let max = self.max_ts.load(Ordering::Relaxed);
        (min <= max).then_some((min, max))
    }

    /// True if any cell of `row` may be present (exact for a memstore).
    pub fn contains_row(&self, row: &[u8]) -> bool {
        let from = KeyRef::first_of_row(row).to_owned_key();
        self.map
            .lower_bound(Bound::Included(&from))
            .is_some_and(|e| e.key().row == row)
    }

    /// Every cell of `row`, in store order (gets read exactly one row: no read-ahead).
    pub fn row_cells(&self, row: &[u8]) -> Vec<(CellKey, Bytes)> {
        let from = KeyRef::first_of_row(row).to_owned_key();
        self.map
            .range(from..)
            .take_while(|e| e.key().row == row)
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }

    /// Iterates from the first key ≥ `from` (or from the start).
    pub fn iter_from(self: &Arc<Self>, from: Option<KeyRef<'_>>) -> MemstoreIter {
        MemstoreIter {
            mem: Arc::clone(self),
            buf: VecDeque::new(),
            next_from: match from {
                Some(k) => Bound::Included(k.to_owned_key()),
                None => Bound::Unbounded,
            },
            exhausted: false,
            chunk: ITER_CHUNK_MIN,
        }
    }

    /// A lending cursor on the first key ≥ `from` (or the first key).
    pub fn cursor_from(self: &Arc<Self>, from: Option<KeyRef<'_>>) -> MemstoreCursor {
        let mut c = MemstoreCursor {
            mem: Arc::clone(self),
            data: Vec::new(),
            cells: Vec::new(),
            pos: 0,
            next_from: match from {
                Some(k) => Bound::Included(k.to_owned_key()),
                None => Bound::Unbounded,
            },
            exhausted: false,
            chunk: ITER_CHUNK_MIN,
        };
        c.refill();
        c
    }

    /// The greatest row strictly less than `row` (the last row if `None`).
    pub fn last_row_before(&self, row: Option<&[u8]>) -> Option<Bytes> {
        match row {
            Some(r) => {
                let bound = KeyRef::first_of_row(r).to_owned_key();
                self.map
                    .upper_bound(Bound::Excluded(&bound))
                    .map(|e| e.key().row.clone())
            }
            None => self.map.back().map(|e| e.key().row.clone()),
        }
    }
}

/// An owning forward iterator over a memstore, refilled chunk by chunk.
pub struct MemstoreIter {
    mem: Arc<Memstore>,
    buf: VecDeque<(CellKey, Bytes)>,
    next_from: Bound<CellKey>,
    exhausted: bool,
    chunk: usize,
}

impl MemstoreIter {
    fn refill(&mut self) {
        let range = (self.next_from.clone(), Bound::Unbounded);
        for e in self.mem.map.range(range).take(self.chunk) {
            self.buf.push_back((e.key().clone(), e.value().clone()));
        }
        match self.buf.back() {
            Some((k, _)) => self.next_from = Bound::Excluded(k.clone()),
            None => self.exhausted = true,
        }
        self.chunk = (self.chunk * 2).min(ITER_CHUNK_MAX);
    }
}

/// Where one buffered cell of a [`MemstoreCursor`] sits in its chunk buffer.
#[derive(Clone, Copy, Debug)]
struct ChunkCell {
    row_start: usize,
    row_end: usize,
    qualifier_end: usize,
    value_end: usize,
    timestamp: Timestamp,
    kind: CellKind,
    seq: SeqNo,
}

/// A lending forward cursor over a memstore: like [`MemstoreIter`], but each chunk's
/// keys and values are copied into one reused byte buffer instead of cloned as `Bytes`
/// handles, so stepping costs no reference count (one `memcpy` per cell instead of six
/// atomic operations). The current cell is borrowed until [`advance`](Self::advance).
pub struct MemstoreCursor {
    mem: Arc<Memstore>,
    data: Vec<u8>,
    cells: Vec<ChunkCell>,
    pos: usize,
    next_from: Bound<CellKey>,
    exhausted: bool,
    chunk: usize,
}

impl MemstoreCursor {
    fn refill(&mut self) {
        self.data.clear();
        self.cells.clear();
        self.pos = 0;
        let range = (
            std::mem::replace(&mut self.next_from, Bound::Unbounded),
            Bound::Unbounded,
        );
        let mut last = None;
        for e in self.mem.map.range(range).take(self.chunk) {
            let k = e.key();
            let row_start = self.data.len();
            self.data.extend_from_slice(&k.row);
            let row_end = self.data.len();
            self.data.extend_from_slice(&k.qualifier);
            let qualifier_end = self.data.len();
            self.data.extend_from_slice(e.value());
            self.cells.push(ChunkCell {
                row_start,
                row_end,
                qualifier_end,
                value_end: self.data.len(),
                timestamp: k.timestamp,
                kind: k.kind,
                seq: k.seq,
            });
            last = Some(e);
        }
        match last {
            Some(e) => self.next_from = Bound::Excluded(e.key().clone()),
            None => self.exhausted = true,
        }
        self.chunk = (self.chunk * 2).min(ITER_CHUNK_MAX);
    }

    /// The current cell (key and value), `None` past the end.
    #[inline(always)]
    pub fn current(&self) -> Option<(KeyRef<'_>, &[u8])> {
        let c = self.cells.get(self.pos)?;
        let key = KeyRef {
            row: self.data.get(c.row_start..c.row_end)?,
            qualifier: self.data.get(c.row_end..c.qualifier_end)?,
            timestamp: c.timestamp,
            kind: c.kind,
            seq: c.seq,
        };
        Some((key, self.data.get(c.qualifier_end..c.value_end)?))
    }

    /// Moves to the next cell.
    #[inline]
    pub fn advance(&mut self) {
        self.pos += 1;
        if self.pos >= self.cells.len() && !self.exhausted {
            self.refill();
        }
    }
}

impl Iterator for MemstoreIter {
    type Item = Result<(CellKey, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && !self.exhausted {
            self.refill();
        }
        self.buf.pop_front().map(Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::CellKind;

    fn key(row: &str, q: &str, ts: u64, seq: u64) -> CellKey {
        CellKey {
            row: Bytes::copy_from_slice(row.as_bytes()),
            qualifier: Bytes::copy_from_slice(q.as_bytes()),
            timestamp: ts,
            kind: CellKind::Put,
            seq,
        }
    }

    #[test]
    fn iterates_in_store_order_across_chunks() {
        let m = Arc::new(Memstore::new());
        let mut expect = Vec::new();
        for i in 0..1000u64 {
            let k = key(&format!("r{:04}", i % 300), "q", i, i + 1);
            expect.push(k.clone());
            m.insert(k, Bytes::from(vec![1u8; 10]));
        }
        expect.sort();
        let got: Vec<_> = m.iter_from(None).map(|r| r.unwrap().0).collect();
        assert_eq!(got, expect);
        assert_eq!(m.len(), 1000);
        assert!(m.bytes() >= 1000 * (5 + 1 + 10));
        assert_eq!(m.max_seq(), 1000);
        assert_eq!(m.ts_range(), Some((0, 999)));
    }

    /// The lending cursor yields what the owned iterator does, across chunk refills.
    #[test]
    fn cursor_matches_the_iterator() {
        let m = Arc::new(Memstore::new());
        for i in 0..1000u64 {
            let k = key(
                &format!("r{:04}", i % 300),
                &format!("q{}", i % 3),
                i,
                i + 1,
            );
            m.insert(k, Bytes::from(vec![(i % 251) as u8; (i % 7) as usize]));
        }
        for from in [None, Some(KeyRef::first_of_row(b"r0150"))] {
            let want: Vec<_> = m.iter_from(from).map(|r| r.unwrap()).collect();
            let mut got = Vec::new();
            let mut c = m.cursor_from(from);
            while let Some((k, v)) = c.current() {
                got.push((k.to_owned_key(), Bytes::copy_from_slice(v)));
                c.advance();
            }
            assert_eq!(got, want);
        }
    }

    #[test]
    fn seek_and_reverse_row_lookup() {
        let m = Arc::new(Memstore::new());
        for r in ["a", "c", "e"] {
            m.insert(key(r, "q", 1, 1), Bytes::new());
        }
        let first = m
            .iter_from(Some(KeyRef::first_of_row(b"b")))
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(&first.0.row[..], b"c");
        assert_eq!(m.last_row_before(Some(b"c")).as_deref(), Some(&b"a"[..]));
        assert_eq!(m.last_row_before(Some(b"d")).as_deref(), Some(&b"c"[..]));
        assert_eq!(m.last_row_before(Some(b"a")), None);
        assert_eq!(m.last_row_before(None).as_deref(), Some(&b"e"[..]));
        assert!(m.contains_row(b"c"));
        let cells = m.row_cells(b"c");
        assert_eq!(cells.len(), 1);
        assert_eq!(&cells[0].0.row[..], b"c");
        assert!(m.row_cells(b"d").is_empty());
        assert!(!m.contains_row(b"d"));
    }

    #[test]
    fn concurrent_inserts_are_all_kept() {
        let m = Arc::new(Memstore::new());
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let m = &m;
                s.spawn(move || {
                    for i in 0..500u64 {
                        m.insert(key(&format!("{t}-{i}"), "q", 1, t * 1000 + i), Bytes::new());
                    }
                });
            }
        });
        assert_eq!(m.len(), 2000);
        assert_eq!(m.iter_from(None).count(), 2000);
    }
}
