//! HFile blocks: the common framing (compression byte + CRC32, `hfile_format.md` §2) and
//! the data block (entries with restart points, §3) — its builder, and a zero-copy view
//! that decodes entries as slices of the decompressed block.
//!
//! This module does not know where blocks live in a file; `writer`/`reader` do.

use bytes::Bytes;

use super::Compression;
use crate::cell::{CellKey, CellKind, KeyRef};
use crate::coding::{DecodeError, Reader, put_u32, put_u64, put_varint};

/// Bytes after every block body: compression (1) + CRC32 (4). (§2)
pub const BLOCK_TRAILER_BYTES: usize = 5;
/// Largest decompressed block (§2, invariant 8).
pub const MAX_BLOCK_BYTES: usize = 256 << 20;
/// An entry starts a restart point every this many entries (§3).
pub const RESTART_INTERVAL: usize = 16;

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;

/// Frames `contents` as a block (§2), compressing with lz4 if asked and worthwhile.
/// `scratch` is reused between calls to avoid allocations.
pub fn encode_block(
    contents: &[u8],
    compression: Compression,
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    let start = out.len();
    let mut code = COMPRESSION_NONE;
    if compression == Compression::Lz4 && contents.len() >= 64 {
        scratch.clear();
        scratch.resize(lz4_flex::block::get_maximum_output_size(contents.len()), 0);
        if let Ok(n) = lz4_flex::block::compress_into(contents, scratch)
            && n + 4 < contents.len() - contents.len() / 8
        {
            put_u32(out, contents.len() as u32);
            out.extend_from_slice(&scratch[..n]);
            code = COMPRESSION_LZ4;
        }
    }
    if code == COMPRESSION_NONE {
        out.extend_from_slice(contents);
    }
    out.push(code);
    let crc = crc32fast::hash(&out[start..]);
    put_u32(out, crc);
}

/// Why a framed block was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockError {
    /// The stored CRC does not match the bytes.
    Checksum { expected: u32, got: u32 },
    /// The block is malformed even though its CRC matched (or is too short to have one).
    Malformed(DecodeError),
}

/// Verifies and unframes a block (§2); returns its decompressed contents.
///
/// # Errors
/// [`BlockError::Checksum`] on a CRC mismatch, [`BlockError::Malformed`] for a short block,
/// an unknown compression code, an oversize or failing decompression.
pub fn decode_block(raw: &[u8]) -> Result<Bytes, BlockError> {
    if raw.len() < BLOCK_TRAILER_BYTES {
        return Err(BlockError::Malformed(DecodeError::new(
            0,
            "block shorter than its trailer",
        )));
    }
    let body_end = raw.len() - 4;
    let expected = u32::from_le_bytes([
        raw[body_end],
        raw[body_end + 1],
        raw[body_end + 2],
        raw[body_end + 3],
    ]);
    let got = crc32fast::hash(&raw[..body_end]);
    if expected != got {
        return Err(BlockError::Checksum { expected, got });
    }
    let code = raw[body_end - 1];
    let body = &raw[..body_end - 1];
    match code {
        COMPRESSION_NONE => Ok(Bytes::copy_from_slice(body)),
        COMPRESSION_LZ4 => {
            let mut r = Reader::new(body);
            let n = r.u32("lz4 raw length").map_err(BlockError::Malformed)? as usize;
            if n > MAX_BLOCK_BYTES {
                return Err(BlockError::Malformed(DecodeError::new(
                    0,
                    format!("block of {n} bytes exceeds {MAX_BLOCK_BYTES}"),
                )));
            }
            let mut out = vec![0u8; n];
            match lz4_flex::block::decompress_into(&body[4..], &mut out) {
                Ok(m) if m == n => Ok(Bytes::from(out)),
                Ok(m) => Err(BlockError::Malformed(DecodeError::new(
                    4,
                    format!("lz4 produced {m} bytes, header says {n}"),
                ))),
                Err(e) => Err(BlockError::Malformed(DecodeError::new(
                    4,
                    format!("lz4: {e}"),
                ))),
            }
        }
        other => Err(BlockError::Malformed(DecodeError::new(
            body_end - 1,
            format!("unknown compression code {other}"),
        ))),
    }
}

