//! The loader's external sort: cells in input order in, cells in store order out, with
//! bounded memory (`storage/docs/bulk_load.md` §8).
//!
//! Cells are held in memory until they take more than the budget, then sorted and written
//! to a spill file (a "run"); the sorted output merges the runs and the last in-memory
//! batch. Of cells with the same row, family, qualifier and timestamp the one from the
//! latest input line is kept (the others are counted as duplicates). Runs are kept until
//! the [`Sorted`] is dropped, so a load can be streamed again (a retry after the server
//! refused changed boundaries). This module neither parses lines nor talks to a server.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;
use speedlayer_proto::{BulkCell, BulkLoadRequest};

use crate::error::ClientError;

/// Default memory budget of the sort: 256 MiB of cells.
pub const DEFAULT_MEMORY_BUDGET: usize = 256 << 20;
/// Bytes of cells per chunk of a spill file (the merge holds one chunk per run).
pub const SPILL_CHUNK_BYTES: usize = 256 << 10;
/// Largest chunk a spill file may declare (a corrupt length is refused, not allocated).
pub const MAX_SPILL_CHUNK_BYTES: usize = 64 << 20;
/// Bytes a cell costs in memory beyond its fields (vector slot, `Bytes` headers).
const CELL_OVERHEAD: usize = 128;

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ClientError {
    ClientError::NotDone(format!("{what} {}: {e}", path.display()))
}

/// The bytes a cell holds in memory, for the budget.
pub fn cell_bytes(c: &BulkCell) -> usize {
    c.row.len() + c.family.len() + c.qualifier.len() + c.value.len() + CELL_OVERHEAD
}

/// Store order: row, family, qualifier ascending, timestamp descending.
pub fn store_order(a: &BulkCell, b: &BulkCell) -> Ordering {
    a.row
        .cmp(&b.row)
        .then_with(|| a.family.cmp(&b.family))
        .then_with(|| a.qualifier.cmp(&b.qualifier))
        .then_with(|| b.timestamp.cmp(&a.timestamp))
}

/// Sorts cells with bounded memory. Push cells in input order, then [`Sorter::finish`].
pub struct Sorter {
    budget: usize,
    spill_root: PathBuf,
    dir: Option<PathBuf>,
    mem: Vec<(BulkCell, u64)>,
    mem_bytes: usize,
    runs: Vec<PathBuf>,
    next_seq: u64,
    spilled_bytes: u64,
    duplicates: u64,
}

impl Sorter {
    /// A sorter holding at most about `budget` bytes of cells in memory, spilling into a
    /// private directory it creates under `spill_root` when it has to.
    pub fn new(budget: usize, spill_root: &Path) -> Sorter {
        Sorter {
            budget: budget.max(1 << 20),
            spill_root: spill_root.to_path_buf(),
            dir: None,
            mem: Vec::new(),
            mem_bytes: 0,
            runs: Vec::new(),
            next_seq: 0,
            spilled_bytes: 0,
            duplicates: 0,
        }
    }

    /// Adds one cell.
    ///
    /// # Errors
    /// Spill file I/O errors.
    pub fn push(&mut self, cell: BulkCell) -> Result<(), ClientError> {
        self.mem_bytes += cell_bytes(&cell);
        self.mem.push((cell, self.next_seq));
        self.next_seq += 1;
        if self.mem_bytes >= self.budget {
            self.spill()?;
        }
        Ok(())
    }

    /// Sorts the in-memory cells (latest input first among equals) and drops duplicates.
    fn sort_mem(&mut self) -> Vec<BulkCell> {
        let mut mem = std::mem::take(&mut self.mem);
        self.mem_bytes = 0;
        mem.sort_unstable_by(|a, b| store_order(&a.0, &b.0).then_with(|| b.1.cmp(&a.1)));
        let mut out: Vec<BulkCell> = Vec::with_capacity(mem.len());
        for (c, _) in mem {
            match out.last() {
                Some(last) if store_order(last, &c) == Ordering::Equal => self.duplicates += 1,
                _ => out.push(c),
            }
        }
        out
    }

