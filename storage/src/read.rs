//! Read requests and results: [`Get`], [`Scan`], [`Row`], column selection, time ranges.
//!
//! This module only describes reads; `scan/` executes them.

use bytes::Bytes;

use crate::cell::{Cell, CellKind};
use crate::filter::FilterCell;
pub use crate::filter::{CompareOp, Filter};

/// A selected column: a whole family (`qualifier: None`) or one qualifier of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub family: Bytes,
    pub qualifier: Option<Bytes>,
}

impl Column {
    /// The whole family.
    pub fn family(family: impl Into<Bytes>) -> Self {
        Column {
            family: family.into(),
            qualifier: None,
        }
    }

    /// One qualifier of a family.
    pub fn qualified(family: impl Into<Bytes>, qualifier: impl Into<Bytes>) -> Self {
        Column {
            family: family.into(),
            qualifier: Some(qualifier.into()),
        }
    }
}

/// Timestamps in `[min, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeRange {
    pub min: u64,
    pub max: u64,
}

impl TimeRange {
    /// True if `ts` lies in the range.
    pub fn contains(&self, ts: u64) -> bool {
        ts >= self.min && ts < self.max
    }
}

/// What a read returns of each row it visits: the same for a get and a scan.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Selected columns; empty = every family.
    pub columns: Vec<Column>,
    /// Only cells with a timestamp in this range.
    pub time_range: Option<TimeRange>,
    /// Versions per column (default 1), also capped by the family's `max_versions`.
    pub max_versions: Option<u32>,
    /// Applied to each row's cells after the rest.
    pub filter: Option<Filter>,
}

/// The builder methods of [`ReadOptions`], on every read that has one (`Get`, `Scan`).
macro_rules! read_options_builders {
    ($t:ty) => {
        impl $t {
            /// Adds a selected column (builder style).
            pub fn column(mut self, c: Column) -> Self {
                self.read.columns.push(c);
                self
            }

            /// Sets the time range `[min, max)` (builder style).
            pub fn time_range(mut self, min: u64, max: u64) -> Self {
                self.read.time_range = Some(TimeRange { min, max });
                self
            }

            /// Sets the versions per column (builder style).
            pub fn max_versions(mut self, n: u32) -> Self {
                self.read.max_versions = Some(n);
                self
            }

            /// Sets the filter (builder style).
            pub fn filter(mut self, f: Filter) -> Self {
                self.read.filter = Some(f);
                self
            }
        }
    };
}

/// Reads one row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Get {
    pub row: Bytes,
    /// Columns, time range, versions, filter.
    pub read: ReadOptions,
}

impl Get {
    /// A get of the newest version of every column of `row`.
    pub fn new(row: impl Into<Bytes>) -> Self {
        Get {
            row: row.into(),
            ..Get::default()
        }
    }
}

read_options_builders!(Get);

/// Reads rows in key order (or reverse key order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scan {
    /// First row, inclusive (`None` = from the start).
    pub start: Option<Bytes>,
    /// Last row, exclusive (`None` = to the end).
    pub stop: Option<Bytes>,
    /// Only rows starting with this prefix.
    pub prefix: Option<Bytes>,
    /// Descending row order. `start`/`stop` keep their meaning as a key range.
    pub reversed: bool,
    /// Maximum number of rows returned.
    pub limit: Option<usize>,
    /// Columns, time range, versions, filter.
    pub read: ReadOptions,
}

read_options_builders!(Scan);

impl Scan {
    /// A scan of the whole table.
    pub fn new() -> Self {
        Scan::default()
    }

    /// Sets the inclusive start row (builder style).
    pub fn start(mut self, row: impl Into<Bytes>) -> Self {
        self.start = Some(row.into());
        self
    }

    /// Sets the exclusive stop row (builder style).
    pub fn stop(mut self, row: impl Into<Bytes>) -> Self {
        self.stop = Some(row.into());
        self
    }

    /// Sets the row prefix (builder style).
    pub fn prefix(mut self, p: impl Into<Bytes>) -> Self {
        self.prefix = Some(p.into());
        self
    }

