//! A live HFile of a store: the reader plus the summary the read path prunes with.
//!
//! It adapts `hfile::HFileReader` to the read path's needs (sources, bloom checks,
//! reversed-scan lookups); it does not write files (flush and compaction do).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;

use crate::cache::BlockCache;
use crate::cell::{KeyRef, SeqNo};
use crate::error::Result;
use crate::hfile::HFileReader;
use crate::merge::Source;

/// The block cache shared by every file of a database, with the allocator of the
/// process-unique ids its blocks are keyed by.
#[derive(Clone, Debug)]
pub struct FileCache {
    pub cache: Arc<BlockCache>,
    next_id: Arc<AtomicU64>,
}

impl FileCache {
    /// A cache of `capacity_bytes`.
    pub fn new(capacity_bytes: usize) -> FileCache {
        FileCache {
            cache: Arc::new(BlockCache::new(capacity_bytes)),
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }
}

/// What the read path needs to know about a file without reading it.
#[derive(Clone, Debug, Default)]
pub struct FileSummary {
    pub size: u64,
    pub first_row: Bytes,
    pub last_row: Bytes,
    pub min_ts: u64,
    pub max_ts: u64,
    pub max_seq: SeqNo,
    pub cells: u64,
    pub tombstones: u64,
}

/// An open HFile of a store.
#[derive(Debug)]
pub struct StoreFile {
    /// The file's id in its region (its name and manifest entry).
    pub id: u64,
    /// The id its blocks have in the shared block cache: unique in the process, because
    /// file ids repeat across regions.
    pub cache_id: u64,
    pub path: PathBuf,
    pub meta: FileSummary,
    reader: HFileReader,
}

impl StoreFile {
    /// Opens and verifies the file (trailer, index, bloom, info checksums).
    ///
    /// # Errors
    /// I/O, corruption or checksum errors naming the file.
    pub fn open(
        fs: &dyn crate::fs::Fs,
        path: &Path,
        id: u64,
        cache: &FileCache,
    ) -> Result<StoreFile> {
        let cache_id = cache.next_id.fetch_add(1, Ordering::Relaxed);
        let reader = HFileReader::open(fs, path, cache_id, Arc::clone(&cache.cache))?;
        let info = reader.info();
        let meta = FileSummary {
            size: reader.size(),
            first_row: info.first_key.row.clone(),
            last_row: info.last_key.row.clone(),
            min_ts: info.min_ts,
            max_ts: info.max_ts,
            max_seq: info.max_seq,
            cells: info.cell_count,
            tombstones: info.tombstone_count,
        };
        Ok(StoreFile {
            id,
            cache_id,
            path: path.to_path_buf(),
            meta,
            reader,
        })
    }

    /// The underlying reader (compaction reads whole files through it).
    pub fn reader(&self) -> &HFileReader {
        &self.reader
    }

    /// True if the file may hold cells of `row` (key range and bloom filter).
    pub fn may_contain_row(&self, row: &[u8]) -> bool {
        self.reader.may_contain_row(row)
    }

    /// True if the file may hold cells of column `row:qualifier` or a family delete of
    /// the row (a row+column bloom answers this more precisely).
    pub fn may_contain(&self, row: &[u8], qualifier: &[u8]) -> bool {
        self.reader.may_contain(row, qualifier)
    }

    /// Cells from the first key ≥ `from` (from the start if `None`).
    ///
    /// # Errors
    /// I/O or checksum errors of the file.
    pub fn iter_from(&self, from: Option<KeyRef<'_>>) -> Result<Source> {
        Ok(match from {
            Some(k) => Box::new(self.reader.iter_from(k)?),
            None => Box::new(self.reader.iter()),
        })
    }

    /// The greatest row strictly below `row` (the last row if `None`).
    ///
    /// # Errors
    /// I/O or checksum errors of the file.
    pub fn last_row_before(&self, row: Option<&[u8]>) -> Result<Option<Bytes>> {
        self.reader.last_row_before(row)
    }
}