    fn spill(&mut self) -> Result<(), ClientError> {
        let cells = self.sort_mem();
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
        let mut chunk = BulkLoadRequest::default();
        let mut bytes = 0;
        for c in cells {
            bytes += cell_bytes(&c);
            chunk.cells.push(c);
            if bytes >= SPILL_CHUNK_BYTES {
                self.spilled_bytes += write_chunk(&mut w, &chunk, &path)?;
                chunk.cells.clear();
                bytes = 0;
            }
        }
        if !chunk.cells.is_empty() {
            self.spilled_bytes += write_chunk(&mut w, &chunk, &path)?;
        }
        w.flush().map_err(|e| io_err("writing", &path, e))?;
        self.runs.push(path);
        Ok(())
    }

    /// Ends the input: the sorted cells, ready to be read (and read again).
    ///
    /// # Errors
    /// None today; kept fallible for symmetry with `push`.
    pub fn finish(mut self) -> Result<Sorted, ClientError> {
        let mem = self.sort_mem();
        Ok(Sorted {
            runs: std::mem::take(&mut self.runs),
            mem,
            dir: self.dir.take(),
            spilled_bytes: self.spilled_bytes,
            duplicates_in_runs: self.duplicates,
        })
    }
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

/// One spill chunk: `len:u32le crc:u32le body` (§8), the body a `BulkLoadRequest`.
fn write_chunk(
    w: &mut impl Write,
    chunk: &BulkLoadRequest,
    path: &Path,
) -> Result<u64, ClientError> {
    let body = chunk.encode_to_vec();
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| (*l as usize) <= MAX_SPILL_CHUNK_BYTES)
        .ok_or_else(|| {
            ClientError::NotDone(format!("spill chunk of {} bytes is too large", body.len()))
        })?;
    w.write_all(&len.to_le_bytes())
        .and_then(|()| w.write_all(&crc32fast::hash(&body).to_le_bytes()))
        .and_then(|()| w.write_all(&body))
        .map_err(|e| io_err("writing", path, e))?;
    Ok(8 + body.len() as u64)
}

/// Reads the next chunk of a spill file; `None` at its end.
///
/// # Errors
/// [`ClientError::NotDone`] naming the file for a torn chunk, a length above the limit, a
/// checksum mismatch or a body that does not decode.
pub fn read_chunk(r: &mut impl Read, path: &Path) -> Result<Option<BulkLoadRequest>, ClientError> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
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
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)
        .map_err(|_| corrupt(path, "torn chunk body"))?;
    if crc32fast::hash(&body) != crc {
        return Err(corrupt(path, "chunk checksum mismatch"));
    }
    BulkLoadRequest::decode(&body[..])
        .map(Some)
        .map_err(|e| corrupt(path, &format!("chunk does not decode: {e}")))
}

fn corrupt(path: &Path, why: &str) -> ClientError {
    ClientError::NotDone(format!(
        "loader spill file {} is damaged: {why}",
        path.display()
    ))
}

/// Sorted cells: spill runs plus the last in-memory batch. Dropping it removes the runs.
pub struct Sorted {
    runs: Vec<PathBuf>,
    mem: Vec<BulkCell>,
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

    /// Duplicates dropped while sorting runs (the merge counts the rest).
    pub fn duplicates_in_runs(&self) -> u64 {
        self.duplicates_in_runs
    }

    /// The cells in store order, without duplicates (the latest input line's cell kept).
    ///
    /// # Errors
    /// Opening a spill file.
    pub fn iter(&self) -> Result<Merge<'_>, ClientError> {
        let mut sources = Vec::with_capacity(self.runs.len() + 1);
        for p in &self.runs {
            let f = File::open(p).map_err(|e| io_err("opening", p, e))?;
            sources.push(Source::Run {
                reader: BufReader::with_capacity(64 << 10, f),
                path: p.clone(),
                buf: VecDeque::new(),
            });
        }
        sources.push(Source::Mem(self.mem.iter()));
        let mut m = Merge {
            heap: BinaryHeap::new(),
            sources,
            last: None,
            duplicates: 0,
        };
        for i in 0..m.sources.len() {
            m.refill(i)?;
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
        buf: VecDeque<BulkCell>,
    },
    Mem(std::slice::Iter<'a, BulkCell>),
}

impl Source<'_> {
    fn next(&mut self) -> Result<Option<BulkCell>, ClientError> {
        match self {
            Source::Mem(it) => Ok(it.next().cloned()),
            Source::Run { reader, path, buf } => {
                if buf.is_empty() {
                    match read_chunk(reader, path)? {
                        Some(chunk) => buf.extend(chunk.cells),
                        None => return Ok(None),
                    }
                }
                Ok(buf.pop_front())
            }
        }
    }
}

