//! The file channel: durable, checksummed, bounded on disk, survives kill -9.
//!
//! Events are appended to segment files; a checkpoint records how far the sink has
//! committed. On open, the torn tail of the last segment (a record cut by a crash) is
//! truncated and reading resumes at the checkpoint, so every put that returned is taken
//! again unless its take was committed. Format and invariants: `ingest/docs/file_channel_format.md`.
//!
//! Not a replicated log: one writer (the pipeline's source), one reader (its sink runner).

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Channel;
use crate::collect::Event;
use crate::error::{Error, Result};

/// Segment file header (docs: `segment := MAGIC record*`).
pub const SEGMENT_MAGIC: &[u8; 8] = b"SLFCSEG1";
/// Checkpoint file header.
pub const CHECKPOINT_MAGIC: &[u8; 8] = b"SLFCCKP1";
/// Largest record payload accepted (an event is one log line plus headers).
pub const MAX_RECORD: u32 = 1 << 20;
const RECORD_HEADER: u64 = 8;

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
}

impl FileChannelOptions {
    /// Options for `capacity_mb` with segments of a quarter of it (≤ 64 MB).
    pub fn with_capacity_mb(capacity_mb: u64) -> Self {
        let capacity_bytes = capacity_mb.max(1) * 1024 * 1024;
        FileChannelOptions {
            capacity_bytes,
            segment_bytes: (capacity_bytes / 4).clamp(64 * 1024, 64 * 1024 * 1024),
            fsync: FsyncPolicy::EveryPut,
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
    file: File,
    id: u64,
    len: u64,
    last_sync: Instant,
}

struct Reader {
    /// Committed position.
    acked: (u64, u64),
    /// Read position.
    at: (u64, u64),
    file: Option<BufReader<File>>,
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

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("seg-{id:020}.log"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync dir", dir, e))
}

/// Encodes an event as a record payload (docs: `event`).
pub fn encode_event(e: &Event, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 8]);
    match &e.dead_letter {
        Some(r) => {
            out.push(1);
            out.extend_from_slice(&(r.len() as u32).to_le_bytes());
            out.extend_from_slice(r.as_bytes());
        }
        None => out.push(0),
    }
    out.extend_from_slice(&(e.headers.len() as u16).to_le_bytes());
    for (k, v) in &e.headers {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out.extend_from_slice(&e.body);
    let payload_len = (out.len() - start - 8) as u32;
    let crc = crc32fast::hash(&out[start + 8..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Decodes a record payload; `None` if malformed.
pub fn decode_event(p: &[u8]) -> Option<Event> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let s = p.get(at..at.checked_add(n)?)?;
        at += n;
        Some(s)
    };
    let u32_of = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let dead_letter = match take(1)?[0] {
        0 => None,
        1 => {
            let n = u32_of(take(4)?);
            Some(String::from_utf8(take(n)?.to_vec()).ok()?)
        }
        _ => return None,
    };
    let h = take(2)?;
    let nh = u16::from_le_bytes([h[0], h[1]]) as usize;
    let mut headers = Vec::with_capacity(nh);
    for _ in 0..nh {
        let n = u32_of(take(4)?);
        let k = String::from_utf8(take(n)?.to_vec()).ok()?;
        let n = u32_of(take(4)?);
        let v = String::from_utf8(take(n)?.to_vec()).ok()?;
        headers.push((k, v));
    }
    Some(Event {
        headers,
        body: p.get(at..)?.to_vec(),
        dead_letter,
    })
}

enum Next {
    Record(Vec<u8>),
    /// Clean end of the readable bytes.
    End,
    /// A record that fails its length or checksum.
    Bad(String, Option<(u32, u32)>),
}

fn read_record(r: &mut impl Read, limit: u64) -> std::io::Result<Next> {
    if limit < RECORD_HEADER {
        return Ok(Next::End);
    }
    let mut h = [0u8; 8];
    r.read_exact(&mut h)?;
    let len = u32::from_le_bytes([h[0], h[1], h[2], h[3]]);
    let crc = u32::from_le_bytes([h[4], h[5], h[6], h[7]]);
    if len > MAX_RECORD {
        return Ok(Next::Bad(
            format!("record length {len} > {MAX_RECORD}"),
            None,
        ));
    }
    if u64::from(len) + RECORD_HEADER > limit {
        return Ok(Next::Bad(
            format!("record of {len} bytes runs past the end"),
            None,
        ));
    }
    let mut p = vec![0u8; len as usize];
    r.read_exact(&mut p)?;
    let got = crc32fast::hash(&p);
    if got != crc {
        return Ok(Next::Bad("checksum".into(), Some((crc, got))));
    }
    Ok(Next::Record(p))
}

/// Scans `path` from the magic, returning (valid length, records) up to the first bad record.
fn scan_segment(path: &Path, from: u64) -> Result<(u64, usize)> {
    let f = File::open(path).map_err(|e| Error::io("open", path, e))?;
    let size = f.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    let mut r = BufReader::with_capacity(1 << 20, f);
    let mut magic = [0u8; 8];
    if size < 8 || r.read_exact(&mut magic).is_err() || &magic != SEGMENT_MAGIC {
        return Ok((0, 0));
    }
    let mut at = 8u64;
    if from > 8 {
        r.seek(SeekFrom::Start(from))
            .map_err(|e| Error::io("seek", path, e))?;
        at = from;
    }
    let mut n = 0;
    loop {
        match read_record(&mut r, size - at) {
            Ok(Next::Record(p)) => {
                at += RECORD_HEADER + p.len() as u64;
                n += 1;
            }
            _ => return Ok((at, n)),
        }
    }
}

fn read_checkpoint(path: &Path) -> Option<(u64, u64)> {
    let b = fs::read(path).ok()?;
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
}

impl FileChannel {
    /// Opens (or creates) the channel in `dir`: truncates a torn tail, resumes at the
    /// checkpoint, counts the uncommitted events.
    ///
    /// # Errors
    /// I/O errors on the directory or its files.
    pub fn open(name: &str, dir: &Path, opts: FileChannelOptions) -> Result<FileChannel> {
        fs::create_dir_all(dir).map_err(|e| Error::io("create dir", dir, e))?;
        let mut ids: Vec<u64> = fs::read_dir(dir)
            .map_err(|e| Error::io("list", dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().into_string().ok()?;
                n.strip_prefix("seg-")?.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        ids.sort_unstable();
        let ckpt = read_checkpoint(&dir.join("checkpoint"));
        // Segments before the checkpoint were fully committed; a crash can leave them.
        let acked = match ckpt {
            Some((seg, off)) if ids.contains(&seg) => (seg, off),
            _ => (ids.first().copied().unwrap_or(1), 8),
        };
        for id in ids.iter().filter(|id| **id < acked.0) {
            let _ = fs::remove_file(seg_path(dir, *id));
        }
        ids.retain(|id| *id >= acked.0);
        let mut segments = VecDeque::new();
        let mut events = 0;
        let mut total = 0;
        for (i, id) in ids.iter().enumerate() {
            let path = seg_path(dir, *id);
            let from = if *id == acked.0 { acked.1 } else { 8 };
            let (valid, n) = scan_segment(&path, from)?;
            let size = fs::metadata(&path)
                .map_err(|e| Error::io("stat", &path, e))?
                .len();
            let last = i + 1 == ids.len();
            if valid < size && last {
                // IMPORTANT: cut the torn tail so new records follow the last whole one.
                tracing::warn!(channel = name, segment = %path.display(), valid, size, "truncating torn tail");
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| Error::io("open", &path, e))?;
                f.set_len(valid.max(8))
                    .map_err(|e| Error::io("truncate", &path, e))?;
                f.sync_all().map_err(|e| Error::io("fsync", &path, e))?;
            } else if valid < size {
                tracing::error!(channel = name, segment = %path.display(), valid, size, "corrupt record in a closed segment; records after it are skipped");
            }
            let len = if valid == 0 { 8 } else { valid };
            events += n;
            total += len;
            segments.push_back(Segment { id: *id, len });
        }
        let next_id = ids.last().map_or(1, |l| l + 1);
        // Always write into a fresh segment: simpler than appending after a truncation.
        let path = seg_path(dir, next_id);
        let mut file = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        file.write_all(SEGMENT_MAGIC)
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write", &path, e))?;
        sync_dir(dir)?;
        segments.push_back(Segment {
            id: next_id,
            len: 8,
        });
        total += 8;
        let acked = if ids.is_empty() { (next_id, 8) } else { acked };
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
                len: 8,
                last_sync: Instant::now(),
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

    /// Closes the writer's segment (synced) and starts the next one.
    fn roll(&self, w: &mut Writer) -> Result<()> {
        w.file
            .sync_data()
            .map_err(|e| Error::io("fsync", seg_path(&self.dir, w.id), e))?;
        let id = w.id + 1;
        let path = seg_path(&self.dir, id);
        let mut f = File::create(&path).map_err(|e| Error::io("create", &path, e))?;
        f.write_all(SEGMENT_MAGIC)
            .map_err(|e| Error::io("write", &path, e))?;
        sync_dir(&self.dir)?;
        *w = Writer {
            file: f,
            id,
            len: 8,
            last_sync: Instant::now(),
        };
        let mut st = self.state.lock();
        st.segments.push_back(Segment { id, len: 8 });
        st.total_bytes += 8;
        Ok(())
    }

    /// Deletes closed segments whose every record is committed, and wakes blocked puts.
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
            fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
            st.total_bytes -= front.len;
            st.segments.pop_front();
        }
        self.not_full.notify_all();
        Ok(())
    }

    fn write_checkpoint(&self, at: (u64, u64)) -> Result<()> {
        let mut b = Vec::with_capacity(28);
        b.extend_from_slice(CHECKPOINT_MAGIC);
        b.extend_from_slice(&at.0.to_le_bytes());
        b.extend_from_slice(&at.1.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        let tmp = self.dir.join("checkpoint.tmp");
        let path = self.dir.join("checkpoint");
        fs::write(&tmp, &b).map_err(|e| Error::io("write", &tmp, e))?;
        // A lost checkpoint only means re-delivery (at-least-once), so no fsync here.
        fs::rename(&tmp, &path).map_err(|e| Error::io("rename", &path, e))
    }
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
            encode_event(e, &mut buf);
        }
        let need = buf.len() as u64;
        if need + 8 > self.opts.capacity_bytes {
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
            if w.len > 8 {
                self.roll(&mut w)?;
            }
            self.gc()?;
            let mut st = self.state.lock();
            if st.total_bytes + need <= self.opts.capacity_bytes || st.closed {
                continue;
            }
            self.not_full.wait_for(&mut st, Duration::from_millis(100));
        }
        if w.len > 8 && w.len + need > self.opts.segment_bytes {
            self.roll(&mut w)?;
        }
        let wid = w.id;
        let path = || seg_path(&self.dir, wid);
        w.file
            .write_all(&buf)
            .map_err(|e| Error::io("write", path(), e))?;
        let sync = match self.opts.fsync {
            FsyncPolicy::EveryPut => true,
            FsyncPolicy::Interval(d) => w.last_sync.elapsed() >= d,
            FsyncPolicy::Never => false,
        };
        if sync {
            // IMPORTANT: the put is acknowledged (and the source advances) only after this.
            w.file
                .sync_data()
                .map_err(|e| Error::io("fsync", path(), e))?;
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
                        r.at = (id, 8);
                        r.file = None;
                        continue;
                    }
                }
                break;
            }
            if r.file.is_none() {
                let path = seg_path(&self.dir, r.at.0);
                let mut f = File::open(&path).map_err(|e| Error::io("open", &path, e))?;
                f.seek(SeekFrom::Start(r.at.1))
                    .map_err(|e| Error::io("seek", &path, e))?;
                r.file = Some(BufReader::with_capacity(1 << 20, f));
            }
            let at = r.at;
            let Some(file) = r.file.as_mut() else { break };
            let mut pos = at.1;
            let mut bad = None;
            while out.len() < max && pos < limit {
                let path = seg_path(&self.dir, at.0);
                match read_record(file, limit - pos).map_err(|e| Error::io("read", &path, e))? {
                    Next::Record(p) => {
                        pos += RECORD_HEADER + p.len() as u64;
                        match decode_event(&p) {
                            Some(e) => out.push(e),
                            None => {
                                bad = Some(Error::Corrupt {
                                    path,
                                    offset: pos,
                                    reason: "undecodable event".into(),
                                })
                            }
                        }
                    }
                    Next::End => break,
                    Next::Bad(reason, sums) => {
                        bad = Some(match sums {
                            Some((expected, got)) => Error::ChecksumMismatch {
                                path,
                                offset: pos,
                                expected,
                                got,
                            },
                            None => Error::Corrupt {
                                path,
                                offset: pos,
                                reason,
                            },
                        });
                        pos = limit;
                        break;
                    }
                }
            }
            r.at.1 = pos;
            if let Some(e) = bad {
                // Never serve corrupt data: report it and skip the rest of the segment.
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
        r.acked = r.at;
        self.write_checkpoint(r.acked)?;
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
        }
    }

    #[test]
    fn event_codec_round_trips() {
        for i in 0..20 {
            let mut b = Vec::new();
            encode_event(&ev(i), &mut b);
            assert_eq!(decode_event(&b[8..]), Some(ev(i)));
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
