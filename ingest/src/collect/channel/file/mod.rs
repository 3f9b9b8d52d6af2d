//! The file channel: durable, checksummed, bounded on disk; survives kill -9 and, with
//! the default `fsync = "put"`, power loss.
//!
//! Events are appended to segment files; a checkpoint records how far the sink has
//! committed. On open, the torn tail of the last segment (a record cut by a crash) is
//! truncated and reading resumes at the checkpoint, so every put that returned is taken
//! again unless its take was committed. Every file operation goes through the file-system
//! seam ([`FileChannelOptions::fs`]). Format, power-cut behaviour and invariants:
//! `ingest/docs/file_channel_format.md`.
//!
//! Not a replicated log: one writer (the pipeline's source), one reader (its sink runner).
//! The record codec lives in [`record`].

pub mod record;
mod segment;

use std::collections::VecDeque;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use speedlayer_vfs::{File, OpenMode, SharedFs, durable};

use self::record::{BadRecord, Next, RECORD_HEADER, read_record};
pub use self::record::{
    CHECKPOINT_MAGIC, DecodeError, MAX_RECORD, SEGMENT_MAGIC, TooLarge, decode_event, encode_event,
};
use self::segment::{
    SegmentReader, create_segment, encode_checkpoint, read_checkpoint, scan_segment, seg_id,
    seg_path,
};
use super::Channel;
use crate::collect::Event;
use crate::error::{Error, Result};

/// Length of [`SEGMENT_MAGIC`], where a segment's first record starts.
const MAGIC_LEN: u64 = SEGMENT_MAGIC.len() as u64;

/// When `put` fsyncs the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FsyncPolicy {
    /// Every put (default): a returned put survives power loss.
    EveryPut,
    /// At most once per interval: a returned put survives kill -9, and power loss after
    /// the interval.
    Interval(Duration),
    /// Never (the OS decides): survives kill -9 only.
    Never,
}

/// File channel options.
#[derive(Debug, Clone)]
pub struct FileChannelOptions {
    /// Bound on the bytes of all segments; `put` blocks at the bound.
    pub capacity_bytes: u64,
    /// Size at which a segment is closed and a new one started.
    pub segment_bytes: u64,
    /// fsync policy.
    pub fsync: FsyncPolicy,
    /// The file system every segment and checkpoint operation goes through. Default: the
    /// real one; tests inject a fault-injecting one.
    pub fs: SharedFs,
}

impl FileChannelOptions {
    /// Options for `capacity_mb` with segments of a quarter of it (≤ 64 MB), on the real
    /// file system.
    pub fn with_capacity_mb(capacity_mb: u64) -> Self {
        let capacity_bytes = capacity_mb.max(1) * 1024 * 1024;
        FileChannelOptions {
            capacity_bytes,
            segment_bytes: (capacity_bytes / 4).clamp(64 * 1024, 64 * 1024 * 1024),
            fsync: FsyncPolicy::EveryPut,
            fs: speedlayer_vfs::real(),
        }
    }
}

#[derive(Debug)]
struct Segment {
    id: u64,
    /// Bytes written (including the magic).
    len: u64,
}

#[derive(Debug)]
struct State {
    segments: VecDeque<Segment>,
    total_bytes: u64,
    /// Events not yet committed (including an outstanding take).
    events: usize,
    closed: bool,
}

struct Writer {
    file: Box<dyn File>,
    id: u64,
    /// Length of the segment up to its last acknowledged record.
    len: u64,
    last_sync: Instant,
    /// A write or fsync failed and the segment's tail may not be what `len` says: the next
    /// put starts a new segment instead of appending after it.
    broken: bool,
}

struct Reader {
    /// Committed position.
    acked: (u64, u64),
    /// Read position.
    at: (u64, u64),
    file: Option<BufReader<SegmentReader>>,
    /// Events in the outstanding take.
    taken: usize,
}

/// A durable channel in a directory of segment files.
pub struct FileChannel {
    name: String,
    dir: PathBuf,
    opts: FileChannelOptions,
    state: Mutex<State>,
    writer: Mutex<Writer>,
    reader: Mutex<Reader>,
    not_empty: Condvar,
    not_full: Condvar,
}

