//! The loader's external sort: row records (`record.rs`, one per input line) in input
//! order in, records in store order out, with bounded memory
//! (`storage/docs/bulk_load.md` §8).
//!
//! Records are appended end to end to one buffer (no allocation per cell) until it, and
//! the offsets sorted with it, would take more than the budget; then the offsets are
//! sorted and the records written in that order to a spill file (a "run"). The sorted
//! output merges the runs and the last in-memory batch. Order: row ascending, then
//! timestamp descending; of records with the same row and timestamp the one from the
//! latest input line is kept and the others are counted as duplicates (every line of a
//! format has the same columns, so this is "the latest line's cell wins"). Runs are kept
//! until the [`Sorted`] is dropped, so a load can be streamed again (a retry after the
//! server refused changed boundaries). This module neither parses lines nor talks to a
//! server.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::record::{self, Column, RecordRef, record_order};
use crate::error::ClientError;

/// Default memory budget of the sort: 256 MiB of records.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;
/// Bytes of records per chunk of a spill file (the merge holds one chunk per run).
pub const SPILL_CHUNK_BYTES: usize = 256 << 10;
/// Largest chunk a spill file may declare (a corrupt length is refused, not allocated).
pub const MAX_SPILL_CHUNK_BYTES: usize = 64 << 20;
/// Room kept free at the end of the record buffer for the next record: a record that
/// would not fit spills the buffer first, so the buffer never reallocates.
const RECORD_ROOM: usize = 256 << 10;

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ClientError {
    ClientError::NotDone(format!("{what} {}: {e}", path.display()))
}

fn record_at(arena: &[u8], off: usize) -> RecordRef<'_> {
    // Records in the arena were written by `record::encode` in this process.
    RecordRef::trusted(&arena[off..]).unwrap_or(RecordRef {
        row: &[],
        ts: 0,
        n: 0,
        columns: &[],
    })
}

/// Sorts records with bounded memory. Push records in input order, then
/// [`Sorter::finish`].
pub struct Sorter {
    budget: usize,
    spill_root: PathBuf,
    dir: Option<PathBuf>,
    arena: Vec<u8>,
    index: Vec<usize>,
    runs: Vec<PathBuf>,
    spilled_bytes: u64,
    duplicates: u64,
}

impl Sorter {
    /// A sorter holding at most about `budget` bytes of records and offsets in memory,
    /// spilling into a private directory it creates under `spill_root` when it has to.
    pub fn new(budget: usize, spill_root: &Path) -> Sorter {
        Sorter {
            budget: budget.max(1 << 20),
            spill_root: spill_root.to_path_buf(),
            dir: None,
            arena: Vec::new(),
            index: Vec::new(),
            runs: Vec::new(),
            spilled_bytes: 0,
            duplicates: 0,
        }
    }

    /// The record buffer's share of the budget; the offsets get the rest (1/8).
    fn arena_cap(&self) -> usize {
        self.budget - self.budget / 8
    }

    fn index_cap(&self) -> usize {
        self.budget / 8 / std::mem::size_of::<usize>()
    }

