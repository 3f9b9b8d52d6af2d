//! Loading one input file: read it line by line (bounded line length), turn lines into
//! cells ([`LineFormat`]), dead-letter the bad ones with their reason, sort with bounded
//! memory ([`Sorter`]), and stream the sorted cells to the server's `BulkLoad` in bounded
//! chunks, retrying the whole stream when the server refused it without adopting anything
//! (boundaries changed, server unavailable). One file is one load: after any crash of the
//! loader or the server, either every row of the file is visible or none is.
//!
//! Progress (phase, bytes or cells, rate, ETA) goes to stderr once a second when asked.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use speedlayer_proto::packed;
use speedlayer_proto::{BulkLoadRequest, BulkLoadResponse};
use tonic::Code;

use super::format::LineFormat;
use super::record::RecordRef;
use super::sort::{Sorted, Sorter};
use crate::client::Client;
use crate::error::ClientError;

/// Longest input line; a longer one is bad input (its bytes are skipped, not buffered).
pub const MAX_LINE_BYTES: usize = 64 << 10;
/// Record bytes per streamed chunk (well under any server message limit); a chunk ends
/// at the first row boundary past it.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Capacity of a chunk's record buffer: a chunk ends at the first row boundary past
/// `CHUNK_BYTES`, so this rarely grows.
const CHUNK_BUF_BYTES: usize = CHUNK_BYTES + (64 << 10);
/// Most record bytes one row key may have in one load (all of a row goes in one chunk,
/// which must stay under the server's message limit, 64 MiB by default).
pub const MAX_ROW_BYTES: usize = 16 << 20;
/// Chunks buffered between the merge and the network (each about `CHUNK_BYTES` of
/// packed groups, one buffer: the loader's memory bound counts them).
const CHANNEL_CHUNKS: usize = 2;

/// How to load.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// How lines become cells.
    pub format: LineFormat,
    /// Memory budget of the sort, in bytes (default 256 MiB); beyond it, spill files.
    pub memory_budget: usize,
    /// Where spill files go (a private directory is made inside; default the system temp).
    pub spill_dir: PathBuf,
    /// The dead-letter file; `None`: `<input>.bad` next to each input.
    pub bad_lines: Option<PathBuf>,
    /// Print progress to stderr.
    pub progress: bool,
    /// Times the whole stream is sent again after a refusal that adopted nothing.
    pub retries: u32,
}

impl LoadOptions {
    /// Defaults for `format`: 256 MiB budget, system temp dir, `<input>.bad`, no progress,
    /// 5 retries.
    pub fn new(format: LineFormat) -> LoadOptions {
        LoadOptions {
            format,
            memory_budget: super::sort::DEFAULT_MEMORY_BUDGET,
            spill_dir: std::env::temp_dir(),
            bad_lines: None,
            progress: false,
            retries: 5,
        }
    }
}

/// What loading one file did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileReport {
    /// The input.
    pub file: PathBuf,
    /// Lines read.
    pub lines: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Lines dead-lettered.
    pub bad_lines: u64,
    /// Where they went (only when there were some).
    pub bad_file: Option<PathBuf>,
    /// Cells with the same row, column and timestamp as a later line's, dropped.
    pub duplicates: u64,
    /// Spill runs the sort wrote (0: the input fit the memory budget).
    pub spill_runs: u64,
    /// Streams sent again after a refusal.
    pub retries: u32,
    /// What the server adopted.
    pub adopted: BulkLoadResponse,
    /// This process's peak resident set size so far, in KiB (`VmHWM`; Linux only).
    pub peak_rss_kib: Option<u64>,
    /// Time reading and sorting, and time streaming and adopting.
    pub read_time: Duration,
    /// See `read_time`.
    pub load_time: Duration,
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> ClientError {
    ClientError::NotDone(format!("{what} {}: {e}", path.display()))
}

