//! WAL segment files: names, the 8-byte header, and recovery of one segment (replay with
//! torn-tail truncation), as specified in `storage/docs/wal_format.md` §1 and §6.
//!
//! This module does not append; `writer` owns the open segment.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::record::{MAX_RECORD_BYTES, WalEntry};
use crate::cell::SeqNo;
use crate::coding::{FrameRead, read_frame, valid_frame_after};
use crate::error::{Error, Result};
use crate::fs::remove_file_synced;

/// Segment magic (wal_format.md §1).
pub const SEGMENT_MAGIC: &[u8; 6] = b"SLWAL\0";
/// Segment format version (wal_format.md §1).
pub const SEGMENT_VERSION: u16 = 1;
/// Header size in bytes (wal_format.md §1).
pub const HEADER_BYTES: usize = 8;

/// The 8 header bytes every segment starts with.
pub fn header() -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..6].copy_from_slice(SEGMENT_MAGIC);
    h[6..].copy_from_slice(&SEGMENT_VERSION.to_le_bytes());
    h
}

/// `wal-<first_seq:020>.log`.
pub fn segment_name(first_seq: SeqNo) -> String {
    format!("wal-{first_seq:020}.log")
}

/// Parses a segment file name; `None` for any other file.
pub fn parse_segment_name(name: &str) -> Option<SeqNo> {
    let digits = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments in `dir`, sorted by first sequence number.
///
/// # Errors
/// [`Error::Io`] if the directory cannot be listed.
pub fn list_segments(dir: &Path) -> Result<Vec<(SeqNo, PathBuf)>> {
    let mut out = Vec::new();
    for ent in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let ent = ent.map_err(|e| Error::io(dir, e))?;
        let name = ent.file_name();
        if let Some(seq) = name.to_str().and_then(parse_segment_name) {
            out.push((seq, ent.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What replaying one segment found.
#[derive(Debug)]
pub struct SegmentReplay {
    /// Records kept.
    pub records: usize,
    /// Highest sequence number among the kept records (0 if none).
    pub max_seq: SeqNo,
    /// False if the segment was deleted because nothing valid remained (last segment only).
    pub kept: bool,
}

/// Replays the segment at `path`, pushing its entries to `out`. For the last segment a
/// torn tail is truncated (and an empty result deletes the file); anywhere else any
/// damage is an error naming the file and offset (wal_format.md §6).
///
/// # Errors
/// [`Error::Corruption`] / [`Error::ChecksumMismatch`] for damage that is not a torn tail,
/// [`Error::Io`] for I/O failures.
pub fn replay_segment(
    path: &Path,
    is_last: bool,
    out: &mut Vec<WalEntry>,
) -> Result<SegmentReplay> {
    let data = Bytes::from(std::fs::read(path).map_err(|e| Error::io(path, e))?);
    let corrupt = |offset: usize, reason: String| Error::Corruption {
        file: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if data.len() < HEADER_BYTES {
        if is_last {
            tracing::warn!(file = %path.display(), len = data.len(), "WAL segment with a torn header; deleting it");
            remove_file_synced(path)?;
            return Ok(SegmentReplay {
                records: 0,
                max_seq: 0,
                kept: false,
            });
        }
        return Err(corrupt(
            0,
            format!("segment shorter than its {HEADER_BYTES}-byte header"),
        ));
    }
    if data[..HEADER_BYTES] != header() {
        return Err(corrupt(0, "bad segment magic or version".to_string()));
    }
    let accept = |p: &[u8]| WalEntry::decode(&Bytes::copy_from_slice(p)).is_ok();
    // A real record starts with the version byte and carries a seq near this segment's
    // (its name gives the first): random bytes pass this with odds around 2^-40.
    let first_seq = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_name)
        .unwrap_or(0);
    let plausible = |p: &[u8]| {
        p.len() >= 10
            && p[0] == super::record::RECORD_VERSION
            && p.get(1..9).is_some_and(|s| {
                let mut a = [0u8; 8];
                a.copy_from_slice(s);
                u64::from_le_bytes(a).abs_diff(first_seq) < 1 << 32
            })
    };
    let mut off = HEADER_BYTES;
    let mut records = 0;
    let mut max_seq = 0;
    loop {
        let damage = match read_frame(&data, off, MAX_RECORD_BYTES) {
            FrameRead::End => break,
            FrameRead::Ok { payload, next } => {
                let entry = WalEntry::decode(&data.slice_ref(payload)).map_err(|e| {
                    e.into_error(path, (off + crate::coding::FRAME_HEADER_BYTES) as u64)
                })?;
                max_seq = max_seq.max(entry.max_seq());
                out.push(entry);
                records += 1;
                off = next;
                continue;
            }
            FrameRead::Truncated { reason } => reason,
            FrameRead::TooLong { len } => {
                format!("record length {len} exceeds limit {MAX_RECORD_BYTES}")
            }
            FrameRead::BadChecksum { expected, got } => {
                if !is_last
                    || valid_frame_after(&data, off + 1, MAX_RECORD_BYTES, plausible, accept)
                        .is_some()
                {
                    return Err(Error::ChecksumMismatch {
                        file: path.to_path_buf(),
                        offset: off as u64,
                        expected,
                        got,
                    });
                }
                format!("checksum mismatch (expected {expected:#010x}, got {got:#010x})")
            }
        };
        // A damaged frame: a torn tail only if this is the last segment and nothing valid
        // follows it (wal_format.md §6, invariant 5).
        if !is_last {
            return Err(corrupt(
                off,
                format!("{damage} in a segment that is not the last"),
            ));
        }
        if let Some(later) = valid_frame_after(&data, off + 1, MAX_RECORD_BYTES, plausible, accept)
        {
            return Err(corrupt(
                off,
                format!("{damage}, but a valid record follows at offset {later}"),
            ));
        }
        tracing::warn!(file = %path.display(), offset = off, reason = %damage, "truncating torn WAL tail");
        // IMPORTANT: cut the garbage so appends after recovery never follow it.
        crate::fs::truncate_synced(path, off as u64)?;
        break;
    }
    if is_last && records == 0 {
        remove_file_synced(path)?;
        return Ok(SegmentReplay {
            records,
            max_seq,
            kept: false,
        });
    }
    Ok(SegmentReplay {
        records,
        max_seq,
        kept: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_seq() {
        assert_eq!(segment_name(7), "wal-00000000000000000007.log");
        assert_eq!(parse_segment_name(&segment_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_segment_name("wal-7.log"), None);
        assert_eq!(parse_segment_name("wal-0000000000000000000x.log"), None);
        assert!(segment_name(9) < segment_name(10));
    }
}
