//! A scan across the regions of a table: regions in key order (reverse order when
//! reversed), each read at a snapshot taken when the scan reaches it, with the row limit
//! applied across them.
//!
//! The iterator owns `Arc`s of the regions and holds no lock between `next()` calls.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::Result;
use crate::read::{Row, Scan};
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

    fn advance(&mut self) -> Result<Option<Row>> {
        loop {
            if self.remaining == Some(0) {
                return Ok(None);
            }
            if let Some(cur) = &mut self.current {
                if let Some(row) = cur.next_row()? {
                    if let Some(n) = &mut self.remaining {
                        *n -= 1;
                    }
                    return Ok(Some(row));
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
}

impl Iterator for DbScan {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.advance() {
            Ok(r) => r.map(Ok),
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}