/// Loads `file` into `table` as one atomic load.
///
/// # Errors
/// I/O errors on the input, the spill or dead-letter files; the server's refusal when it
/// persists beyond the retries (nothing of the file is then visible); an input with no
/// good line at all is loaded as nothing and is not an error.
pub async fn load_file(
    client: &Client,
    table: &str,
    file: &Path,
    opts: &LoadOptions,
) -> Result<FileReport, ClientError> {
    let started = Instant::now();
    let (mut report, sorted) = {
        let (file, opts) = (file.to_path_buf(), opts.clone());
        tokio::task::spawn_blocking(move || read_and_sort(&file, &opts))
            .await
            .map_err(|e| ClientError::NotDone(format!("reading task failed: {e}")))??
    };
    report.read_time = started.elapsed();
    let sorted = Arc::new(sorted);
    let loading = Instant::now();
    let mut attempt = 0;
    loop {
        let families = opts.format.families();
        match stream_once(
            client,
            table,
            &families,
            &sorted,
            opts.progress,
            &report.file,
        )
        .await
        {
            Ok((resp, dups)) => {
                report.adopted = resp;
                report.duplicates += dups;
                break;
            }
            Err(ClientError::Status { code, .. })
                if attempt < opts.retries
                    && matches!(
                        code,
                        Code::Aborted
                            | Code::Unavailable
                            | Code::ResourceExhausted
                            | Code::Cancelled
                    ) =>
            {
                attempt += 1;
                let pause = Duration::from_millis(200 << attempt.min(5));
                tracing::info!(
                    ?code,
                    attempt,
                    ?pause,
                    "bulk load refused, nothing adopted; sending it again"
                );
                tokio::time::sleep(pause).await;
            }
            Err(e) => return Err(e),
        }
    }
    report.retries = attempt;
    report.load_time = loading.elapsed();
    report.peak_rss_kib = peak_rss_kib();
    Ok(report)
}

/// `VmHWM` of `/proc/self/status`: the peak resident set size of this process, in KiB.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Reads one line of at most [`MAX_LINE_BYTES`] into `buf` (without skipping the rest of a
/// longer line, whose length is returned); `None` at the end of the input.
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>) -> std::io::Result<Option<usize>> {
    buf.clear();
    let mut total = 0usize;
    loop {
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            return Ok((total > 0).then_some(total));
        }
        let (take, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        let room = MAX_LINE_BYTES.saturating_sub(buf.len());
        buf.extend_from_slice(&avail[..take.min(room)]);
        total += take;
        r.consume(take);
        if done {
            return Ok(Some(total));
        }
    }
}

struct DeadLetters {
    path: PathBuf,
    out: Option<std::io::BufWriter<File>>,
    count: u64,
}

impl DeadLetters {
    /// Records line `n` with its reason: `<line number>\t<reason>\t<line>\n`.
    fn add(&mut self, n: u64, reason: &str, line: &[u8]) -> Result<(), ClientError> {
        if self.out.is_none() {
            let f = File::create(&self.path).map_err(|e| io_err("creating", &self.path, e))?;
            self.out = Some(std::io::BufWriter::new(f));
        }
        let line = super::format::strip_terminator(line);
        if let Some(w) = self.out.as_mut() {
            w.write_all(format!("{n}\t{}\t", reason.replace(['\t', '\n'], " ")).as_bytes())
                .and_then(|()| w.write_all(line))
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| io_err("writing", &self.path, e))?;
        }
        self.count += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<Option<PathBuf>, ClientError> {
        match self.out.take() {
            None => Ok(None),
            Some(mut w) => {
                w.flush()
                    .and_then(|()| w.get_ref().sync_all())
                    .map_err(|e| io_err("writing", &self.path, e))?;
                Ok(Some(self.path))
            }
        }
    }
}

/// Parsed lines on their way from the parsing thread to the sort: records end to end,
/// and where each ends.
struct Batch {
    data: Vec<u8>,
    ends: Vec<usize>,
}

/// Record bytes per batch handed from the parsing thread to the sort.
const BATCH_BYTES: usize = 256 << 10;
/// Batches waiting for the sort (the parser blocks beyond: bounded memory).
const PARSE_BATCHES: usize = 4;

/// Reads and parses on one thread while the sort (and its spills) runs on this one, so a
/// sort or a spill does not stop the parsing (and the other way round).
fn read_and_sort(file: &Path, opts: &LoadOptions) -> Result<(FileReport, Sorted), ClientError> {
    let f = File::open(file).map_err(|e| io_err("opening", file, e))?;
    let mut sorter = Sorter::new(opts.memory_budget, &opts.spill_dir);
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(PARSE_BATCHES);
    let mut report = std::thread::scope(|scope| -> Result<FileReport, ClientError> {
        let parser = scope.spawn(move || parse_lines(f, file, opts, &tx));
        let mut sort_err = None;
        {
            let rx = rx;
            'batches: for batch in rx.iter() {
                let mut start = 0;
                for &end in &batch.ends {
                    if let Err(e) = sorter.push_encoded(&batch.data[start..end]) {
                        sort_err = Some(e);
                        break 'batches;
                    }
                    start = end;
                }
            }
            // `rx` dropped here: a parser still sending stops.
        }
        let parsed = parser
            .join()
            .map_err(|_| ClientError::NotDone("the parsing thread panicked".into()))?;
        match sort_err {
            Some(e) => Err(e),
            None => parsed,
        }
    })?;
    let sorted = sorter.finish()?;
    report.spill_runs = sorted.runs() as u64;
    report.duplicates = sorted.duplicates_in_runs();
    Ok((report, sorted))
}