    /// Adds one record, written by `write` at the end of the buffer it is given (returns
    /// the record's length, or the reason the line is bad input: then nothing is added and
    /// the reason is returned as `Ok(Err(reason))`).
    ///
    /// # Errors
    /// Spill file I/O errors.
    pub fn push_with(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>) -> Result<usize, String>,
    ) -> Result<Result<(), String>, ClientError> {
        if self.arena.capacity() == 0 {
            self.arena.reserve_exact(self.arena_cap());
            self.index.reserve_exact(self.index_cap());
        }
        if !self.index.is_empty()
            && (self.arena.len() + RECORD_ROOM.min(self.arena_cap() / 16) > self.arena.capacity()
                || self.index.len() == self.index.capacity())
        {
            self.spill()?;
        }
        let start = self.arena.len();
        match write(&mut self.arena) {
            Ok(_) => {
                self.index.push(start);
                Ok(Ok(()))
            }
            Err(reason) => {
                self.arena.truncate(start);
                Ok(Err(reason))
            }
        }
    }

    /// Adds one record already encoded by `record::encode` (in this process).
    ///
    /// # Errors
    /// Spill file I/O errors.
    pub fn push_encoded(&mut self, rec: &[u8]) -> Result<(), ClientError> {
        self.push_with(|out| {
            out.extend_from_slice(rec);
            Ok(rec.len())
        })
        .map(|_| ())
    }

    /// Adds the record of `row` at `ts` with `columns` (tests and callers that build
    /// records themselves).
    ///
    /// # Errors
    /// [`ClientError::BadArgument`] for a record `record::encode` refuses; spill I/O.
    pub fn push_row(
        &mut self,
        row: &[u8],
        ts: u64,
        columns: &mut [Column<'_>],
    ) -> Result<(), ClientError> {
        self.push_with(|out| record::encode(row, ts, columns, out))?
            .map_err(ClientError::BadArgument)
    }

    /// Sorts the in-memory offsets (latest input first among equals) and drops
    /// duplicates.
    fn sort_mem(&mut self) {
        let arena = &self.arena;
        // Offsets grow with input order: the larger offset is the later line.
        self.index.sort_unstable_by(|&a, &b| {
            record_order(&record_at(arena, a), &record_at(arena, b)).then_with(|| b.cmp(&a))
        });
        let mut dups = 0u64;
        let mut prev: Option<RecordRef<'_>> = None;
        self.index.retain(|&off| {
            let r = record_at(arena, off);
            let same = prev.is_some_and(|p| p.row == r.row && p.ts == r.ts);
            if same {
                dups += u64::from(r.n);
            } else {
                prev = Some(r);
            }
            !same
        });
        self.duplicates += dups;
    }

    fn spill(&mut self) -> Result<(), ClientError> {
        self.sort_mem();
        let dir = match &self.dir {
            Some(d) => d.clone(),
            None => {
                sweep_dead_spills(&self.spill_root);
                let d = self.spill_root.join(format!(
                    "{SPILL_PREFIX}{}-{}",
                    std::process::id(),
                    unique()
                ));
                std::fs::create_dir_all(&d).map_err(|e| io_err("creating", &d, e))?;
                self.dir = Some(d.clone());
                d
            }
        };
        let path = dir.join(format!("run-{:06}", self.runs.len()));
        let f = File::create(&path).map_err(|e| io_err("creating", &path, e))?;
        let mut w = BufWriter::with_capacity(1 << 20, f);
        let mut chunk = Vec::with_capacity(SPILL_CHUNK_BYTES + RECORD_ROOM);
        for &off in &self.index {
            let len = record_len(&self.arena, off);
            chunk.extend_from_slice(&self.arena[off..off + len]);
            if chunk.len() >= SPILL_CHUNK_BYTES {
                self.spilled_bytes += write_chunk(&mut w, &chunk, &path)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            self.spilled_bytes += write_chunk(&mut w, &chunk, &path)?;
        }
        w.flush().map_err(|e| io_err("writing", &path, e))?;
        self.runs.push(path);
        self.arena.clear();
        self.index.clear();
        Ok(())
    }

    /// Ends the input: the sorted records, ready to be read (and read again).
    ///
    /// # Errors
    /// None today; kept fallible for symmetry with `push_with`.
    pub fn finish(mut self) -> Result<Sorted, ClientError> {
        if !self.runs.is_empty() && !self.index.is_empty() {
            // The merge then holds one chunk per run, not a full buffer: its memory stays
            // far below the budget while chunks are being sent.
            self.spill()?;
            self.arena = Vec::new();
            self.index = Vec::new();
        }
        self.sort_mem();
        Ok(Sorted {
            runs: std::mem::take(&mut self.runs),
            arena: std::mem::take(&mut self.arena),
            index: std::mem::take(&mut self.index),
            dir: self.dir.take(),
            spilled_bytes: self.spilled_bytes,
            duplicates_in_runs: self.duplicates,
        })
    }
}

/// The length of the record at `off` (written by `record::encode` in this process).
fn record_len(arena: &[u8], off: usize) -> usize {
    RecordRef::parse(&arena[off..]).map_or(arena.len() - off, |(_, len)| len)
}

impl Drop for Sorter {
    fn drop(&mut self) {
        remove_spill_dir(self.dir.take());
    }
}

/// Names a loader's private spill directory: `speedlayer-bulkload-<pid>-<n>`.
const SPILL_PREFIX: &str = "speedlayer-bulkload-";

/// Removes spill directories of loaders that are gone (a `kill -9` leaves them behind):
/// those whose pid has no `/proc/<pid>`. Best effort; Linux only (elsewhere nothing is
/// removed).
fn sweep_dead_spills(root: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SPILL_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new("/proc").join(pid.to_string()).exists() {
            tracing::info!(dir = %e.path().display(), "removing the spill files of a loader that is gone");
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

fn remove_spill_dir(dir: Option<PathBuf>) {
    if let Some(d) = dir
        && let Err(e) = std::fs::remove_dir_all(&d)
    {
        tracing::warn!(dir = %d.display(), error = %e, "could not remove the loader's spill files");
    }
}

/// One spill chunk: `len:u32le crc:u32le body` (§8), the body records end to end.
fn write_chunk(w: &mut impl Write, body: &[u8], path: &Path) -> Result<u64, ClientError> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_SPILL_CHUNK_BYTES)
        .ok_or_else(|| {
            ClientError::NotDone(format!("spill chunk of {} bytes is too large", body.len()))
        })?;
    w.write_all(&len.to_le_bytes())
        .and_then(|()| w.write_all(&crc32fast::hash(body).to_le_bytes()))
        .and_then(|()| w.write_all(body))
        .map_err(|e| io_err("writing", path, e))?;
    Ok(8 + body.len() as u64)
}

/// Reads the next chunk of a spill file into `body` (replacing its content); `false` at
/// the end of the file. Every record of the body is checked (`RecordRef::parse`).
///
/// # Errors
/// [`ClientError::NotDone`] naming the file for a torn chunk, a length above the limit, a
/// checksum mismatch or a body that is not whole records.
pub fn read_chunk(r: &mut impl Read, path: &Path, body: &mut Vec<u8>) -> Result<bool, ClientError> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(corrupt(path, "torn chunk header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("reading", path, e)),
        }
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if len > MAX_SPILL_CHUNK_BYTES {
        return Err(corrupt(path, &format!("chunk declares {len} bytes")));
    }
    body.clear();
    body.resize(len, 0);
    r.read_exact(body)
        .map_err(|_| corrupt(path, "torn chunk body"))?;
    if crc32fast::hash(body) != crc {
        return Err(corrupt(path, "chunk checksum mismatch"));
    }
    let mut at = 0;
    while at < body.len() {
        match RecordRef::parse(&body[at..]) {
            Some((_, n)) => at += n,
            None => return Err(corrupt(path, "chunk body is not whole records")),
        }
    }
    if body.is_empty() {
        return Err(corrupt(path, "empty chunk"));
    }
    Ok(true)
}

fn corrupt(path: &Path, why: &str) -> ClientError {
    ClientError::NotDone(format!(
        "loader spill file {} is damaged: {why}",
        path.display()
    ))
}

/// Sorted records: spill runs plus the last in-memory batch. Dropping it removes the
/// runs.
pub struct Sorted {
    runs: Vec<PathBuf>,
    arena: Vec<u8>,
    index: Vec<usize>,
    dir: Option<PathBuf>,
    spilled_bytes: u64,
    duplicates_in_runs: u64,
}

impl Sorted {
    /// Spill runs written (0 when the input fit the budget).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The spill files, in input order (tests damage them).
    #[doc(hidden)]
    pub fn run_paths(&self) -> &[PathBuf] {
        &self.runs
    }

    /// Bytes written to spill files.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes
    }

    /// Duplicate cells dropped while sorting runs (the merge counts the rest).
    pub fn duplicates_in_runs(&self) -> u64 {
        self.duplicates_in_runs
    }

    /// The records in store order, without duplicates (the latest input line's kept).
    ///
    /// # Errors
    /// Opening or reading a spill file.
    pub fn iter(&self) -> Result<Merge<'_>, ClientError> {
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for p in &self.runs {
            let f = File::open(p).map_err(|e| io_err("opening", p, e))?;
            sources.push(Source::Run {
                reader: BufReader::with_capacity(64 << 10, f),
                path: p.clone(),
                body: Vec::new(),
                pos: 0,
                len: 0,
            });
        }
        sources.push(Source::Mem {
            arena: &self.arena,
            index: &self.index,
            at: 0,
        });
        let mut m = Merge {
            heap: Vec::with_capacity(sources.len()),
            sources,
            pending: false,
            last_row: Vec::new(),
            last_ts: None,
            duplicates: 0,
        };
        for i in 0..m.sources.len() {
            if m.sources[i].start()? {
                m.heap.push(i);
                let at = m.heap.len() - 1;
                m.sift_up(at);
            }
        }
        Ok(m)
    }
}