impl FileChannel {
    /// Opens (or creates) the channel in `dir`: removes segments the checkpoint says are
    /// committed, truncates a torn tail, resumes at the checkpoint, counts the uncommitted
    /// events, and starts a fresh segment for writing.
    ///
    /// # Errors
    /// I/O errors on the directory or its files.
    pub fn open(name: &str, dir: &Path, opts: FileChannelOptions) -> Result<FileChannel> {
        let fs = &*opts.fs;
        durable::create_dir_synced(fs, dir)?;
        let mut ids: Vec<u64> = fs
            .read_dir(dir)
            .map_err(|e| Error::io("list", dir, e))?
            .iter()
            .filter_map(|p| seg_id(p))
            .collect();
        ids.sort_unstable();
        let ckpt = read_checkpoint(fs, &dir.join("checkpoint"), name);
        // Ids are never reused, even when every segment was deleted: a checkpoint naming an
        // old id must never match a new segment.
        let next_id = ids
            .last()
            .copied()
            .max(ckpt.map(|(seg, _)| seg))
            .map_or(1, |l| l + 1);
        // Segments before the checkpoint's are fully committed; a crash between the
        // checkpoint and their removal, or a power cut that undid an unsynced removal,
        // leaves them behind.
        if let Some((seg, _)) = ckpt {
            let stale: Vec<u64> = ids.iter().copied().filter(|id| *id < seg).collect();
            for id in &stale {
                let path = seg_path(dir, *id);
                fs.remove_file(&path)
                    .map_err(|e| Error::io("remove", &path, e))?;
            }
            if !stale.is_empty() {
                durable::sync_dir(fs, dir)?;
            }
            ids.retain(|id| *id >= seg);
        }
        let mut segments = VecDeque::new();
        let mut events = 0;
        let mut total = 0;
        let count = ids.len();
        for (i, id) in ids.into_iter().enumerate() {
            let path = seg_path(dir, id);
            let from = match ckpt {
                Some((seg, off)) if seg == id => off,
                _ => MAGIC_LEN,
            };
            let scan = scan_segment(fs, &path, from)?;
            let last = i + 1 == count;
            if last && scan.valid == 0 {
                // Created but its magic never synced: it cannot hold an acknowledged record
                // (a put syncs the magic with its own bytes).
                tracing::warn!(channel = name, segment = %path.display(), size = scan.size, "removing a segment without a valid header");
                durable::remove_file_synced(fs, &path)?;
                continue;
            }
            if last && scan.valid < scan.size {
                // IMPORTANT: cut the torn tail so no later append follows garbage.
                tracing::warn!(channel = name, segment = %path.display(), valid = scan.valid, size = scan.size, "truncating torn tail");
                durable::truncate_synced(fs, &path, scan.valid)?;
            } else if scan.valid < scan.size {
                tracing::error!(channel = name, segment = %path.display(), valid = scan.valid, size = scan.size, "corrupt record in a closed segment; records after it are skipped");
            }
            let len = scan.valid.max(MAGIC_LEN);
            events += scan.records;
            total += len;
            segments.push_back(Segment { id, len });
        }
        let acked = match (ckpt, segments.front()) {
            (Some((seg, off)), Some(front)) if front.id == seg => (seg, off),
            (_, Some(front)) => (front.id, MAGIC_LEN),
            (_, None) => (next_id, MAGIC_LEN),
        };
        // Always write into a fresh segment: simpler than appending after a truncation.
        let path = seg_path(dir, next_id);
        let file = create_segment(fs, dir, &path).map_err(|e| e.into_error(name))?;
        segments.push_back(Segment {
            id: next_id,
            len: MAGIC_LEN,
        });
        total += MAGIC_LEN;
        Ok(FileChannel {
            name: name.to_owned(),
            dir: dir.to_owned(),
            opts,
            state: Mutex::new(State {
                segments,
                total_bytes: total,
                events,
                closed: false,
            }),
            writer: Mutex::new(Writer {
                file,
                id: next_id,
                len: MAGIC_LEN,
                last_sync: Instant::now(),
                broken: false,
            }),
            reader: Mutex::new(Reader {
                acked,
                at: acked,
                file: None,
                taken: 0,
            }),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        })
    }

    /// Bytes on disk in segments.
    pub fn disk_bytes(&self) -> u64 {
        self.state.lock().total_bytes
    }

    /// A failed write or fsync of the writer's segment: cuts the segment back to its last
    /// acknowledged record and names the failure ([`Error::NoSpace`] for a full device).
    fn write_failed(&self, w: &mut Writer, op: WriteOp, e: std::io::Error) -> Error {
        let path = seg_path(&self.dir, w.id);
        // IMPORTANT: a partial record left here would be followed by the retried put's
        // records, and recovery would stop at it and drop them.
        if let Err(cut) = w.file.set_len(w.len) {
            tracing::error!(channel = %self.name, segment = %path.display(), error = %cut, "cannot cut a failed write off; continuing in a new segment");
            w.broken = true;
        }
        if op == WriteOp::Fsync {
            // After a failed fsync the page cache no longer says what is on disk.
            w.broken = true;
        }
        if speedlayer_vfs::is_no_space(&e) {
            Error::NoSpace {
                channel: self.name.clone(),
                path,
                source: e,
            }
        } else {
            let op = match op {
                WriteOp::Append => "write",
                WriteOp::Fsync => "fsync",
            };
            Error::io(op, path, e)
        }
    }