/// The parsing thread: lines to records in batches for `tx`, bad lines to the dead-letter
/// file; the counts (lines, bytes, bad lines and their file).
fn parse_lines(
    f: File,
    file: &Path,
    opts: &LoadOptions,
    tx: &std::sync::mpsc::SyncSender<Batch>,
) -> Result<FileReport, ClientError> {
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    let mut r = BufReader::with_capacity(1 << 20, f);
    let bad_path = opts.bad_lines.clone().unwrap_or_else(|| {
        let mut p = file.as_os_str().to_owned();
        p.push(".bad");
        PathBuf::from(p)
    });
    let mut dead = DeadLetters {
        path: bad_path,
        out: None,
        count: 0,
    };
    let mut report = FileReport {
        file: file.to_path_buf(),
        ..FileReport::default()
    };
    let default_ts = crate::bulk::now_ms();
    let mut line = Vec::with_capacity(256);
    let families = opts.format.families();
    let started = Instant::now();
    let mut shown = Instant::now();
    let mut progress = Progress::new(opts.progress, file, "reading");
    let new_batch = || Batch {
        data: Vec::with_capacity(BATCH_BYTES + (64 << 10)),
        ends: Vec::with_capacity(BATCH_BYTES / 64),
    };
    let mut batch = new_batch();
    while let Some(len) = read_line(&mut r, &mut line).map_err(|e| io_err("reading", file, e))? {
        report.lines += 1;
        report.bytes += len as u64;
        if len > MAX_LINE_BYTES {
            dead.add(
                report.lines,
                &format!("line of {len} bytes exceeds the {MAX_LINE_BYTES}-byte limit (cut here)"),
                &line,
            )?;
            continue;
        }
        match opts
            .format
            .record(&line, default_ts, &families, &mut batch.data)
        {
            Ok(_) => batch.ends.push(batch.data.len()),
            Err(reason) => dead.add(report.lines, &reason, &line)?,
        }
        if batch.data.len() >= BATCH_BYTES
            && tx.send(std::mem::replace(&mut batch, new_batch())).is_err()
        {
            // The sort stopped on an error; it reports it.
            return Ok(report);
        }
        if report.lines.is_multiple_of(4096) && shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            progress.show(report.bytes, total, "B", started);
        }
    }
    if !batch.ends.is_empty() {
        let _ = tx.send(batch);
    }
    progress.done();
    report.bad_lines = dead.count;
    report.bad_file = dead.finish()?;
    Ok(report)
}

/// Streams already sorted cells to `table` as one load, once (no retry); the server's
/// reply and the duplicates the merge dropped. A failure while reading `sorted` cancels the
/// call, so the server adopts nothing.
///
/// # Errors
/// The server's status; the merge's error (a damaged spill file).
pub async fn load_sorted(
    client: &Client,
    table: &str,
    families: &[String],
    sorted: &Arc<Sorted>,
) -> Result<(BulkLoadResponse, u64), ClientError> {
    stream_once(client, table, families, sorted, false, Path::new("-")).await
}

