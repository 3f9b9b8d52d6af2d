//! Column selection together with a filter, as the CLI promises it: `--filter` sees every
//! column it names, and the output shows only the `--column`s asked for.
//!
//! The server applies a filter to the cells a read returns, after column selection (HBase
//! does the same), so a filter on an unselected column would see no value and drop every
//! row. The CLI therefore widens the request by the columns the filter compares and trims
//! the extra cells from each returned row. This module is that pure bookkeeping; it does
//! not talk to the server.

use bytes::Bytes;
use speedlayer_proto::{Column, Filter, Row, filter::Kind};

/// The columns to request, and the user's selection to trim rows back to.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    /// Columns sent to the server: the user's, plus any column the filter compares that
    /// they do not cover. Empty means all columns.
    pub request: Vec<Column>,
    /// The user's columns when `request` had to be widened; `None` when rows come back
    /// exactly as they should be shown.
    pub trim_to: Option<Vec<Column>>,
}

/// Plans the columns of a read of `selected` columns filtered by `filter`.
pub fn plan(selected: Vec<Column>, filter: Option<&Filter>) -> Selection {
    if selected.is_empty() {
        return Selection {
            request: selected,
            trim_to: None,
        };
    }
    let mut compared = Vec::new();
    if let Some(f) = filter {
        compared_columns(f, &mut compared);
    }
    let extra: Vec<Column> = compared
        .into_iter()
        .filter(|(f, q)| !covers(&selected, f, q))
        .map(|(family, qualifier)| Column {
            family,
            qualifier: Some(qualifier),
        })
        .fold(Vec::new(), |mut acc, c| {
            if !acc.contains(&c) {
                acc.push(c);
            }
            acc
        });
    if extra.is_empty() {
        return Selection {
            request: selected,
            trim_to: None,
        };
    }
    let mut request = selected.clone();
    request.extend(extra);
    Selection {
        request,
        trim_to: Some(selected),
    }
}

impl Selection {
    /// The row as the user asked for it: only cells of selected columns; `None` when none
    /// is left.
    pub fn trim(&self, mut row: Row) -> Option<Row> {
        if let Some(selected) = &self.trim_to {
            row.cells
                .retain(|c| covers(selected, &c.family, &c.qualifier));
        }
        (!row.cells.is_empty()).then_some(row)
    }
}

/// True if `columns` select the cell `family:qualifier`.
fn covers(columns: &[Column], family: &Bytes, qualifier: &Bytes) -> bool {
    columns
        .iter()
        .any(|c| c.family == *family && c.qualifier.as_ref().is_none_or(|q| q == qualifier))
}

/// Appends every `(family, qualifier)` a value filter in `filter` compares.
fn compared_columns(filter: &Filter, out: &mut Vec<(Bytes, Bytes)>) {
    match &filter.kind {
        Some(Kind::Value(v)) => out.push((v.family.clone(), v.qualifier.clone())),
        Some(Kind::And(list)) | Some(Kind::Or(list)) => {
            for f in &list.filters {
                compared_columns(f, out);
            }
        }
        Some(Kind::RowPrefix(_)) | Some(Kind::ColumnPrefix(_)) | None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter_expr::parse_filter;
    use speedlayer_proto::Cell;

    fn col(f: &str, q: Option<&str>) -> Column {
        Column {
            family: Bytes::from(f.to_string()),
            qualifier: q.map(|q| Bytes::from(q.to_string())),
        }
    }

    fn cell(f: &str, q: &str) -> Cell {
        Cell {
            family: Bytes::from(f.to_string()),
            qualifier: Bytes::from(q.to_string()),
            timestamp: 1,
            value: Bytes::from_static(b"v"),
        }
    }

    #[test]
    fn no_selection_or_covered_filter_is_sent_as_is() {
        let f = parse_filter("cf:speed > 80").unwrap();
        assert_eq!(plan(vec![], Some(&f)).trim_to, None);
        let sel = vec![col("cf", None)];
        assert_eq!(plan(sel.clone(), Some(&f)).request, sel);
        let sel = vec![col("cf", Some("speed"))];
        assert_eq!(plan(sel, Some(&f)).trim_to, None);
    }

    #[test]
    fn filter_columns_are_added_once_and_trimmed_away() {
        let f = parse_filter("cf:speed > 80 AND (cf:speed < 200 OR ROWPREFIX('V'))").unwrap();
        let s = plan(vec![col("cf", Some("area"))], Some(&f));
        assert_eq!(
            s.request,
            vec![col("cf", Some("area")), col("cf", Some("speed"))]
        );
        let row = Row {
            row: Bytes::from_static(b"r"),
            cells: vec![cell("cf", "area"), cell("cf", "speed")],
        };
        let shown = s.trim(row).unwrap();
        assert_eq!(shown.cells, vec![cell("cf", "area")]);
        let only_filter_column = Row {
            row: Bytes::from_static(b"r"),
            cells: vec![cell("cf", "speed")],
        };
        assert_eq!(s.trim(only_filter_column), None);
    }
}
