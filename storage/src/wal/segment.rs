//! WAL segment files: names, the 8-byte header, and recovery of one segment (replay with
//! torn-tail truncation through the shared `log` recovery) and the sync marker, as
//! specified in `storage/docs/wal_format.md` §1, §3 and §6.
//!
//! This module does not append; `writer` owns the open segment.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::record::{MAX_RECORD_BYTES, RECORD_VERSION, WalEntry};
use crate::cell::SeqNo;
use crate::error::Result;
use crate::fs::{Fs, remove_file_synced};
use crate::log::{self, LogSpec, RecoveryMode, TornTail};

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
pub fn list_segments(fs: &dyn Fs, dir: &Path) -> Result<Vec<(SeqNo, PathBuf)>> {
    let mut out = Vec::new();
    for path in crate::fs::read_dir(fs, dir)? {
        if let Some(seq) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_segment_name)
        {
            out.push((seq, path));
        }
    }
    out.sort();
    Ok(out)
}

/// First byte of a sync-marker payload (wal_format.md §3); a record starts with its version.
pub const MARKER_TAG: u8 = 0x4d;
/// Payload length of a sync marker: the tag and the synced offset.
pub const MARKER_BYTES: usize = 9;

/// The payload of a sync marker: "this segment was durable up to `synced_upto`".
pub fn marker_payload(synced_upto: u64) -> [u8; MARKER_BYTES] {
    let mut p = [0u8; MARKER_BYTES];
    p[0] = MARKER_TAG;
    p[1..].copy_from_slice(&synced_upto.to_le_bytes());
    p
}

fn marker_value(p: &[u8]) -> Option<u64> {
    if p.len() != MARKER_BYTES || p[0] != MARKER_TAG {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(&p[1..]);
    Some(u64::from_le_bytes(a))
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
    /// The torn tail that was cut, if any.
    pub torn: Option<TornTail>,
}

/// Replays the segment at `path`, pushing its entries to `out`, with the shared log
/// recovery (`log_format.md` §4): in the last segment a torn tail that no later sync
/// marker confirms is truncated (and a segment left empty is deleted); anything else is an
/// error naming the file and offset.
///
/// # Errors
/// [`Error::Corruption`] / [`Error::ChecksumMismatch`] for damage that is not a torn tail,
/// [`Error::Io`] for I/O failures.
pub fn replay_segment(
    fs: &dyn Fs,
    path: &Path,
    is_last: bool,
    mode: RecoveryMode,
    out: &mut Vec<WalEntry>,
) -> Result<SegmentReplay> {
    // A real record starts with the version byte and carries a seq near this segment's
    // (its name gives the first): random bytes pass this with odds around 2^-40.
    let first_seq = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(parse_segment_name)
        .unwrap_or(0);
    let plausible = |p: &[u8]| {
        marker_value(p).is_some()
            || (p.len() >= 10
                && p[0] == RECORD_VERSION
                && p.get(1..9).is_some_and(|s| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(s);
                    u64::from_le_bytes(a).abs_diff(first_seq) < 1 << 32
                }))
    };
    let accept = |p: &[u8]| {
        marker_value(p).is_some() || WalEntry::decode(&Bytes::copy_from_slice(p)).is_ok()
    };
    let confirms = |_at: usize, p: &[u8]| marker_value(p).unwrap_or(0);
    let spec = LogSpec {
        header: &header(),
        max_payload: MAX_RECORD_BYTES,
        plausible: &plausible,
        accept: &accept,
        confirms: &confirms,
    };
    let rec = log::recover(fs, path, &spec, is_last, mode)?;
    let mut records = 0;
    let mut max_seq = 0;
    for (off, range) in &rec.frames {
        let payload = rec.data.slice(range.clone());
        if marker_value(&payload).is_some() {
            continue;
        }
        let entry = WalEntry::decode(&payload)
            .map_err(|e| e.into_error(path, (off + crate::coding::FRAME_HEADER_BYTES) as u64))?;
        max_seq = max_seq.max(entry.max_seq());
        out.push(entry);
        records += 1;
    }
    if is_last && records == 0 {
        remove_file_synced(fs, path)?;
        return Ok(SegmentReplay {
            records,
            max_seq,
            kept: false,
            torn: rec.torn,
        });
    }
    Ok(SegmentReplay {
        records,
        max_seq,
        kept: true,
        torn: rec.torn,
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
