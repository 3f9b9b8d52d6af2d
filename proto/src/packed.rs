//! Packed row groups: the flat form of a bulk load's rows in `BulkLoadRequest.packed`
//! (`storage/docs/bulk_load.md` §8, "Packed row groups").
//!
//! ```text
//! packed := group*
//! group  := row_len:u16le row n:u32le cell{n}        -- row_len ≥ 1, n ≥ 1
//! cell   := family:u8 q_len:u16le qualifier ts:u64le v_len:u32le value
//! ```
//!
//! The loader appends groups with [`put_group_head`] and [`put_cell`]; the server walks
//! them in place with [`groups`]: no message and no reference-counted slice per cell, which
//! is what protobuf's `BulkRow`/`BulkColumn` cost on both sides. This module checks the
//! framing only (every length inside the field, no torn group, `row_len` and `n` at least
//! 1); family indexes, store order and size limits are the server's and the storage
//! stage's to check.

use std::fmt;

/// Bytes of a group head without its row: `row_len` (2) and `n` (4).
const GROUP_HEAD: usize = 2 + 4;
/// Bytes of a cell without its qualifier and value: family, `q_len`, `ts`, `v_len`.
const CELL_HEAD: usize = 1 + 2 + 8 + 4;

/// Longest row key a group can carry.
pub const MAX_PACKED_ROW: usize = u16::MAX as usize;
/// Longest qualifier a cell can carry.
pub const MAX_PACKED_QUALIFIER: usize = u16::MAX as usize;

/// Why a packed field was refused: where, and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedError {
    /// Byte offset in the field where the bad group starts.
    pub offset: usize,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PackedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "packed bulk-load rows: {} (group at byte {})",
            self.reason, self.offset
        )
    }
}

impl std::error::Error for PackedError {}

/// One cell of a group, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell<'a> {
    /// Index into the load's `families`.
    pub family: u8,
    /// Column qualifier.
    pub qualifier: &'a [u8],
    /// Version timestamp (ms).
    pub timestamp: u64,
    /// Value.
    pub value: &'a [u8],
}

/// One row group whose framing was checked: its row and `n` well-formed cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group<'a> {
    /// Row key (at least one byte).
    pub row: &'a [u8],
    /// Number of cells (at least one).
    pub n: u32,
    body: &'a [u8],
}

impl<'a> Group<'a> {
    /// The group's cells, in the order they were written.
    pub fn cells(&self) -> Cells<'a> {
        Cells {
            rest: self.body,
            left: self.n,
        }
    }
}

/// The cells of a [`Group`].
#[derive(Debug, Clone)]
pub struct Cells<'a> {
    rest: &'a [u8],
    left: u32,
}

impl<'a> Iterator for Cells<'a> {
    type Item = Cell<'a>;

    fn next(&mut self) -> Option<Cell<'a>> {
        if self.left == 0 {
            return None;
        }
        // The group was checked whole when it was framed: `None` here cannot happen, and
        // would only end the iteration early, never read out of bounds.
        let (cell, used) = cell_at(self.rest)?;
        self.rest = self.rest.get(used..)?;
        self.left -= 1;
        Some(cell)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.left as usize;
        (n, Some(n))
    }
}

/// The cell at the start of `b` and the bytes it takes; `None` if it runs past `b`.
#[inline]
fn cell_at(b: &[u8]) -> Option<(Cell<'_>, usize)> {
    let head = b.get(..3)?;
    let family = head[0];
    let q_len = usize::from(u16::from_le_bytes([head[1], head[2]]));
    let q_end = 3usize.checked_add(q_len)?;
    let qualifier = b.get(3..q_end)?;
    let ts_end = q_end.checked_add(8)?;
    let ts: [u8; 8] = b.get(q_end..ts_end)?.try_into().ok()?;
    let vl_end = ts_end.checked_add(4)?;
    let vl: [u8; 4] = b.get(ts_end..vl_end)?.try_into().ok()?;
    let v_len = usize::try_from(u32::from_le_bytes(vl)).ok()?;
    let v_end = vl_end.checked_add(v_len)?;
    let value = b.get(vl_end..v_end)?;
    Some((
        Cell {
            family,
            qualifier,
            timestamp: u64::from_le_bytes(ts),
            value,
        },
        v_end,
    ))
}