/// A heap entry: the next cell of source `src` (later sources hold later input).
struct Head {
    cell: BulkCell,
    src: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    // BinaryHeap is a max-heap: the smallest cell, and among equals the latest source,
    // must compare greatest.
    fn cmp(&self, other: &Self) -> Ordering {
        store_order(&other.cell, &self.cell).then_with(|| self.src.cmp(&other.src))
    }
}

/// The k-way merge of a [`Sorted`]'s runs.
pub struct Merge<'a> {
    heap: BinaryHeap<Head>,
    sources: Vec<Source<'a>>,
    last: Option<BulkCell>,
    duplicates: u64,
}

impl Merge<'_> {
    fn refill(&mut self, src: usize) -> Result<(), ClientError> {
        if let Some(cell) = self.sources[src].next()? {
            self.heap.push(Head { cell, src });
        }
        Ok(())
    }

    /// Duplicates dropped by the merge so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }
}

impl Iterator for Merge<'_> {
    type Item = Result<BulkCell, ClientError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Head { cell, src } = self.heap.pop()?;
            if let Err(e) = self.refill(src) {
                return Some(Err(e));
            }
            if let Some(last) = &self.last
                && store_order(last, &cell) == Ordering::Equal
            {
                self.duplicates += 1;
                continue;
            }
            self.last = Some(cell.clone());
            return Some(Ok(cell));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn cell(row: &str, q: &str, ts: u64, v: &str) -> BulkCell {
        BulkCell {
            row: Bytes::from(row.to_string()),
            family: "cf1".into(),
            qualifier: Bytes::from(q.to_string()),
            timestamp: ts,
            value: Bytes::from(v.to_string()),
        }
    }

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sl-sort-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
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
            input.push(cell(&row, &format!("q{}", x % 3), x % 4, &format!("v{i}")));
        }
        let mut model = std::collections::BTreeMap::new();
        for c in &input {
            model.insert(
                (c.row.clone(), c.qualifier.clone(), u64::MAX - c.timestamp),
                c.value.clone(),
            );
        }
        for budget in [1 << 20, 1 << 30] {
            let mut s = Sorter::new(budget, &root);
            // A budget below 1 MiB is raised to it; force many runs by a small budget.
            s.budget = if budget == 1 << 20 { 64 << 10 } else { budget };
            for c in input.clone() {
                s.push(c).unwrap();
            }
            let sorted = s.finish().unwrap();
            assert_eq!(
                sorted.runs() > 10,
                budget == 1 << 20,
                "runs: {}",
                sorted.runs()
            );
            let got: Vec<BulkCell> = sorted.iter().unwrap().map(Result::unwrap).collect();
            let want: Vec<BulkCell> = model
                .iter()
                .map(|((r, q, t), v)| BulkCell {
                    row: r.clone(),
                    family: "cf1".into(),
                    qualifier: q.clone(),
                    timestamp: u64::MAX - t,
                    value: v.clone(),
                })
                .collect();
            assert_eq!(got.len(), want.len(), "budget {budget}");
            assert!(got == want, "budget {budget}: order or winners differ");
            // Readable again (a retried load streams the same cells).
            assert_eq!(sorted.iter().unwrap().count(), want.len());
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
        let chunk = BulkLoadRequest {
            table: String::new(),
            cells: vec![cell("r1", "q", 5, "v"), cell("r2", "q", 5, "w")],
            abort: false,
        };
        let mut enc = Vec::new();
        write_chunk(&mut enc, &chunk, path).unwrap();
        assert_eq!(read_chunk(&mut &enc[..], path).unwrap(), Some(chunk));
        for p in 0..enc.len() {
            let mut m = enc.clone();
            m[p] ^= 0x01;
            assert!(
                read_chunk(&mut &m[..], path).is_err(),
                "flip at {p} accepted"
            );
        }
        for n in 1..enc.len() {
            assert!(
                read_chunk(&mut &enc[..n], path).is_err(),
                "cut at {n} accepted"
            );
        }
        assert_eq!(read_chunk(&mut &enc[..0], path).unwrap(), None);
    }
}
