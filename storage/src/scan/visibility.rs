//! Which cells of a row a read returns: masking by delete markers, versions, TTL, time
//! range and column selection, over the merged cells of one row of one family.
//!
//! The rules (HBase's classic behaviour; `docs/api.md` states them for users):
//! 1. A `DeleteFamily` at T masks every put of the family in the row with ts ≤ T.
//! 2. A `DeleteColumn` at T masks every put of its column with ts ≤ T.
//! 3. A `Delete` at T masks the puts of its column with ts exactly T.
//! 4. Markers mask regardless of sequence: a put written after a marker, with a timestamp
//!    the marker covers, stays masked. Markers outside the time range still mask.
//! 5. Of several puts with the same column and timestamp only the newest write (highest
//!    sequence) exists; the older ones are never returned.
//! 6. Expired cells (now − ts > ttl) and cells outside the time range are skipped and do
//!    not count as versions; of the rest, the newest `max_versions` are returned.
//!
//! Versions are capped at read time, not dropped at flush: masking the newest version can
//! reveal an older one until a compaction removes it.
//!
//! The input order (store order) makes this one pass: a `DeleteFamily` sorts before every
//! put it can mask, and within a column markers sort before the puts at their timestamp.

use bytes::Bytes;

use crate::cell::{Cell, CellKey, CellKind, KeyRef};
use crate::read::TimeRange;

/// What a read asks of one family.
#[derive(Clone, Debug)]
pub struct FamilyQuery {
    /// The family name, copied into returned cells.
    pub family: Bytes,
    /// Selected qualifiers, sorted; `None` = all.
    pub qualifiers: Option<Vec<Bytes>>,
    pub time_range: Option<TimeRange>,
    /// Effective versions per column: min(request, family max).
    pub max_versions: u32,
    /// Cells with ts below this are expired (from the family TTL and the read's clock).
    pub oldest_ts: u64,
}

impl FamilyQuery {
    /// True if a put at `ts` is inside the time range and not expired.
    fn ts_wanted(&self, ts: u64) -> bool {
        ts >= self.oldest_ts && self.time_range.is_none_or(|r| r.contains(ts))
    }

    fn column_selected(&self, q: &[u8]) -> bool {
        match &self.qualifiers {
            None => true,
            Some(qs) => qs.binary_search_by(|x| x[..].cmp(q)).is_ok(),
        }
    }
}

/// The rules' state over one row of one family: which cells are visible, decided on
/// borrowed keys. The current qualifier is copied into a buffer once per column, not
/// reference-counted per cell.
#[derive(Debug, Default)]
pub struct Visibility {
    family_delete: Option<u64>,
    /// The column being read (valid when `in_column`).
    qualifier: Vec<u8>,
    in_column: bool,
    column_delete: Option<u64>,
    version_delete: Option<u64>,
    last_put_ts: Option<u64>,
    versions: u32,
}

impl Visibility {
    /// Starts over for the next row (keeps the qualifier buffer's allocation).
    #[inline]
    pub fn reset(&mut self) {
        self.family_delete = None;
        self.in_column = false;
    }

    /// Feeds the next cell of the row (store order); true if it is a put `q` returns.
    #[inline]
    pub fn admit(&mut self, q: &FamilyQuery, key: KeyRef<'_>) -> bool {
        if !self.in_column || self.qualifier[..] != *key.qualifier {
            self.qualifier.clear();
            self.qualifier.extend_from_slice(key.qualifier);
            self.in_column = true;
            self.column_delete = None;
            self.version_delete = None;
            self.last_put_ts = None;
            self.versions = 0;
        }
        let ts = key.timestamp;
        match key.kind {
            CellKind::DeleteFamily => {
                self.family_delete = Some(self.family_delete.map_or(ts, |d| d.max(ts)));
                false
            }
            CellKind::DeleteColumn => {
                self.column_delete = Some(self.column_delete.map_or(ts, |d| d.max(ts)));
                false
            }
            CellKind::Delete => {
                self.version_delete = Some(ts);
                false
            }
            CellKind::Put => {
                let duplicate = self.last_put_ts == Some(ts);
                self.last_put_ts = Some(ts);
                let masked = duplicate
                    || self.family_delete.is_some_and(|d| ts <= d)
                    || self.column_delete.is_some_and(|d| ts <= d)
                    || self.version_delete == Some(ts);
                if masked
                    || !q.ts_wanted(ts)
                    || self.versions >= q.max_versions
                    || !q.column_selected(key.qualifier)
                {
                    return false;
                }
                self.versions += 1;
                true
            }
        }
    }
}

/// Applies the rules to one row's cells of one family, streamed in store order, and
/// collects the visible cells as owned [`Cell`]s.
pub struct RowVisibility<'q> {
    q: &'q FamilyQuery,
    state: Visibility,
    /// Visible cells so far.
    pub out: Vec<Cell>,
}

impl<'q> RowVisibility<'q> {
    /// A fresh tracker for one row.
    pub fn new(q: &'q FamilyQuery) -> Self {
        Self::with_out(q, Vec::new())
    }

