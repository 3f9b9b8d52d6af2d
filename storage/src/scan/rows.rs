//! Rows out of a region snapshot: gets, forward scans and reversed scans.
//!
//! A [`ReadView`] is what a reader holds: the read point, and per family the memstores
//! and the file version it started with. Gets prune files by key range, bloom filter and
//! time; scans merge every overlapping source per family and assemble rows across
//! families. Reversed scans step to the previous row (the greatest row below the last one
//! returned, asked of every source) and read it forward. This module does not route
//! between regions (that is `db`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use crate::cell::{Cell, KeyRef, SeqNo};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::hfile::HFileCursor;
use crate::memstore::Memstore;
use crate::merge::{MergeCursor, MergeIter, Source, SourceCursor};
use crate::read::{Column, ReadOptions, Row, RowBuf, RowView};
use crate::scan::visibility::{FamilyQuery, RowVisibility, Visibility};
use crate::store::{Store, Version};

/// One family of a region as a reader sees it.
pub struct FamilyView {
    pub store: Arc<Store>,
    /// Memstores newest first (active, then frozen).
    pub mems: Vec<Arc<Memstore>>,
    pub version: Arc<Version>,
}

/// A consistent snapshot of a region for one read.
pub struct ReadView {
    pub read_point: SeqNo,
    /// Families sorted by name.
    pub families: Vec<FamilyView>,
}

/// The parts of a get or scan that decide which cells of a row come back, at a time.
#[derive(Clone, Debug, Default)]
pub struct ReadSpec {
    /// Columns, time range, versions, filter.
    pub read: ReadOptions,
    /// "Now" for TTL, in ms.
    pub now: u64,
}

/// The per-family queries of a read: (index into `view.families`, query), name order.
///
/// # Errors
/// `UnknownFamily` if a selected column names a family the table lacks.
pub fn family_queries(view: &ReadView, spec: &ReadSpec) -> Result<Vec<(usize, FamilyQuery)>> {
    for c in &spec.read.columns {
        if !view.families.iter().any(|f| f.store.name == c.family) {
            // `Db` checks first and names the table; this is the engine's own guard.
            return Err(Error::UnknownFamily {
                family: String::from_utf8_lossy(&c.family).into_owned(),
                table: String::new(),
            });
        }
    }
    let mut out = Vec::new();
    for (i, f) in view.families.iter().enumerate() {
        let qualifiers = if spec.read.columns.is_empty() {
            None
        } else {
            let sel: Vec<&Column> = spec
                .read
                .columns
                .iter()
                .filter(|c| c.family == f.store.name)
                .collect();
            if sel.is_empty() {
                continue;
            }
            if sel.iter().any(|c| c.qualifier.is_none()) {
                None
            } else {
                let mut qs: Vec<Bytes> = sel.iter().filter_map(|c| c.qualifier.clone()).collect();
                qs.sort();
                qs.dedup();
                Some(qs)
            }
        };
        let opts = &f.store.opts;
        out.push((
            i,
            FamilyQuery {
                family: f.store.name.clone(),
                qualifiers,
                time_range: spec.read.time_range,
                max_versions: spec
                    .read
                    .max_versions
                    .unwrap_or(1)
                    .clamp(1, opts.max_versions),
                oldest_ts: opts.ttl_ms.map_or(0, |ttl| spec.now.saturating_sub(ttl)),
            },
        ));
    }
    Ok(out)
}

/// True if every cell of a file with this newest timestamp is invisible to `q`.
fn too_old(max_ts: u64, q: &FamilyQuery) -> bool {
    // Markers in such a file only mask puts older than themselves: also invisible.
    max_ts < q.oldest_ts || q.time_range.is_some_and(|r| max_ts < r.min)
}

