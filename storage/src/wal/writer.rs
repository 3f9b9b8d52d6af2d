//! The appendable log: [`Wal`] with group commit, background sync for `Async`, segment
//! rolling, deletion of flushed segments and poisoning after a failed write or sync
//! (`storage/docs/wal_format.md` §5).
//!
//! Group commit is leveldb's writer queue: appenders encode their record outside the lock,
//! queue it, and wait; the first appender that finds no leader takes every queued record,
//! writes them with one `write` (and one `fdatasync` if any waiter needs it) with the lock
//! released, then wakes everyone. This module does not decide sequence numbers.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
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
use crate::coding::{begin_frame, finish_frame};
use crate::error::{Error, Result};
use crate::fs::sync_dir;

/// A closed or open segment the log knows about.
#[derive(Debug)]
struct SegmentMeta {
    path: PathBuf,
    max_seq: SeqNo,
}

/// The file the leader appends to; only the leader (or a syncer) locks it.
struct Active {
    file: File,
    path: PathBuf,
    len: u64,
    max_seq: SeqNo,
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
    fail_next_sync: AtomicBool,
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
    /// Opens (creating if needed) the log in `dir` and replays it: returns every whole
    /// record in append order. A torn tail of the last segment is truncated with a
    /// warning; any other damage fails (wal_format.md §6).
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
        crate::fs::create_dir_synced(dir)?;
        let segments = segment::list_segments(dir)?;
        let mut entries = Vec::new();
        let mut closed = VecDeque::new();
        let n = segments.len();
        for (i, (_, path)) in segments.into_iter().enumerate() {
            let SegmentReplay {
                max_seq,
                kept,
                records,
            } = segment::replay_segment(&path, i + 1 == n, &mut entries)?;
            tracing::debug!(file = %path.display(), records, "replayed WAL segment");
            if kept {
                closed.push_back(SegmentMeta { path, max_seq });
            }
        }
        if !entries.is_empty() {
            tracing::info!(dir = %dir.display(), records = entries.len(), segments = closed.len(), "replayed WAL");
        }
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
            fail_next_sync: AtomicBool::new(false),
        });
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        let weak = Arc::downgrade(&inner);
        let interval = Duration::from_millis(opts.async_interval_ms.max(1));
        let syncer = std::thread::Builder::new()
            .name("wal-sync".into())
            .spawn(move || {
                // Wakes every interval; a closed channel (Wal dropped) ends the thread.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(interval)
                {
                    let Some(inner) = weak.upgrade() else { return };
                    let dirty = {
                        let q = inner.queue.lock();
                        q.poisoned.is_none() && q.written > q.synced
                    };
                    if dirty && let Err(e) = inner.sync() {
                        tracing::error!(error = %e, "background WAL sync failed");
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
    /// earlier failed write or sync, [`Error::Io`] if this append's own write failed.
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
        let mut frame = Vec::with_capacity(len + crate::coding::FRAME_HEADER_BYTES);
        let start = begin_frame(&mut frame);
        entry.encode_into(&mut frame);
        finish_frame(&mut frame, start);
        self.inner.appends.fetch_add(1, Ordering::Relaxed);
        self.inner
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        let mut q = self.inner.queue.lock();
        if let Some(p) = &q.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        q.pending.extend_from_slice(&frame);
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
        for p in &victims {
            std::fs::remove_file(p).map_err(|e| Error::io(p, e))?;
        }
        if !victims.is_empty() {
            sync_dir(&self.inner.dir)?;
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
        }
    }

    /// The error that poisoned this log, if any.
    pub fn poisoned(&self) -> Option<String> {
        self.inner.queue.lock().poisoned.clone()
    }

    /// Fault injection for tests: the next `fdatasync` fails as if the disk had failed.
    #[doc(hidden)]
    pub fn inject_sync_failure(&self) {
        self.inner.fail_next_sync.store(true, Ordering::SeqCst);
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
            let do_sync = q.sync_wanted > q.synced;
            let buf = std::mem::take(&mut q.pending);
            let first_seq = q.pending_first_seq.take();
            let max_seq = std::mem::take(&mut q.pending_max_seq);
            let res = parking_lot::MutexGuard::unlocked(&mut q, || {
                self.write_batch(&buf, first_seq, max_seq, do_sync)
            });
            q.leader_active = false;
            match res {
                Ok(rolled) => {
                    if let Some(old) = rolled {
                        q.closed.push_back(old);
                    }
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
                Err(e) => {
                    tracing::error!(error = %e, "WAL write/sync failed; the log is poisoned");
                    q.poisoned = Some(e.to_string());
                }
            }
            self.cond.notify_all();
        }
    }

    /// Writes `buf` to the active segment (rolling or creating it first) and syncs if
    /// asked. Returns the segment it closed by rolling, if any.
    fn write_batch(
        &self,
        buf: &[u8],
        first_seq: Option<SeqNo>,
        max_seq: SeqNo,
        do_sync: bool,
    ) -> Result<Option<SegmentMeta>> {
        let mut active = self.active.lock();
        let mut rolled = None;
        if let Some(first_seq) = first_seq {
            let full = active
                .as_ref()
                .is_some_and(|a| a.len >= self.opts.segment_bytes);
            if full && let Some(mut old) = active.take() {
                // IMPORTANT: the old segment must be durable before records go elsewhere.
                self.fdatasync(&mut old)?;
                rolled = Some(SegmentMeta {
                    path: old.path,
                    max_seq: old.max_seq,
                });
            }
            if active.is_none() {
                *active = Some(self.create_segment(first_seq)?);
            }
        }
        let Some(a) = active.as_mut() else {
            return Ok(rolled); // a sync with nothing ever written
        };
        if !buf.is_empty() {
            a.file.write_all(buf).map_err(|e| Error::io(&a.path, e))?;
            a.len += buf.len() as u64;
            a.max_seq = a.max_seq.max(max_seq);
        }
        if do_sync {
            self.fdatasync(a)?;
        }
        Ok(rolled)
    }

    fn fdatasync(&self, a: &mut Active) -> Result<()> {
        self.syncs.fetch_add(1, Ordering::Relaxed);
        if self.fail_next_sync.swap(false, Ordering::SeqCst) {
            return Err(Error::io(
                &a.path,
                std::io::Error::other("injected fdatasync failure"),
            ));
        }
        // IMPORTANT: this is what makes Sync appends durable.
        a.file.sync_data().map_err(|e| Error::io(&a.path, e))
    }

    fn create_segment(&self, first_seq: SeqNo) -> Result<Active> {
        let path = self.dir.join(segment::segment_name(first_seq));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        file.write_all(&segment::header())
            .map_err(|e| Error::io(&path, e))?;
        // IMPORTANT: the new name must survive a crash before records in it are acked.
        sync_dir(&self.dir)?;
        Ok(Active {
            file,
            path,
            len: segment::HEADER_BYTES as u64,
            max_seq: 0,
        })
    }
}