/// Accumulates entries of one data block (§3).
#[derive(Debug, Default)]
pub struct DataBlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    count: usize,
}

impl DataBlockBuilder {
    /// Appends one entry; the caller guarantees key order.
    pub fn add(&mut self, key: KeyRef<'_>, value: &[u8]) {
        if self.count.is_multiple_of(RESTART_INTERVAL) {
            self.restarts.push(self.buf.len() as u32);
        }
        put_varint(&mut self.buf, key.row.len() as u64);
        put_varint(&mut self.buf, key.qualifier.len() as u64);
        put_varint(&mut self.buf, value.len() as u64);
        self.buf.extend_from_slice(key.row);
        self.buf.extend_from_slice(key.qualifier);
        put_u64(&mut self.buf, key.timestamp);
        self.buf.push(key.kind.code());
        put_varint(&mut self.buf, key.seq);
        self.buf.extend_from_slice(value);
        self.count += 1;
    }

    /// Bytes the finished contents will take.
    pub fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// Entries added since the last reset.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when no entry was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Appends the restart array and returns the contents; call [`reset`](Self::reset) after.
    pub fn finish(&mut self) -> &[u8] {
        for r in &self.restarts {
            put_u32(&mut self.buf, *r);
        }
        put_u32(&mut self.buf, self.restarts.len() as u32);
        &self.buf
    }

    /// Clears for the next block, keeping allocations.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.restarts.clear();
        self.count = 0;
    }
}

/// A decoded entry: key fields and value as offsets into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPos {
    row: (usize, usize),
    qualifier: (usize, usize),
    value: (usize, usize),
    timestamp: u64,
    kind: CellKind,
    seq: u64,
    /// Offset of the next entry.
    pub next: usize,
}

/// A verified, decompressed data block: entries are read in place.
#[derive(Debug, Clone)]
pub struct DataBlock {
    data: Bytes,
    /// End of the entries = start of the restart array.
    entries_end: usize,
    num_restarts: usize,
}

impl DataBlock {
    /// Validates the restart array of decompressed block contents (§3).
    ///
    /// # Errors
    /// A [`DecodeError`] if the restart array is out of bounds or not increasing.
    pub fn new(data: Bytes) -> Result<DataBlock, DecodeError> {
        let len = data.len();
        if len < 4 {
            return Err(DecodeError::new(
                0,
                "data block shorter than its restart count",
            ));
        }
        let n = u32::from_le_bytes([data[len - 4], data[len - 3], data[len - 2], data[len - 1]])
            as usize;
        let array = n
            .checked_mul(4)
            .and_then(|a| a.checked_add(4))
            .filter(|&a| a <= len)
            .ok_or_else(|| {
                DecodeError::new(len - 4, format!("{n} restarts do not fit the block"))
            })?;
        let entries_end = len - array;
        if n == 0 || entries_end == 0 {
            return Err(DecodeError::new(len - 4, "data block without entries"));
        }
        let b = DataBlock {
            data,
            entries_end,
            num_restarts: n,
        };
        let mut prev = None;
        for i in 0..n {
            let r = b.restart(i);
            if r >= entries_end || prev.is_some_and(|p| r <= p) || (i == 0 && r != 0) {
                return Err(DecodeError::new(
                    entries_end + 4 * i,
                    format!("bad restart offset {r}"),
                ));
            }
            prev = Some(r);
        }
        Ok(b)
    }

    /// Wraps contents that [`DataBlock::new`] accepted before (the block cache holds only
    /// such blocks): O(1), skips re-validating the restart array. Still never panics on
    /// bad input — every access is bounds-checked — it just reports errors later.
    pub fn from_verified(data: Bytes) -> DataBlock {
        let len = data.len();
        let n = data
            .get(len.saturating_sub(4)..)
            .filter(|t| t.len() == 4)
            .map_or(0, |t| u32::from_le_bytes([t[0], t[1], t[2], t[3]]) as usize);
        match n
            .checked_mul(4)
            .and_then(|a| a.checked_add(4))
            .filter(|&a| a <= len)
        {
            Some(array) if n > 0 => DataBlock {
                data,
                entries_end: len - array,
                num_restarts: n,
            },
            _ => DataBlock {
                data,
                entries_end: 0,
                num_restarts: 1,
            },
        }
    }

