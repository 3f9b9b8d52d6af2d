//! Cells and their order: the data model every other storage module speaks.
//!
//! A cell is `(row, family, qualifier, timestamp, kind, value)` plus the sequence number the
//! engine assigned to the write. Inside one store (one family of one region) the family is
//! implied, so files and memstores order and persist [`CellKey`]s, which leave it out.
//!
//! Order (HBase's `CellComparator`): row ↑, qualifier ↑, timestamp ↓, kind ↓ (so at equal
//! timestamps delete markers come before the puts they mask), sequence ↓ (newest write
//! first). A `DeleteFamily` marker carries an empty qualifier, so it sorts at the start of
//! its row's family section, before every cell it can mask that has a lower timestamp.
//!
//! This module is not the on-disk encoding: `hfile` and `wal` define their own byte layouts
//! (see `storage/docs/`), and both round-trip to these types.

use std::cmp::Ordering;

use bytes::Bytes;

/// What a cell does. The discriminants are HBase's type codes and are persisted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CellKind {
    /// A value.
    Put = 4,
    /// Deletes exactly one version: the put with the same row, qualifier and timestamp.
    Delete = 8,
    /// Deletes every version of one column with timestamp ≤ the marker's.
    DeleteColumn = 12,
    /// Deletes every column of the family in this row with timestamp ≤ the marker's.
    DeleteFamily = 14,
}

impl CellKind {
    /// The persisted code of this kind.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Decodes a persisted code; `None` for a byte that is not a kind (corruption).
    pub fn from_code(code: u8) -> Option<CellKind> {
        match code {
            4 => Some(CellKind::Put),
            8 => Some(CellKind::Delete),
            12 => Some(CellKind::DeleteColumn),
            14 => Some(CellKind::DeleteFamily),
            _ => None,
        }
    }

    /// True for the three delete markers.
    pub fn is_delete(self) -> bool {
        !matches!(self, CellKind::Put)
    }
}

/// Timestamps are milliseconds since the Unix epoch.
pub type Timestamp = u64;

/// Sequence numbers order writes within a region; higher is newer. 0 is "before any write".
pub type SeqNo = u64;

/// The key of a cell inside one store (the family is implied by the store).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CellKey {
    pub row: Bytes,
    pub qualifier: Bytes,
    pub timestamp: Timestamp,
    pub kind: CellKind,
    pub seq: SeqNo,
}

impl CellKey {
    /// Borrowed view used for comparisons without cloning.
    pub fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            row: &self.row,
            qualifier: &self.qualifier,
            timestamp: self.timestamp,
            kind: self.kind,
            seq: self.seq,
        }
    }
}

impl Ord for CellKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_ref().cmp(&other.as_ref())
    }
}

impl PartialOrd for CellKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A borrowed cell key; its `Ord` is the store order described in the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KeyRef<'a> {
    pub row: &'a [u8],
    pub qualifier: &'a [u8],
    pub timestamp: Timestamp,
    pub kind: CellKind,
    pub seq: SeqNo,
}

impl Ord for KeyRef<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.row
            .cmp(other.row)
            .then_with(|| self.qualifier.cmp(other.qualifier))
            .then_with(|| other.timestamp.cmp(&self.timestamp))
            .then_with(|| other.kind.code().cmp(&self.kind.code()))
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

impl PartialOrd for KeyRef<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<'a> KeyRef<'a> {
    /// The smallest key of a row: seeking to it lands on the row's first cell.
    pub fn first_of_row(row: &'a [u8]) -> KeyRef<'a> {
        KeyRef {
            row,
            qualifier: &[],
            timestamp: Timestamp::MAX,
            kind: CellKind::DeleteFamily,
            seq: SeqNo::MAX,
        }
    }

    /// The smallest key of a column: seeking to it lands on the column's newest cell.
    pub fn first_of_column(row: &'a [u8], qualifier: &'a [u8]) -> KeyRef<'a> {
        KeyRef {
            row,
            qualifier,
            timestamp: Timestamp::MAX,
            kind: CellKind::DeleteFamily,
            seq: SeqNo::MAX,
        }
    }

