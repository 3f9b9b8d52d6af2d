//! The appendable log: [`Wal`] with group commit, background sync for `Async`, segment
//! rolling, deletion of flushed segments and poisoning after a failed write or sync
//! (`storage/docs/wal_format.md` §5).
//!
//! A write that fails because the disk is full (`ENOSPC`) does not poison the log: the
//! partial write is cut off again, the group's appenders get the error, and later appends
//! try again, so writes resume by themselves when space returns. Any other write failure,
//! and any failed sync, poisons it.
//!
//! Group commit is leveldb's writer queue: appenders encode their record outside the lock,
//! queue it, and wait; the first appender that finds no leader takes every queued record,
//! writes them with one `write` (and one `fdatasync` if any waiter needs it) with the lock
//! released, then wakes everyone. This module does not decide sequence numbers.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::record::{MAX_RECORD_BYTES, WalEntry};
use super::segment::{self, SegmentReplay};
use super::{Durability, WalOptions, WalStats};
use crate::cell::SeqNo;
use crate::error::{Error, Result};
use crate::fs::{File, OpenMode, sync_dir};
use crate::log::{begin_frame, finish_frame, put_frame};

/// Failed groups remembered for their waiters; beyond this the two oldest ranges merge
/// (a success inside a merged range is then reported as a failure: safe, never the reverse).
const MAX_FAILED_RANGES: usize = 1024;

/// A closed or open segment the log knows about.
#[derive(Debug)]
struct SegmentMeta {
    path: PathBuf,
    max_seq: SeqNo,
}

/// The file the leader appends to; only the leader (or a syncer) locks it.
struct Active {
    /// Shared so the background syncer can fdatasync without blocking the leader.
    file: Arc<dyn File>,
    path: PathBuf,
    len: u64,
    max_seq: SeqNo,
    /// Offset up to which a successful sync covered this segment.
    synced_upto: u64,
    /// The offset the last sync marker written to this segment carried.
    marked: u64,
}

/// Tickets `(lo, hi]` whose group failed with a recoverable error (a full disk).
#[derive(Debug)]
struct FailedRange {
    lo: u64,
    hi: u64,
    path: PathBuf,
    errno: i32,
}

/// Why a group write failed.
enum Failure {
    /// The disk was full; the segment was cut back to its last whole record.
    NoSpace(Error),
    /// Anything else: the log is poisoned.
    Fatal(Error),
}

/// Queue state shared by appenders, guarded by one mutex.
struct Queue {
    /// Encoded frames waiting for a leader.
    pending: Vec<u8>,
    /// First and highest seq among the pending records.
    pending_first_seq: Option<SeqNo>,
    pending_max_seq: SeqNo,
    /// Tickets: every queued record (and every sync request) gets the next number.
    next_ticket: u64,
    written: u64,
    synced: u64,
    /// Highest ticket whose owner needs an fdatasync.
    sync_wanted: u64,
    /// Highest ticket already taken by a leader.
    taken: u64,
    /// Groups that failed recoverably, oldest first.
    failures: VecDeque<FailedRange>,
    leader_active: bool,
    /// Closed segments, oldest first.
    closed: VecDeque<SegmentMeta>,
    poisoned: Option<String>,
}

struct Inner {
    dir: PathBuf,
    opts: WalOptions,
    queue: Mutex<Queue>,
    cond: Condvar,
    active: Mutex<Option<Active>>,
    appends: AtomicU64,
    bytes: AtomicU64,
    syncs: AtomicU64,
    segments_deleted: AtomicU64,
    no_space_failures: AtomicU64,
    tails_truncated: u64,
    tail_bytes_truncated: u64,
    fail_next_sync: AtomicBool,
    fail_next_write: AtomicBool,
}

/// A region's write-ahead log. `Send + Sync`; share it by reference or in an `Arc`.
pub struct Wal {
    inner: Arc<Inner>,
    stop: Option<crossbeam_channel::Sender<()>>,
    syncer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Wal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wal")
            .field("dir", &self.inner.dir)
            .finish_non_exhaustive()
    }
}

