//! Byte-level encoding shared by every on-disk format: little-endian fixed integers,
//! LEB128 varints, length-prefixed byte strings, a bounds-checked [`Reader`], and the
//! checksummed length-framed record used by the WAL and the manifest
//! (`storage/docs/wal_format.md` §2 "Frame").
//!
//! This module knows nothing about files: decoders return a [`DecodeError`] with an offset
//! relative to the buffer they were given, and callers turn it into
//! [`Error::Corruption`](crate::Error::Corruption) naming the file and absolute offset.
//! Nothing here panics on arbitrary input.

use std::path::Path;

use crate::error::Error;

/// Why a buffer could not be decoded, and where (relative to the decoded buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset in the decoded buffer where the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl DecodeError {
    /// A decode error at `offset`.
    pub fn new(offset: usize, reason: impl Into<String>) -> DecodeError {
        DecodeError {
            offset,
            reason: reason.into(),
        }
    }

    /// Converts to [`Error::Corruption`] in `file`, where the decoded buffer started at
    /// absolute offset `base`.
    pub fn into_error(self, file: &Path, base: u64) -> Error {
        Error::Corruption {
            file: file.to_path_buf(),
            offset: base + self.offset as u64,
            reason: self.reason,
        }
    }
}

/// Appends `v` as a LEB128 varint (1–10 bytes).
pub fn put_varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

/// Number of bytes [`put_varint`] writes for `v`.
pub fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

/// Appends a little-endian u32.
pub fn put_u32(buf: &mut Vec<u8>, v: u32) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends a little-endian u64.
pub fn put_u64(buf: &mut Vec<u8>, v: u64) {
    buf.extend_from_slice(&v.to_le_bytes());
}

/// Appends `varint(len) bytes`.
pub fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

/// A bounds-checked cursor over a byte slice. Every read either succeeds or returns a
/// [`DecodeError`] naming the offset; none panics.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    /// Current offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when everything was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// An error at the current offset.
    pub fn err(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::new(self.pos, reason)
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(format!(
                "{what}: needs {n} bytes, only {} left",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads one byte.
    pub fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    /// Reads a little-endian u32.
    pub fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let s = self.take(4, what)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// Reads a little-endian u64.
    pub fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }

    /// Reads a LEB128 varint of at most 10 bytes that fits in a u64.
    pub fn varint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let start = self.pos;
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(DecodeError::new(start, format!("{what}: truncated varint")));
            };
            self.pos += 1;
            let low = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return Err(DecodeError::new(
                    start,
                    format!("{what}: varint overflows u64"),
                ));
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::new(
            start,
            format!("{what}: varint longer than 10 bytes"),
        ))
    }

    /// Reads a varint that must be at most `max` and fit in `usize`.
    pub fn varint_usize(&mut self, what: &str, max: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let v = self.varint(what)?;
        if v > max as u64 {
            return Err(DecodeError::new(
                start,
                format!("{what}: {v} exceeds limit {max}"),
            ));
        }
        Ok(v as usize)
    }

    /// Reads `varint(len) bytes`; `len` must fit in what is left.
    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let n = self.varint_usize(what, self.remaining())?;
        self.take(n, what)
    }
}

// ---------------------------------------------------------------------------------------
// Frames (wal_format.md §2): crc32 u32 | len u32 | payload[len], crc over len ++ payload.
// ---------------------------------------------------------------------------------------

/// Bytes of a frame header: crc32 (4) + length (4). (wal_format.md §2)
pub const FRAME_HEADER_BYTES: usize = 8;

/// Appends a frame holding `payload` to `out`.
pub fn put_frame(out: &mut Vec<u8>, payload: &[u8]) {
    let len = (payload.len() as u32).to_le_bytes();
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    put_u32(out, h.finalize());
    out.extend_from_slice(&len);
    out.extend_from_slice(payload);
}

/// Starts a frame whose payload the caller appends next; finish with [`finish_frame`].
/// Returns the frame's start offset in `out`. Avoids copying large payloads.
pub fn begin_frame(out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    start
}