    /// Sets reversed order (builder style).
    pub fn reversed(mut self, r: bool) -> Self {
        self.reversed = r;
        self
    }

    /// Sets the row limit (builder style).
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }

    /// The effective key range `[lo, hi)` combining start, stop and prefix (`None` = open).
    pub fn key_range(&self) -> (Option<Bytes>, Option<Bytes>) {
        let mut lo = self.start.clone();
        let mut hi = self.stop.clone();
        if let Some(p) = &self.prefix {
            if lo.as_ref().is_none_or(|l| l < p) {
                lo = Some(p.clone());
            }
            if let Some(end) = prefix_end(p)
                && hi.as_ref().is_none_or(|h| *h > end)
            {
                hi = Some(end);
            }
        }
        (lo, hi)
    }
}

/// The smallest key greater than every key starting with `prefix` (`None` if unbounded).
pub fn prefix_end(prefix: &[u8]) -> Option<Bytes> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(Bytes::from(end));
        }
    }
    None
}

/// One row of a result: its cells ordered by family, qualifier, newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub row: Bytes,
    pub cells: Vec<Cell>,
}

impl Row {
    /// The newest value of a column in this result, if present.
    pub fn value(&self, family: &[u8], qualifier: &[u8]) -> Option<&Bytes> {
        self.cells
            .iter()
            .find(|c| &c.family[..] == family && &c.qualifier[..] == qualifier)
            .map(|c| &c.value)
    }
}

/// One cell of a [`RowView`], borrowed: valid until the cursor that lent it moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellView<'a> {
    pub family: &'a [u8],
    pub qualifier: &'a [u8],
    pub timestamp: u64,
    /// The sequence number of the write.
    pub seq: u64,
    pub value: &'a [u8],
}

impl FilterCell for CellView<'_> {
    fn family(&self) -> &[u8] {
        self.family
    }
    fn qualifier(&self) -> &[u8] {
        self.qualifier
    }
    fn value(&self) -> &[u8] {
        self.value
    }
}

#[derive(Clone, Copy, Debug)]
struct CellPos {
    family: usize,
    qualifier: (usize, usize),
    value_end: usize,
    timestamp: u64,
    seq: u64,
}

/// The buffer a scan cursor assembles one row in and lends as a [`RowView`]: the row key
/// and every cell's qualifier and value copied into one reused byte buffer, the family
/// names shared. Nothing is allocated per row once it has grown to the widest row.
#[derive(Debug, Default)]
pub struct RowBuf {
    data: Vec<u8>,
    row_len: usize,
    cells: Vec<CellPos>,
    families: Vec<Bytes>,
    keep: Vec<bool>,
}

impl RowBuf {
    /// A buffer whose cells name these families (by index in [`push_cell`](Self::push_cell)).
    pub fn new(families: Vec<Bytes>) -> RowBuf {
        RowBuf {
            families,
            ..RowBuf::default()
        }
    }

    /// Starts a row: clears the cells and sets the row key.
    #[inline]
    pub fn start_row(&mut self, row: &[u8]) {
        self.data.clear();
        self.cells.clear();
        self.data.extend_from_slice(row);
        self.row_len = row.len();
    }

    /// The row key being assembled.
    #[inline]
    pub fn row(&self) -> &[u8] {
        &self.data[..self.row_len]
    }

    /// Appends a cell of family number `family`.
    #[inline]
    pub fn push_cell(
        &mut self,
        family: usize,
        qualifier: &[u8],
        timestamp: u64,
        seq: u64,
        value: &[u8],
    ) {
        let q = self.data.len();
        self.data.extend_from_slice(qualifier);
        let v = self.data.len();
        self.data.extend_from_slice(value);
        self.cells.push(CellPos {
            family,
            qualifier: (q, v),
            value_end: self.data.len(),
            timestamp,
            seq,
        });
    }

    /// Loads an owned row (for sources that produce owned rows, e.g. reversed scans).
    pub fn load_row(&mut self, row: &Row) {
        self.start_row(&row.row);
        for c in &row.cells {
            let f = match self.families.iter().position(|f| *f == c.family) {
                Some(f) => f,
                None => {
                    self.families.push(c.family.clone());
                    self.families.len() - 1
                }
            };
            self.push_cell(f, &c.qualifier, c.timestamp, c.seq, &c.value);
        }
    }

