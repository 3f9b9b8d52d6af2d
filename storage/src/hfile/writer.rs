//! Builds one HFile from cells pushed in strictly increasing store order
//! (`hfile_format.md` §1–§7). The writer streams data blocks to disk as they fill; the
//! bloom keys, index and info are kept in memory until `finish`.
//!
//! It does not pick the path or register the file: the caller writes, then records the
//! file in the manifest (and fsyncs the directory). A writer dropped before `finish`
//! leaves a partial file without a trailer, which no reader accepts.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::block::{DataBlockBuilder, encode_block};
use super::bloom::{self, Bloom, BloomKind};
use super::index::{BlockIndex, IndexEntry};
use crate::fs::{Fs, OpenMode};
use speedlayer_vfs::AppendWriter;

use super::{BloomType, Compression, FileInfo, FileOptions, Trailer};
use crate::cell::{CellKey, CellKind, KeyRef};
use crate::error::{Error, Result};

/// Largest target block size: a block holds at most this plus one cell, which keeps it far
/// below `MAX_BLOCK_BYTES` (256 MiB) for any cell the engine's limits allow.
pub const MAX_TARGET_BLOCK: usize = 64 << 20;

/// Writes one HFile. Not `Sync`; one writer per output file.
pub struct HFileWriter {
    path: PathBuf,
    out: BufWriter<AppendWriter>,
    opts: FileOptions,
    offset: u64,
    block: DataBlockBuilder,
    block_first: Option<CellKey>,
    framed: Vec<u8>,
    scratch: Vec<u8>,
    index: BlockIndex,
    bloom_hashes: Vec<u64>,
    /// The previous key, in reused buffers (no allocation per cell).
    last: Option<LastKey>,
    first: Option<CellKey>,
    info: Counters,
}

#[derive(Debug)]
struct LastKey {
    row: Vec<u8>,
    qualifier: Vec<u8>,
    timestamp: u64,
    kind: CellKind,
    seq: u64,
}

impl LastKey {
    fn as_ref(&self) -> KeyRef<'_> {
        KeyRef {
            row: &self.row,
            qualifier: &self.qualifier,
            timestamp: self.timestamp,
            kind: self.kind,
            seq: self.seq,
        }
    }

    /// `same_row`: `k.row` equals the stored row (which is then not copied again).
    fn set(&mut self, k: KeyRef<'_>, same_row: bool) {
        if !same_row {
            self.row.clear();
            self.row.extend_from_slice(k.row);
        }
        self.qualifier.clear();
        self.qualifier.extend_from_slice(k.qualifier);
        self.timestamp = k.timestamp;
        self.kind = k.kind;
        self.seq = k.seq;
    }
}

#[derive(Default)]
struct Counters {
    min_ts: u64,
    max_ts: u64,
    min_seq: u64,
    max_seq: u64,
    cells: u64,
    puts: u64,
    tombstones: u64,
}