/// Streams `sorted` once; the server's reply and the duplicates the merge dropped.
///
/// IMPORTANT: the server adopts a load when its stream *ends*, so a failure while merging
/// (a damaged spill file) must not end the stream as a complete load: an `abort` chunk is
/// sent first (the server then adopts nothing), the stream never ends after it, and the
/// call is dropped.
async fn stream_once(
    client: &Client,
    table: &str,
    families: &[String],
    sorted: &Arc<Sorted>,
    show: bool,
    file: &Path,
) -> Result<(BulkLoadResponse, u64), ClientError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<BulkLoadRequest, ()>>(CHANNEL_CHUNKS);
    let mut producer = {
        let (sorted, table, file) = (Arc::clone(sorted), table.to_string(), file.to_path_buf());
        let families = families.to_vec();
        tokio::task::spawn_blocking(move || -> Result<(u64, u64), ClientError> {
            let r = produce(&sorted, table.clone(), families, show, &file, &tx);
            if r.is_err() {
                // IMPORTANT: before anything could end the stream.
                let abort = BulkLoadRequest {
                    table,
                    abort: true,
                    ..BulkLoadRequest::default()
                };
                let _ = tx.blocking_send(Ok(abort));
                let _ = tx.blocking_send(Err(()));
            }
            r
        })
    };
    let chunks = futures::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Some(Ok(chunk)) => Some((chunk, rx)),
            Some(Err(())) => {
                // Never end: an ended stream would be adopted. The caller cancels the call.
                std::future::pending::<()>().await;
                None
            }
            None => None,
        }
    });
    let rpc = client.bulk_load_stream(chunks);
    tokio::pin!(rpc);
    let joined = |j: Result<Result<(u64, u64), ClientError>, tokio::task::JoinError>| {
        j.map_err(|e| ClientError::NotDone(format!("merge task failed: {e}")))?
    };
    let (resp, (dups, sent)) = tokio::select! {
        resp = &mut rpc => {
            // The merge's own failure first: the server's answer to it (CANCELLED after
            // the abort chunk) says less.
            let done = joined(producer.await)?;
            (resp?, done)
        }
        done = &mut producer => {
            // On a merge failure `rpc` is dropped on return: the call is cancelled.
            let done = joined(done)?;
            (rpc.await?, done)
        }
    };
    if resp.cells != sent {
        // A server that predates packed chunks ignores them: an empty load.
        return Err(ClientError::NotDone(format!(
            "the server adopted {} of the {sent} cells sent (a server without packed \
             bulk loads adopts none: upgrade it)",
            resp.cells
        )));
    }
    Ok((resp, dups))
}

/// Sends the merged records of `sorted` as chunks of packed row groups (bulk_load.md §8);
/// the duplicate cells the merge dropped and the cells sent.
fn produce(
    sorted: &Sorted,
    table: String,
    families: Vec<String>,
    show: bool,
    file: &Path,
    tx: &tokio::sync::mpsc::Sender<Result<BulkLoadRequest, ()>>,
) -> Result<(u64, u64), ClientError> {
    let mut merge = sorted.iter()?;
    let mut head = Some((table, families));
    let mut buf = BytesMut::with_capacity(CHUNK_BUF_BYTES);
    // The records of the current row (usually one), end to end, and where each starts.
    let mut row_recs: Vec<u8> = Vec::with_capacity(4 << 10);
    let mut row_starts: Vec<usize> = Vec::new();
    let (mut sent_cells, mut sent_bytes) = (0u64, 0u64);
    let started = Instant::now();
    let mut shown = Instant::now();
    let mut progress = Progress::new(show, file, "loading");
    while let Some(r) = merge.next_record()? {
        let same_row = !row_starts.is_empty()
            && RecordRef::trusted(&row_recs).is_some_and(|first| first.row == r.row);
        if same_row {
            if row_recs.len() > MAX_ROW_BYTES {
                return Err(ClientError::NotDone(format!(
                    "row {:?} has more than {MAX_ROW_BYTES} bytes of cells in one load",
                    String::from_utf8_lossy(r.row)
                )));
            }
        } else {
            sent_cells += put_group(&mut buf, &row_recs, &row_starts);
            row_recs.clear();
            row_starts.clear();
            if buf.len() >= CHUNK_BYTES {
                sent_bytes += buf.len() as u64;
                let chunk = take_chunk(&mut buf, &mut head);
                if tx.blocking_send(Ok(chunk)).is_err() {
                    // The call ended (the server refused, or the connection broke).
                    return Ok((merge.duplicates(), sent_cells));
                }
                if shown.elapsed() >= Duration::from_secs(1) {
                    shown = Instant::now();
                    progress.show_cells(sent_cells, sent_bytes, started);
                }
            }
        }
        row_starts.push(row_recs.len());
        put_record(&mut row_recs, &r);
    }
    sent_cells += put_group(&mut buf, &row_recs, &row_starts);
    // The first chunk names the table even when the input had no good line.
    if !buf.is_empty() || head.is_some() {
        let chunk = take_chunk(&mut buf, &mut head);
        let _ = tx.blocking_send(Ok(chunk));
    }
    progress.done();
    Ok((merge.duplicates(), sent_cells))
}

