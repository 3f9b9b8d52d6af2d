//! The block index (`hfile_format.md` §4): the first key, offset and length of every data
//! block, binary-searched to find the block that may hold a key. Also the key encoding the
//! index and the file info share.
//!
//! This module does not read blocks; `reader` does.

use bytes::Bytes;

use crate::cell::{CellKey, CellKind, KeyRef};
use crate::coding::{DecodeError, Reader, put_bytes, put_u64, put_varint};

/// Appends `row:bytes qualifier:bytes timestamp:u64le kind:u8 seq:varint` (§4).
pub fn put_key(out: &mut Vec<u8>, k: KeyRef<'_>) {
    put_bytes(out, k.row);
    put_bytes(out, k.qualifier);
    put_u64(out, k.timestamp);
    out.push(k.kind.code());
    put_varint(out, k.seq);
}

/// Reads a key written by [`put_key`].
///
/// # Errors
/// A [`DecodeError`] for truncated input or an unknown kind.
pub fn read_key(r: &mut Reader<'_>) -> Result<CellKey, DecodeError> {
    let row = Bytes::copy_from_slice(r.bytes("key row")?);
    let qualifier = Bytes::copy_from_slice(r.bytes("key qualifier")?);
    let timestamp = r.u64("key timestamp")?;
    let at = r.pos();
    let code = r.u8("key kind")?;
    let kind = CellKind::from_code(code)
        .ok_or_else(|| DecodeError::new(at, format!("unknown cell kind {code}")))?;
    let seq = r.varint("key seq")?;
    Ok(CellKey {
        row,
        qualifier,
        timestamp,
        kind,
        seq,
    })
}

/// Where one data block is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    /// The block's first key.
    pub first_key: CellKey,
    /// File offset of the block.
    pub offset: u64,
    /// On-disk length including the 5-byte block trailer.
    pub length: u64,
}

/// All data blocks of a file, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockIndex {
    /// One entry per data block.
    pub entries: Vec<IndexEntry>,
}

impl BlockIndex {
    /// Encodes the index block contents (§4).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, self.entries.len() as u64);
        for e in &self.entries {
            put_key(&mut out, e.first_key.as_ref());
            put_varint(&mut out, e.offset);
            put_varint(&mut out, e.length);
        }
        out
    }

    /// Decodes index block contents and checks that blocks are contiguous from offset 0,
    /// end at or before `data_end`, and that first keys strictly increase.
    ///
    /// # Errors
    /// A [`DecodeError`] for malformed contents or an inconsistent layout.
    pub fn decode(buf: &[u8], data_end: u64) -> Result<BlockIndex, DecodeError> {
        let mut r = Reader::new(buf);
        // An entry takes at least 14 bytes: bounds the count by the input.
        let n = r.varint_usize("index count", buf.len() / 14)?;
        let mut entries: Vec<IndexEntry> = Vec::with_capacity(n);
        let mut expect_off = 0u64;
        for _ in 0..n {
            let at = r.pos();
            let first_key = read_key(&mut r)?;
            let offset = r.varint("block offset")?;
            let length = r.varint("block length")?;
            if offset != expect_off || length < 5 || offset.saturating_add(length) > data_end {
                return Err(DecodeError::new(
                    at,
                    format!(
                        "block at {offset}+{length} does not follow {expect_off} inside {data_end}"
                    ),
                ));
            }
            if entries.last().is_some_and(|p| p.first_key >= first_key) {
                return Err(DecodeError::new(at, "index keys are not increasing"));
            }
            expect_off = offset + length;
            entries.push(IndexEntry {
                first_key,
                offset,
                length,
            });
        }
        if !r.is_empty() {
            return Err(r.err("trailing bytes after the index"));
        }
        if expect_off != data_end {
            return Err(DecodeError::new(
                buf.len(),
                format!("index covers {expect_off} bytes of data, file has {data_end}"),
            ));
        }
        Ok(BlockIndex { entries })
    }

    /// Number of blocks whose first key is `< target`: the block that may hold the first
    /// key `>= target` is this minus one (or block 0).
    pub fn blocks_before(&self, target: KeyRef<'_>) -> usize {
        self.entries
            .partition_point(|e| e.first_key.as_ref() < target)
    }

    /// Index of the block to start a seek for `target` in.
    pub fn seek_block(&self, target: KeyRef<'_>) -> usize {
        // Blocks with first_key <= target; the last of them holds target if anything does.
        let n = self
            .entries
            .partition_point(|e| e.first_key.as_ref() <= target);
        n.saturating_sub(1)
    }
}

/// The first 8 bytes of `row` as a big-endian number, zero-padded: `row_prefix(a) <
/// row_prefix(b)` implies `a < b`, so a search can compare these and look at the full keys
/// only on a tie.
pub fn row_prefix(row: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = row.len().min(8);
    b[..n].copy_from_slice(&row[..n]);
    u64::from_be_bytes(b)
}

