//! The loader's row record: one input line's cells as one flat byte string, the unit the
//! sort moves, compares and spills (`storage/docs/bulk_load.md` §8, "Row records").
//!
//! ```text
//! record := row_len:u16le row ts:u64le n:u16le column{n}
//! column := family:u8 q_len:u16le qualifier v_len:u32le value
//! ```
//!
//! `family` indexes the load's family table (sorted names); the columns of a record are in
//! (family, qualifier) order with no column twice. One record per line means no
//! allocation per cell: the sort keeps records end to end in one buffer and sorts their
//! offsets. This module neither reads lines nor sorts.

use std::cmp::Ordering;

/// Longest row key a record can hold.
pub const MAX_RECORD_ROW: usize = u16::MAX as usize;
/// Most families a load can name (the family index is one byte).
pub const MAX_FAMILIES: usize = 256;

/// One column of a record being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column<'a> {
    /// Index into the load's family table.
    pub family: u8,
    /// Qualifier.
    pub qualifier: &'a [u8],
    /// Value.
    pub value: &'a [u8],
}

/// Appends the record of `row` at `ts` with `columns` to `out`. Columns are put in
/// (family, qualifier) order; of two with the same family and qualifier the later one in
/// `columns` is kept. Returns the record's length.
///
/// # Errors
/// A reason (the line is bad input) for an empty or too long row key, a qualifier over
/// 64 KiB, a value over 4 GiB or more than 65,535 columns; nothing is appended then.
pub fn encode(
    row: &[u8],
    ts: u64,
    columns: &mut [Column<'_>],
    out: &mut Vec<u8>,
) -> Result<usize, String> {
    if row.is_empty() {
        return Err("empty row key".into());
    }
    if row.len() > MAX_RECORD_ROW {
        return Err(format!(
            "row key of {} bytes is above the {MAX_RECORD_ROW}-byte limit",
            row.len()
        ));
    }
    // Stable: among equal columns the later one ends last, and is the one kept.
    columns.sort_by(|a, b| (a.family, a.qualifier).cmp(&(b.family, b.qualifier)));
    let mut n = 0usize;
    for (i, c) in columns.iter().enumerate() {
        if c.qualifier.len() > u16::MAX as usize || u32::try_from(c.value.len()).is_err() {
            return Err(format!(
                "qualifier of {} bytes or value of {} bytes is too large",
                c.qualifier.len(),
                c.value.len()
            ));
        }
        let dup_of_next = columns
            .get(i + 1)
            .is_some_and(|d| (d.family, d.qualifier) == (c.family, c.qualifier));
        if !dup_of_next {
            n += 1;
        }
    }
    let n = u16::try_from(n).map_err(|_| format!("{n} columns in one line (at most 65535)"))?;
    let start = out.len();
    out.extend_from_slice(&(row.len() as u16).to_le_bytes());
    out.extend_from_slice(row);
    out.extend_from_slice(&ts.to_le_bytes());
    out.extend_from_slice(&n.to_le_bytes());
    for (i, c) in columns.iter().enumerate() {
        let dup_of_next = columns
            .get(i + 1)
            .is_some_and(|d| (d.family, d.qualifier) == (c.family, c.qualifier));
        if dup_of_next {
            continue;
        }
        out.push(c.family);
        out.extend_from_slice(&(c.qualifier.len() as u16).to_le_bytes());
        out.extend_from_slice(c.qualifier);
        out.extend_from_slice(&(c.value.len() as u32).to_le_bytes());
        out.extend_from_slice(c.value);
    }
    Ok(out.len() - start)
}

/// A record read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordRef<'a> {
    /// Row key.
    pub row: &'a [u8],
    /// Cell timestamp of every column.
    pub ts: u64,
    /// Number of columns.
    pub n: u16,
    /// The encoded columns (`column{n}`).
    pub columns: &'a [u8],
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if buf.len() < n {
        return None;
    }
    let (a, b) = buf.split_at(n);
    *buf = b;
    Some(a)
}

