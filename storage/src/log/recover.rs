//! Reading a log file back: every whole frame after the header, and the decision about a
//! damaged tail (`storage/docs/log_format.md` §4).

use std::ops::Range;
use std::path::Path;

use bytes::Bytes;
use speedlayer_vfs::Fs;

use crate::coding::{FRAME_HEADER_BYTES, FrameRead, read_frame};
use crate::error::{Error, Result};

/// How recovery treats damage (RocksDB's `wal_recovery_mode`, reduced to the two modes
/// that never skip a record in the middle).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecoveryMode {
    /// Damage at the end of the last file that no later frame proves was synced is a torn
    /// tail from a crash or power cut: it is cut away, logged and counted, and the file
    /// opens. Damage anywhere else, or damage that a later frame proves was synced, is
    /// refused with the file and offset. The default: after any power cut the store opens.
    #[default]
    TolerateTornTail,
    /// Any damage, even a torn tail, is refused. For operators who want to inspect every
    /// crash by hand (RocksDB's `kAbsoluteConsistency`).
    Strict,
}

impl std::str::FromStr for RecoveryMode {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "tolerate-torn-tail" => Ok(RecoveryMode::TolerateTornTail),
            "strict" => Ok(RecoveryMode::Strict),
            other => Err(format!(
                "unknown recovery mode '{other}' (expected 'tolerate-torn-tail' or 'strict')"
            )),
        }
    }
}

/// What a log format tells the recovery loop about its frames.
pub struct LogSpec<'a> {
    /// The header every file of this log starts with.
    pub header: &'a [u8],
    /// Largest payload a frame may declare.
    pub max_payload: usize,
    /// A cheap pre-filter for candidate frames when scanning past damage (version byte,
    /// sequence range); keeps the scan linear over garbage.
    pub plausible: &'a dyn Fn(&[u8]) -> bool,
    /// Whether a checksummed payload decodes as a frame of this log.
    pub accept: &'a dyn Fn(&[u8]) -> bool,
    /// The offset up to which the file was durable when the valid frame at `offset` with
    /// `payload` was written (0 if the frame vouches for nothing).
    pub confirms: &'a dyn Fn(usize, &[u8]) -> u64,
}

/// A damaged tail that recovery cut away.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// Where the damage starts (the file's new length).
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
    /// What was wrong at `offset`.
    pub reason: String,
}

/// One file read back.
#[derive(Debug)]
pub struct Recovered {
    /// The file's bytes (frames are ranges of it, so payloads need no copy).
    pub data: Bytes,
    /// Each whole frame: its offset and its payload's range in `data`.
    pub frames: Vec<(usize, Range<usize>)>,
    /// The tail that was cut, if any.
    pub torn: Option<TornTail>,
    /// Length of the file after recovery.
    pub len: u64,
}