/// The groups of a packed field, each checked whole before it is returned; after the
/// first error the iteration ends.
pub fn groups(packed: &[u8]) -> Groups<'_> {
    Groups {
        buf: packed,
        at: 0,
        failed: false,
    }
}

/// Iterator of [`groups`].
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    buf: &'a [u8],
    at: usize,
    failed: bool,
}

impl<'a> Groups<'a> {
    fn group(&self) -> Result<(Group<'a>, usize), &'static str> {
        let b = self.buf.get(self.at..).unwrap_or_default();
        let head = b.get(..2).ok_or("group head torn")?;
        let row_len = usize::from(u16::from_le_bytes([head[0], head[1]]));
        if row_len == 0 {
            return Err("empty row key");
        }
        let row = b.get(2..2 + row_len).ok_or("row key torn")?;
        let n_at = 2 + row_len;
        let n: [u8; 4] = b
            .get(n_at..n_at + 4)
            .and_then(|s| s.try_into().ok())
            .ok_or("cell count torn")?;
        let n = u32::from_le_bytes(n);
        if n == 0 {
            return Err("group without cells");
        }
        let body_at = n_at + 4;
        let body = b.get(body_at..).unwrap_or_default();
        // Every cell takes at least CELL_HEAD bytes: a count the rest cannot hold is
        // refused before walking it.
        if (n as usize).saturating_mul(CELL_HEAD) > body.len() {
            return Err("more cells than the field can hold");
        }
        let mut used = 0usize;
        for _ in 0..n {
            let (_, len) = cell_at(body.get(used..).unwrap_or_default()).ok_or("cell torn")?;
            used += len;
        }
        let body = body.get(..used).ok_or("cell torn")?;
        Ok((Group { row, n, body }, body_at + used))
    }
}

impl<'a> Iterator for Groups<'a> {
    type Item = Result<Group<'a>, PackedError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.at >= self.buf.len() {
            return None;
        }
        match self.group() {
            Ok((g, len)) => {
                self.at += len;
                Some(Ok(g))
            }
            Err(reason) => {
                self.failed = true;
                Some(Err(PackedError {
                    offset: self.at,
                    reason,
                }))
            }
        }
    }
}

/// Appends the head of a group of `n` cells of `row`; exactly `n` [`put_cell`] calls must
/// follow. The caller keeps `1 ≤ row.len() ≤ MAX_PACKED_ROW` and `n ≥ 1`.
pub fn put_group_head(out: &mut impl bytes::BufMut, row: &[u8], n: u32) {
    debug_assert!(!row.is_empty() && row.len() <= MAX_PACKED_ROW && n >= 1);
    out.put_u16_le(row.len() as u16);
    out.put_slice(row);
    out.put_u32_le(n);
}

/// Appends one cell of the current group. The caller keeps
/// `qualifier.len() ≤ MAX_PACKED_QUALIFIER` and `value.len() ≤ u32::MAX`.
pub fn put_cell(out: &mut impl bytes::BufMut, c: Cell<'_>) {
    debug_assert!(c.qualifier.len() <= MAX_PACKED_QUALIFIER);
    out.put_u8(c.family);
    out.put_u16_le(c.qualifier.len() as u16);
    out.put_slice(c.qualifier);
    out.put_u64_le(c.timestamp);
    out.put_u32_le(c.value.len() as u32);
    out.put_slice(c.value);
}

