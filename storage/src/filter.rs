//! Row filters: value comparisons, row prefix, column prefix, and AND/OR of them.
//!
//! A filter runs on the cells a read would return for one row (after masking, versions,
//! time range and column selection) and returns the cells to keep; an empty result drops
//! the row. It does not read anything itself.
//!
//! Semantics:
//! - `Value`: keeps the row if it has the column and its newest returned value compares
//!   true against the operand (numerically when both parse as `f64`, else as bytes); a row
//!   without the column does not match.
//! - `RowPrefix`: keeps the row if its key starts with the prefix.
//! - `ColumnPrefix`: keeps only the cells whose qualifier starts with the prefix.
//! - `And`: applies each filter in turn to what the previous one kept.
//! - `Or`: keeps the cells kept by at least one branch (each branch sees all cells).

use std::cmp::Ordering;

use bytes::Bytes;

use crate::cell::Cell;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// True if `ord` (left compared to right) satisfies the operator.
    pub fn holds(self, ord: Ordering) -> bool {
        match self {
            CompareOp::Eq => ord == Ordering::Equal,
            CompareOp::Ne => ord != Ordering::Equal,
            CompareOp::Lt => ord == Ordering::Less,
            CompareOp::Le => ord != Ordering::Greater,
            CompareOp::Gt => ord == Ordering::Greater,
            CompareOp::Ge => ord != Ordering::Less,
        }
    }
}

/// Compares a stored value with an operand: numerically when both parse as `f64`
/// (NaN compares as unequal to everything), else bytewise.
pub fn compare_values(left: &[u8], right: &[u8]) -> Ordering {
    let num = |b: &[u8]| {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
    };
    match (num(left), num(right)) {
        (Some(l), Some(r)) => l.partial_cmp(&r).unwrap_or(Ordering::Less),
        _ => left.cmp(right),
    }
}

/// A row filter; see the module docs for the semantics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    Value {
        family: Bytes,
        qualifier: Bytes,
        op: CompareOp,
        value: Bytes,
    },
    RowPrefix(Bytes),
    ColumnPrefix(Bytes),
    And(Vec<Filter>),
    Or(Vec<Filter>),
}

/// What a filter reads of a cell: owned [`Cell`]s and borrowed scan cells alike.
pub trait FilterCell {
    fn family(&self) -> &[u8];
    fn qualifier(&self) -> &[u8];
    fn value(&self) -> &[u8];
}

impl FilterCell for Cell {
    fn family(&self) -> &[u8] {
        &self.family
    }
    fn qualifier(&self) -> &[u8] {
        &self.qualifier
    }
    fn value(&self) -> &[u8] {
        &self.value
    }
}

impl Filter {
    /// Runs the filter on one row's cells; returns the cells kept (empty = row dropped).
    pub fn apply(&self, row: &[u8], cells: Vec<Cell>) -> Vec<Cell> {
        if cells.is_empty() {
            return cells;
        }
        let mut keep = vec![true; cells.len()];
        self.mark(row, &cells, &mut keep);
        cells
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect()
    }