    fn restart(&self, i: usize) -> usize {
        let o = self.entries_end + 4 * i;
        match self.data.get(o..o + 4) {
            Some(b) => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize,
            None => self.entries_end,
        }
    }

    /// Offset just past the last entry.
    pub fn entries_end(&self) -> usize {
        self.entries_end
    }

    /// Decodes the entry at `off` (which must be an entry start).
    ///
    /// # Errors
    /// A [`DecodeError`] if the entry runs past the entries or has an unknown kind.
    #[inline]
    pub fn entry_at(&self, off: usize) -> Result<EntryPos, DecodeError> {
        match self.entry_at_fast(off) {
            Some(e) => Ok(e),
            None => self.entry_at_checked(off),
        }
    }

    /// The common entry in one pass: row, qualifier and value lengths of one varint byte
    /// each (< 128), every field inside the entries. `None` for anything else, valid or
    /// not; [`entry_at_checked`](Self::entry_at_checked) then decides, so this never
    /// accepts an entry the checked decoder would refuse, nor decodes one differently
    /// (`fast_and_checked_entry_decoders_agree`). Scans decode every entry through here:
    /// the checked decoder's per-field error plumbing was 450 instructions of the ~3,200
    /// a scanned cell cost (benches/README.md, "Where read time goes").
    #[inline]
    fn entry_at_fast(&self, off: usize) -> Option<EntryPos> {
        let buf = self.data.get(..self.entries_end)?;
        let head = buf.get(off..off.checked_add(3)?)?;
        if (head[0] | head[1] | head[2]) & 0x80 != 0 {
            return None;
        }
        let (row_len, qual_len, value_len) = (
            usize::from(head[0]),
            usize::from(head[1]),
            usize::from(head[2]),
        );
        let row_at = off + 3;
        let qual_at = row_at + row_len;
        let ts_at = qual_at + qual_len;
        let kind_at = ts_at + 8;
        let ts: [u8; 8] = buf.get(ts_at..kind_at)?.try_into().ok()?;
        let kind = CellKind::from_code(*buf.get(kind_at)?)?;
        // The sequence number: a LEB128 varint of at most 10 bytes that fits a u64, the
        // same rule as `Reader::varint`.
        let mut seq = 0u64;
        let mut at = kind_at + 1;
        let mut shift = 0u32;
        loop {
            let b = *buf.get(at)?;
            at += 1;
            if shift == 63 && b > 1 {
                return None;
            }
            seq |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift > 63 {
                return None;
            }
        }
        let value_end = at + value_len;
        if value_end > buf.len() {
            return None;
        }
        Some(EntryPos {
            row: (row_at, qual_at),
            qualifier: (qual_at, ts_at),
            value: (at, value_end),
            timestamp: u64::from_le_bytes(ts),
            kind,
            seq,
            next: value_end,
        })
    }

    /// [`entry_at`](Self::entry_at) field by field, naming the field and offset of any
    /// damage.
    fn entry_at_checked(&self, off: usize) -> Result<EntryPos, DecodeError> {
        let buf = &self.data[..self.entries_end];
        let mut r = Reader::new(buf.get(off..).unwrap_or_default());
        let err = |e: DecodeError| DecodeError::new(off + e.offset, e.reason);
        let row_len = r.varint_usize("row length", MAX_BLOCK_BYTES).map_err(err)?;
        let qual_len = r
            .varint_usize("qualifier length", MAX_BLOCK_BYTES)
            .map_err(err)?;
        let value_len = r
            .varint_usize("value length", MAX_BLOCK_BYTES)
            .map_err(err)?;
        let row_at = off + r.pos();
        r.take(row_len, "row").map_err(err)?;
        let qual_at = off + r.pos();
        r.take(qual_len, "qualifier").map_err(err)?;
        let timestamp = r.u64("timestamp").map_err(err)?;
        let kind_at = off + r.pos();
        let code = r.u8("kind").map_err(err)?;
        let kind = CellKind::from_code(code)
            .ok_or_else(|| DecodeError::new(kind_at, format!("unknown cell kind {code}")))?;
        let seq = r.varint("seq").map_err(err)?;
        let value_at = off + r.pos();
        r.take(value_len, "value").map_err(err)?;
        Ok(EntryPos {
            row: (row_at, row_at + row_len),
            qualifier: (qual_at, qual_at + qual_len),
            value: (value_at, value_at + value_len),
            timestamp,
            kind,
            seq,
            next: off + r.pos(),
        })
    }