    /// Closes the writer's segment (synced) and starts the next one. On failure the writer
    /// stays on its segment.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        let fs = &*self.opts.fs;
        let old = seg_path(&self.dir, w.id);
        if w.broken {
            // Best effort: make the cut of the failed write durable.
            if let Err(e) = w.file.sync_all() {
                tracing::warn!(channel = %self.name, segment = %old.display(), error = %e, "fsync of an abandoned segment failed");
            }
        } else {
            w.file
                .sync_data()
                .map_err(|e| Error::io("fsync", &old, e))?;
        }
        let id = w.id + 1;
        let path = seg_path(&self.dir, id);
        let file = create_segment(fs, &self.dir, &path).map_err(|e| e.into_error(&self.name))?;
        *w = Writer {
            file,
            id,
            len: MAGIC_LEN,
            last_sync: Instant::now(),
            broken: false,
        };
        let mut st = self.state.lock();
        st.segments.push_back(Segment { id, len: MAGIC_LEN });
        st.total_bytes += MAGIC_LEN;
        Ok(())
    }

    /// Deletes closed segments whose every record is committed, and wakes blocked puts.
    /// The removals are not synced: the durable checkpoint already says they are committed,
    /// and open removes any that a power cut brings back.
    fn gc(&self) -> Result<()> {
        let acked = self.reader.lock().acked;
        let mut st = self.state.lock();
        while st.segments.len() > 1 {
            let Some(front) = st.segments.front() else {
                break;
            };
            let done = front.id < acked.0 || (front.id == acked.0 && acked.1 >= front.len);
            if !done {
                break;
            }
            let path = seg_path(&self.dir, front.id);
            self.opts
                .fs
                .remove_file(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
            st.total_bytes -= front.len;
            st.segments.pop_front();
        }
        self.not_full.notify_all();
        Ok(())
    }

    /// Replaces the checkpoint with `at`, durably: a commit that returned is never
    /// delivered again.
    fn write_checkpoint(&self, at: (u64, u64)) -> Result<()> {
        let path = self.dir.join("checkpoint");
        // IMPORTANT: atomic and synced; the segments it covers are deleted after this.
        durable::write_atomic(&*self.opts.fs, &path, &encode_checkpoint(at)).map_err(|e| {
            if e.is_no_space() {
                Error::NoSpace {
                    channel: self.name.clone(),
                    path: e.path,
                    source: e.source,
                }
            } else {
                e.into()
            }
        })
    }
}

/// The writer's operation that failed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WriteOp {
    Append,
    Fsync,
}

