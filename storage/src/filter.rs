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

impl Filter {
    /// Runs the filter on one row's cells; returns the cells kept (empty = row dropped).
    pub fn apply(&self, row: &[u8], cells: Vec<Cell>) -> Vec<Cell> {
        if cells.is_empty() {
            return cells;
        }
        match self {
            Filter::Value {
                family,
                qualifier,
                op,
                value,
            } => {
                let newest = cells
                    .iter()
                    .find(|c| c.family == *family && c.qualifier == *qualifier);
                match newest {
                    Some(c) if op.holds(compare_values(&c.value, value)) => cells,
                    _ => Vec::new(),
                }
            }
            Filter::RowPrefix(p) => {
                if row.starts_with(p) {
                    cells
                } else {
                    Vec::new()
                }
            }
            Filter::ColumnPrefix(p) => cells
                .into_iter()
                .filter(|c| c.qualifier.starts_with(p))
                .collect(),
            Filter::And(fs) => {
                let mut cells = cells;
                for f in fs {
                    cells = f.apply(row, cells);
                    if cells.is_empty() {
                        break;
                    }
                }
                cells
            }
            Filter::Or(fs) => {
                let mut keep = vec![false; cells.len()];
                for f in fs {
                    let kept = f.apply(row, cells.clone());
                    // Kept cells are a subsequence of `cells`: mark them by walking both.
                    let mut j = 0;
                    for (i, c) in cells.iter().enumerate() {
                        if j < kept.len() && kept[j] == *c {
                            keep[i] = true;
                            j += 1;
                        }
                    }
                }
                cells
                    .into_iter()
                    .zip(keep)
                    .filter_map(|(c, k)| k.then_some(c))
                    .collect()
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