    /// A fresh tracker for one row that appends visible cells to `out` (cells of other
    /// families already there are kept).
    pub fn with_out(q: &'q FamilyQuery, out: Vec<Cell>) -> Self {
        RowVisibility {
            q,
            state: Visibility::default(),
            out,
        }
    }

    /// Feeds the next cell of the row (store order).
    pub fn push(&mut self, key: CellKey, value: Bytes) {
        if self.state.admit(self.q, key.as_ref()) {
            self.out.push(Cell {
                row: key.row,
                family: self.q.family.clone(),
                qualifier: key.qualifier,
                timestamp: key.timestamp,
                kind: CellKind::Put,
                seq: key.seq,
                value,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(max_versions: u32) -> FamilyQuery {
        FamilyQuery {
            family: Bytes::from_static(b"f"),
            qualifiers: None,
            time_range: None,
            max_versions,
            oldest_ts: 0,
        }
    }

    fn run(query: &FamilyQuery, mut cells: Vec<(&str, u64, CellKind, u64)>) -> Vec<(String, u64)> {
        let mut keys: Vec<CellKey> = cells
            .drain(..)
            .map(|(qual, ts, kind, seq)| CellKey {
                row: Bytes::from_static(b"r"),
                qualifier: Bytes::copy_from_slice(qual.as_bytes()),
                timestamp: ts,
                kind,
                seq,
            })
            .collect();
        keys.sort();
        let mut v = RowVisibility::new(query);
        for k in keys {
            let val = Bytes::from(format!("{}", k.seq));
            v.push(k, val);
        }
        v.out
            .iter()
            .map(|c| {
                (
                    String::from_utf8(c.qualifier.to_vec()).unwrap(),
                    c.timestamp,
                )
            })
            .collect()
    }

    use CellKind::*;

    #[test]
    fn delete_masks_exactly_one_timestamp() {
        let got = run(
            &q(3),
            vec![("a", 5, Put, 1), ("a", 4, Put, 2), ("a", 5, Delete, 3)],
        );
        assert_eq!(got, vec![("a".into(), 4)]);
    }

    #[test]
    fn delete_column_masks_all_older_even_if_written_later() {
        let got = run(
            &q(5),
            vec![
                ("a", 9, Put, 1),
                ("a", 5, DeleteColumn, 2),
                ("a", 5, Put, 3),
                ("a", 2, Put, 4),
                ("b", 1, Put, 5),
            ],
        );
        assert_eq!(got, vec![("a".into(), 9), ("b".into(), 1)]);
    }

    #[test]
    fn delete_family_masks_every_column_at_or_below() {
        let got = run(
            &q(5),
            vec![
                ("", 7, Put, 1),
                ("", 3, Put, 1),
                ("a", 4, Put, 2),
                ("b", 6, Put, 3),
                ("b", 4, Put, 6),
                ("", 4, DeleteFamily, 5),
            ],
        );
        assert_eq!(got, vec![("".into(), 7), ("b".into(), 6)]);
    }

    #[test]
    fn same_timestamp_keeps_only_newest_write_and_versions_cap() {
        let mut query = q(2);
        let got = run(
            &query,
            vec![
                ("a", 5, Put, 1),
                ("a", 5, Put, 2),
                ("a", 4, Put, 3),
                ("a", 3, Put, 4),
            ],
        );
        assert_eq!(got, vec![("a".into(), 5), ("a".into(), 4)]);
        query.max_versions = 1;
        let mut keys = vec![
            CellKey {
                row: Bytes::from_static(b"r"),
                qualifier: Bytes::from_static(b"a"),
                timestamp: 5,
                kind: Put,
                seq: 1,
            },
            CellKey {
                row: Bytes::from_static(b"r"),
                qualifier: Bytes::from_static(b"a"),
                timestamp: 5,
                kind: Put,
                seq: 2,
            },
        ];
        keys.sort();
        let mut v = RowVisibility::new(&query);
        for k in keys {
            let val = Bytes::from(format!("{}", k.seq));
            v.push(k, val);
        }
        assert_eq!(&v.out[0].value[..], b"2");
    }

    #[test]
    fn ttl_time_range_and_selection_skip_without_counting() {
        let mut query = q(1);
        query.time_range = Some(TimeRange { min: 0, max: 5 });
        let got = run(
            &query,
            vec![("a", 7, Put, 1), ("a", 4, Put, 2), ("a", 3, Put, 3)],
        );
        assert_eq!(got, vec![("a".into(), 4)]);
        query.time_range = None;
        query.oldest_ts = 5;
        let got = run(&query, vec![("a", 7, Put, 1), ("a", 4, Put, 2)]);
        assert_eq!(got, vec![("a".into(), 7)]);
        query.oldest_ts = 0;
        query.qualifiers = Some(vec![Bytes::from_static(b"b")]);
        let got = run(&query, vec![("a", 7, Put, 1), ("b", 4, Put, 2)]);
        assert_eq!(got, vec![("b".into(), 4)]);
        // A marker outside the time range still masks.
        let mut query = q(1);
        query.time_range = Some(TimeRange { min: 0, max: 5 });
        let got = run(&query, vec![("a", 9, DeleteColumn, 1), ("a", 4, Put, 2)]);
        assert_eq!(got, vec![]);
    }
}
