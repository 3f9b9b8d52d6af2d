//! The file channel's record codec: how one [`Event`] becomes a checksummed record in a
//! segment and back (grammar in `ingest/docs/file_channel_format.md`).
//!
//! Pure functions over bytes and readers: this module does not know segment files, the
//! checkpoint or the file system.

use std::fmt;
use std::io::Read;

use crate::collect::Event;

/// Segment file header (docs: `segment := MAGIC record*`).
pub const SEGMENT_MAGIC: &[u8; 8] = b"SLFCSEG1";
/// Checkpoint file header.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"SLFCCKP1";
/// Largest record payload accepted (an event is one log line plus headers). `put` refuses
/// a larger event rather than write a record that recovery would treat as corrupt.
pub const MAX_RECORD: u32 = 1 << 20;
/// Bytes before a record's payload: `length:u32 crc:u32`.
pub const RECORD_HEADER: u64 = 8;

/// Why an event cannot be encoded: a field does not fit its length prefix or the record
/// would exceed [`MAX_RECORD`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    /// The field ("header count", "header key", "payload", ...).
    pub what: &'static str,
    /// Its size.
    pub len: usize,
    /// The largest size the format allows.
    pub max: usize,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} exceeds the limit of {}",
            self.what, self.len, self.max
        )
    }
}

/// Why a record payload does not decode: what was malformed and at which byte of the
/// payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset in the payload where decoding stopped.
    pub at: usize,
    /// What was expected there.
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at payload byte {}", self.reason, self.at)
    }
}

fn len_u32(what: &'static str, len: usize) -> Result<[u8; 4], TooLarge> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| TooLarge {
            what,
            len,
            max: u32::MAX as usize,
        })
}

/// Appends `e` as a whole record (docs: `record`) to `out`. On error `out` is left as it was.
///
/// # Errors
/// [`TooLarge`] if a count or length does not fit its field, or the payload exceeds
/// [`MAX_RECORD`].
pub fn encode_event(e: &Event, out: &mut Vec<u8>) -> Result<(), TooLarge> {
    let start = out.len();
    let r = encode_into(e, out, start);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn encode_into(e: &Event, out: &mut Vec<u8>, start: usize) -> Result<(), TooLarge> {
    out.extend_from_slice(&[0u8; 8]);
    match &e.dead_letter {
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&len_u32("dead-letter reason", r.len())?);
            out.extend_from_slice(r.as_bytes());
        }
        None => out.push(0),
    }
    let count = u16::try_from(e.headers.len()).map_err(|_| TooLarge {
        what: "header count",
        len: e.headers.len(),
        max: u16::MAX as usize,
    })?;
    out.extend_from_slice(&count.to_le_bytes());
    for (k, v) in &e.headers {
        out.extend_from_slice(&len_u32("header key", k.len())?);
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&len_u32("header value", v.len())?);
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&e.body);
    let payload = out.len() - start - 8;
    let payload_len = u32::try_from(payload)
        .ok()
        .filter(|n| *n <= MAX_RECORD)
        .ok_or(TooLarge {
            what: "record payload",
            len: payload,
            max: MAX_RECORD as usize,
        })?;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A cursor over a payload whose every step is bounds-checked.
struct Cursor<'a> {
    p: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, reason: &'static str) -> Result<&'a [u8], DecodeError> {
        let at = self.at;
        let s = at
            .checked_add(n)
            .and_then(|end| self.p.get(at..end))
            .ok_or(DecodeError { at, reason })?;
        self.at += n;
        Ok(s)
    }

    fn u32(&mut self, reason: &'static str) -> Result<usize, DecodeError> {
        let b = self.take(4, reason)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    }

    fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let n = self.u32(what)?;
        let at = self.at;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| DecodeError {
            at,
            reason: "string is not UTF-8",
        })
    }
}

/// Decodes a record payload (docs: `payload`).
///
/// # Errors
/// [`DecodeError`] saying what is malformed and where in the payload.
pub fn decode_event(p: &[u8]) -> Result<Event, DecodeError> {
    let mut c = Cursor { p, at: 0 };
    let dead_letter = match c.take(1, "missing flag byte")?[0] {
        0 => None,
        1 => Some(c.string("dead-letter reason runs past the payload")?),
        _ => {
            return Err(DecodeError {
                at: 0,
                reason: "flag byte is neither 0 nor 1",
            });
        }
    };
    let h = c.take(2, "missing header count")?;
    let nh = u16::from_le_bytes([h[0], h[1]]) as usize;
    // Each header takes at least 8 bytes: never reserve more than the payload can hold.
    let mut headers = Vec::with_capacity(nh.min(p.len() / 8));
    for _ in 0..nh {
        let k = c.string("header key runs past the payload")?;
        let v = c.string("header value runs past the payload")?;
        headers.push((k, v));
    }
    Ok(Event {
        headers,
        body: p[c.at..].to_vec(),
        dead_letter,
    })
}

/// What [`read_record`] found.
#[derive(Debug)]
pub(crate) enum Next {
    /// A whole, checksum-valid record's payload.
    Record(Vec<u8>),
    /// Fewer bytes than a record header remain: the clean end.
    End,
    /// A record whose length is out of bounds or whose checksum does not match.
    Bad(BadRecord),
}