/// The sources of one family: memstores and the files that can matter.
fn sources(
    fv: &FamilyView,
    q: &FamilyQuery,
    seek: Option<KeyRef<'_>>,
    row: Option<&[u8]>,
    range: (Option<&[u8]>, Option<&[u8]>),
) -> Result<Vec<Source>> {
    let mut out: Vec<Source> = Vec::with_capacity(fv.mems.len() + fv.version.files.len());
    for m in &fv.mems {
        if m.is_empty() {
            continue;
        }
        match row {
            Some(r) => {
                let cells = m.row_cells(r);
                if !cells.is_empty() {
                    out.push(Box::new(cells.into_iter().map(Ok)));
                }
            }
            None => out.push(Box::new(m.iter_from(seek))),
        }
    }
    for f in &fv.version.files {
        let skip = match row {
            Some(r) => match q.qualifiers.as_deref() {
                Some([only]) => !f.may_contain(r, only),
                _ => !f.may_contain_row(r),
            },
            None => {
                range.0.is_some_and(|lo| &f.meta.last_row[..] < lo)
                    || range.1.is_some_and(|hi| &f.meta.first_row[..] >= hi)
            }
        };
        if skip || too_old(f.meta.max_ts, q) {
            fv.store.bloom_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        out.push(f.iter_from(seek)?);
    }
    Ok(out)
}

/// Feeds every cell of `row` at the head of `m` to a fresh tracker; appends the visible
/// cells to `cells` (no per-family vector is allocated).
fn drain_row(m: &mut MergeIter, row: &[u8], q: &FamilyQuery, cells: &mut Vec<Cell>) -> Result<()> {
    let mut vis = RowVisibility::with_out(q, std::mem::take(cells));
    let res = drain_into(m, row, &mut vis);
    *cells = vis.out;
    res
}

fn drain_into(m: &mut MergeIter, row: &[u8], vis: &mut RowVisibility<'_>) -> Result<()> {
    while m.peek().is_some_and(|k| k.row == row) {
        match m.next_cell()? {
            Some((k, v)) => vis.push(k, v),
            None => break,
        }
    }
    Ok(())
}

fn finish_row(row: Bytes, cells: Vec<Cell>, filter: Option<&Filter>) -> Option<Row> {
    let cells = match filter {
        Some(f) => f.apply(&row, cells),
        None => cells,
    };
    (!cells.is_empty()).then_some(Row { row, cells })
}

/// Reads one row.
///
/// # Errors
/// `UnknownFamily`, or I/O and checksum errors of the files read.
pub fn get_row(view: &ReadView, row: &[u8], spec: &ReadSpec) -> Result<Option<Row>> {
    let queries = family_queries(view, spec)?;
    get_row_with(view, row, &queries, spec.read.filter.as_ref())
}

fn get_row_with(
    view: &ReadView,
    row: &[u8],
    queries: &[(usize, FamilyQuery)],
    filter: Option<&Filter>,
) -> Result<Option<Row>> {
    let mut cells = Vec::new();
    let seek = KeyRef::first_of_row(row);
    for (i, q) in queries {
        let srcs = sources(&view.families[*i], q, Some(seek), Some(row), (None, None))?;
        if srcs.is_empty() {
            continue;
        }
        let mut m = MergeIter::new(srcs, view.read_point)?;
        drain_row(&mut m, row, q, &mut cells)?;
    }
    Ok(finish_row(Bytes::copy_from_slice(row), cells, filter))
}

/// The lending sources of one family for a forward scan from `seek`: memstores and the
/// files that overlap `range` and are not too old for `q`.
fn cursor_sources(
    fv: &FamilyView,
    q: &FamilyQuery,
    seek: Option<KeyRef<'_>>,
    range: (Option<&[u8]>, Option<&[u8]>),
) -> Result<Vec<SourceCursor>> {
    let mut out = Vec::with_capacity(fv.mems.len() + fv.version.files.len());
    for m in &fv.mems {
        if !m.is_empty() {
            out.push(SourceCursor::Mem(m.cursor_from(seek)));
        }
    }
    for f in &fv.version.files {
        let skip = range.0.is_some_and(|lo| &f.meta.last_row[..] < lo)
            || range.1.is_some_and(|hi| &f.meta.first_row[..] >= hi);
        if skip || too_old(f.meta.max_ts, q) {
            fv.store.bloom_skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        out.push(SourceCursor::File(HFileCursor::new(f.reader(), seek)?));
    }
    Ok(out)
}

/// Rows of a region snapshot in a key range, ascending or descending.
pub enum RegionScan {
    Forward(ForwardScan),
    Reverse(ReverseScan),
}

impl RegionScan {
    /// Opens a scan of `[lo, hi)` over `view`.
    ///
    /// # Errors
    /// `UnknownFamily`, or errors opening file iterators.
    pub fn open(
        view: ReadView,
        lo: Option<Bytes>,
        hi: Option<Bytes>,
        reversed: bool,
        spec: &ReadSpec,
    ) -> Result<RegionScan> {
        let queries = family_queries(&view, spec)?;
        if reversed {
            return Ok(RegionScan::Reverse(ReverseScan {
                view,
                queries,
                lo,
                cursor: hi,
                filter: spec.read.filter.clone(),
                done: false,
                buf: RowBuf::default(),
            }));
        }
        let seek = lo.as_deref().map(KeyRef::first_of_row);
        let mut fams = Vec::with_capacity(queries.len());
        let mut names = Vec::with_capacity(queries.len());
        for (i, q) in queries {
            let srcs = cursor_sources(&view.families[i], &q, seek, (lo.as_deref(), hi.as_deref()))?;
            names.push(q.family.clone());
            fams.push((q, MergeCursor::new(srcs, view.read_point)?));
        }
        Ok(RegionScan::Forward(ForwardScan {
            fams,
            hi,
            filter: spec.read.filter.clone(),
            vis: Visibility::default(),
            buf: RowBuf::new(names),
            _pinned: view,
        }))
    }

    /// The next row with visible cells, owned, or `None` at the end of the range.
    ///
    /// # Errors
    /// I/O and checksum errors of the files read.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        match self {
            RegionScan::Forward(f) => Ok(f.fill()?.then(|| f.buf.view().to_row())),
            RegionScan::Reverse(r) => r.next_row(),
        }
    }

    /// Assembles the next row with visible cells; `false` at the end of the range. The
    /// row is then [`view`](Self::view) until the next call.
    ///
    /// # Errors
    /// I/O and checksum errors of the files read.
    pub fn fill(&mut self) -> Result<bool> {
        match self {
            RegionScan::Forward(f) => f.fill(),
            RegionScan::Reverse(r) => match r.next_row()? {
                Some(row) => {
                    r.buf.load_row(&row);
                    Ok(true)
                }
                None => Ok(false),
            },
        }
    }

    /// The row the last successful [`fill`](Self::fill) assembled.
    pub fn view(&self) -> RowView<'_> {
        match self {
            RegionScan::Forward(f) => f.buf.view(),
            RegionScan::Reverse(r) => r.buf.view(),
        }
    }
}