/// Reads the log file `path` through `fs`. A file shorter than its header is `Ok` with no
/// frames when `is_last` (a crash right after creating it; the caller decides whether to
/// delete it), and corruption otherwise. With [`RecoveryMode::TolerateTornTail`] and
/// `is_last`, a damaged tail that no later frame confirms is truncated on disk (and the
/// truncation synced) before this returns.
///
/// # Errors
/// [`Error::ChecksumMismatch`] or [`Error::Corruption`] naming the file and offset for
/// damage that is not a torn tail; [`Error::Io`] for I/O failures.
pub fn recover(
    fs: &dyn Fs,
    path: &Path,
    spec: &LogSpec<'_>,
    is_last: bool,
    mode: RecoveryMode,
) -> Result<Recovered> {
    let data = Bytes::from(fs.read(path).map_err(|e| Error::io(path, e))?);
    let corrupt = |offset: usize, reason: String| Error::Corruption {
        file: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    let hlen = spec.header.len();
    if data.len() < hlen {
        if is_last && mode == RecoveryMode::TolerateTornTail && spec.header.starts_with(&data) {
            let len = data.len() as u64;
            return Ok(Recovered {
                data,
                frames: Vec::new(),
                torn: Some(TornTail {
                    offset: 0,
                    bytes: len,
                    reason: format!("file shorter than its {hlen}-byte header"),
                }),
                len: 0,
            });
        }
        return Err(corrupt(
            0,
            format!(
                "file of {} bytes is shorter than its {hlen}-byte header",
                data.len()
            ),
        ));
    }
    if data[..hlen] != *spec.header {
        return Err(corrupt(0, "bad magic or version in the header".into()));
    }
    let mut frames = Vec::new();
    let mut off = hlen;
    let damage = loop {
        match read_frame(&data, off, spec.max_payload) {
            FrameRead::End => {
                return Ok(Recovered {
                    len: data.len() as u64,
                    data,
                    frames,
                    torn: None,
                });
            }
            FrameRead::Ok { payload, next } => {
                let start = off + FRAME_HEADER_BYTES;
                frames.push((off, start..start + payload.len()));
                off = next;
            }
            FrameRead::Truncated { reason } => break Damage::Other(reason),
            FrameRead::TooLong { len } => {
                break Damage::Other(format!(
                    "frame length {len} exceeds the limit {}",
                    spec.max_payload
                ));
            }
            FrameRead::BadChecksum { expected, got } => break Damage::Checksum { expected, got },
        }
    };
    let refuse = |why: String| match &damage {
        Damage::Checksum { expected, got } => Error::ChecksumMismatch {
            file: path.to_path_buf(),
            offset: off as u64,
            expected: *expected,
            got: *got,
        },
        d => corrupt(off, format!("{}{why}", d.describe())),
    };
    if mode == RecoveryMode::Strict {
        return Err(refuse(String::new()));
    }
    if !is_last {
        return Err(refuse(" in a file that is not the last of its log".into()));
    }
    if let Some(later) = confirmed_after(&data, off, spec) {
        return Err(refuse(format!(
            ", but the valid frame at offset {later} shows the log was synced past it"
        )));
    }
    let reason = damage.describe();
    tracing::warn!(file = %path.display(), offset = off, reason = %reason, "truncating a torn log tail");
    // IMPORTANT: cut the garbage so appends after recovery never follow it.
    speedlayer_vfs::durable::truncate_synced(fs, path, off as u64)?;
    Ok(Recovered {
        torn: Some(TornTail {
            offset: off as u64,
            bytes: (data.len() - off) as u64,
            reason,
        }),
        len: off as u64,
        data,
        frames,
    })
}

enum Damage {
    Checksum { expected: u32, got: u32 },
    Other(String),
}

impl Damage {
    fn describe(&self) -> String {
        match self {
            Damage::Checksum { expected, got } => {
                format!("checksum mismatch (expected {expected:#010x}, got {got:#010x})")
            }
            Damage::Other(r) => r.clone(),
        }
    }
}

/// The offset of the first valid frame after `damage` that confirms the log was durable
/// beyond `damage`, if any.
fn confirmed_after(data: &[u8], damage: usize, spec: &LogSpec<'_>) -> Option<usize> {
    let mut from = damage + 1;
    while let Some(at) =
        crate::coding::valid_frame_after(data, from, spec.max_payload, spec.plausible, spec.accept)
    {
        if let FrameRead::Ok { payload, next } = read_frame(data, at, spec.max_payload) {
            if (spec.confirms)(at, payload) > damage as u64 {
                return Some(at);
            }
            from = next;
        } else {
            from = at + 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coding::put_frame;
    use speedlayer_vfs::RealFs;

    const H: &[u8] = b"TESTLOG\x01";

    /// Frames are "d<byte>" data or "m<u64>" markers confirming an offset.
    fn spec() -> LogSpec<'static> {
        LogSpec {
            header: H,
            max_payload: 1 << 20,
            plausible: &|p: &[u8]| matches!(p.first(), Some(b'd' | b'm')),
            accept: &|p: &[u8]| {
                p.first() == Some(&b'd') || (p.first() == Some(&b'm') && p.len() == 9)
            },
            confirms: &|_, p: &[u8]| {
                if p.first() == Some(&b'm') && p.len() == 9 {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&p[1..]);
                    u64::from_le_bytes(a)
                } else {
                    0
                }
            },
        }
    }

    fn marker(v: u64) -> Vec<u8> {
        let mut p = vec![b'm'];
        p.extend_from_slice(&v.to_le_bytes());
        p
    }

    fn file(frames: &[Vec<u8>]) -> (Vec<u8>, Vec<usize>) {
        let mut b = H.to_vec();
        let mut offs = Vec::new();
        for f in frames {
            offs.push(b.len());
            put_frame(&mut b, f);
        }
        (b, offs)
    }

    fn run(bytes: &[u8], is_last: bool, mode: RecoveryMode) -> (Result<Recovered>, Vec<u8>) {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        std::fs::write(&p, bytes).unwrap();
        let r = recover(&RealFs, &p, &spec(), is_last, mode);
        (r, std::fs::read(&p).unwrap())
    }

    #[test]
    fn doc_example_marker_bytes() {
        let mut frame = Vec::new();
        put_frame(&mut frame, &crate::wal::marker_payload(46));
        let hex: Vec<String> = frame.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "5e d8 c0 4b 09 00 00 00 4d 2e 00 00 00 00 00 00 00"
        );
    }

    #[test]
    fn an_unconfirmed_damaged_tail_is_cut_even_with_valid_frames_after_it() {
        let (mut b, offs) = file(&[b"d1".to_vec(), b"d2".to_vec(), b"d3".to_vec()]);
        b[offs[1] + FRAME_HEADER_BYTES] ^= 0xff; // d2 damaged, d3 valid but unsynced
        let (r, after) = run(&b, true, RecoveryMode::TolerateTornTail);
        let r = r.unwrap();
        assert_eq!(r.frames.len(), 1);
        assert_eq!(r.torn.as_ref().unwrap().offset, offs[1] as u64);
        assert_eq!(after.len(), offs[1]);
    }

    #[test]
    fn damage_a_later_marker_confirms_is_refused_with_its_offset() {
        let (mut b, offs) = file(&[b"d1".to_vec(), b"d2".to_vec()]);
        let end = b.len() as u64;
        put_frame(&mut b, &marker(end)); // "synced up to the end of d2"
        b[offs[1] + FRAME_HEADER_BYTES] ^= 0xff;
        let (r, after) = run(&b, true, RecoveryMode::TolerateTornTail);
        match r.unwrap_err() {
            Error::ChecksumMismatch { offset, .. } => assert_eq!(offset, offs[1] as u64),
            e => panic!("{e}"),
        }
        assert_eq!(after, b, "a refused file is not touched");
    }

    #[test]
    fn a_marker_confirming_only_earlier_bytes_does_not_make_damage_corruption() {
        let (mut b, offs) = file(&[b"d1".to_vec(), b"d2".to_vec()]);
        put_frame(&mut b, &marker(offs[1] as u64)); // synced only up to d2's start
        b[offs[1] + 3] ^= 0xff; // inside d2's header
        let (r, _) = run(&b, true, RecoveryMode::TolerateTornTail);
        assert_eq!(r.unwrap().frames.len(), 1);
    }

    #[test]
    fn strict_mode_and_earlier_files_refuse_any_damage() {
        let (mut b, _) = file(&[b"d1".to_vec()]);
        b.extend_from_slice(&[1, 2, 3]);
        assert!(run(&b, true, RecoveryMode::Strict).0.is_err());
        assert!(run(&b, false, RecoveryMode::TolerateTornTail).0.is_err());
        let (r, after) = run(&b, true, RecoveryMode::TolerateTornTail);
        assert_eq!(r.unwrap().torn.unwrap().bytes, 3);
        assert_eq!(after.len(), b.len() - 3);
    }

    #[test]
    fn every_truncation_keeps_exactly_the_whole_frames_before_the_cut() {
        let frames: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'd'; 3 + i as usize]).collect();
        let (b, offs) = file(&frames);
        for cut in H.len()..=b.len() {
            let (r, _) = run(&b[..cut], true, RecoveryMode::TolerateTornTail);
            let whole = offs
                .iter()
                .zip(&frames)
                .filter(|(o, f)| **o + FRAME_HEADER_BYTES + f.len() <= cut)
                .count();
            assert_eq!(r.unwrap().frames.len(), whole, "cut at {cut}");
        }
        let (r, _) = run(&b[..3], true, RecoveryMode::TolerateTornTail);
        assert_eq!(
            r.unwrap().len,
            0,
            "a torn header is a torn tail of the last file"
        );
        assert!(
            run(&b[..3], false, RecoveryMode::TolerateTornTail)
                .0
                .is_err()
        );
    }

    #[test]
    fn zeroed_pages_before_valid_unconfirmed_frames_are_a_torn_tail() {
        let frames: Vec<Vec<u8>> = (0..50u8).map(|_| vec![b'd'; 200]).collect();
        let (mut b, offs) = file(&frames);
        let start = offs[10];
        b[start..start + 4096].fill(0);
        let (r, _) = run(&b, true, RecoveryMode::TolerateTornTail);
        assert_eq!(r.unwrap().frames.len(), 10);
    }
}