/// Fills in the header of the frame begun at `start` (see [`begin_frame`]).
pub fn finish_frame(out: &mut [u8], start: usize) {
    let len = ((out.len() - start - FRAME_HEADER_BYTES) as u32).to_le_bytes();
    out[start + 4..start + 8].copy_from_slice(&len);
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(&out[start + FRAME_HEADER_BYTES..]);
    out[start..start + 4].copy_from_slice(&h.finalize().to_le_bytes());
}

/// Outcome of reading one frame at some offset of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameRead<'a> {
    /// A whole frame with a matching checksum; `next` is the offset after it.
    Ok { payload: &'a [u8], next: usize },
    /// The buffer ends at the offset: no frame starts here.
    End,
    /// Fewer bytes than the header or the declared length: a torn write if at the tail.
    Truncated { reason: String },
    /// A whole frame whose checksum does not match.
    BadChecksum { expected: u32, got: u32 },
    /// A declared length above the format's bound.
    TooLong { len: u64 },
}

/// Reads the frame starting at `off` in `buf`; `max_len` bounds the payload length.
pub fn read_frame(buf: &[u8], off: usize, max_len: usize) -> FrameRead<'_> {
    if off >= buf.len() {
        return FrameRead::End;
    }
    let rest = &buf[off..];
    if rest.len() < FRAME_HEADER_BYTES {
        return FrameRead::Truncated {
            reason: format!("frame header needs 8 bytes, {} left", rest.len()),
        };
    }
    let expected = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
    let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
    if len > max_len {
        return FrameRead::TooLong { len: len as u64 };
    }
    if rest.len() - FRAME_HEADER_BYTES < len {
        return FrameRead::Truncated {
            reason: format!(
                "frame declares {len} payload bytes, {} left",
                rest.len() - FRAME_HEADER_BYTES
            ),
        };
    }
    let payload = &rest[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + len];
    let mut h = crc32fast::Hasher::new();
    h.update(&rest[4..8]);
    h.update(payload);
    let got = h.finalize();
    if got != expected {
        return FrameRead::BadChecksum { expected, got };
    }
    FrameRead::Ok {
        payload,
        next: off + FRAME_HEADER_BYTES + len,
    }
}

/// True if some offset in `buf[from..]` holds a whole frame with a valid checksum for
/// which `accept(payload)` holds. Recovery uses it to tell a torn tail (nothing valid
/// after the damage) from corruption in the middle (valid records follow).
pub fn valid_frame_after(
    buf: &[u8],
    from: usize,
    max_len: usize,
    accept: impl Fn(&[u8]) -> bool,
) -> Option<usize> {
    (from..buf.len()).find(|&off| match read_frame(buf, off, max_len) {
        FrameRead::Ok { payload, .. } => !payload.is_empty() && accept(payload),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_at_every_width() {
        let mut vals = vec![0u64, 1, 127, 128, 255, 300, 16_383, 16_384, u64::MAX];
        for s in 0..64 {
            vals.push(1u64 << s);
            vals.push((1u64 << s) - 1);
        }
        for v in vals {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut r = Reader::new(&b);
            assert_eq!(r.varint("v").unwrap(), v);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn varint_overflow_and_truncation_are_errors() {
        let mut r = Reader::new(&[0xff; 11]);
        assert!(r.varint("v").is_err());
        let mut r = Reader::new(&[0x80, 0x80]);
        assert!(r.varint("v").is_err());
        // 10th byte may only carry one bit.
        let mut b = vec![0xff; 9];
        b.push(0x02);
        assert!(Reader::new(&b).varint("v").is_err());
    }

    #[test]
    fn frame_round_trip_and_every_byte_flip_is_caught() {
        let mut buf = Vec::new();
        put_frame(&mut buf, b"hello frame");
        match read_frame(&buf, 0, 1 << 20) {
            FrameRead::Ok { payload, next } => {
                assert_eq!(payload, b"hello frame");
                assert_eq!(next, buf.len());
            }
            other => panic!("{other:?}"),
        }
        for i in 0..buf.len() {
            let mut b = buf.clone();
            b[i] ^= 0x40;
            assert!(!matches!(read_frame(&b, 0, 1 << 20), FrameRead::Ok { .. }));
        }
        let mut b2 = Vec::new();
        let s = begin_frame(&mut b2);
        b2.extend_from_slice(b"hello frame");
        finish_frame(&mut b2, s);
        assert_eq!(b2, buf);
    }
}