/// Ascending scan: one lending merge per family; each row is assembled into a reused
/// buffer at the smallest head, without an allocation or reference count per cell.
pub struct ForwardScan {
    fams: Vec<(FamilyQuery, MergeCursor)>,
    hi: Option<Bytes>,
    filter: Option<Filter>,
    vis: Visibility,
    buf: RowBuf,
    /// Compaction hook: holds the snapshot's versions so compaction deletes the files
    /// this scan reads only after it ends.
    _pinned: ReadView,
}

impl ForwardScan {
    fn fill(&mut self) -> Result<bool> {
        loop {
            let mut min: Option<&[u8]> = None;
            for (_, m) in &self.fams {
                if let Some(k) = m.key()
                    && min.is_none_or(|r| k.row < r)
                {
                    min = Some(k.row);
                }
            }
            let Some(row) = min else {
                return Ok(false);
            };
            if self.hi.as_ref().is_some_and(|h| row >= &h[..]) {
                return Ok(false);
            }
            self.buf.start_row(row);
            for (fi, (q, m)) in self.fams.iter_mut().enumerate() {
                self.vis.reset();
                while let Some(k) = m.key() {
                    if k.row != self.buf.row() {
                        break;
                    }
                    if self.vis.admit(q, k) {
                        self.buf
                            .push_cell(fi, k.qualifier, k.timestamp, k.seq, m.value());
                    }
                    m.advance()?;
                }
            }
            if let Some(f) = &self.filter {
                self.buf.apply_filter(f);
            }
            if !self.buf.is_empty() {
                return Ok(true);
            }
        }
    }
}

/// Descending scan: asks every source for the row before the cursor, then reads it.
pub struct ReverseScan {
    view: ReadView,
    queries: Vec<(usize, FamilyQuery)>,
    lo: Option<Bytes>,
    /// Exclusive upper bound of the rows still to return (`None` = +∞).
    cursor: Option<Bytes>,
    filter: Option<Filter>,
    done: bool,
    /// The last row, for [`RegionScan::view`].
    buf: RowBuf,
}

impl ReverseScan {
    fn prev_row(&self) -> Result<Option<Bytes>> {
        let bound = self.cursor.as_deref();
        let mut best: Option<Bytes> = None;
        for (i, _) in &self.queries {
            let fv = &self.view.families[*i];
            for m in &fv.mems {
                if let Some(r) = m.last_row_before(bound)
                    && best.as_ref().is_none_or(|b| r > *b)
                {
                    best = Some(r);
                }
            }
            for f in &fv.version.files {
                if bound.is_some_and(|b| &f.meta.first_row[..] >= b)
                    || best.as_ref().is_some_and(|b| f.meta.last_row <= *b)
                {
                    continue;
                }
                if let Some(r) = f.last_row_before(bound)?
                    && best.as_ref().is_none_or(|b| r > *b)
                {
                    best = Some(r);
                }
            }
        }
        Ok(best)
    }

    fn next_row(&mut self) -> Result<Option<Row>> {
        while !self.done {
            let Some(row) = self.prev_row()? else {
                self.done = true;
                break;
            };
            if self.lo.as_ref().is_some_and(|l| row < *l) {
                self.done = true;
                break;
            }
            self.cursor = Some(row.clone());
            if let Some(r) = get_row_with(&self.view, &row, &self.queries, self.filter.as_ref())? {
                return Ok(Some(r));
            }
        }
        Ok(None)
    }
}
