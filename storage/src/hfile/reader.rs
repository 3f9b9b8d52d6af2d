//! Reads an HFile: validates trailer, index, bloom and info at open, then serves seeks and
//! iteration through the shared block cache. Blocks are read with `pread` and checked
//! against their CRC before use (`hfile_format.md` invariant 2); the cache holds only
//! verified blocks, so a cached block is never re-checked.
//!
//! An iterator that has crossed [`READAHEAD_AFTER_BLOCKS`] blocks reads ahead: one `pread`
//! of contiguous blocks into a buffer it owns and reuses, from which the following cache
//! misses are served (each block still CRC-checked on decode). The window starts at
//! [`READAHEAD_INITIAL_BYTES`] and doubles with every fill up to [`READAHEAD_BYTES`]
//! (RocksDB's auto read-ahead does the same), and falls back to the initial size at each
//! seek: a short prefix scan reads a few blocks, not 256 KiB it never looks at. A point
//! read seeks into one block and never reads ahead.
//!
//! The reader is a cheap-to-clone handle; iterators own a clone, so they are `'static`
//! and `Send`. It does not merge files or apply deletes; the scan layer does.

use crate::fs::{File, Fs, OpenMode};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use super::block::{BlockError, DataBlock, EntryPos, decode_block};
use super::bloom::{self, Bloom, BloomKind};
use super::index::{BlockIndex, SearchIndex};
use super::{FileInfo, TRAILER_BYTES, Trailer};
use crate::cache::BlockCache;
use crate::cell::{CellKey, KeyRef};
use crate::error::{Error, Result};

struct Inner {
    path: PathBuf,
    file: Box<dyn File>,
    file_id: u64,
    size: u64,
    cache: Arc<BlockCache>,
    index: SearchIndex,
    bloom: Option<Bloom>,
    info: FileInfo,
}

/// An open HFile. Clone it freely (it is an `Arc` inside).
#[derive(Clone)]
pub struct HFileReader {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for HFileReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HFileReader")
            .field("path", &self.inner.path)
            .field("file_id", &self.inner.file_id)
            .finish_non_exhaustive()
    }
}

/// Most bytes one read-ahead `pread` fetches (whole blocks only; a larger single block is
/// read alone).
pub const READAHEAD_BYTES: u64 = 256 << 10;
/// The first read-ahead window after a seek; each fill doubles it up to
/// [`READAHEAD_BYTES`].
pub const READAHEAD_INITIAL_BYTES: u64 = 16 << 10;
/// Blocks an iterator loads before it starts reading ahead.
pub const READAHEAD_AFTER_BLOCKS: usize = 2;

/// An iterator's read-ahead window: raw (framed, unverified) bytes of contiguous blocks.
#[derive(Default)]
struct ReadAhead {
    /// File offset of `buf[0]`.
    off: u64,
    /// Valid bytes in `buf`.
    len: usize,
    /// Reused between fills; grows to the largest window read.
    buf: Vec<u8>,
    /// Bytes the next fill may read: [`READAHEAD_INITIAL_BYTES`] after a seek, doubled by
    /// every fill up to [`READAHEAD_BYTES`].
    window: u64,
}

impl ReadAhead {
    /// The raw bytes of `[off, off + len)` if the window holds them.
    /// Starts over at the smallest window (after a seek).
    fn restart(&mut self) {
        self.window = READAHEAD_INITIAL_BYTES;
    }

    fn slice(&self, off: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(off.checked_sub(self.off)?).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        (end <= self.len).then(|| &self.buf[start..end])
    }
}

/// A thread's point-read buffer is dropped after a block larger than this (it is kept,
/// and reused, for ordinary block sizes).
const SCRATCH_KEEP_BYTES: usize = 1 << 20;

thread_local! {
    /// Raw bytes of the block a point read is loading, reused by the thread's next one.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn read_at(file: &dyn File, path: &Path, off: u64, len: u64) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    file.read_exact_at(&mut buf, off)
        .map_err(|e| Error::io(path, e))?;
    Ok(buf)
}

fn block_error(path: &Path, off: u64, e: BlockError) -> Error {
    match e {
        BlockError::Checksum { expected, got } => Error::ChecksumMismatch {
            file: path.to_path_buf(),
            offset: off,
            expected,
            got,
        },
        BlockError::Malformed(d) => Error::Corruption {
            file: path.to_path_buf(),
            offset: off,
            reason: format!("block: {} (at byte {} of the block)", d.reason, d.offset),
        },
    }
}