    /// Runs the filter on the cells of one row whose `keep` flag is set, clearing the
    /// flags of the cells it drops (all of them = row dropped). `keep` is as long as
    /// `cells`.
    pub fn mark<C: FilterCell>(&self, row: &[u8], cells: &[C], keep: &mut [bool]) {
        match self {
            Filter::Value {
                family,
                qualifier,
                op,
                value,
            } => {
                let newest = cells.iter().zip(keep.iter()).find(|(c, k)| {
                    **k && c.family() == &family[..] && c.qualifier() == &qualifier[..]
                });
                let holds = newest.is_some_and(|(c, _)| op.holds(compare_values(c.value(), value)));
                if !holds {
                    keep.fill(false);
                }
            }
            Filter::RowPrefix(p) => {
                if !row.starts_with(p) {
                    keep.fill(false);
                }
            }
            Filter::ColumnPrefix(p) => {
                for (c, k) in cells.iter().zip(keep.iter_mut()) {
                    if !c.qualifier().starts_with(p) {
                        *k = false;
                    }
                }
            }
            Filter::And(fs) => {
                for f in fs {
                    f.mark(row, cells, keep);
                    if !keep.contains(&true) {
                        break;
                    }
                }
            }
            Filter::Or(fs) => {
                // Each branch sees every cell kept so far; a cell stays if any branch
                // keeps it.
                let mut any = vec![false; keep.len()];
                let mut branch = vec![false; keep.len()];
                for f in fs {
                    branch.copy_from_slice(keep);
                    f.mark(row, cells, &mut branch);
                    for (a, b) in any.iter_mut().zip(&branch) {
                        *a |= *b;
                    }
                }
                keep.copy_from_slice(&any);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells() -> Vec<Cell> {
        vec![
            Cell::put("r1", "f", "speed", 2, "95"),
            Cell::put("r1", "f", "speed", 1, "70"),
            Cell::put("r1", "f", "sx", 1, "a"),
            Cell::put("r1", "f", "zz", 1, "b"),
        ]
    }

    fn value(op: CompareOp, v: &str) -> Filter {
        Filter::Value {
            family: "f".into(),
            qualifier: "speed".into(),
            op,
            value: Bytes::copy_from_slice(v.as_bytes()),
        }
    }

    #[test]
    fn value_compares_newest_numerically() {
        // "95" vs "100": bytewise greater, numerically less.
        assert!(value(CompareOp::Lt, "100").apply(b"r1", cells()).len() == 4);
        assert!(value(CompareOp::Gt, "100").apply(b"r1", cells()).is_empty());
        assert!(value(CompareOp::Eq, "95.0").apply(b"r1", cells()).len() == 4);
        assert!(value(CompareOp::Ne, "95").apply(b"r1", cells()).is_empty());
        assert!(value(CompareOp::Ge, "95").apply(b"r1", cells()).len() == 4);
        assert!(value(CompareOp::Le, "94").apply(b"r1", cells()).is_empty());
    }

    #[test]
    fn value_falls_back_to_bytes_and_missing_column_does_not_match() {
        let f = Filter::Value {
            family: "f".into(),
            qualifier: "sx".into(),
            op: CompareOp::Lt,
            value: "b".into(),
        };
        assert_eq!(f.apply(b"r1", cells()).len(), 4);
        let missing = Filter::Value {
            family: "f".into(),
            qualifier: "nope".into(),
            op: CompareOp::Ne,
            value: "b".into(),
        };
        assert!(missing.apply(b"r1", cells()).is_empty());
    }

    #[test]
    fn prefixes_and_combinators() {
        assert_eq!(Filter::RowPrefix("r".into()).apply(b"r1", cells()).len(), 4);
        assert!(
            Filter::RowPrefix("x".into())
                .apply(b"r1", cells())
                .is_empty()
        );
        let cp = Filter::ColumnPrefix("s".into()).apply(b"r1", cells());
        assert_eq!(cp.len(), 3);
        assert!(cp.iter().all(|c| c.qualifier.starts_with(b"s")));
        let and = Filter::And(vec![
            Filter::ColumnPrefix("z".into()),
            value(CompareOp::Gt, "1"),
        ]);
        // After the column prefix the speed column is gone: no match.
        assert!(and.apply(b"r1", cells()).is_empty());
        let or = Filter::Or(vec![
            Filter::ColumnPrefix("z".into()),
            Filter::ColumnPrefix("sx".into()),
        ]);
        let got = or.apply(b"r1", cells());
        let quals: Vec<_> = got.iter().map(|c| c.qualifier.clone()).collect();
        assert_eq!(quals, vec![Bytes::from("sx"), Bytes::from("zz")]);
    }
}