impl Wal {
    /// Opens (or creates) the log in `dir` through `opts.fs` and replays it: returns every
    /// whole record in append order. A torn tail of the last segment is truncated with a
    /// warning and counted (unless `opts.recovery` is strict); any other damage fails
    /// (wal_format.md §6).
    ///
    /// # Errors
    /// [`Error::Corruption`]/[`Error::ChecksumMismatch`] naming file and offset,
    /// [`Error::Io`], [`Error::InvalidArgument`] for a zero `segment_bytes`.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<(Wal, Vec<WalEntry>)> {
        if opts.segment_bytes == 0 {
            return Err(Error::InvalidArgument(
                "WAL segment_bytes must be > 0".into(),
            ));
        }
        let fs = &*opts.fs;
        crate::fs::create_dir_synced(fs, dir)?;
        let segments = segment::list_segments(fs, dir)?;
        let mut entries = Vec::new();
        let mut closed = VecDeque::new();
        let (mut tails_truncated, mut tail_bytes_truncated) = (0, 0);
        let n = segments.len();
        for (i, (_, path)) in segments.into_iter().enumerate() {
            let SegmentReplay {
                max_seq,
                kept,
                records,
                torn,
            } = segment::replay_segment(fs, &path, i + 1 == n, opts.recovery, &mut entries)?;
            if let Some(t) = torn {
                tails_truncated += 1;
                tail_bytes_truncated += t.bytes;
            }
            tracing::debug!(file = %path.display(), records, "replayed WAL segment");
            if kept {
                closed.push_back(SegmentMeta { path, max_seq });
            }
        }
        if !entries.is_empty() {
            tracing::info!(dir = %dir.display(), records = entries.len(), segments = closed.len(), "replayed WAL");
        }
        let interval = Duration::from_millis(opts.async_interval_ms.max(1));
        let inner = Arc::new(Inner {
            dir: dir.to_path_buf(),
            opts,
            queue: Mutex::new(Queue {
                pending: Vec::new(),
                pending_first_seq: None,
                pending_max_seq: 0,
                next_ticket: 0,
                written: 0,
                synced: 0,
                sync_wanted: 0,
                taken: 0,
                failures: VecDeque::new(),
                leader_active: false,
                closed,
                poisoned: None,
            }),
            cond: Condvar::new(),
            active: Mutex::new(None),
            appends: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            segments_deleted: AtomicU64::new(0),
            no_space_failures: AtomicU64::new(0),
            tails_truncated,
            tail_bytes_truncated,
            fail_next_sync: AtomicBool::new(false),
            fail_next_write: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        let weak = Arc::downgrade(&inner);
        let syncer = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                // Wakes every interval; a closed channel (Wal dropped) ends the thread.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(interval)
                {
                    let Some(inner) = weak.upgrade() else { return };
                    if let Err(e) = inner.background_sync() {
                        tracing::debug!(error = %e, "background WAL sync skipped");
                    }
                }
            })
            .map_err(|e| Error::io(dir, e))?;
        Ok((
            Wal {
                inner,
                stop: Some(tx),
                syncer: Some(syncer),
            },
            entries,
        ))
    }

    /// Appends one batch. `SkipWal` writes nothing; `Async` returns once the record is
    /// handed to the OS; `Sync` returns once an `fdatasync` covered it (group commit).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a record above 256 MiB, [`Error::Poisoned`] after an
    /// earlier failed write or sync, [`Error::Io`] if this append's own write failed (with
    /// `ENOSPC` when the disk is full: [`Error::is_no_space`]; nothing of it was kept and a
    /// later append may succeed).
    pub fn append(&self, entry: &WalEntry, durability: Durability) -> Result<()> {
        if durability == Durability::SkipWal {
            return Ok(());
        }
        let len = entry.encoded_len();
        if len > MAX_RECORD_BYTES {
            return Err(Error::InvalidArgument(format!(
                "WAL record of {len} bytes exceeds the {MAX_RECORD_BYTES}-byte limit"
            )));
        }
        let mut q = self.inner.queue.lock();
        if let Some(p) = &q.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        // Encode straight into the group buffer: no per-append allocation or copy.
        let before = q.pending.len();
        let start = begin_frame(&mut q.pending);
        entry.encode_into(&mut q.pending);
        finish_frame(&mut q.pending, start);
        let framed = (q.pending.len() - before) as u64;
        self.inner.appends.fetch_add(1, Ordering::Relaxed);
        self.inner.bytes.fetch_add(framed, Ordering::Relaxed);
        if q.pending_first_seq.is_none() {
            q.pending_first_seq = Some(entry.seq);
        }
        q.pending_max_seq = q.pending_max_seq.max(entry.max_seq());
        q.next_ticket += 1;
        let ticket = q.next_ticket;
        let sync = durability == Durability::Sync;
        if sync {
            q.sync_wanted = ticket;
        }
        self.inner.commit(q, ticket, sync)
    }

    /// Makes everything appended so far durable (`fdatasync`); used at shutdown.
    ///
    /// # Errors
    /// [`Error::Poisoned`] or the I/O error of this sync.
    pub fn sync(&self) -> Result<()> {
        self.inner.sync()
    }

    /// Deletes closed segments whose every cell has `seq <= flushed_seq` (their edits are
    /// in HFiles recorded by the manifest). Returns how many were deleted.
    ///
    /// # Errors
    /// [`Error::Io`] if a delete or the directory fsync fails.
    pub fn mark_flushed(&self, flushed_seq: SeqNo) -> Result<usize> {
        // Close the active segment if all of it is flushed, so it can go too.
        {
            let mut q = self.inner.queue.lock();
            let mut active = self.inner.active.lock();
            if q.pending.is_empty()
                && !q.leader_active
                && active.as_ref().is_some_and(|a| a.max_seq <= flushed_seq)
                && let Some(a) = active.take()
            {
                q.closed.push_back(SegmentMeta {
                    path: a.path,
                    max_seq: a.max_seq,
                });
            }
        }
        let victims: Vec<PathBuf> = {
            let mut q = self.inner.queue.lock();
            let mut v = Vec::new();
            while q.closed.front().is_some_and(|s| s.max_seq <= flushed_seq) {
                if let Some(s) = q.closed.pop_front() {
                    v.push(s.path);
                }
            }
            v
        };
        let fs = &*self.inner.opts.fs;
        for p in &victims {
            fs.remove_file(p).map_err(|e| Error::io(p, e))?;
        }
        if !victims.is_empty() {
            sync_dir(fs, &self.inner.dir)?;
            self.inner
                .segments_deleted
                .fetch_add(victims.len() as u64, Ordering::Relaxed);
        }
        Ok(victims.len())
    }

    /// Counters: appends, bytes, syncs, segments.
    pub fn stats(&self) -> WalStats {
        let q = self.inner.queue.lock();
        let live = q.closed.len() + usize::from(self.inner.active.lock().is_some());
        WalStats {
            appends: self.inner.appends.load(Ordering::Relaxed),
            bytes: self.inner.bytes.load(Ordering::Relaxed),
            syncs: self.inner.syncs.load(Ordering::Relaxed),
            segments: live as u64,
            segments_deleted: self.inner.segments_deleted.load(Ordering::Relaxed),
            no_space_failures: self.inner.no_space_failures.load(Ordering::Relaxed),
            tails_truncated: self.inner.tails_truncated,
            tail_bytes_truncated: self.inner.tail_bytes_truncated,
        }
    }

    /// The error that poisoned this log, if any.
    pub fn poisoned(&self) -> Option<String> {
        self.inner.queue.lock().poisoned.clone()
    }

    /// Fault injection for tests: the next `fdatasync` fails as if the disk had failed.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn inject_sync_failure(&self) {
        self.inner.fail_next_sync.store(true, Ordering::SeqCst);
    }

    /// Fault injection for tests: the next group `write` fails as if the disk were full.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn inject_write_failure(&self) {
        self.inner.fail_next_write.store(true, Ordering::SeqCst);
    }

    /// The log's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }
}