impl Drop for Sorted {
    fn drop(&mut self) {
        remove_spill_dir(self.dir.take());
    }
}

enum Source<'a> {
    Run {
        reader: BufReader<File>,
        path: PathBuf,
        body: Vec<u8>,
        /// The current record is `body[pos..pos + len]`.
        pos: usize,
        len: usize,
    },
    Mem {
        arena: &'a [u8],
        index: &'a [usize],
        at: usize,
    },
}

impl Source<'_> {
    /// Positions on the first record; `false` when there is none.
    fn start(&mut self) -> Result<bool, ClientError> {
        match self {
            Source::Mem { index, at, .. } => Ok(*at < index.len()),
            Source::Run {
                reader,
                path,
                body,
                pos,
                len,
            } => {
                if !read_chunk(reader, path, body)? {
                    return Ok(false);
                }
                *pos = 0;
                *len = RecordRef::parse(body).map_or(0, |(_, n)| n);
                Ok(true)
            }
        }
    }

    /// Moves to the next record; `false` at the end.
    fn advance(&mut self) -> Result<bool, ClientError> {
        match self {
            Source::Mem { index, at, .. } => {
                *at += 1;
                Ok(*at < index.len())
            }
            Source::Run {
                reader,
                path,
                body,
                pos,
                len,
            } => {
                *pos += *len;
                if *pos >= body.len() {
                    if !read_chunk(reader, path, body)? {
                        return Ok(false);
                    }
                    *pos = 0;
                }
                // `read_chunk` checked every record of the body.
                *len = RecordRef::parse(&body[*pos..]).map_or(0, |(_, n)| n);
                Ok(true)
            }
        }
    }

    fn current(&self) -> RecordRef<'_> {
        match self {
            Source::Mem { arena, index, at } => record_at(arena, index[*at]),
            Source::Run { body, pos, .. } => record_at(body, *pos),
        }
    }
}