/// A [`BlockIndex`] with the [`row_prefix`] of every first key in one flat array, so the
/// binary searches of gets and seeks touch a cache-friendly `u64` per probe instead of a
/// heap-allocated key (the index of a large file has tens of thousands of entries).
#[derive(Clone, Debug, Default)]
pub struct SearchIndex {
    /// The decoded index.
    pub index: BlockIndex,
    prefixes: Vec<u64>,
}

impl SearchIndex {
    /// Indexes the first keys of `index`.
    pub fn new(index: BlockIndex) -> SearchIndex {
        let prefixes = index
            .entries
            .iter()
            .map(|e| row_prefix(&e.first_key.row))
            .collect();
        SearchIndex { index, prefixes }
    }

    /// Entries, in file order.
    pub fn entries(&self) -> &[IndexEntry] {
        &self.index.entries
    }

    /// Number of leading entries for which `before(first_key)` holds (`before` must be
    /// monotone: true then false), deciding by prefix when the prefixes differ.
    fn partition(&self, target: KeyRef<'_>, or_equal: bool) -> usize {
        let tp = row_prefix(target.row);
        let (mut lo, mut hi) = (0usize, self.prefixes.len().min(self.index.entries.len()));
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let p = self.prefixes[mid];
            let before = if p != tp {
                p < tp
            } else {
                let k = self.index.entries[mid].first_key.as_ref();
                if or_equal { k <= target } else { k < target }
            };
            if before {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// As [`BlockIndex::blocks_before`].
    pub fn blocks_before(&self, target: KeyRef<'_>) -> usize {
        self.partition(target, false)
    }

    /// As [`BlockIndex::seek_block`].
    pub fn seek_block(&self, target: KeyRef<'_>) -> usize {
        self.partition(target, true).saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx() -> BlockIndex {
        let entries = (0..10u64)
            .map(|i| IndexEntry {
                first_key: CellKey {
                    row: Bytes::from(format!("r{i:03}")),
                    qualifier: Bytes::from_static(b"q"),
                    timestamp: 9,
                    kind: CellKind::Put,
                    seq: i,
                },
                offset: i * 100,
                length: 100,
            })
            .collect();
        BlockIndex { entries }
    }

    #[test]
    fn round_trip_and_search() {
        let i = idx();
        let enc = i.encode();
        assert_eq!(BlockIndex::decode(&enc, 1000).unwrap(), i);
        assert!(BlockIndex::decode(&enc, 999).is_err());
        assert_eq!(i.seek_block(KeyRef::first_of_row(b"r000")), 0);
        assert_eq!(i.seek_block(KeyRef::first_of_row(b"r0035")), 3);
        assert_eq!(i.seek_block(i.entries[5].first_key.as_ref()), 5);
        assert_eq!(i.blocks_before(i.entries[5].first_key.as_ref()), 5);
        assert_eq!(i.seek_block(KeyRef::first_of_row(b"zzz")), 9);
    }

    #[test]
    fn search_index_agrees_with_the_plain_search() {
        // Rows sharing 8-byte prefixes, shorter than 8 and longer, so ties are exercised.
        let rows: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a".to_vec(),
            b"a\0".to_vec(),
            b"abcdefgh".to_vec(),
            b"abcdefgh\0".to_vec(),
            b"abcdefghi".to_vec(),
            b"abcdefgi".to_vec(),
            b"b".to_vec(),
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
        ];
        let entries = rows
            .iter()
            .enumerate()
            .map(|(i, r)| IndexEntry {
                first_key: CellKey {
                    row: Bytes::copy_from_slice(r),
                    qualifier: Bytes::from_static(b"q"),
                    timestamp: 9,
                    kind: CellKind::Put,
                    seq: 1,
                },
                offset: i as u64 * 100,
                length: 100,
            })
            .collect();
        let plain = BlockIndex { entries };
        let fast = SearchIndex::new(plain.clone());
        let mut probes: Vec<CellKey> = plain.entries.iter().map(|e| e.first_key.clone()).collect();
        for r in &rows {
            for extra in [&b""[..], b"\0", b"a", b"\xff"] {
                let mut row = r.clone();
                row.extend_from_slice(extra);
                probes.push(KeyRef::first_of_row(&row).to_owned_key());
                for ts in [0, 9, u64::MAX] {
                    probes.push(CellKey {
                        row: Bytes::from(row.clone()),
                        qualifier: Bytes::from_static(b"q"),
                        timestamp: ts,
                        kind: CellKind::Put,
                        seq: 1,
                    });
                }
            }
        }
        for p in &probes {
            assert_eq!(
                fast.seek_block(p.as_ref()),
                plain.seek_block(p.as_ref()),
                "{p:?}"
            );
            assert_eq!(
                fast.blocks_before(p.as_ref()),
                plain.blocks_before(p.as_ref()),
                "{p:?}"
            );
        }
    }

    #[test]
    fn truncations_and_flips_never_panic() {
        let enc = idx().encode();
        for n in 0..enc.len() {
            assert!(BlockIndex::decode(&enc[..n], 1000).is_err());
        }
        for p in 0..enc.len() {
            let mut m = enc.clone();
            m[p] ^= 0x55;
            let _ = BlockIndex::decode(&m, 1000);
        }
    }
}