    /// An owned copy.
    pub fn to_owned_key(&self) -> CellKey {
        CellKey {
            row: Bytes::copy_from_slice(self.row),
            qualifier: Bytes::copy_from_slice(self.qualifier),
            timestamp: self.timestamp,
            kind: self.kind,
            seq: self.seq,
        }
    }
}

/// A full cell as users see it: key, family and value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub row: Bytes,
    pub family: Bytes,
    pub qualifier: Bytes,
    pub timestamp: Timestamp,
    pub kind: CellKind,
    /// Assigned by the engine when the write is applied; 0 in a write not yet applied.
    pub seq: SeqNo,
    pub value: Bytes,
}

impl Cell {
    /// A put of `value` at `timestamp`.
    pub fn put(
        row: impl Into<Bytes>,
        family: impl Into<Bytes>,
        qualifier: impl Into<Bytes>,
        timestamp: Timestamp,
        value: impl Into<Bytes>,
    ) -> Cell {
        Cell {
            row: row.into(),
            family: family.into(),
            qualifier: qualifier.into(),
            timestamp,
            kind: CellKind::Put,
            seq: 0,
            value: value.into(),
        }
    }

    /// The store-level key of this cell (family dropped).
    pub fn key(&self) -> CellKey {
        CellKey {
            row: self.row.clone(),
            qualifier: self.qualifier.clone(),
            timestamp: self.timestamp,
            kind: self.kind,
            seq: self.seq,
        }
    }

    /// Bytes this cell accounts for in memory limits (key, family, value and fixed fields).
    pub fn heap_size(&self) -> usize {
        self.row.len() + self.family.len() + self.qualifier.len() + self.value.len() + 8 + 8 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(row: &str, q: &str, ts: u64, kind: CellKind, seq: u64) -> CellKey {
        CellKey {
            row: Bytes::copy_from_slice(row.as_bytes()),
            qualifier: Bytes::copy_from_slice(q.as_bytes()),
            timestamp: ts,
            kind,
            seq,
        }
    }

    #[test]
    fn order_is_row_qualifier_then_newest_first() {
        let mut keys = [
            k("b", "x", 1, CellKind::Put, 1),
            k("a", "y", 5, CellKind::Put, 2),
            k("a", "x", 1, CellKind::Put, 3),
            k("a", "x", 9, CellKind::Put, 4),
            k("a", "x", 9, CellKind::Delete, 1),
            k("a", "x", 9, CellKind::Put, 7),
            k("a", "", 3, CellKind::DeleteFamily, 5),
        ];
        keys.sort();
        let got: Vec<_> = keys
            .iter()
            .map(|k| {
                (
                    std::str::from_utf8(&k.row).unwrap().to_string(),
                    std::str::from_utf8(&k.qualifier).unwrap().to_string(),
                    k.timestamp,
                    k.kind,
                    k.seq,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), "".into(), 3, CellKind::DeleteFamily, 5),
                ("a".into(), "x".into(), 9, CellKind::Delete, 1),
                ("a".into(), "x".into(), 9, CellKind::Put, 7),
                ("a".into(), "x".into(), 9, CellKind::Put, 4),
                ("a".into(), "x".into(), 1, CellKind::Put, 3),
                ("a".into(), "y".into(), 5, CellKind::Put, 2),
                ("b".into(), "x".into(), 1, CellKind::Put, 1),
            ]
        );
    }

    #[test]
    fn seek_keys_sort_before_every_cell_they_target() {
        let row_start = KeyRef::first_of_row(b"a");
        let col_start = KeyRef::first_of_column(b"a", b"x");
        for kind in [
            CellKind::Put,
            CellKind::Delete,
            CellKind::DeleteColumn,
            CellKind::DeleteFamily,
        ] {
            let any = k("a", "", u64::MAX, kind, u64::MAX);
            assert!(row_start <= any.as_ref());
            let col = k("a", "x", u64::MAX, kind, 0);
            assert!(col_start <= col.as_ref());
        }
    }

    #[test]
    fn kind_codes_round_trip_and_reject_garbage() {
        for kind in [
            CellKind::Put,
            CellKind::Delete,
            CellKind::DeleteColumn,
            CellKind::DeleteFamily,
        ] {
            assert_eq!(CellKind::from_code(kind.code()), Some(kind));
        }
        assert_eq!(CellKind::from_code(0), None);
        assert_eq!(CellKind::from_code(5), None);
    }
}