    /// Borrowed key of a decoded entry.
    #[inline]
    pub fn key<'a>(&'a self, e: &EntryPos) -> KeyRef<'a> {
        KeyRef {
            row: &self.data[e.row.0..e.row.1],
            qualifier: &self.data[e.qualifier.0..e.qualifier.1],
            timestamp: e.timestamp,
            kind: e.kind,
            seq: e.seq,
        }
    }

    /// Owned key and value of a decoded entry: slices of the block, no copy.
    pub fn owned(&self, e: &EntryPos) -> (CellKey, Bytes) {
        (
            CellKey {
                row: self.data.slice(e.row.0..e.row.1),
                qualifier: self.data.slice(e.qualifier.0..e.qualifier.1),
                timestamp: e.timestamp,
                kind: e.kind,
                seq: e.seq,
            },
            self.data.slice(e.value.0..e.value.1),
        )
    }

    /// Value of a decoded entry, borrowed from the block.
    #[inline]
    pub fn value(&self, e: &EntryPos) -> &[u8] {
        &self.data[e.value.0..e.value.1]
    }

    /// The row of a decoded entry as a slice of the block.
    pub fn row_bytes(&self, e: &EntryPos) -> Bytes {
        self.data.slice(e.row.0..e.row.1)
    }

    /// Offset of the first entry whose key is `>= target` (or `entries_end()` if none):
    /// binary search over restart points, then a scan of at most one interval.
    ///
    /// # Errors
    /// A [`DecodeError`] for a malformed entry on the way.
    pub fn seek(&self, target: KeyRef<'_>) -> Result<usize, DecodeError> {
        // Largest restart whose key is < target.
        let (mut lo, mut hi) = (0usize, self.num_restarts);
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            let e = self.entry_at(self.restart(mid))?;
            if self.key(&e) < target {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let mut off = self.restart(lo);
        while off < self.entries_end {
            let e = self.entry_at(off)?;
            if self.key(&e) >= target {
                return Ok(off);
            }
            off = e.next;
        }
        Ok(off)
    }

    /// Decodes every entry (tests and fuzzing).
    ///
    /// # Errors
    /// The first malformed entry.
    pub fn entries(&self) -> Result<Vec<(CellKey, Bytes)>, DecodeError> {
        let mut out = Vec::new();
        let mut off = 0;
        while off < self.entries_end {
            let e = self.entry_at(off)?;
            out.push(self.owned(&e));
            off = e.next;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> CellKey {
        CellKey {
            row: Bytes::from(format!("row{i:05}")),
            qualifier: Bytes::from_static(b"q"),
            timestamp: 1000,
            kind: CellKind::Put,
            seq: u64::from(i),
        }
    }

    fn block(n: u32) -> Vec<u8> {
        let mut b = DataBlockBuilder::default();
        for i in 0..n {
            b.add(key(i).as_ref(), format!("value{i}").as_bytes());
        }
        b.finish().to_vec()
    }

    /// The fast decoder accepts only what the checked one accepts, decoded the same, on
    /// real entries of every length class and at every offset of damaged blocks.
    #[test]
    fn fast_and_checked_entry_decoders_agree() {
        let mut b = DataBlockBuilder::default();
        for i in 0..300u32 {
            let row = vec![b'r'; (i as usize * 7) % 300 + 1];
            let qual = vec![b'q'; (i as usize * 13) % 140];
            let value = vec![b'v'; (i as usize * 31) % 400];
            let key = KeyRef {
                row: &row,
                qualifier: &qual,
                timestamp: u64::from(i) << 40,
                kind: CellKind::Put,
                seq: u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (i % 64),
            };
            b.add(key, &value);
        }
        let good = b.finish().to_vec();
        let block = DataBlock::new(Bytes::from(good.clone())).unwrap();
        let (mut off, mut fast_hits) = (0, 0);
        while off < block.entries_end() {
            let checked = block.entry_at_checked(off).unwrap();
            if let Some(fast) = block.entry_at_fast(off) {
                assert_eq!(fast, checked, "entry at {off}");
                fast_hits += 1;
            }
            assert_eq!(block.entry_at(off).unwrap(), checked);
            off = checked.next;
        }
        assert!(
            fast_hits > 20,
            "the fast path must serve short entries: {fast_hits}"
        );
        let mut seed = 7u64;
        for _ in 0..200 {
            let mut bad = good.clone();
            for _ in 0..4 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let at = (seed >> 33) as usize % (bad.len() - 8);
                bad[at] ^= (seed >> 13) as u8 | 1;
            }
            let Ok(block) = DataBlock::new(Bytes::from(bad)) else {
                continue;
            };
            for off in 0..block.entries_end() + 2 {
                if let Some(fast) = block.entry_at_fast(off) {
                    assert_eq!(Ok(fast), block.entry_at_checked(off), "offset {off}");
                }
            }
        }
    }

    #[test]
    fn doc_example_bytes() {
        let mut b = DataBlockBuilder::default();
        let k = CellKey {
            row: Bytes::from_static(b"r1"),
            qualifier: Bytes::from_static(b"q"),
            timestamp: 1000,
            kind: CellKind::Put,
            seq: 7,
        };
        b.add(k.as_ref(), b"v");
        let mut out = Vec::new();
        encode_block(b.finish(), Compression::None, &mut out, &mut Vec::new());
        let hex: Vec<String> = out.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "02 01 01 72 31 71 e8 03 00 00 00 00 00 00 04 07 76 00 00 00 00 01 00 00 00 00 d9 17 e6 62"
        );
    }

    #[test]
    fn round_trip_both_compressions_and_seek() {
        let contents = block(100);
        for c in [Compression::None, Compression::Lz4] {
            let mut framed = Vec::new();
            encode_block(&contents, c, &mut framed, &mut Vec::new());
            if c == Compression::Lz4 {
                assert!(
                    framed.len() < contents.len(),
                    "lz4 should shrink repetitive keys"
                );
            }
            let data = decode_block(&framed).unwrap();
            assert_eq!(&data[..], &contents[..]);
            let blk = DataBlock::new(data).unwrap();
            let all = blk.entries().unwrap();
            assert_eq!(all.len(), 100);
            for (i, (k, v)) in all.iter().enumerate() {
                assert_eq!(k, &key(i as u32));
                assert_eq!(v, format!("value{i}").as_bytes());
            }
            for i in 0..100 {
                let off = blk.seek(key(i).as_ref()).unwrap();
                let e = blk.entry_at(off).unwrap();
                assert_eq!(blk.owned(&e).0, key(i));
            }
            assert_eq!(blk.seek(key(100).as_ref()).unwrap(), blk.entries_end());
        }
    }

    #[test]
    fn every_byte_flip_is_a_checksum_error() {
        let contents = block(20);
        for c in [Compression::None, Compression::Lz4] {
            let mut framed = Vec::new();
            encode_block(&contents, c, &mut framed, &mut Vec::new());
            for i in 0..framed.len() {
                let mut m = framed.clone();
                m[i] ^= 0x01;
                assert!(
                    matches!(decode_block(&m), Err(BlockError::Checksum { .. })),
                    "byte {i}"
                );
            }
        }
    }

    #[test]
    fn garbage_contents_never_panic() {
        let contents = block(40);
        for i in 0..contents.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut m = contents.clone();
                m[i] ^= x;
                let unchecked = DataBlock::from_verified(Bytes::from(m.clone()));
                let _ = unchecked.entries();
                let _ = unchecked.seek(key(7).as_ref());
                if let Ok(b) = DataBlock::new(Bytes::from(m)) {
                    let _ = b.entries();
                    let _ = b.seek(key(7).as_ref());
                }
            }
        }
    }
}