impl std::fmt::Debug for HFileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HFileWriter")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl HFileWriter {
    /// Creates `path` (which must not exist) for writing.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be created, [`Error::InvalidArgument`] for a block
    /// size of 0 or above 64 MiB.
    pub fn create(fs: &dyn Fs, path: &Path, opts: FileOptions) -> Result<HFileWriter> {
        if opts.block_size == 0 || opts.block_size as usize > MAX_TARGET_BLOCK {
            return Err(Error::InvalidArgument(format!(
                "HFile block_size must be in 1..={MAX_TARGET_BLOCK}, got {}",
                opts.block_size
            )));
        }
        let file = crate::fs::open(fs, path, OpenMode::CreateNew)?;
        Ok(HFileWriter {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(256 << 10, AppendWriter::new(file)),
            opts,
            offset: 0,
            block: DataBlockBuilder::default(),
            block_first: None,
            framed: Vec::new(),
            scratch: Vec::new(),
            index: BlockIndex::default(),
            bloom_hashes: Vec::new(),
            last: None,
            first: None,
            info: Counters {
                min_ts: u64::MAX,
                min_seq: u64::MAX,
                ..Counters::default()
            },
        })
    }

    /// Appends one cell. Keys must strictly increase in store order.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a key not greater than the previous one,
    /// [`Error::Io`] if writing a full block fails.
    pub fn push(&mut self, key: KeyRef<'_>, value: &[u8]) -> Result<()> {
        // One row comparison per cell, reused by the order check, the bloom and the copy
        // of the last key: bulk loads push tens of millions of cells through here, and
        // comparing the row three times was a fifth of the server's time (BENCHMARKS.md).
        let same_row = match &self.last {
            Some(last) => match key.row.cmp(&last.row[..]) {
                std::cmp::Ordering::Less => return Err(self.out_of_order(key)),
                std::cmp::Ordering::Equal => {
                    if key <= last.as_ref() {
                        return Err(self.out_of_order(key));
                    }
                    true
                }
                std::cmp::Ordering::Greater => false,
            },
            None => false,
        };
        self.add_bloom_keys(key, same_row);
        if self.block_first.is_none() {
            self.block_first = Some(key.to_owned_key());
        }
        self.block.add(key, value);
        let c = &mut self.info;
        c.min_ts = c.min_ts.min(key.timestamp);
        c.max_ts = c.max_ts.max(key.timestamp);
        c.min_seq = c.min_seq.min(key.seq);
        c.max_seq = c.max_seq.max(key.seq);
        c.cells += 1;
        if key.kind == CellKind::Put {
            c.puts += 1;
        } else {
            c.tombstones += 1;
        }
        match &mut self.last {
            Some(l) => l.set(key, same_row),
            None => {
                self.first = Some(key.to_owned_key());
                self.last = Some(LastKey {
                    row: key.row.to_vec(),
                    qualifier: key.qualifier.to_vec(),
                    timestamp: key.timestamp,
                    kind: key.kind,
                    seq: key.seq,
                });
            }
        }
        if self.block.size_estimate() >= self.opts.block_size as usize {
            self.flush_block()?;
        }
        Ok(())
    }

    fn out_of_order(&self, key: KeyRef<'_>) -> Error {
        Error::InvalidArgument(format!(
            "HFile keys must strictly increase: {key:?} after {:?}",
            self.last
        ))
    }

    /// `same_row`: the key's row is the previous key's.
    fn add_bloom_keys(&mut self, key: KeyRef<'_>, same_row: bool) {
        match self.opts.bloom {
            BloomType::None => {}
            BloomType::Row => {
                if !same_row {
                    self.bloom_hashes.push(bloom::row_hash(key.row));
                }
            }
            BloomType::RowCol => {
                let same_col = same_row
                    && self
                        .last
                        .as_ref()
                        .is_some_and(|l| l.qualifier == key.qualifier);
                if !same_row {
                    self.bloom_hashes.push(bloom::row_hash(key.row));
                }
                if !same_col {
                    self.bloom_hashes
                        .push(bloom::rowcol_hash(key.row, key.qualifier));
                }
                if key.kind == CellKind::DeleteFamily {
                    self.bloom_hashes.push(bloom::family_delete_hash(key.row));
                }
            }
        }
    }

    fn flush_block(&mut self) -> Result<()> {
        let Some(first_key) = self.block_first.take() else {
            return Ok(());
        };
        self.framed.clear();
        encode_block(
            self.block.finish(),
            self.opts.compression,
            &mut self.framed,
            &mut self.scratch,
        );
        self.block.reset();
        let length = self.framed.len() as u64;
        let framed = std::mem::take(&mut self.framed);
        let res = self.write(&framed);
        self.framed = framed;
        res?;
        self.index.entries.push(IndexEntry {
            first_key,
            offset: self.offset - length,
            length,
        });
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.out
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn write_meta_block(&mut self, contents: &[u8]) -> Result<(u64, u64)> {
        let mut framed = Vec::with_capacity(contents.len() + 5);
        encode_block(contents, Compression::None, &mut framed, &mut Vec::new());
        let off = self.offset;
        self.write(&framed)?;
        Ok((off, framed.len() as u64))
    }

    /// Cells pushed so far.
    pub fn cell_count(&self) -> u64 {
        self.info.cells
    }

    /// Bytes written so far (an estimate of the final size).
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// The path being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the last block, bloom, index, info and trailer, then fsyncs the file.
    /// The caller fsyncs the directory.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if no cell was pushed (an HFile is never empty),
    /// [`Error::Io`] on write or fsync failure.
    pub fn finish(mut self) -> Result<FileInfo> {
        let (Some(first_key), Some(last_key)) = (
            self.first.take(),
            self.last.take().map(|l| l.as_ref().to_owned_key()),
        ) else {
            return Err(Error::InvalidArgument(format!(
                "HFile {} has no cells; delete it instead of finishing it",
                self.path.display()
            )));
        };
        self.flush_block()?;
        let mut t = Trailer::default();
        let kind = match self.opts.bloom {
            BloomType::None => None,
            BloomType::Row => Some(BloomKind::Row),
            BloomType::RowCol => Some(BloomKind::RowCol),
        };
        if let Some(kind) = kind {
            let b = Bloom::build(kind, &self.bloom_hashes, self.opts.bloom_bits_per_key);
            (t.bloom_off, t.bloom_len) = self.write_meta_block(&b.encode())?;
        }
        (t.index_off, t.index_len) = self.write_meta_block(&self.index.encode())?;
        let c = &self.info;
        let info = FileInfo {
            first_key,
            last_key,
            min_ts: c.min_ts,
            max_ts: c.max_ts,
            min_seq: c.min_seq,
            max_seq: c.max_seq,
            cell_count: c.cells,
            put_count: c.puts,
            tombstone_count: c.tombstones,
            block_count: self.index.entries.len() as u64,
        };
        (t.info_off, t.info_len) = self.write_meta_block(&info.encode())?;
        self.write(&t.encode())?;
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        // IMPORTANT: the file must be durable before the manifest may name it.
        self.out
            .get_ref()
            .file()
            .sync_all()
            .map_err(|e| Error::io(&self.path, e))?;
        Ok(info)
    }
}