impl HFileReader {
    /// Opens the HFile at `path`, known to the engine as `file_id` (the cache key), and
    /// verifies its trailer, index, bloom and info blocks.
    ///
    /// # Errors
    /// [`Error::Corruption`] / [`Error::ChecksumMismatch`] naming the file and offset of
    /// the damaged part, [`Error::Io`].
    pub fn open(
        fs: &dyn Fs,
        path: &Path,
        file_id: u64,
        cache: Arc<BlockCache>,
    ) -> Result<HFileReader> {
        let file = crate::fs::open(fs, path, OpenMode::Read)?;
        let size = file.len().map_err(|e| Error::io(path, e))?;
        if size < TRAILER_BYTES as u64 {
            return Err(Error::Corruption {
                file: path.to_path_buf(),
                offset: 0,
                reason: format!("{size} bytes is too short for an HFile trailer"),
            });
        }
        let toff = size - TRAILER_BYTES as u64;
        let tbuf = read_at(&*file, path, toff, TRAILER_BYTES as u64)?;
        let t = Trailer::decode(&tbuf, size).map_err(|e| e.into_error(path, toff))?;
        let meta = |off: u64, len: u64| -> Result<Bytes> {
            let raw = read_at(&*file, path, off, len)?;
            decode_block(&raw).map_err(|e| block_error(path, off, e))
        };
        let info_buf = meta(t.info_off, t.info_len)?;
        let info = FileInfo::decode(&info_buf).map_err(|e| e.into_error(path, t.info_off))?;
        let index_buf = meta(t.index_off, t.index_len)?;
        let index = BlockIndex::decode(&index_buf, t.data_end())
            .map_err(|e| e.into_error(path, t.index_off))?;
        let index = SearchIndex::new(index);
        if index.entries().len() as u64 != info.block_count
            || index.entries().first().map(|e| &e.first_key) != Some(&info.first_key)
        {
            return Err(Error::Corruption {
                file: path.to_path_buf(),
                offset: t.index_off,
                reason: "block index disagrees with the file info".into(),
            });
        }
        let bloom = if t.bloom_len > 0 {
            let b = meta(t.bloom_off, t.bloom_len)?;
            Some(Bloom::decode(&b).map_err(|e| e.into_error(path, t.bloom_off))?)
        } else {
            None
        };
        Ok(HFileReader {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                file,
                file_id,
                size,
                cache,
                index,
                bloom,
                info,
            }),
        })
    }

    /// The file's summary.
    pub fn info(&self) -> &FileInfo {
        &self.inner.info
    }

    /// The id given at open.
    pub fn file_id(&self) -> u64 {
        self.inner.file_id
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Size on disk in bytes.
    pub fn size(&self) -> u64 {
        self.inner.size
    }

    /// Number of data blocks.
    pub fn block_count(&self) -> usize {
        self.inner.index.entries().len()
    }

    fn row_in_range(&self, row: &[u8]) -> bool {
        let i = &self.inner.info;
        i.first_key.row.as_ref() <= row && row <= i.last_key.row.as_ref()
    }

    /// False only if the file certainly has no cell of `row` (key range and bloom).
    pub fn may_contain_row(&self, row: &[u8]) -> bool {
        self.row_in_range(row)
            && self
                .inner
                .bloom
                .as_ref()
                .is_none_or(|b| b.may_contain_hash(bloom::row_hash(row)))
    }

    /// False only if the file certainly has no cell that matters to column
    /// `row:qualifier` — neither a cell of that column nor a DeleteFamily marker of the
    /// row. With a row bloom this is [`may_contain_row`](Self::may_contain_row).
    pub fn may_contain(&self, row: &[u8], qualifier: &[u8]) -> bool {
        if !self.row_in_range(row) {
            return false;
        }
        match &self.inner.bloom {
            None => true,
            Some(b) if b.kind() == BloomKind::Row => b.may_contain_hash(bloom::row_hash(row)),
            Some(b) => {
                b.may_contain_hash(bloom::rowcol_hash(row, qualifier))
                    || b.may_contain_hash(bloom::family_delete_hash(row))
            }
        }
    }

    /// The verified, decompressed data block `i`, from the cache or the file.
    fn block(&self, i: usize) -> Result<DataBlock> {
        self.load_block(i, None)
    }

    /// Fills `ra` with block `i` and the contiguous blocks after it, up to its window
    /// (at least block `i` whatever its size), and doubles the window.
    fn fill_readahead(&self, i: usize, ra: &mut ReadAhead) -> Result<()> {
        let inner = &*self.inner;
        let entries = &inner.index.entries();
        let Some(first) = entries.get(i) else {
            return Ok(());
        };
        let window = ra.window.clamp(READAHEAD_INITIAL_BYTES, READAHEAD_BYTES);
        ra.window = window.saturating_mul(2).min(READAHEAD_BYTES);
        let mut end = first.offset.saturating_add(first.length);
        for e in entries.iter().skip(i + 1) {
            let e_end = e.offset.saturating_add(e.length);
            if e.offset != end || e_end - first.offset > window {
                break;
            }
            end = e_end;
        }
        let len = usize::try_from(end - first.offset).map_err(|_| Error::Corruption {
            file: inner.path.clone(),
            offset: first.offset,
            reason: format!("block length {} does not fit memory", first.length),
        })?;
        if ra.buf.len() < len {
            ra.buf.resize(len, 0);
        }
        ra.len = 0;
        inner
            .file
            .read_exact_at(&mut ra.buf[..len], first.offset)
            .map_err(|e| Error::io(&inner.path, e))?;
        ra.off = first.offset;
        ra.len = len;
        Ok(())
    }

    /// Block `i` from the cache, else from `ra` (refilled when it lacks the block), else
    /// from one `pread`; a block read from the file is verified and then cached.
    fn load_block(&self, i: usize, ra: Option<&mut ReadAhead>) -> Result<DataBlock> {
        let inner = &*self.inner;
        let Some(e) = inner.index.entries().get(i) else {
            return Err(Error::Corruption {
                file: inner.path.clone(),
                offset: 0,
                reason: format!("block {i} out of range"),
            });
        };
        if let Some(d) = inner.cache.get(inner.file_id, e.offset) {
            return Ok(DataBlock::from_verified(d));
        }
        let owned;
        let raw: &[u8] = match ra {
            Some(ra) => {
                if ra.slice(e.offset, e.length).is_none() {
                    self.fill_readahead(i, ra)?;
                }
                match ra.slice(e.offset, e.length) {
                    Some(raw) => raw,
                    None => {
                        owned = read_at(&*inner.file, &inner.path, e.offset, e.length)?;
                        &owned
                    }
                }
            }
            None => {
                // A point read: one pread into this thread's reused buffer (no allocation,
                // no zero-fill once it has grown to the block size).
                return SCRATCH.with(|cell| {
                    let mut buf = cell.borrow_mut();
                    let len = usize::try_from(e.length).map_err(|_| Error::Corruption {
                        file: inner.path.clone(),
                        offset: e.offset,
                        reason: format!("block length {} does not fit memory", e.length),
                    })?;
                    if buf.len() < len {
                        buf.resize(len, 0);
                    }
                    inner
                        .file
                        .read_exact_at(&mut buf[..len], e.offset)
                        .map_err(|err| Error::io(&inner.path, err))?;
                    let out = self.verify_and_cache(e.offset, &buf[..len]);
                    if buf.len() > SCRATCH_KEEP_BYTES {
                        *buf = Vec::new();
                    }
                    out
                });
            }
        };
        self.verify_and_cache(e.offset, raw)
    }

    /// Verifies (CRC, decompression, restart array) the raw block at `offset`, caches it
    /// and returns it.
    fn verify_and_cache(&self, offset: u64, raw: &[u8]) -> Result<DataBlock> {
        let inner = &*self.inner;
        let d = decode_block(raw).map_err(|err| block_error(&inner.path, offset, err))?;
        // Validate before caching so the cache only ever holds well-formed blocks.
        let block = DataBlock::new(d.clone())
            .map_err(|err| block_error(&inner.path, offset, BlockError::Malformed(err)))?;
        inner.cache.insert(inner.file_id, offset, d);
        Ok(block)
    }

    fn block_offset(&self, i: usize) -> u64 {
        self.inner.index.entries().get(i).map_or(0, |e| e.offset)
    }

    /// An iterator over every cell from the start.
    pub fn iter(&self) -> HFileIter {
        HFileIter {
            reader: self.clone(),
            block_idx: 0,
            block: None,
            off: 0,
            done: false,
            loaded: 0,
            readahead: None,
        }
    }

    /// An iterator positioned at the first cell whose key is `>= target`.
    ///
    /// # Errors
    /// The error of reading the block the seek lands in.
    pub fn iter_from(&self, target: KeyRef<'_>) -> Result<HFileIter> {
        let mut it = self.iter();
        it.seek(target)?;
        Ok(it)
    }

    /// The greatest row strictly less than `row` (or the last row if `row` is `None`),
    /// for reversed scans; `None` if the file has no such row.
    ///
    /// # Errors
    /// The error of reading the block that holds the answer.
    pub fn last_row_before(&self, row: Option<&[u8]>) -> Result<Option<Bytes>> {
        let Some(row) = row else {
            return Ok(Some(self.inner.info.last_key.row.clone()));
        };
        let target = KeyRef::first_of_row(row);
        let n = self.inner.index.blocks_before(target);
        if n == 0 {
            return Ok(None);
        }
        let b = self.block(n - 1)?;
        let corrupt = |d: crate::coding::DecodeError| {
            block_error(
                &self.inner.path,
                self.block_offset(n - 1),
                BlockError::Malformed(d),
            )
        };
        let mut best = None;
        let mut off = 0;
        while off < b.entries_end() {
            let e = b.entry_at(off).map_err(corrupt)?;
            if b.key(&e) >= target {
                break;
            }
            best = Some(e);
            off = e.next;
        }
        Ok(best.map(|e| b.row_bytes(&e)))
    }
}

