//! Encoding of one WAL record payload — a [`WalEntry`] — as specified in
//! `storage/docs/wal_format.md` §3. Framing (length + CRC) is `coding`'s job; segment
//! handling is `segment`'s. Decoding never panics and never allocates more than the input.

use bytes::Bytes;

use crate::cell::{Cell, CellKind, SeqNo};
use crate::coding::{DecodeError, Reader, put_bytes, put_u64, put_varint, varint_len};

/// Payload format version (wal_format.md §3).
pub const RECORD_VERSION: u8 = 1;

/// Largest payload a record may have (wal_format.md §2, invariant 8).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// One atomic batch in the log: the batch's sequence number and its cells (family
/// included). Cells keep their own `seq` (usually `seq..seq+n` or all `seq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalEntry {
    /// Sequence number of the batch.
    pub seq: SeqNo,
    /// The cells of the batch, in the order they were written.
    pub cells: Vec<Cell>,
}

impl WalEntry {
    /// Exact payload size of [`encode_into`](WalEntry::encode_into).
    pub fn encoded_len(&self) -> usize {
        let mut n = 1 + 8 + varint_len(self.cells.len() as u64);
        for c in &self.cells {
            n += 1 + varint_len(c.seq.wrapping_sub(self.seq)) + 8;
            for b in [&c.family, &c.row, &c.qualifier, &c.value] {
                n += varint_len(b.len() as u64) + b.len();
            }
        }
        n
    }

    /// Appends the payload encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        out.push(RECORD_VERSION);
        put_u64(out, self.seq);
        put_varint(out, self.cells.len() as u64);
        for c in &self.cells {
            out.push(c.kind.code());
            put_varint(out, c.seq.wrapping_sub(self.seq));
            put_u64(out, c.timestamp);
            put_bytes(out, &c.family);
            put_bytes(out, &c.row);
            put_bytes(out, &c.qualifier);
            put_bytes(out, &c.value);
        }
    }

    /// Decodes a payload. Cells' byte fields are slices of `payload` (no copies).
    ///
    /// # Errors
    /// A [`DecodeError`] with the offset inside `payload` for any malformed input,
    /// including trailing bytes.
    pub fn decode(payload: &Bytes) -> Result<WalEntry, DecodeError> {
        let mut r = Reader::new(payload);
        let version = r.u8("record version")?;
        if version != RECORD_VERSION {
            return Err(DecodeError::new(
                0,
                format!("unknown WAL record version {version}"),
            ));
        }
        let seq = r.u64("batch seq")?;
        // Each cell takes at least 14 bytes, which bounds the count by the input size.
        let count = r.varint_usize("cell count", r.remaining() / 14)?;
        let mut cells = Vec::with_capacity(count);
        let slice = |s: &[u8]| payload.slice_ref(s);
        for _ in 0..count {
            let at = r.pos();
            let code = r.u8("cell kind")?;
            let kind = CellKind::from_code(code)
                .ok_or_else(|| DecodeError::new(at, format!("unknown cell kind {code}")))?;
            let cell_seq = seq.wrapping_add(r.varint("cell seq delta")?);
            let timestamp = r.u64("timestamp")?;
            let family = slice(r.bytes("family")?);
            let row = slice(r.bytes("row")?);
            let qualifier = slice(r.bytes("qualifier")?);
            let value = slice(r.bytes("value")?);
            cells.push(Cell {
                row,
                family,
                qualifier,
                timestamp,
                kind,
                seq: cell_seq,
                value,
            });
        }
        if !r.is_empty() {
            return Err(r.err(format!("{} trailing bytes after the cells", r.remaining())));
        }
        Ok(WalEntry { seq, cells })
    }

    /// Highest sequence number in this entry (the batch seq or a cell's, whichever is
    /// larger).
    pub fn max_seq(&self) -> SeqNo {
        self.cells.iter().map(|c| c.seq).fold(self.seq, SeqNo::max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> WalEntry {
        let mut d = Cell::put("r1", "cf", "q2", 5, "");
        d.kind = CellKind::DeleteColumn;
        d.seq = 8;
        let mut p = Cell::put("r1", "cf", "q", 1000, "v");
        p.seq = 7;
        WalEntry {
            seq: 7,
            cells: vec![p, d],
        }
    }

    #[test]
    fn round_trip_and_exact_length() {
        let e = entry();
        let mut b = Vec::new();
        e.encode_into(&mut b);
        assert_eq!(b.len(), e.encoded_len());
        assert_eq!(WalEntry::decode(&Bytes::from(b)).unwrap(), e);
        assert_eq!(e.max_seq(), 8);
    }

    #[test]
    fn doc_example_bytes() {
        let mut p = Cell::put("r1", "cf", "q", 1000, "v");
        p.seq = 7;
        let e = WalEntry {
            seq: 7,
            cells: vec![p],
        };
        let mut payload = Vec::new();
        e.encode_into(&mut payload);
        let mut frame = Vec::new();
        crate::coding::put_frame(&mut frame, &payload);
        let hex: Vec<String> = frame.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "18 2d aa 25 1e 00 00 00 01 07 00 00 00 00 00 00 00 01 04 00 e8 03 00 00 00 00 \
             00 00 02 63 66 02 72 31 01 71 01 76"
        );
    }

    #[test]
    fn every_truncation_and_flip_errors_or_decodes_without_panic() {
        let mut b = Vec::new();
        entry().encode_into(&mut b);
        for n in 0..b.len() {
            assert!(WalEntry::decode(&Bytes::copy_from_slice(&b[..n])).is_err());
        }
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0xff;
            let _ = WalEntry::decode(&Bytes::from(m));
        }
    }
}