/// Why a record was refused.
#[derive(Debug)]
pub(crate) enum BadRecord {
    /// The length field exceeds [`MAX_RECORD`].
    TooLong(u32),
    /// The record runs past the readable bytes (a torn tail).
    PastEnd { len: u32, limit: u64 },
    /// The checksum does not match.
    Checksum { expected: u32, got: u32 },
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadRecord::TooLong(n) => write!(f, "record length {n} exceeds {MAX_RECORD}"),
            BadRecord::PastEnd { len, limit } => write!(
                f,
                "record of {len} bytes runs past the end ({limit} bytes readable)"
            ),
            BadRecord::Checksum { expected, got } => {
                write!(f, "checksum expected {expected:#010x}, got {got:#010x}")
            }
        }
    }
}

/// Reads one record from `r`, which has `limit` readable bytes left.
pub(crate) fn read_record(r: &mut impl Read, limit: u64) -> std::io::Result<Next> {
    if limit < RECORD_HEADER {
        return Ok(Next::End);
    }
    let mut h = [0u8; 8];
    r.read_exact(&mut h)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len > MAX_RECORD {
        return Ok(Next::Bad(BadRecord::TooLong(len)));
    }
    if u64::from(len) + RECORD_HEADER > limit {
        return Ok(Next::Bad(BadRecord::PastEnd { len, limit }));
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p)?;
    let got = crc32fast::hash(&p);
    if got != crc {
        return Ok(Next::Bad(BadRecord::Checksum { expected: crc, got }));
    }
    Ok(Next::Record(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> Event {
        let mut e = Event::new(format!("line-{i}").into_bytes());
        e.set_header("host", "h".into());
        if i.is_multiple_of(7) {
            e.dead_letter = Some(format!("bad {i}"));
        }
        e
    }

    #[test]
    fn event_codec_round_trips() {
        for i in 0..20 {
            let mut b = Vec::new();
            encode_event(&ev(i), &mut b).unwrap();
            assert_eq!(decode_event(&b[8..]), Ok(ev(i)));
            let n = read_record(&mut &b[..], b.len() as u64).unwrap();
            assert!(matches!(n, Next::Record(p) if p == b[8..]));
        }
    }

    #[test]
    fn worked_example_of_the_format_doc_encodes_as_documented() {
        let mut b = Vec::new();
        encode_event(&Event::new(b"abc".to_vec()), &mut b).unwrap();
        let payload = [0u8, 0, 0, b'a', b'b', b'c'];
        assert_eq!(&b[..4], &6u32.to_le_bytes());
        assert_eq!(&b[4..8], &crc32fast::hash(&payload).to_le_bytes());
        assert_eq!(&b[8..], &payload);
    }

    #[test]
    fn every_byte_flip_is_a_checksum_or_length_error() {
        let mut b = Vec::new();
        encode_event(&ev(7), &mut b).unwrap();
        for i in 0..b.len() {
            for bit in [0x01u8, 0x80] {
                let mut m = b.clone();
                m[i] ^= bit;
                let n = read_record(&mut &m[..], m.len() as u64).unwrap();
                assert!(matches!(n, Next::Bad(_)), "flip of byte {i} bit {bit:#x}");
            }
        }
    }

    #[test]
    fn every_truncation_is_a_torn_record_not_a_record() {
        let mut b = Vec::new();
        encode_event(&ev(3), &mut b).unwrap();
        for cut in 0..b.len() {
            let n = read_record(&mut &b[..cut], cut as u64).unwrap();
            assert!(
                matches!(n, Next::End | Next::Bad(BadRecord::PastEnd { .. })),
                "cut at {cut}: {n:?}"
            );
        }
    }

    #[test]
    fn decode_errors_say_what_and_where() {
        let mut b = Vec::new();
        encode_event(&ev(1), &mut b).unwrap();
        let p = &b[8..];
        // The header count claims one more header than the payload holds.
        let mut m = p.to_vec();
        m[1] = 200;
        let e = decode_event(&m).unwrap_err();
        assert!(e.reason.contains("header"), "{e}");
        assert!(e.at > 2 && e.at <= m.len(), "{e}");
        assert_eq!(
            decode_event(&[9]).unwrap_err(),
            DecodeError {
                at: 0,
                reason: "flag byte is neither 0 nor 1"
            }
        );
        assert_eq!(decode_event(&[]).unwrap_err().reason, "missing flag byte");
    }

    #[test]
    fn counts_and_lengths_that_do_not_fit_are_refused_not_wrapped() {
        let mut e = Event::new(b"x".to_vec());
        e.headers = (0..=u16::MAX as usize)
            .map(|_| (String::new(), String::new()))
            .collect();
        let mut out = vec![1, 2, 3];
        let err = encode_event(&e, &mut out).unwrap_err();
        assert_eq!(err.what, "header count");
        assert_eq!(out, [1, 2, 3], "nothing of a refused event is left behind");
        let big = Event::new(vec![b'a'; MAX_RECORD as usize]);
        assert_eq!(
            encode_event(&big, &mut out).unwrap_err().what,
            "record payload"
        );
    }
}
