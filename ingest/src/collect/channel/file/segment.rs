//! The file channel's files on disk: segment names, creating a segment, scanning one for
//! its whole records, and reading and writing the checkpoint, all through the file-system
//! seam. Formats: `ingest/docs/file_channel_format.md`.
//!
//! Not the channel's logic: when to roll, delete or checkpoint is decided in the parent
//! module.

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use speedlayer_vfs::{File, Fs, OpenMode, durable};

use super::MAGIC_LEN;
use super::record::{CHECKPOINT_MAGIC, Next, RECORD_HEADER, SEGMENT_MAGIC, read_record};
use crate::error::{Error, Result};

/// An open segment read front to back from an offset.
pub(super) struct SegmentReader {
    pub(super) file: Box<dyn File>,
    pub(super) pos: u64,
}

impl Read for SegmentReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

pub(super) fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.log"))
}

pub(super) fn seg_id(path: &Path) -> Option<u64> {
    let n = path.file_name()?.to_str()?;
    n.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
}

/// What a scan of one segment found.
pub(super) struct Scan {
    /// Offset after the last whole, checksum-valid record (0: no valid magic).
    pub(super) valid: u64,
    /// Records starting at or after the scan's `from` offset.
    pub(super) records: usize,
    /// The file's length.
    pub(super) size: u64,
}

/// Scans the segment at `path` from its magic to the first bad record, counting the
/// records at or after `from`.
pub(super) fn scan_segment(fs: &dyn Fs, path: &Path, from: u64) -> Result<Scan> {
    let f = fs
        .open(path, OpenMode::Read)
        .map_err(|e| Error::io("open", path, e))?;
    let size = f.len().map_err(|e| Error::io("stat", path, e))?;
    let mut magic = [0u8; 8];
    if size < MAGIC_LEN || f.read_exact_at(&mut magic, 0).is_err() || &magic != SEGMENT_MAGIC {
        return Ok(Scan {
            valid: 0,
            records: 0,
            size,
        });
    }
    let mut r = BufReader::with_capacity(
        1 << 20,
        SegmentReader {
            file: f,
            pos: MAGIC_LEN,
        },
    );
    let mut at = MAGIC_LEN;
    let mut records = 0;
    while let Ok(Next::Record(p)) = read_record(&mut r, size - at) {
        if at >= from {
            records += 1;
        }
        at += RECORD_HEADER + p.len() as u64;
    }
    Ok(Scan {
        valid: at,
        records,
        size,
    })
}

/// The checkpoint, or `None` if absent or unreadable (start at the oldest segment).
pub(super) fn read_checkpoint(fs: &dyn Fs, path: &Path, channel: &str) -> Option<(u64, u64)> {
    let b = match fs.read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(channel, path = %path.display(), error = %e, "unreadable checkpoint; re-reading from the oldest segment");
            return None;
        }
    };
    let decoded = (|| {
        if b.len() != 28 || &b[..8] != CHECKPOINT_MAGIC {
            return None;
        }
        let crc = u32::from_le_bytes(b[24..28].try_into().ok()?);
        if crc32fast::hash(&b[..24]) != crc {
            return None;
        }
        let seg = u64::from_le_bytes(b[8..16].try_into().ok()?);
        let off = u64::from_le_bytes(b[16..24].try_into().ok()?);
        Some((seg, off))
    })();
    if decoded.is_none() {
        tracing::warn!(channel, path = %path.display(), "corrupt checkpoint; re-reading from the oldest segment");
    }
    decoded
}

pub(super) fn encode_checkpoint(at: (u64, u64)) -> Vec<u8> {
    let mut b = Vec::with_capacity(28);
    b.extend_from_slice(CHECKPOINT_MAGIC);
    b.extend_from_slice(&at.0.to_le_bytes());
    b.extend_from_slice(&at.1.to_le_bytes());
    let crc = crc32fast::hash(&b);
    b.extend_from_slice(&crc.to_le_bytes());
    b
}

/// A failure creating a segment, with whether it was a full device.
pub(super) struct CreateFailed(speedlayer_vfs::Error);

impl CreateFailed {
    pub(super) fn into_error(self, channel: &str) -> Error {
        if self.0.is_no_space() {
            Error::NoSpace {
                channel: channel.to_owned(),
                path: self.0.path,
                source: self.0.source,
            }
        } else {
            self.0.into()
        }
    }
}

/// Creates the segment `path` holding only the magic, synced with its directory entry.
/// A leftover of an earlier failed attempt at the same id is replaced.
pub(super) fn create_segment(
    fs: &dyn Fs,
    dir: &Path,
    path: &Path,
) -> std::result::Result<Box<dyn File>, CreateFailed> {
    let err = |op, e| CreateFailed(speedlayer_vfs::Error::new(op, path, e));
    let f = fs
        .open(path, OpenMode::CreateTruncate)
        .map_err(|e| err("create", e))?;
    f.append(SEGMENT_MAGIC).map_err(|e| err("write", e))?;
    f.sync_data().map_err(|e| err("fsync", e))?;
    // IMPORTANT: the name must survive a power cut before a record in it is acknowledged.
    durable::sync_dir(fs, dir).map_err(CreateFailed)?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use speedlayer_vfs::RealFs;

    use super::*;

    #[test]
    fn checkpoint_round_trips_as_the_format_doc_shows_and_every_byte_flip_is_refused() {
        let b = encode_checkpoint((3, 8));
        let mut doc = b"SLFCCKP1".to_vec();
        doc.extend_from_slice(&[3, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]);
        doc.extend_from_slice(&[0x73, 0xd2, 0xfe, 0x3d]);
        assert_eq!(b, doc);
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("checkpoint");
        std::fs::write(&p, &b).unwrap();
        assert_eq!(read_checkpoint(&RealFs, &p, "c"), Some((3, 8)));
        for i in 0..b.len() {
            let mut m = b.clone();
            m[i] ^= 0x10;
            std::fs::write(&p, &m).unwrap();
            assert_eq!(read_checkpoint(&RealFs, &p, "c"), None, "flip at byte {i}");
        }
        std::fs::write(&p, &b[..27]).unwrap();
        assert_eq!(read_checkpoint(&RealFs, &p, "c"), None);
    }
}
