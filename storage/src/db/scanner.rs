//! A scan across the regions of a table: regions in key order (reverse order when
//! reversed), each read at a snapshot taken when the scan reaches it, with the row limit
//! applied across them.
//!
//! The iterator owns `Arc`s of the regions and holds no lock between `next()` calls.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::read::{Row, RowView, Scan};
use crate::region::Region;
use crate::scan::rows::{ReadSpec, RegionScan};

/// Iterator over the rows of a scan; `Send + 'static`.
pub struct DbScan {
    /// Regions still to visit, in visiting order, with their part of the key range.
    regions: std::vec::IntoIter<(Arc<Region>, Option<Bytes>, Option<Bytes>)>,
    current: Option<RegionScan>,
    reversed: bool,
    spec: ReadSpec,
    remaining: Option<usize>,
    failed: bool,
}

impl DbScan {
    pub(super) fn new(regions: Vec<Arc<Region>>, scan: &Scan, spec: ReadSpec) -> DbScan {
        let (lo, hi) = scan.key_range();
        let empty = matches!((&lo, &hi), (Some(l), Some(h)) if l >= h);
        let mut parts = Vec::new();
        if !empty {
            for r in regions {
                let (rs, re) = (&r.info.start, &r.info.end);
                let plo = match &lo {
                    Some(l) if l > rs => Some(l.clone()),
                    _ if rs.is_empty() => None,
                    _ => Some(rs.clone()),
                };
                let phi = match &hi {
                    Some(h) if re.is_empty() || h < re => Some(h.clone()),
                    _ if re.is_empty() => None,
                    _ => Some(re.clone()),
                };
                if let (Some(l), Some(h)) = (&plo, &phi)
                    && l >= h
                {
                    continue;
                }
                parts.push((r, plo, phi));
            }
        }
        if scan.reversed {
            parts.reverse();
        }
        DbScan {
            regions: parts.into_iter(),
            current: None,
            reversed: scan.reversed,
            spec,
            remaining: scan.limit,
            failed: false,
        }
    }

    /// Runs `step` on the current region's scan until it yields, opening the next
    /// region whenever one is done; counts the yielded row against the limit.
    fn advance<T>(
        &mut self,
        mut step: impl FnMut(&mut RegionScan) -> Result<Option<T>>,
    ) -> Result<Option<T>> {
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            if let Some(cur) = &mut self.current {
                if let Some(out) = step(cur)? {
                    if let Some(n) = &mut self.remaining {
                        *n -= 1;
                    }
                    return Ok(Some(out));
                }
                self.current = None;
            }
            let Some((region, lo, hi)) = self.regions.next() else {
                return Ok(None);
            };
            self.current = Some(RegionScan::open(
                region.view(),
                lo,
                hi,
                self.reversed,
                &self.spec,
            )?);
        }
    }

    /// The next row, lent: its key and cells are slices valid until the next call on
    /// this scan. The fast way to read a scan (no allocation or reference count per
    /// cell); the `Iterator` impl gives owned [`Row`]s built the same way.
    ///
    /// # Errors
    /// I/O and checksum errors of the files read; the scan then ends.
    pub fn next_view(&mut self) -> Result<Option<RowView<'_>>> {
        if self.failed {
            return Ok(None);
        }
        match self.advance(|cur| Ok(cur.fill()?.then_some(()))) {
            Ok(Some(())) => Ok(self.current.as_ref().map(RegionScan::view)),
            Ok(None) => Ok(None),
            Err(e) => {
                self.failed = true;
                Err(e)
            }
        }
    }
}

impl Iterator for DbScan {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.advance(RegionScan::next_row) {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
