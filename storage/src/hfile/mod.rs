//! HFiles: immutable sorted files of one store's cells — lz4/CRC32 data blocks, a block
//! index, a bloom filter, file info and a fixed trailer. Format:
//! `storage/docs/hfile_format.md`.
//!
//! This module defines the per-family file options ([`Compression`], [`BloomType`],
//! [`FileOptions`]), the [`FileInfo`] summary and the [`Trailer`]; [`HFileWriter`] builds a
//! file, [`HFileReader`] reads one through the shared [`BlockCache`](crate::cache::BlockCache).
//! It does not decide which files exist; the manifest does.

pub mod block;
pub mod bloom;
pub mod index;
mod reader;
mod writer;

pub use reader::{HFileCursor, HFileIter, HFileReader};
pub use writer::{HFileWriter, MAX_TARGET_BLOCK};

use crate::cell::{CellKey, SeqNo, Timestamp};
use crate::coding::{DecodeError, Reader, put_u32, put_u64, put_varint};
use index::{put_key, read_key};

/// Block compression of a family's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Blocks stored as is.
    None,
    /// Each data block lz4-compressed (lz4_flex block format) when that saves ≥ 1/8.
    #[default]
    Lz4,
}

/// Which keys a family's bloom filters hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BloomType {
    /// No bloom filter: every get reads the file's index.
    None,
    /// Rows: skips files that lack the row.
    #[default]
    Row,
    /// Rows and row+qualifier columns: also skips files that have the row but not the
    /// column (costs more bits).
    RowCol,
}

/// How to write one HFile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileOptions {
    /// Block compression. Default lz4.
    pub compression: Compression,
    /// Bloom filter keys. Default row.
    pub bloom: BloomType,
    /// Target uncompressed data block size in bytes. Default 64 KiB: larger blocks
    /// compress better and shrink the index; smaller ones make point reads cheaper.
    pub block_size: u32,
    /// Bloom bits per key. Default 10 (≈ 1% false positives).
    pub bloom_bits_per_key: u32,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            compression: Compression::Lz4,
            bloom: BloomType::Row,
            block_size: 64 << 10,
            bloom_bits_per_key: 10,
        }
    }
}

impl FileOptions {
    /// Options with the given compression, bloom and block size, default bits per key.
    pub fn new(compression: Compression, bloom: BloomType, block_size: u32) -> FileOptions {
        FileOptions {
            compression,
            bloom,
            block_size,
            ..FileOptions::default()
        }
    }
}

/// The file info block (`hfile_format.md` §6): a summary of the file's cells.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// Smallest key.
    pub first_key: CellKey,
    /// Largest key.
    pub last_key: CellKey,
    /// Smallest cell timestamp.
    pub min_ts: Timestamp,
    /// Largest cell timestamp.
    pub max_ts: Timestamp,
    /// Smallest cell sequence number.
    pub min_seq: SeqNo,
    /// Largest cell sequence number.
    pub max_seq: SeqNo,
    /// Number of cells.
    pub cell_count: u64,
    /// Number of puts.
    pub put_count: u64,
    /// Number of delete markers (any kind).
    pub tombstone_count: u64,
    /// Number of data blocks.
    pub block_count: u64,
}

/// Info block format version (§6).
pub const INFO_VERSION: u8 = 1;

impl FileInfo {
    /// Encodes the info block contents (§6).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![INFO_VERSION];
        put_key(&mut out, self.first_key.as_ref());
        put_key(&mut out, self.last_key.as_ref());
        put_u64(&mut out, self.min_ts);
        put_u64(&mut out, self.max_ts);
        for v in [
            self.min_seq,
            self.max_seq,
            self.cell_count,
            self.put_count,
            self.tombstone_count,
            self.block_count,
        ] {
            put_varint(&mut out, v);
        }
        out
    }

    /// Decodes info block contents and checks they are self-consistent.
    ///
    /// # Errors
    /// A [`DecodeError`] for a bad version, truncation, trailing bytes, or counts and
    /// ranges that contradict each other.
    pub fn decode(buf: &[u8]) -> Result<FileInfo, DecodeError> {
        let mut r = Reader::new(buf);
        let v = r.u8("info version")?;
        if v != INFO_VERSION {
            return Err(DecodeError::new(
                0,
                format!("unknown file info version {v}"),
            ));
        }
        let info = FileInfo {
            first_key: read_key(&mut r)?,
            last_key: read_key(&mut r)?,
            min_ts: r.u64("min_ts")?,
            max_ts: r.u64("max_ts")?,
            min_seq: r.varint("min_seq")?,
            max_seq: r.varint("max_seq")?,
            cell_count: r.varint("cell_count")?,
            put_count: r.varint("put_count")?,
            tombstone_count: r.varint("tombstone_count")?,
            block_count: r.varint("block_count")?,
        };
        if !r.is_empty() {
            return Err(r.err("trailing bytes after the file info"));
        }
        if info.first_key > info.last_key
            || info.min_ts > info.max_ts
            || info.min_seq > info.max_seq
            || info.cell_count == 0
            || info.put_count.checked_add(info.tombstone_count) != Some(info.cell_count)
        {
            return Err(DecodeError::new(0, "file info is inconsistent"));
        }
        Ok(info)
    }
}

/// Trailer size (§7).
pub const TRAILER_BYTES: usize = 64;
/// Trailer magic: "SLHFILE1" read as a little-endian u64 (§7).
pub const HFILE_MAGIC: u64 = u64::from_le_bytes(*b"SLHFILE1");
/// File format version (§7).
pub const HFILE_VERSION: u32 = 1;

