//! The commit record of a bulk load (`storage/docs/bulk_load.md` §2): which staged part
//! becomes which file of which region. Its presence in a staging directory is the commit.
//!
//! This module encodes and decodes; it does no I/O (`db::bulk` writes and reads it).

use crate::coding::{DecodeError, FrameRead, Reader, put_bytes, put_frame, put_varint, read_frame};

/// Magic bytes opening a commit record (§2).
pub const COMMIT_MAGIC: &[u8; 8] = b"SLBULK\0\0";
/// Commit record format version (§2).
pub const COMMIT_VERSION: u8 = 1;
/// Largest payload a commit record may declare (§2).
pub const MAX_COMMIT_BYTES: usize = 1 << 20;

/// One part of a committed load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitPart {
    /// Names the staged file `part-<index:06>.hfile`.
    pub index: u64,
    /// The family the part belongs to.
    pub family: String,
    /// The region that adopts it.
    pub region: u64,
    /// The id it takes in that region.
    pub file_id: u64,
}

/// The commit record of one load.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommitRecord {
    /// The table loaded.
    pub table: String,
    /// Every part of the load.
    pub parts: Vec<CommitPart>,
}

impl CommitRecord {
    /// Encodes the whole file (§2).
    pub fn encode(&self) -> Vec<u8> {
        let mut payload = Vec::new();
        put_bytes(&mut payload, self.table.as_bytes());
        put_varint(&mut payload, self.parts.len() as u64);
        for p in &self.parts {
            put_varint(&mut payload, p.index);
            put_bytes(&mut payload, p.family.as_bytes());
            put_varint(&mut payload, p.region);
            put_varint(&mut payload, p.file_id);
        }
        let mut out = COMMIT_MAGIC.to_vec();
        out.push(COMMIT_VERSION);
        put_frame(&mut out, &payload);
        out
    }

    /// Decodes a whole file.
    ///
    /// # Errors
    /// A [`DecodeError`] with the offset of the first problem: bad magic or version, a bad
    /// or torn frame, more parts than `MAX_PARTS`, non-UTF-8 names, trailing bytes.
    pub fn decode(buf: &[u8]) -> Result<CommitRecord, DecodeError> {
        let head = COMMIT_MAGIC.len();
        if buf.len() < head + 1 || &buf[..head] != COMMIT_MAGIC {
            return Err(DecodeError::new(
                0,
                "not a bulk-load commit record (bad magic)",
            ));
        }
        if buf[head] != COMMIT_VERSION {
            return Err(DecodeError::new(
                head,
                format!("unknown commit record version {}", buf[head]),
            ));
        }
        let at = head + 1;
        let (payload, next) = match read_frame(buf, at, MAX_COMMIT_BYTES) {
            FrameRead::Ok { payload, next } => (payload, next),
            FrameRead::End => return Err(DecodeError::new(at, "commit record has no frame")),
            FrameRead::Truncated { reason } => return Err(DecodeError::new(at, reason)),
            FrameRead::BadChecksum { expected, got } => {
                return Err(DecodeError::new(
                    at,
                    format!("checksum mismatch: expected {expected:#010x}, got {got:#010x}"),
                ));
            }
            FrameRead::TooLong { len } => {
                return Err(DecodeError::new(
                    at,
                    format!("commit record declares {len} bytes, limit {MAX_COMMIT_BYTES}"),
                ));
            }
        };
        if next != buf.len() {
            return Err(DecodeError::new(
                next,
                "trailing bytes after the commit frame",
            ));
        }
        let base = at + crate::coding::FRAME_HEADER_BYTES;
        let shift = |d: DecodeError| DecodeError::new(base + d.offset, d.reason);
        let mut r = Reader::new(payload);
        let text = |r: &mut Reader<'_>, what: &str| -> Result<String, DecodeError> {
            let at = r.pos();
            let b = r.bytes(what)?;
            String::from_utf8(b.to_vec())
                .map_err(|_| DecodeError::new(at, format!("{what} is not UTF-8")))
        };
        let table = text(&mut r, "table").map_err(shift)?;
        let count = r
            .varint_usize("part count", super::MAX_PARTS)
            .map_err(shift)?;
        let mut parts = Vec::with_capacity(count);
        for _ in 0..count {
            parts.push(CommitPart {
                index: r.varint("part index").map_err(shift)?,
                family: text(&mut r, "family").map_err(shift)?,
                region: r.varint("region").map_err(shift)?,
                file_id: r.varint("file id").map_err(shift)?,
            });
        }
        if !r.is_empty() {
            return Err(DecodeError::new(
                base + r.pos(),
                "trailing bytes in the commit payload",
            ));
        }
        Ok(CommitRecord { table, parts })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> CommitRecord {
        CommitRecord {
            table: "t".into(),
            parts: vec![CommitPart {
                index: 0,
                family: "f".into(),
                region: 1,
                file_id: 7,
            }],
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn doc_example_bytes() {
        // The worked example of bulk_load.md §2, checksum included.
        assert_eq!(
            hex(&example().encode()),
            "53 4c 42 55 4c 4b 00 00 01 87 e3 91 11 08 00 00 00 01 74 01 00 01 66 01 07"
        );
    }

    #[test]
    fn round_trip() {
        let mut r = example();
        r.parts.push(CommitPart {
            index: 300,
            family: "cf1".into(),
            region: 12,
            file_id: 1 << 40,
        });
        assert_eq!(CommitRecord::decode(&r.encode()).unwrap(), r);
        let empty = CommitRecord::default();
        assert_eq!(CommitRecord::decode(&empty.encode()).unwrap(), empty);
    }

    #[test]
    fn every_byte_flip_is_an_error() {
        let enc = example().encode();
        for p in 0..enc.len() {
            for bit in 0..8 {
                let mut m = enc.clone();
                m[p] ^= 1 << bit;
                assert!(
                    CommitRecord::decode(&m).is_err(),
                    "flip of bit {bit} at {p} accepted"
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let enc = example().encode();
        for n in 0..enc.len() {
            assert!(
                CommitRecord::decode(&enc[..n]).is_err(),
                "cut at {n} accepted"
            );
        }
        let mut longer = enc.clone();
        longer.push(0);
        assert!(
            CommitRecord::decode(&longer).is_err(),
            "trailing byte accepted"
        );
    }
}