/// Bytes [`put_group_head`] appends for `row`.
pub fn group_head_len(row: &[u8]) -> usize {
    GROUP_HEAD + row.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(family: u8, q: &'static [u8], ts: u64, v: &'static [u8]) -> Cell<'static> {
        Cell {
            family,
            qualifier: q,
            timestamp: ts,
            value: v,
        }
    }

    fn encode(groups: &[(&[u8], Vec<Cell<'_>>)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (row, cells) in groups {
            put_group_head(&mut out, row, cells.len() as u32);
            for c in cells {
                put_cell(&mut out, *c);
            }
        }
        out
    }

    type Decoded = Vec<(Vec<u8>, Vec<(u8, Vec<u8>, u64, Vec<u8>)>)>;

    fn decode(b: &[u8]) -> Result<Decoded, PackedError> {
        groups(b)
            .map(|g| {
                g.map(|g| {
                    (
                        g.row.to_vec(),
                        g.cells()
                            .map(|c| {
                                (
                                    c.family,
                                    c.qualifier.to_vec(),
                                    c.timestamp,
                                    c.value.to_vec(),
                                )
                            })
                            .collect(),
                    )
                })
            })
            .collect()
    }

    fn sample() -> Vec<u8> {
        encode(&[
            (
                &b"r1"[..],
                vec![cell(0, b"a", 9, b"x"), cell(0, b"b", 9, b"")],
            ),
            (&b"r2"[..], vec![cell(1, b"", u64::MAX, b"long value")]),
        ])
    }

    #[test]
    fn the_worked_example_of_bulk_load_md() {
        let b = encode(&[(&b"r1"[..], vec![cell(0, b"q", 5, b"v")])]);
        assert_eq!(
            b,
            [
                0x02, 0x00, 0x72, 0x31, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x71, 0x05, 0x00,
                0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x76
            ]
        );
        assert_eq!(b.len(), 25);
        assert_eq!(group_head_len(b"r1") + CELL_HEAD + 2, 25);
    }

    #[test]
    fn groups_round_trip() {
        let d = decode(&sample()).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].0, b"r1");
        assert_eq!(
            d[0].1,
            vec![
                (0, b"a".to_vec(), 9, b"x".to_vec()),
                (0, b"b".to_vec(), 9, vec![])
            ]
        );
        assert_eq!(d[1].1, vec![(1, vec![], u64::MAX, b"long value".to_vec())]);
        assert!(
            decode(&[]).unwrap().is_empty(),
            "an empty field has no groups"
        );
    }

    #[test]
    fn every_truncation_is_refused() {
        let b = sample();
        let first_group = group_head_len(b"r1") + 2 * CELL_HEAD + 2 + 1;
        for cut in 1..b.len() {
            let r = decode(&b[..cut]);
            if cut == first_group {
                assert_eq!(
                    r.unwrap().len(),
                    1,
                    "a cut at a group boundary is a shorter field"
                );
            } else {
                assert!(r.is_err(), "cut at {cut} accepted");
            }
        }
    }

    #[test]
    fn empty_rows_and_empty_groups_are_refused() {
        let mut b = Vec::new();
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        assert_eq!(decode(&b).unwrap_err().reason, "empty row key");
        let mut b = Vec::new();
        put_group_head(&mut b, b"r", 1);
        b.truncate(b.len() - 4);
        b.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(decode(&b).unwrap_err().reason, "group without cells");
        let mut huge = Vec::new();
        put_group_head(&mut huge, b"r", u32::MAX);
        assert!(decode(&huge).is_err(), "a count the field cannot hold");
    }

    #[test]
    fn every_byte_flip_is_refused_or_well_formed() {
        // A flip inside a value or qualifier byte is not detectable by the framing (the
        // storage stage then checks order and limits); a flip of a length or count must be
        // refused or still yield groups that lie inside the field. No flip may panic.
        let b = sample();
        for i in 0..b.len() {
            for bit in 0..8 {
                let mut m = b.clone();
                m[i] ^= 1 << bit;
                if let Ok(d) = decode(&m) {
                    let cells: usize = d.iter().map(|g| g.1.len()).sum();
                    let bytes: usize = d
                        .iter()
                        .map(|g| {
                            group_head_len(&g.0)
                                + g.1
                                    .iter()
                                    .map(|c| CELL_HEAD + c.1.len() + c.3.len())
                                    .sum::<usize>()
                        })
                        .sum();
                    assert_eq!(bytes, m.len(), "flip {i}/{bit}: groups cover the field");
                    assert!(cells >= 1 && d.iter().all(|g| !g.0.is_empty() && !g.1.is_empty()));
                }
            }
        }
    }

    #[test]
    fn iteration_stops_after_an_error() {
        let mut b = sample();
        b.push(0xff);
        let all: Vec<_> = groups(&b).collect();
        assert_eq!(all.len(), 3);
        assert!(all[2].is_err());
        assert!(all[2].as_ref().unwrap_err().to_string().contains("byte"));
    }
}