impl Drop for Wal {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.syncer.take() {
            let _ = h.join();
        }
    }
}

impl Inner {
    fn sync(&self) -> Result<()> {
        let mut q = self.queue.lock();
        if let Some(p) = &q.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        q.next_ticket += 1;
        let ticket = q.next_ticket;
        q.sync_wanted = ticket;
        self.commit(q, ticket, true)
    }

    /// Waits until `ticket` is written (and synced if `sync`), leading a group if no one
    /// else is.
    fn commit(
        &self,
        mut q: parking_lot::MutexGuard<'_, Queue>,
        ticket: u64,
        sync: bool,
    ) -> Result<()> {
        loop {
            if let Some(f) = q.failures.iter().find(|f| f.lo < ticket && ticket <= f.hi) {
                return Err(Error::io(
                    &f.path,
                    std::io::Error::from_raw_os_error(f.errno),
                ));
            }
            let done = if sync {
                q.synced >= ticket
            } else {
                q.written >= ticket
            };
            if done {
                return Ok(());
            }
            if let Some(p) = &q.poisoned {
                return Err(Error::Poisoned(p.clone()));
            }
            if q.leader_active {
                self.cond.wait(&mut q);
                continue;
            }
            // Become the leader for everything queued so far.
            q.leader_active = true;
            let upto = q.next_ticket;
            let lo = std::mem::replace(&mut q.taken, upto);
            let do_sync = q.sync_wanted > q.synced;
            let buf = std::mem::take(&mut q.pending);
            let first_seq = q.pending_first_seq.take();
            let max_seq = std::mem::take(&mut q.pending_max_seq);
            let mut rolled = None;
            let res = parking_lot::MutexGuard::unlocked(&mut q, || {
                self.write_batch(&buf, first_seq, max_seq, do_sync, &mut rolled)
            });
            q.leader_active = false;
            if let Some(old) = rolled {
                q.closed.push_back(old);
            }
            match res {
                Ok(()) => {
                    q.written = upto;
                    if do_sync {
                        q.synced = upto;
                    }
                    // Hand the buffer back for reuse when nobody queued meanwhile.
                    if q.pending.is_empty() {
                        let mut buf = buf;
                        buf.clear();
                        q.pending = buf;
                    }
                }
                Err(Failure::NoSpace(e)) => {
                    self.no_space_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "WAL write failed for lack of space; the group is refused, later writes retry");
                    let (path, errno) = match &e {
                        Error::Io { path, source } => {
                            (path.clone(), source.raw_os_error().unwrap_or(libc::ENOSPC))
                        }
                        _ => (self.dir.clone(), libc::ENOSPC),
                    };
                    match q.failures.back_mut() {
                        Some(last) if last.hi == lo => last.hi = upto,
                        _ => q.failures.push_back(FailedRange {
                            lo,
                            hi: upto,
                            path,
                            errno,
                        }),
                    }
                    if q.failures.len() > MAX_FAILED_RANGES
                        && let Some(oldest) = q.failures.pop_front()
                        && let Some(next) = q.failures.front_mut()
                    {
                        next.lo = oldest.lo;
                    }
                }
                Err(Failure::Fatal(e)) => {
                    tracing::error!(error = %e, "WAL write/sync failed; the log is poisoned");
                    q.poisoned = Some(e.to_string());
                }
            }
            self.cond.notify_all();
        }
    }

    /// Writes `buf` to the active segment (rolling or creating it first), preceded by a
    /// sync marker when a sync covered more of the segment since the last marker, and
    /// syncs if asked. A segment closed by rolling is left in `rolled`, even on failure.
    fn write_batch(
        &self,
        buf: &[u8],
        first_seq: Option<SeqNo>,
        max_seq: SeqNo,
        do_sync: bool,
        rolled: &mut Option<SegmentMeta>,
    ) -> std::result::Result<(), Failure> {
        let mut active = self.active.lock();
        if let Some(first_seq) = first_seq {
            let full = active
                .as_ref()
                .is_some_and(|a| a.len >= self.opts.segment_bytes);
            if full && let Some(old) = active.take() {
                // IMPORTANT: the old segment must be durable before records go elsewhere.
                self.fdatasync_file(&*old.file, &old.path)
                    .map_err(Failure::Fatal)?;
                *rolled = Some(SegmentMeta {
                    path: old.path,
                    max_seq: old.max_seq,
                });
            }
            if active.is_none() {
                *active = Some(self.create_segment(first_seq)?);
            }
        }
        let Some(a) = active.as_mut() else {
            return Ok(()); // a sync with nothing ever written
        };
        if !buf.is_empty() {
            if self.fail_next_write.swap(false, Ordering::SeqCst) {
                return Err(Failure::Fatal(Error::io(
                    &a.path,
                    std::io::Error::other("injected write failure"),
                )));
            }
            if a.synced_upto > a.marked {
                // IMPORTANT: the marker lets recovery tell a torn tail from damage to bytes
                // that were synced (wal_format.md §6).
                let mut m =
                    Vec::with_capacity(crate::log::FRAME_HEADER_BYTES + segment::MARKER_BYTES);
                put_frame(&mut m, &segment::marker_payload(a.synced_upto));
                Self::append_or_rewind(a, &m)?;
                a.marked = a.synced_upto;
            }
            Self::append_or_rewind(a, buf)?;
            a.max_seq = a.max_seq.max(max_seq);
        }
        if do_sync {
            self.fdatasync_file(&*a.file, &a.path)
                .map_err(Failure::Fatal)?;
            a.synced_upto = a.len;
        }
        Ok(())
    }

    /// Appends `bytes` to the active segment. On a full disk the partial write is cut off
    /// again, so the segment still ends with a whole frame and a later append can retry.
    fn append_or_rewind(a: &mut Active, bytes: &[u8]) -> std::result::Result<(), Failure> {
        match a.file.append(bytes) {
            Ok(()) => {
                a.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) if speedlayer_vfs::is_no_space(&e) => match a.file.set_len(a.len) {
                Ok(()) => Err(Failure::NoSpace(Error::io(&a.path, e))),
                Err(cut) => Err(Failure::Fatal(Error::io(
                    &a.path,
                    std::io::Error::other(format!(
                        "{e}; cutting the partial write off again failed: {cut}"
                    )),
                ))),
            },
            Err(e) => Err(Failure::Fatal(Error::io(&a.path, e))),
        }
    }

    fn fdatasync_file(&self, file: &dyn File, path: &Path) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if self.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(Error::io(
                path,
                std::io::Error::other("injected fdatasync failure"),
            ));
        }
        // IMPORTANT: this is what makes Sync appends durable.
        file.sync_data().map_err(|e| Error::io(path, e))
    }

    /// The `Async` syncer: fdatasyncs what is written so far WITHOUT taking the leader
    /// role, so appenders keep writing while the disk flushes.
    fn background_sync(&self) -> Result<()> {
        let (target, file) = {
            let q = self.queue.lock();
            if let Some(p) = &q.poisoned {
                return Err(Error::Poisoned(p.clone()));
            }
            if q.written <= q.synced {
                return Ok(());
            }
            // Lock order queue → active, as everywhere; a leader never waits for the
            // queue while holding `active`.
            let active = self.active.lock();
            (
                q.written,
                active
                    .as_ref()
                    .map(|a| (a.file.clone(), a.path.clone(), a.len)),
            )
        };
        // Records in segments closed by a roll were synced by the roll itself.
        if let Some((file, path, _)) = &file
            && let Err(e) = self.fdatasync_file(&**file, path)
        {
            tracing::error!(error = %e, "WAL background sync failed; the log is poisoned");
            let mut q = self.queue.lock();
            q.poisoned.get_or_insert_with(|| e.to_string());
            self.cond.notify_all();
            return Err(e);
        }
        let mut q = self.queue.lock();
        q.synced = q.synced.max(target);
        self.cond.notify_all();
        drop(q);
        if let Some((_, path, len)) = file
            && let Some(a) = self.active.lock().as_mut()
            && a.path == path
        {
            a.synced_upto = a.synced_upto.max(len);
        }
        Ok(())
    }

    fn create_segment(&self, first_seq: SeqNo) -> std::result::Result<Active, Failure> {
        let fs = &*self.opts.fs;
        let path = self.dir.join(segment::segment_name(first_seq));
        let file = fs
            .open(&path, OpenMode::CreateNew)
            .map_err(|e| classify(&path, e))?;
        if let Err(e) = file.append(&segment::header()) {
            // A segment with a partial header must not stay behind: the retry creates it
            // anew under the same name.
            return match (classify(&path, e), fs.remove_file(&path)) {
                (Failure::NoSpace(e), Ok(())) => Err(Failure::NoSpace(e)),
                (Failure::NoSpace(e) | Failure::Fatal(e), _) => Err(Failure::Fatal(e)),
            };
        }
        // IMPORTANT: the new name must survive a crash before records in it are acked.
        sync_dir(fs, &self.dir).map_err(Failure::Fatal)?;
        Ok(Active {
            file: Arc::from(file),
            path,
            len: segment::HEADER_BYTES as u64,
            max_seq: 0,
            synced_upto: 0,
            marked: 0,
        })
    }
}

fn classify(path: &Path, e: std::io::Error) -> Failure {
    if speedlayer_vfs::is_no_space(&e) {
        Failure::NoSpace(Error::io(path, e))
    } else {
        Failure::Fatal(Error::io(path, e))
    }
}
