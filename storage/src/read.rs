//! Read requests and results: [`Get`], [`Scan`], [`Row`], column selection, time ranges.
//!
//! This module only describes reads; `scan/` executes them.

use bytes::Bytes;

use crate::cell::Cell;
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