/// Iterates cells of one HFile in store order, yielding `(key, value)` whose bytes are
/// slices of cached blocks. After an error it yields `None`.
pub struct HFileIter {
    reader: HFileReader,
    block_idx: usize,
    block: Option<DataBlock>,
    off: usize,
    done: bool,
    /// Blocks loaded by `next` since the last seek (read-ahead starts after a few).
    loaded: usize,
    /// Allocated when read-ahead starts; kept across seeks.
    readahead: Option<Box<ReadAhead>>,
}

impl std::fmt::Debug for HFileIter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HFileIter")
            .field("file", &self.reader.inner.path)
            .field("block", &self.block_idx)
            .field("off", &self.off)
            .finish()
    }
}

impl HFileIter {
    /// Repositions at the first cell whose key is `>= target`.
    ///
    /// # Errors
    /// The error of reading the block the seek lands in (the iterator is then finished).
    pub fn seek(&mut self, target: KeyRef<'_>) -> Result<()> {
        self.done = false;
        self.block_idx = self.reader.inner.index.seek_block(target);
        self.block = None;
        self.off = 0;
        self.loaded = 0;
        if let Some(ra) = self.readahead.as_mut() {
            ra.restart();
        }
        if self.block_idx >= self.reader.block_count() {
            self.done = true;
            return Ok(());
        }
        let res = self.reader.block(self.block_idx).and_then(|b| {
            let off = b.seek(target).map_err(|d| {
                block_error(
                    &self.reader.inner.path,
                    self.reader.block_offset(self.block_idx),
                    BlockError::Malformed(d),
                )
            })?;
            Ok((b, off))
        });
        match res {
            Ok((b, off)) => {
                self.off = off;
                self.block = Some(b);
                Ok(())
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }
}

impl HFileIter {
    /// Decodes the next entry, loading blocks as needed; on `Some(Ok(e))` the entry is in
    /// `self.block`, which stays until the following call.
    fn next_entry(&mut self) -> Option<Result<EntryPos>> {
        loop {
            if self.done {
                return None;
            }
            let Some(b) = &self.block else {
                if self.block_idx >= self.reader.block_count() {
                    self.done = true;
                    return None;
                }
                self.loaded += 1;
                let ra = if self.loaded > READAHEAD_AFTER_BLOCKS {
                    Some(&mut **self.readahead.get_or_insert_with(Box::default))
                } else {
                    None
                };
                match self.reader.load_block(self.block_idx, ra) {
                    Ok(b) => {
                        self.block = Some(b);
                        self.off = 0;
                        continue;
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            };
            if self.off >= b.entries_end() {
                self.block = None;
                self.block_idx += 1;
                continue;
            }
            return match b.entry_at(self.off) {
                Ok(e) => {
                    self.off = e.next;
                    Some(Ok(e))
                }
                Err(d) => {
                    self.done = true;
                    Some(Err(block_error(
                        &self.reader.inner.path,
                        self.reader.block_offset(self.block_idx),
                        BlockError::Malformed(d),
                    )))
                }
            };
        }
    }
}

impl Iterator for HFileIter {
    type Item = Result<(CellKey, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry()? {
            Ok(e) => self.block.as_ref().map(|b| Ok(b.owned(&e))),
            Err(err) => Some(Err(err)),
        }
    }
}

/// A lending cursor over one HFile: the current cell's key and value are slices of the
/// block it sits in, valid until [`advance`](Self::advance). No per-cell allocation or
/// reference count, unlike [`HFileIter`]'s owned items.
pub struct HFileCursor {
    it: HFileIter,
    cur: Option<EntryPos>,
}

impl HFileCursor {
    /// A cursor on the first cell `>= target` (the file's first cell if `None`).
    ///
    /// # Errors
    /// The error of reading the block the cursor lands in.
    pub fn new(reader: &HFileReader, target: Option<KeyRef<'_>>) -> Result<HFileCursor> {
        let it = match target {
            Some(t) => reader.iter_from(t)?,
            None => reader.iter(),
        };
        let mut c = HFileCursor { it, cur: None };
        c.advance()?;
        Ok(c)
    }

    /// The current cell's key, `None` past the end.
    #[inline(always)]
    pub fn key(&self) -> Option<KeyRef<'_>> {
        match (&self.cur, &self.it.block) {
            (Some(e), Some(b)) => Some(b.key(e)),
            _ => None,
        }
    }

    /// The current cell's value (empty past the end).
    #[inline]
    pub fn value(&self) -> &[u8] {
        match (&self.cur, &self.it.block) {
            (Some(e), Some(b)) => b.value(e),
            _ => &[],
        }
    }

    /// Moves to the next cell.
    ///
    /// # Errors
    /// I/O, checksum or decode errors of the next block; the cursor is then past the end.
    #[inline]
    pub fn advance(&mut self) -> Result<()> {
        match self.it.next_entry() {
            Some(Ok(e)) => {
                self.cur = Some(e);
                Ok(())
            }
            Some(Err(err)) => {
                self.cur = None;
                Err(err)
            }
            None => {
                self.cur = None;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cell::CellKind;
    use crate::hfile::{Compression, FileOptions, HFileWriter};

    fn key(i: u32) -> CellKey {
        CellKey {
            row: Bytes::from(format!("row{i:08}")),
            qualifier: Bytes::from_static(b"q"),
            timestamp: 1,
            kind: CellKind::Put,
            seq: u64::from(i) + 1,
        }
    }

    /// A short scan after a seek reads a few blocks ahead, not the whole 256 KiB window;
    /// a long scan still grows to it, and every cell comes back in order either way.
    #[test]
    fn readahead_starts_small_after_a_seek_and_grows_on_long_scans() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.hfile");
        let opts = FileOptions {
            compression: Compression::None,
            block_size: 4096,
            ..FileOptions::default()
        };
        let value = Bytes::from(vec![b'v'; 100]);
        let n = 20_000u32;
        let mut w = HFileWriter::create(&crate::fs::RealFs, &path, opts).unwrap();
        for i in 0..n {
            w.push(key(i).as_ref(), &value).unwrap();
        }
        w.finish().unwrap();
        // No cache: every block comes from the file or the read-ahead window.
        let r =
            HFileReader::open(&crate::fs::RealFs, &path, 1, Arc::new(BlockCache::new(0))).unwrap();
        assert!(r.block_count() > 500, "{}", r.block_count());

        let start = key(5_000);
        let mut it = r.iter_from(start.as_ref()).unwrap();
        for i in 5_000..5_200 {
            assert_eq!(it.next().unwrap().unwrap().0, key(i));
        }
        let short = it.readahead.as_ref().map_or(0, |ra| ra.buf.len());
        assert!(
            short > 0 && short as u64 <= 2 * READAHEAD_INITIAL_BYTES,
            "200 cells after a seek read {short} bytes ahead"
        );

        // Seek again (the window starts over), then scan to the end.
        it.seek(key(100).as_ref()).unwrap();
        assert_eq!(
            it.readahead.as_ref().map(|ra| ra.window),
            Some(READAHEAD_INITIAL_BYTES)
        );
        for i in 100..n {
            assert_eq!(it.next().unwrap().unwrap().0, key(i));
        }
        assert!(it.next().is_none());
        let long = it.readahead.as_ref().map_or(0, |ra| ra.buf.len()) as u64;
        assert!(
            long > READAHEAD_BYTES / 2 && long <= READAHEAD_BYTES,
            "a long scan reads up to {READAHEAD_BYTES} bytes ahead, read {long}"
        );
    }
}