impl Channel for FileChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn put(&self, events: Vec<Event>) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let n = events.len();
        let mut buf = Vec::with_capacity(events.iter().map(Event::size).sum::<usize>() + n * 8);
        for e in &events {
            encode_event(e, &mut buf).map_err(|t| Error::EventTooLarge {
                channel: self.name.clone(),
                reason: t.to_string(),
            })?;
        }
        let need = buf.len() as u64;
        if need + MAGIC_LEN > self.opts.capacity_bytes {
            return Err(Error::ChannelFull {
                channel: self.name.clone(),
                capacity: format!(
                    "batch of {need} bytes exceeds {} bytes",
                    self.opts.capacity_bytes
                ),
            });
        }
        let mut w = self.writer.lock();
        loop {
            {
                let st = self.state.lock();
                if st.closed {
                    return Err(Error::Shutdown {
                        component: format!("channel {}", self.name),
                    });
                }
                if st.total_bytes + need <= self.opts.capacity_bytes {
                    break;
                }
            }
            // Full: committed bytes in the current segment are reclaimable only once it is
            // closed, so roll before waiting.
            if w.len > MAGIC_LEN {
                self.roll(&mut w)?;
            }
            self.gc()?;
            let mut st = self.state.lock();
            if st.total_bytes + need <= self.opts.capacity_bytes || st.closed {
                continue;
            }
            self.not_full.wait_for(&mut st, Duration::from_millis(100));
        }
        if w.broken || (w.len > MAGIC_LEN && w.len + need > self.opts.segment_bytes) {
            self.roll(&mut w)?;
        }
        if let Err(e) = w.file.append(&buf) {
            return Err(self.write_failed(&mut w, WriteOp::Append, e));
        }
        let sync = match self.opts.fsync {
            FsyncPolicy::EveryPut => true,
            FsyncPolicy::Interval(d) => w.last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if sync {
            // IMPORTANT: the put is acknowledged (and the source advances) only after this.
            if let Err(e) = w.file.sync_data() {
                return Err(self.write_failed(&mut w, WriteOp::Fsync, e));
            }
            w.last_sync = Instant::now();
        }
        w.len += need;
        let mut st = self.state.lock();
        if let Some(s) = st.segments.back_mut() {
            s.len = w.len;
        }
        st.total_bytes += need;
        st.events += n;
        self.not_empty.notify_one();
        Ok(())
    }

    fn take(&self, max: usize, wait: Duration) -> Result<Vec<Event>> {
        let deadline = Instant::now() + wait;
        let mut r = self.reader.lock();
        let mut out = Vec::new();
        loop {
            // Readable limit of the current segment, and whether a later one exists.
            let (limit, has_next) = {
                let mut st = self.state.lock();
                loop {
                    let seg = st.segments.iter().find(|s| s.id == r.at.0);
                    let limit = seg.map_or(0, |s| s.len);
                    let has_next = st.segments.iter().any(|s| s.id > r.at.0);
                    if limit > r.at.1 || has_next || !out.is_empty() || st.closed {
                        break (limit, has_next);
                    }
                    if self.not_empty.wait_until(&mut st, deadline).timed_out() {
                        break (limit, has_next);
                    }
                }
            };
            if r.at.1 >= limit {
                if has_next {
                    let next = {
                        let st = self.state.lock();
                        st.segments.iter().map(|s| s.id).find(|id| *id > r.at.0)
                    };
                    if let Some(id) = next {
                        r.at = (id, MAGIC_LEN);
                        r.file = None;
                        continue;
                    }
                }
                break;
            }
            let path = seg_path(&self.dir, r.at.0);
            if r.file.is_none() {
                let file = self
                    .opts
                    .fs
                    .open(&path, OpenMode::Read)
                    .map_err(|e| Error::io("open", &path, e))?;
                r.file = Some(BufReader::with_capacity(
                    1 << 20,
                    SegmentReader { file, pos: r.at.1 },
                ));
            }
            let at = r.at;
            let Some(file) = r.file.as_mut() else { break };
            let mut pos = at.1;
            let mut bad = None;
            while out.len() < max && pos < limit {
                let start = pos;
                match read_record(file, limit - pos).map_err(|e| Error::io("read", &path, e))? {
                    Next::Record(p) => {
                        pos += RECORD_HEADER + p.len() as u64;
                        match decode_event(&p) {
                            Ok(e) => out.push(e),
                            // The framing is intact: only this record is skipped.
                            Err(e) => {
                                bad = Some(Error::Corrupt {
                                    path: path.clone(),
                                    offset: start,
                                    reason: format!("undecodable event: {e}"),
                                })
                            }
                        }
                    }
                    Next::End => break,
                    Next::Bad(why) => {
                        bad = Some(match why {
                            BadRecord::Checksum { expected, got } => Error::ChecksumMismatch {
                                path: path.clone(),
                                offset: start,
                                expected,
                                got,
                            },
                            other => Error::Corrupt {
                                path: path.clone(),
                                offset: start,
                                reason: other.to_string(),
                            },
                        });
                        // The framing is lost: nothing after this record can be trusted.
                        pos = limit;
                        break;
                    }
                }
            }
            r.at.1 = pos;
            if let Some(e) = bad {
                // Never serve corrupt data: report it and skip past it.
                tracing::error!(channel = %self.name, error = %e, "skipping corrupt channel data");
                r.file = None;
            }
            if out.len() >= max {
                break;
            }
            if r.at.1 >= limit && !has_next {
                break;
            }
        }
        r.taken = out.len();
        Ok(out)
    }

    fn commit(&self) -> Result<()> {
        let mut r = self.reader.lock();
        if r.at == r.acked {
            r.taken = 0;
            return Ok(());
        }
        // The position moves only once the checkpoint is durable: a failed commit can be
        // retried, and a rollback after it re-reads the same events.
        self.write_checkpoint(r.at)?;
        r.acked = r.at;
        let taken = std::mem::take(&mut r.taken);
        drop(r);
        {
            let mut st = self.state.lock();
            st.events = st.events.saturating_sub(taken);
        }
        self.gc()
    }

    fn rollback(&self, _events: Vec<Event>) -> Result<()> {
        let mut r = self.reader.lock();
        r.at = r.acked;
        r.file = None;
        r.taken = 0;
        Ok(())
    }

    fn len(&self) -> usize {
        self.state.lock().events
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::fs::{self, OpenOptions};
    use std::sync::Arc;

    use super::*;

    fn ev(i: usize) -> Event {
        let mut e = Event::new(format!("line-{i}").into_bytes());
        e.set_header("host", "h".into());
        if i.is_multiple_of(7) {
            e.dead_letter = Some(format!("bad {i}"));
        }
        e
    }

    fn opts(cap: u64, seg: u64) -> FileChannelOptions {
        FileChannelOptions {
            capacity_bytes: cap,
            segment_bytes: seg,
            fsync: FsyncPolicy::Never,
            fs: speedlayer_vfs::real(),
        }
    }

    #[test]
    fn uncommitted_events_survive_reopen_and_committed_ones_do_not() {
        let d = tempfile::tempdir().unwrap();
        {
            let c = FileChannel::open("f", d.path(), opts(1 << 20, 4096)).unwrap();
            c.put((0..100).map(ev).collect()).unwrap();
            let t = c.take(30, Duration::ZERO).unwrap();
            assert_eq!(t, (0..30).map(ev).collect::<Vec<_>>());
            c.commit().unwrap();
            let t = c.take(10, Duration::ZERO).unwrap();
            assert_eq!(t[0], ev(30));
            // Not committed: dropped without commit, like a crash.
        }
        let c = FileChannel::open("f", d.path(), opts(1 << 20, 4096)).unwrap();
        assert_eq!(c.len(), 70);
        let mut got = Vec::new();
        loop {
            let t = c.take(16, Duration::ZERO).unwrap();
            if t.is_empty() {
                break;
            }
            got.extend(t);
            c.commit().unwrap();
        }
        assert_eq!(got, (30..100).map(ev).collect::<Vec<_>>());
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn rollback_rereads_the_same_events() {
        let d = tempfile::tempdir().unwrap();
        let c = FileChannel::open("f", d.path(), opts(1 << 20, 512)).unwrap();
        c.put((0..50).map(ev).collect()).unwrap();
        let a = c.take(40, Duration::ZERO).unwrap();
        c.rollback(a.clone()).unwrap();
        assert_eq!(c.take(40, Duration::ZERO).unwrap(), a);
    }

    #[test]
    fn torn_tail_is_truncated_and_writing_continues() {
        let d = tempfile::tempdir().unwrap();
        {
            let c = FileChannel::open("f", d.path(), opts(1 << 20, 1 << 20)).unwrap();
            c.put((0..10).map(ev).collect()).unwrap();
        }
        let seg = seg_path(d.path(), 1);
        let len = fs::metadata(&seg).unwrap().len();
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(len - 3).unwrap(); // cut the last record
        let c = FileChannel::open("f", d.path(), opts(1 << 20, 1 << 20)).unwrap();
        assert_eq!(c.len(), 9);
        c.put(vec![ev(100)]).unwrap();
        let t = c.take(100, Duration::ZERO).unwrap();
        assert_eq!(t.len(), 10);
        assert_eq!(t[9], ev(100));
    }

    #[test]
    fn flipped_byte_is_detected_not_served() {
        let d = tempfile::tempdir().unwrap();
        {
            let c = FileChannel::open("f", d.path(), opts(1 << 20, 1 << 20)).unwrap();
            c.put((0..10).map(ev).collect()).unwrap();
        }
        let seg = seg_path(d.path(), 1);
        let mut b = fs::read(&seg).unwrap();
        let n = b.len();
        b[n / 2] ^= 0x40;
        fs::write(&seg, b).unwrap();
        let c = FileChannel::open("f", d.path(), opts(1 << 20, 1 << 20)).unwrap();
        let t = c.take(100, Duration::ZERO).unwrap();
        assert!(t.len() < 10);
        assert_eq!(t, (0..t.len()).map(ev).collect::<Vec<_>>());
    }

    #[test]
    fn bounded_on_disk_put_blocks_until_commits_free_segments() {
        let d = tempfile::tempdir().unwrap();
        let c = Arc::new(FileChannel::open("f", d.path(), opts(8192, 2048)).unwrap());
        let c2 = c.clone();
        let writer = std::thread::spawn(move || {
            for i in 0..200 {
                c2.put(vec![ev(i)]).unwrap();
            }
        });
        let mut got = Vec::new();
        while got.len() < 200 {
            assert!(c.disk_bytes() <= 8192);
            let t = c.take(10, Duration::from_millis(50)).unwrap();
            got.extend(t);
            c.commit().unwrap();
        }
        writer.join().unwrap();
        assert_eq!(got, (0..200).map(ev).collect::<Vec<_>>());
    }
}