/// Appends the records of one row (`recs`, starting at `starts`; none: nothing) to `buf`
/// as one packed row group; the cells it holds. Records of one row with several
/// timestamps become one group whose cells are in store order: (family, qualifier)
/// ascending, then timestamp descending (records come newest first; the sort is stable).
fn put_group(buf: &mut BytesMut, recs: &[u8], starts: &[usize]) -> u64 {
    let rec = |at: usize| recs.get(at..).and_then(RecordRef::trusted);
    match starts {
        [] => 0,
        [only] => {
            let Some(r) = rec(*only) else { return 0 };
            packed::put_group_head(buf, r.row, u32::from(r.n));
            for (family, qualifier, value) in r.columns() {
                packed::put_cell(
                    buf,
                    packed::Cell {
                        family,
                        qualifier,
                        timestamp: r.ts,
                        value,
                    },
                );
            }
            u64::from(r.n)
        }
        several => {
            // Rare (one row key at several timestamps): an allocation per such row.
            let mut cells: Vec<packed::Cell<'_>> = Vec::new();
            let mut row: &[u8] = &[];
            for &at in several {
                let Some(r) = rec(at) else { continue };
                row = r.row;
                cells.extend(r.columns().map(|(family, qualifier, value)| packed::Cell {
                    family,
                    qualifier,
                    timestamp: r.ts,
                    value,
                }));
            }
            cells.sort_by(|a, b| {
                (a.family, a.qualifier)
                    .cmp(&(b.family, b.qualifier))
                    .then_with(|| b.timestamp.cmp(&a.timestamp))
            });
            let n = cells.len();
            if n > 0 {
                packed::put_group_head(buf, row, n as u32);
                for c in &cells {
                    packed::put_cell(buf, *c);
                }
            }
            n as u64
        }
    }
}

/// Appends `r` to `buf` in its record encoding.
fn put_record(buf: &mut Vec<u8>, r: &RecordRef<'_>) {
    // The merge lends records whose `columns` run to the end of their chunk.
    let r = r.exact();
    // A row is at most `record::MAX_RECORD_ROW` bytes (checked when it was encoded).
    buf.extend_from_slice(&(r.row.len() as u16).to_le_bytes());
    buf.extend_from_slice(r.row);
    buf.extend_from_slice(&r.ts.to_le_bytes());
    buf.extend_from_slice(&r.n.to_le_bytes());
    buf.extend_from_slice(r.columns);
}

/// The chunk of the packed groups in `buf` (emptied). The first chunk takes `head`
/// (table and families).
fn take_chunk(buf: &mut BytesMut, head: &mut Option<(String, Vec<String>)>) -> BulkLoadRequest {
    // A fresh buffer, not `split()`: a BytesMut whose front was split off and still
    // shared grows by copying everything at each small reserve (measured: 46% of the
    // loader's CPU went to those copies).
    let packed: Bytes = std::mem::replace(buf, BytesMut::with_capacity(CHUNK_BUF_BYTES)).freeze();
    let (table, families) = head.take().unwrap_or_default();
    BulkLoadRequest {
        table,
        families,
        packed,
        ..BulkLoadRequest::default()
    }
}

/// A progress line on stderr: `\r`-rewritten while it runs, ended with a newline.
struct Progress {
    on: bool,
    label: String,
    shown: bool,
}

impl Progress {
    fn new(on: bool, file: &Path, phase: &str) -> Progress {
        Progress {
            on,
            label: format!("bulkload {}: {phase}", file.display()),
            shown: false,
        }
    }

    fn show(&mut self, done: u64, total: u64, _unit: &str, started: Instant) {
        if !self.on {
            return;
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let eta = if rate > 0.0 && total > done {
            format!("{:.0} s", (total - done) as f64 / rate)
        } else {
            "-".into()
        };
        eprint!(
            "\r{} {}/{} MB, {:.1} MB/s, ETA {eta}   ",
            self.label,
            mb(done),
            mb(total),
            rate / 1e6
        );
        self.shown = true;
    }

    fn show_cells(&mut self, cells: u64, bytes: u64, started: Instant) {
        if !self.on {
            return;
        }
        let secs = started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{} {cells} cells, {} MB sent, {:.0} cells/s, {:.1} MB/s   ",
            self.label,
            mb(bytes),
            cells as f64 / secs,
            bytes as f64 / secs / 1e6
        );
        self.shown = true;
    }

    fn done(&mut self) {
        if self.on && self.shown {
            eprintln!();
        }
    }
}

fn mb(b: u64) -> String {
    format!("{:.1}", b as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_and_measured() {
        let mut input = Vec::new();
        input.extend_from_slice(b"short\n");
        input.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        input.extend_from_slice(b"\nlast");
        let mut r = &input[..];
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(6));
        assert_eq!(buf, b"short\n");
        assert_eq!(
            read_line(&mut r, &mut buf).unwrap(),
            Some(MAX_LINE_BYTES + 11)
        );
        assert_eq!(buf.len(), MAX_LINE_BYTES, "bounded");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), Some(4));
        assert_eq!(buf, b"last");
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), None);
    }
}