/// The k-way merge of a [`Sorted`]'s runs: a binary min-heap of source indexes ordered
/// by their current records (later sources, which hold later input, first among equals).
/// A lending iterator: [`Merge::next_record`] borrows the record from its source.
pub struct Merge<'a> {
    heap: Vec<usize>,
    sources: Vec<Source<'a>>,
    /// The top source's record was handed out: advance it before the next one.
    pending: bool,
    last_row: Vec<u8>,
    last_ts: Option<u64>,
    duplicates: u64,
}

impl Merge<'_> {
    fn less(&self, a: usize, b: usize) -> bool {
        let (ra, rb) = (self.sources[a].current(), self.sources[b].current());
        record_order(&ra, &rb).then_with(|| b.cmp(&a)) == std::cmp::Ordering::Less
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.less(self.heap[i], self.heap[parent]) {
                self.heap.swap(i, parent);
                i = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut m = i;
            if l < self.heap.len() && self.less(self.heap[l], self.heap[m]) {
                m = l;
            }
            if r < self.heap.len() && self.less(self.heap[r], self.heap[m]) {
                m = r;
            }
            if m == i {
                return;
            }
            self.heap.swap(i, m);
            i = m;
        }
    }

    fn advance_top(&mut self) -> Result<(), ClientError> {
        let Some(&top) = self.heap.first() else {
            return Ok(());
        };
        if !self.sources[top].advance()? {
            let last = self.heap.len() - 1;
            self.heap.swap(0, last);
            self.heap.pop();
        }
        self.sift_down(0);
        Ok(())
    }

    /// The next record in store order, `None` at the end.
    ///
    /// # Errors
    /// A damaged spill file.
    pub fn next_record(&mut self) -> Result<Option<RecordRef<'_>>, ClientError> {
        loop {
            if self.pending {
                self.pending = false;
                self.advance_top()?;
            }
            let Some(&top) = self.heap.first() else {
                return Ok(None);
            };
            self.pending = true;
            let r = self.sources[top].current();
            if self.last_ts == Some(r.ts) && self.last_row == r.row {
                self.duplicates += u64::from(r.n);
                continue;
            }
            self.last_row.clear();
            self.last_row.extend_from_slice(r.row);
            self.last_ts = Some(r.ts);
            return Ok(Some(self.sources[top].current()));
        }
    }

    /// Duplicate cells dropped by the merge so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cell = (Vec<u8>, u8, Vec<u8>, u64, Vec<u8>);

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sl-sort-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn cells_of(sorted: &Sorted) -> Vec<Cell> {
        let mut m = sorted.iter().unwrap();
        let mut out = Vec::new();
        while let Some(r) = m.next_record().unwrap() {
            for (f, q, v) in r.columns() {
                out.push((r.row.to_vec(), f, q.to_vec(), r.ts, v.to_vec()));
            }
        }
        out
    }

    /// A seeded shuffle of rows with repeats, through a tiny budget (many runs) and a big
    /// one (none): the same sorted, de-duplicated output as a BTreeMap model where the
    /// latest line wins.
    #[test]
    fn spilled_and_in_memory_sorts_agree_with_a_model() {
        let root = tmp("model");
        let mut x = 12345u64;
        let mut input = Vec::new();
        for i in 0..20_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let row = format!("r{:05}", x % 5000);
            input.push((row, x % 4, format!("v{i}")));
        }
        // Rows are ordered by (row, ts desc); each line has columns (0,"a") and (1,"b").
        let mut model = std::collections::BTreeMap::new();
        for (row, ts, v) in &input {
            for (f, q) in [(0u8, "a"), (1, "b")] {
                model.insert(
                    (row.clone(), u64::MAX - ts, f, q.to_string()),
                    format!("{v}{q}"),
                );
            }
        }
        let want: Vec<Cell> = model
            .iter()
            .map(|((r, t, f, q), v)| {
                let (r, q, v) = (r.as_bytes(), q.as_bytes(), v.as_bytes());
                (r.to_vec(), *f, q.to_vec(), u64::MAX - t, v.to_vec())
            })
            .collect();
        for budget in [1 << 20, 1 << 30] {
            let mut s = Sorter::new(budget, &root);
            // A budget below 1 MiB is raised to it; force many runs by a small budget.
            s.budget = if budget == 1 << 20 { 320 << 10 } else { budget };
            for (row, ts, v) in &input {
                let (va, vb) = (format!("{v}a"), format!("{v}b"));
                let mut cols = [
                    Column {
                        family: 1,
                        qualifier: b"b",
                        value: vb.as_bytes(),
                    },
                    Column {
                        family: 0,
                        qualifier: b"a",
                        value: va.as_bytes(),
                    },
                ];
                s.push_row(row.as_bytes(), *ts, &mut cols).unwrap();
            }
            let sorted = s.finish().unwrap();
            assert_eq!(
                sorted.runs() > 2,
                budget == 1 << 20,
                "runs: {}",
                sorted.runs()
            );
            let got = cells_of(&sorted);
            assert_eq!(got.len(), want.len(), "budget {budget}");
            assert!(got == want, "budget {budget}: order or winners differ");
            let mut m = sorted.iter().unwrap();
            while m.next_record().unwrap().is_some() {}
            assert_eq!(
                sorted.duplicates_in_runs() + m.duplicates(),
                (input.len() * 2 - want.len()) as u64
            );
            // Readable again (a retried load streams the same cells).
            assert_eq!(cells_of(&sorted).len(), want.len());
            drop(sorted);
        }
        assert_eq!(
            std::fs::read_dir(&root).unwrap().count(),
            0,
            "spill files removed"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn every_byte_flip_and_truncation_of_a_spill_chunk_is_an_error() {
        let path = Path::new("spill");
        let mut body = Vec::new();
        for row in [&b"r1"[..], b"r2"] {
            let mut cols = [Column {
                family: 0,
                qualifier: b"q",
                value: b"v",
            }];
            record::encode(row, 5, &mut cols, &mut body).unwrap();
        }
        let mut enc = Vec::new();
        write_chunk(&mut enc, &body, path).unwrap();
        let mut got = Vec::new();
        assert!(read_chunk(&mut &enc[..], path, &mut got).unwrap());
        assert_eq!(got, body);
        for p in 0..enc.len() {
            let mut m = enc.clone();
            m[p] ^= 0x01;
            assert!(
                read_chunk(&mut &m[..], path, &mut got).is_err(),
                "flip at {p} accepted"
            );
        }
        for n in 1..enc.len() {
            assert!(
                read_chunk(&mut &enc[..n], path, &mut got).is_err(),
                "cut at {n} accepted"
            );
        }
        assert!(!read_chunk(&mut &enc[..0], path, &mut got).unwrap());
    }
}