/// The fixed trailer (§7): where the index, bloom and info blocks are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Trailer {
    /// File offset of the index block.
    pub index_off: u64,
    /// Length of the index block, trailer included.
    pub index_len: u64,
    /// File offset of the bloom block; 0 with `bloom_len == 0`: no bloom.
    pub bloom_off: u64,
    /// Length of the bloom block (0: none).
    pub bloom_len: u64,
    /// File offset of the info block.
    pub info_off: u64,
    /// Length of the info block.
    pub info_len: u64,
}

impl Trailer {
    /// Encodes the 64 trailer bytes.
    pub fn encode(&self) -> [u8; TRAILER_BYTES] {
        let mut v = Vec::with_capacity(TRAILER_BYTES);
        for x in [
            self.index_off,
            self.index_len,
            self.bloom_off,
            self.bloom_len,
            self.info_off,
            self.info_len,
        ] {
            put_u64(&mut v, x);
        }
        put_u32(&mut v, HFILE_VERSION);
        let crc = crc32fast::hash(&v);
        put_u32(&mut v, crc);
        put_u64(&mut v, HFILE_MAGIC);
        let mut out = [0u8; TRAILER_BYTES];
        out.copy_from_slice(&v);
        out
    }

    /// Decodes and validates a trailer of a file of `file_len` bytes: magic, CRC,
    /// version, and every block inside the file before the trailer.
    ///
    /// # Errors
    /// A [`DecodeError`] (offsets relative to the trailer start) naming what is wrong.
    pub fn decode(buf: &[u8], file_len: u64) -> Result<Trailer, DecodeError> {
        if buf.len() != TRAILER_BYTES {
            return Err(DecodeError::new(0, "trailer must be 64 bytes"));
        }
        let mut r = Reader::new(buf);
        let mut f = [0u64; 6];
        for x in &mut f {
            *x = r.u64("trailer offset")?;
        }
        let version = r.u32("trailer version")?;
        let crc = r.u32("trailer crc")?;
        let magic = r.u64("trailer magic")?;
        if magic != HFILE_MAGIC {
            return Err(DecodeError::new(
                56,
                format!("bad magic {magic:#018x}: not an HFile"),
            ));
        }
        let got = crc32fast::hash(&buf[..52]);
        if got != crc {
            return Err(DecodeError::new(
                52,
                format!("trailer checksum mismatch: expected {crc:#010x}, got {got:#010x}"),
            ));
        }
        if version != HFILE_VERSION {
            return Err(DecodeError::new(
                48,
                format!("unsupported HFile version {version}"),
            ));
        }
        let t = Trailer {
            index_off: f[0],
            index_len: f[1],
            bloom_off: f[2],
            bloom_len: f[3],
            info_off: f[4],
            info_len: f[5],
        };
        let body_end = file_len.saturating_sub(TRAILER_BYTES as u64);
        let inside =
            |off: u64, len: u64| len >= 5 && off.checked_add(len).is_some_and(|e| e <= body_end);
        let bloom_ok = (t.bloom_off == 0 && t.bloom_len == 0) || inside(t.bloom_off, t.bloom_len);
        if !inside(t.index_off, t.index_len) || !inside(t.info_off, t.info_len) || !bloom_ok {
            return Err(DecodeError::new(0, "trailer points outside the file"));
        }
        Ok(t)
    }

    /// End of the data blocks: where the bloom (or index) block starts.
    pub fn data_end(&self) -> u64 {
        if self.bloom_len > 0 {
            self.bloom_off
        } else {
            self.index_off
        }
    }
}

/// File name of HFile `id` inside a store directory: `<id:020>.hfile`.
pub fn file_name(id: u64) -> String {
    format!("{id:020}.hfile")
}

/// Parses a name made by [`file_name`].
pub fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".hfile")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::CellKind;
    use bytes::Bytes;

    fn info() -> FileInfo {
        let k = |r: &'static str| CellKey {
            row: Bytes::from_static(r.as_bytes()),
            qualifier: Bytes::from_static(b"q"),
            timestamp: 5,
            kind: CellKind::Put,
            seq: 3,
        };
        FileInfo {
            first_key: k("a"),
            last_key: k("z"),
            min_ts: 1,
            max_ts: 9,
            min_seq: 2,
            max_seq: 300,
            cell_count: 10,
            put_count: 7,
            tombstone_count: 3,
            block_count: 2,
        }
    }

    #[test]
    fn info_round_trip_and_flips_never_panic() {
        let i = info();
        let enc = i.encode();
        assert_eq!(FileInfo::decode(&enc).unwrap(), i);
        for p in 0..enc.len() {
            let mut m = enc.clone();
            m[p] ^= 0x10;
            let _ = FileInfo::decode(&m);
        }
        for n in 0..enc.len() {
            assert!(FileInfo::decode(&enc[..n]).is_err());
        }
    }

    #[test]
    fn trailer_round_trip_and_every_flip_is_refused() {
        let t = Trailer {
            index_off: 100,
            index_len: 20,
            bloom_off: 80,
            bloom_len: 20,
            info_off: 120,
            info_len: 30,
        };
        let enc = t.encode();
        assert_eq!(Trailer::decode(&enc, 150 + 64).unwrap(), t);
        assert_eq!(t.data_end(), 80);
        assert!(Trailer::decode(&enc, 149 + 64).is_err());
        for p in 0..enc.len() {
            let mut m = enc;
            m[p] ^= 0x01;
            assert!(Trailer::decode(&m, 150 + 64).is_err(), "byte {p}");
        }
    }

    #[test]
    fn file_names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name("42.hfile"), None);
        assert_eq!(parse_file_name("00000000000000000042.hfile.tmp"), None);
    }
}