    /// Number of cells in the row.
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    /// True if the row has no cell.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// Applies `filter` to the row, dropping the cells it drops.
    pub fn apply_filter(&mut self, filter: &Filter) {
        let mut keep = std::mem::take(&mut self.keep);
        keep.clear();
        keep.resize(self.cells.len(), true);
        {
            let view = self.view();
            let cells: Vec<CellView<'_>> = view.cells().collect();
            filter.mark(view.row(), &cells, &mut keep);
        }
        let mut k = keep.iter();
        self.cells.retain(|_| k.next().copied().unwrap_or(false));
        self.keep = keep;
    }

    /// The row as a borrowed view.
    #[inline]
    pub fn view(&self) -> RowView<'_> {
        RowView { buf: self }
    }
}

#[inline]
fn cell_of<'a>(buf: &'a RowBuf, p: &CellPos) -> CellView<'a> {
    CellView {
        family: buf.families.get(p.family).map_or(&[], |f| &f[..]),
        qualifier: &buf.data[p.qualifier.0..p.qualifier.1],
        timestamp: p.timestamp,
        seq: p.seq,
        value: &buf.data[p.qualifier.1..p.value_end],
    }
}

/// A row lent by a scan cursor: its key and cells (family, qualifier ↑, newest first)
/// as slices, valid until the cursor's next call. [`to_row`](Self::to_row) makes an
/// owned [`Row`].
#[derive(Clone, Copy, Debug)]
pub struct RowView<'a> {
    buf: &'a RowBuf,
}

impl<'a> RowView<'a> {
    /// The row key.
    #[inline]
    pub fn row(&self) -> &'a [u8] {
        &self.buf.data[..self.buf.row_len]
    }

    /// Number of cells.
    #[inline]
    pub fn len(&self) -> usize {
        self.buf.cells.len()
    }

    /// True if the row has no cell (a cursor never lends such a row).
    pub fn is_empty(&self) -> bool {
        self.buf.cells.is_empty()
    }

    /// Cell `i`, if present.
    #[inline]
    pub fn cell(&self, i: usize) -> Option<CellView<'a>> {
        let buf: &'a RowBuf = self.buf;
        buf.cells.get(i).map(|p| cell_of(buf, p))
    }

    /// The cells in order.
    pub fn cells(&self) -> impl ExactSizeIterator<Item = CellView<'a>> + 'a {
        let buf: &'a RowBuf = self.buf;
        buf.cells.iter().map(move |p| cell_of(buf, p))
    }

    /// An owned copy: one allocation for all the row's bytes, cells as slices of it.
    pub fn to_row(&self) -> Row {
        let data = Bytes::copy_from_slice(&self.buf.data);
        let cells = self
            .buf
            .cells
            .iter()
            .map(|p| Cell {
                row: data.slice(..self.buf.row_len),
                family: self.buf.families.get(p.family).cloned().unwrap_or_default(),
                qualifier: data.slice(p.qualifier.0..p.qualifier.1),
                timestamp: p.timestamp,
                kind: CellKind::Put,
                seq: p.seq,
                value: data.slice(p.qualifier.1..p.value_end),
            })
            .collect();
        Row {
            row: data.slice(..self.buf.row_len),
            cells,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_handles_ff() {
        assert_eq!(prefix_end(b"ab").as_deref(), Some(&b"ac"[..]));
        assert_eq!(prefix_end(b"a\xff").as_deref(), Some(&b"b"[..]));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn key_range_intersects_prefix_and_bounds() {
        let s = Scan::new().prefix("b").start("a").stop("z");
        assert_eq!(
            s.key_range(),
            (Some(Bytes::from("b")), Some(Bytes::from("c")))
        );
        let s = Scan::new().prefix("b").start("bb");
        assert_eq!(
            s.key_range(),
            (Some(Bytes::from("bb")), Some(Bytes::from("c")))
        );
    }
}