fn u16_at(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

impl<'a> RecordRef<'a> {
    /// Reads the record at the start of `buf`; the record and its length. Checks every
    /// length against `buf` (a damaged spill chunk gives `None`, never a panic) and that
    /// the columns are in order.
    pub fn parse(buf: &'a [u8]) -> Option<(RecordRef<'a>, usize)> {
        let mut rest = buf;
        let row_len = u16_at(take(&mut rest, 2)?) as usize;
        let row = take(&mut rest, row_len)?;
        let ts = u64::from_le_bytes(take(&mut rest, 8)?.try_into().ok()?);
        let n = u16_at(take(&mut rest, 2)?);
        let cols_start = rest;
        let mut prev: Option<(u8, &[u8])> = None;
        for _ in 0..n {
            let family = take(&mut rest, 1)?[0];
            let q_len = u16_at(take(&mut rest, 2)?) as usize;
            let qualifier = take(&mut rest, q_len)?;
            let v_len = u32::from_le_bytes(take(&mut rest, 4)?.try_into().ok()?) as usize;
            take(&mut rest, v_len)?;
            if prev.is_some_and(|p| p >= (family, qualifier)) {
                return None;
            }
            prev = Some((family, qualifier));
        }
        if row.is_empty() {
            return None;
        }
        let cols_len = cols_start.len() - rest.len();
        let rec = RecordRef {
            row,
            ts,
            n,
            columns: &cols_start[..cols_len],
        };
        Some((rec, buf.len() - rest.len()))
    }

    /// Reads a record known to be well formed (written by [`encode`] in this process).
    /// Only lengths are read; a malformed one gives `None`.
    pub fn trusted(buf: &'a [u8]) -> Option<RecordRef<'a>> {
        let row_len = u16_at(buf.get(..2)?) as usize;
        let row = buf.get(2..2 + row_len)?;
        let ts = u64::from_le_bytes(buf.get(2 + row_len..10 + row_len)?.try_into().ok()?);
        let n = u16_at(buf.get(10 + row_len..12 + row_len)?);
        Some(RecordRef {
            row,
            ts,
            n,
            columns: buf.get(12 + row_len..)?,
        })
    }

    /// The same record with `columns` cut to its `n` columns. [`RecordRef::trusted`]
    /// reads only the head and lends the rest of its buffer as `columns`, so a record is
    /// copied only through this: copying `columns` as lent copied the rest of a spill
    /// chunk per record, half of the loader's CPU (BENCHMARKS.md, "Bulk load, packed
    /// chunks").
    pub fn exact(self) -> RecordRef<'a> {
        let mut it = self.columns();
        for _ in it.by_ref() {}
        let used = self.columns.len() - it.rest.len();
        RecordRef {
            columns: self.columns.get(..used).unwrap_or_default(),
            ..self
        }
    }

    /// The columns: (family index, qualifier, value), in order.
    pub fn columns(&self) -> ColumnIter<'a> {
        ColumnIter {
            rest: self.columns,
            left: self.n,
        }
    }
}

/// Sort order of records: row ascending, then timestamp descending.
pub fn record_order(a: &RecordRef<'_>, b: &RecordRef<'_>) -> Ordering {
    a.row.cmp(b.row).then_with(|| b.ts.cmp(&a.ts))
}

/// The columns of a record.
pub struct ColumnIter<'a> {
    rest: &'a [u8],
    left: u16,
}

impl<'a> Iterator for ColumnIter<'a> {
    type Item = (u8, &'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let family = *take(&mut self.rest, 1)?.first()?;
        let q_len = u16_at(take(&mut self.rest, 2)?) as usize;
        let qualifier = take(&mut self.rest, q_len)?;
        let v_len = u32::from_le_bytes(take(&mut self.rest, 4)?.try_into().ok()?) as usize;
        let value = take(&mut self.rest, v_len)?;
        Some((family, qualifier, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worked_example_of_bulk_load_md() {
        let mut out = Vec::new();
        let mut cols = [Column {
            family: 0,
            qualifier: b"q",
            value: b"v",
        }];
        encode(b"r1", 5, &mut cols, &mut out).unwrap();
        assert_eq!(
            out,
            [
                0x02, 0x00, 0x72, 0x31, 5, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00, 0x01, 0x00, 0x71,
                0x01, 0x00, 0x00, 0x00, 0x76
            ]
        );
    }

    #[test]
    fn a_record_round_trips_sorted_and_deduplicated() {
        let mut cols = vec![
            Column {
                family: 1,
                qualifier: b"b",
                value: b"1",
            },
            Column {
                family: 0,
                qualifier: b"z",
                value: b"2",
            },
            Column {
                family: 1,
                qualifier: b"b",
                value: b"3",
            },
        ];
        let mut out = vec![9];
        let len = encode(b"row", 7, &mut cols, &mut out).unwrap();
        assert_eq!(len, out.len() - 1);
        let (r, used) = RecordRef::parse(&out[1..]).unwrap();
        assert_eq!(used, len);
        assert_eq!((r.row, r.ts, r.n), (&b"row"[..], 7, 2));
        let got: Vec<_> = r.columns().collect();
        assert_eq!(got, [(0, &b"z"[..], &b"2"[..]), (1, &b"b"[..], &b"3"[..])]);
        assert_eq!(RecordRef::trusted(&out[1..]), Some(r));
        let mut longer = out[1..].to_vec();
        longer.extend_from_slice(b"the next record");
        let lent = RecordRef::trusted(&longer).unwrap();
        assert_eq!(
            lent.columns.len(),
            r.columns.len() + 15,
            "trusted lends the rest"
        );
        assert_eq!(lent.exact(), r, "exact cuts it to the record");
        for cut in 0..len {
            assert!(RecordRef::parse(&out[1..1 + cut]).is_none(), "cut {cut}");
        }
        assert!(encode(b"", 1, &mut [], &mut out).is_err());
    }
}
