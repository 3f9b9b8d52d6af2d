//! The append-only file: every write as a RESP command, replayed at start; its rewrite,
//! the shutdown snapshot, and what happens when the disk fails under them.
//!
//! Format (see `server/docs/resp_persistence.md`): one header line
//! `SLAOF 1 <id:16 hex> <base|incr>\r\n`, then RESP arrays of bulk strings. Only the
//! commands [`replay`] knows are ever written: `SADD SREM DEL PEXPIREAT PERSIST RENAME SMOVE
//! FLUSHALL` — expiries are absolute times, expired keys are `DEL`eted, SPOP is `SREM`,
//! *STORE is `DEL` + `SADD`, and what one command or one transaction writes in two or more
//! commands is a `MULTI`/`EXEC` block. A `base` file holds a whole state (after a rewrite); an AOF
//! whose id is the snapshot's `supersedes` is already in the snapshot. Reading back and
//! repairing a torn tail is in `load`; the snapshot encoding is in `snapshot`.
//!
//! Every file operation goes through the [`speedlayer_vfs`] seam. A failed write or fsync
//! does not stop the service: as Redis does, writes are refused with `-MISCONF Errors
//! writing to the AOF file: <strerror>` while reads go on, and the writer task retries once a
//! second until the disk takes the data again. A failed write is cut back so the file still
//! ends with a whole command, then retried. After a failed fsync the file is never trusted
//! again (the kernel may have dropped the unwritten pages and would report the next fsync
//! as a success): the retry rewrites the whole state into a new file instead.

mod load;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use speedlayer_vfs::{File, OpenMode, SharedFs, durable};

use self::load::header;
pub use self::load::{Loaded, load_aof, replay};
use super::config::AppendFsync;
use super::keyspace::{Keyspace, encode_command};
use super::keyspace_lock::KeyspaceLock;
use super::member::Member;
use super::repl::Replication;
use super::snapshot;
use crate::error::ServerError;

/// The AOF file name inside the RESP directory.
pub const AOF_FILE: &str = "appendonly.aof";
/// The snapshot file name inside the RESP directory.
pub const SNAP_FILE: &str = "dump.snap";
/// The file a rewrite builds before it replaces the AOF.
pub const REWRITE_FILE: &str = "appendonly.aof.rewrite";

/// How often a failing AOF is retried (Redis retries its pending buffer once a second).
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Consecutive failed rewrites after which automatic rewrites back off, as Redis's
/// `aofRewriteLimited`: one minute, doubling up to an hour.
const REWRITE_BACKOFF_AFTER: u64 = 3;
const REWRITE_BACKOFF_FIRST: Duration = Duration::from_secs(60);
const REWRITE_BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Least time between two logs of the same failing write (Redis: 30 s).
const ERROR_LOG_EVERY: Duration = Duration::from_secs(30);

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ServerError + 'a {
    move |source| ServerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// The C library's text for `errno`, as Redis prints it with `strerror`.
pub fn strerror(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[derive(Debug)]
struct AofFile {
    file: Box<dyn File>,
    id: u64,
    size: u64,
    base_size: u64,
    last_fsync: Instant,
    unsynced: bool,
    /// Commands taken from the keyspace and not in the file yet: a failed write keeps them
    /// here for the retry.
    pending: Vec<u8>,
    /// Bytes ever taken from the keyspace; `recorded - pending.len()` of them are in files.
    recorded: u64,
    /// The file's tail or durability is unknown (a failed write could not be cut back, or
    /// an fsync failed): only a rewrite into a new file recovers.
    broken: bool,
    last_retry: Instant,
    /// After repeated rewrite failures, automatic rewrites wait until then.
    rewrite_not_before: Option<Instant>,
    rewrite_delay: Duration,
}

impl AofFile {
    /// Moves what the keyspace recorded into `pending`, keeping the order of execution,
    /// and into the replication stream: both are fed here, under the same locks, so they
    /// hold the same commands in the same order.
    fn take(&mut self, ks: &mut Keyspace, stream: Option<&Replication>) {
        let more = ks.take_propagated();
        if let Some(r) = stream {
            r.feed(&more);
        }
        self.recorded += more.len() as u64;
        if self.pending.is_empty() {
            self.pending = more;
        } else {
            self.pending.extend_from_slice(&more);
        }
    }
}

/// How far [`Aof::flush`] goes after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushMode {
    /// Only write (to the OS): survives a process crash, like Redis before every reply.
    Write,
    /// Write, and fsync if the policy is `everysec` and a second has passed.
    Periodic,
    /// Write and fsync.
    Sync,
}

/// Status numbers for INFO persistence.
#[derive(Debug, Clone, Copy, Default)]
pub struct AofInfo {
    /// Current file size.
    pub size: u64,
    /// Size after the last rewrite (or at start).
    pub base_size: u64,
    /// Rewrites done since start.
    pub rewrites: u64,
    /// Whether the last rewrite failed (`aof_last_bgrewrite_status:err`).
    pub last_rewrite_failed: bool,
    /// Rewrites that failed in a row (`aof_rewrites_consecutive_failures`).
    pub rewrite_failures: u64,
    /// The errno of the failing write or fsync (`aof_last_write_status:err`), if failing.
    pub write_errno: Option<i32>,
    /// How many times everything written so far was made durable (an fsync of the AOF, a
    /// rewrite or a snapshot completed): a write acknowledged before this number grew is on
    /// disk.
    pub durable_points: u64,
}

/// An open append-only file.
#[derive(Debug)]
pub struct Aof {
    fs: SharedFs,
    dir: PathBuf,
    path: PathBuf,
    fsync: AppendFsync,
    inner: Mutex<AofFile>,
    /// errno of the failing write or fsync; 0 while the AOF is healthy.
    write_errno: AtomicI32,
    rewrites: AtomicU64,
    rewrite_failed: AtomicBool,
    rewrite_failures: AtomicU64,
    durable_points: AtomicU64,
    last_error_log: Mutex<Option<Instant>>,
    /// `size` and `base_size` of the file, for INFO without the file lock: the thread
    /// running a transaction's `EXEC` holds the keyspace gate, which a flush holding the
    /// file lock may be waiting for (see `keyspace_lock`).
    size_seen: AtomicU64,
    base_size_seen: AtomicU64,
    /// The replication stream fed with the same commands (`repl`), if any.
    stream: Option<Arc<Replication>>,
    /// A replica snapshot's position in its master's stream, when nothing was applied on
    /// top of the snapshot (`snapshot`, `SLSNAP02`): where a restarted replica resumes.
    resume: Option<snapshot::ReplPosition>,
}

/// A first start (no AOF, no snapshot) with a Redis `dump.rdb` in `dir`: loads its sets into
/// `ks`, to become the base AOF (`server/docs/rdb.md`, "Import").
fn import_rdb(
    fs: &dyn speedlayer_vfs::Fs,
    dir: &Path,
    ks: &mut Keyspace,
) -> Result<(), ServerError> {
    let path = dir.join(super::rdb::RDB_FILE);
    if !fs.exists(&path).map_err(io_err("stat", &path))? {
        return Ok(());
    }
    let bytes = fs.read(&path).map_err(io_err("read", &path))?;
    let decoded = super::rdb::decode(&bytes, &path, ks.clock_ms())?;
    tracing::info!(path = %path.display(), keys = decoded.keys.len(),
        expired_skipped = decoded.expired, "imported the sets of a Redis RDB file");
    decoded.load_into(ks);
    Ok(())
}

impl Aof {
    /// Feeds every command written from now on to `stream` too (replication).
    pub fn with_replication(mut self, stream: Arc<Replication>) -> Aof {
        self.stream = Some(stream);
        self
    }

    /// Moves everything written so far into the AOF's buffer and the replication stream,
    /// then runs `f` on the keyspace and the stream's offset with both locks still held:
    /// what `f` sees is exactly the stream's first `offset` bytes (a full resync's RDB).
    pub fn at_sync_point<T>(&self, ks: &KeyspaceLock, f: impl FnOnce(&Keyspace, u64) -> T) -> T {
        let mut g = self.inner.lock();
        let mut k = ks.lock();
        g.take(&mut k, self.stream.as_deref());
        let offset = self.stream.as_ref().map_or(0, |r| r.offset());
        f(&k, offset)
    }

    /// Loads `dir/dump.snap` and `dir/appendonly.aof` through `fs` into `ks` (repairing a
    /// torn tail), then opens the AOF for appending. Creates `dir` if needed. On a first
    /// start (neither file) a Redis `dir/dump.rdb` is imported into the new base AOF.
    ///
    /// # Errors
    /// I/O errors, [`ServerError::AofCorrupted`], [`ServerError::SnapshotCorrupted`],
    /// [`ServerError::RdbCorrupted`], [`ServerError::RdbUnsupported`].
    pub fn open(
        dir: &Path,
        fsync: AppendFsync,
        fs: SharedFs,
        ks: &mut Keyspace,
    ) -> Result<Aof, ServerError> {
        durable::create_dir_synced(&*fs, dir)?;
        let path = dir.join(AOF_FILE);
        let snap_path = dir.join(SNAP_FILE);
        // Leftovers of a rewrite or a replacement cut short: never part of the state.
        for stale in [
            dir.join(REWRITE_FILE),
            durable::tmp_path(&path),
            durable::tmp_path(&snap_path),
        ] {
            if fs.exists(&stale).map_err(io_err("stat", &stale))? {
                fs.remove_file(&stale).map_err(io_err("remove", &stale))?;
            }
        }
        let (snap_supersedes, snap_repl) =
            if fs.exists(&snap_path).map_err(io_err("stat", &snap_path))? {
                let bytes = fs.read(&snap_path).map_err(io_err("read", &snap_path))?;
                let (id, repl) = snapshot::decode_with_repl(&bytes, &snap_path, ks)?;
                (Some(id), repl)
            } else {
                (None, None)
            };
        let loaded = if fs.exists(&path).map_err(io_err("stat", &path))? {
            Some(load_aof(&*fs, &path, snap_supersedes, ks)?)
        } else {
            None
        };
        let mut id = loaded.map_or(0, |l| l.id);
        match loaded {
            None
            | Some(Loaded {
                valid_header: false,
                ..
            }) => {
                if loaded.is_none() && snap_supersedes.is_none() {
                    import_rdb(&*fs, dir, ks)?;
                }
                // No AOF yet (or only a torn header): start one that holds the current state.
                id = rand::random();
                let mut bytes = header(id, true);
                dump_commands(ks, &mut bytes);
                durable::write_atomic(&*fs, &path, &bytes)?;
            }
            Some(Loaded {
                superseded: true, ..
            }) => {
                // IMPORTANT: a shutdown wrote the snapshot but was cut before it replaced the
                // AOF. Finish that step: appending to the superseded file would put new
                // commands where the next start skips them.
                id = rand::random();
                durable::write_atomic(&*fs, &path, &header(id, false))?;
            }
            Some(_) => {}
        }
        let file = fs
            .open(&path, OpenMode::Append)
            .map_err(io_err("open", &path))?;
        let size = file.len().map_err(io_err("stat", &path))?;
        // IMPORTANT: the snapshot's stream position holds only if nothing was applied on
        // top of it: the AOF after it is the one it supersedes, or holds only its header.
        let untouched =
            loaded.is_some_and(|l| l.superseded) || size == header(id, false).len() as u64;
        let resume = snap_repl.filter(|_| untouched);
        ks.dirty = 0;
        Ok(Aof {
            fs,
            dir: dir.to_path_buf(),
            path,
            fsync,
            inner: Mutex::new(AofFile {
                file,
                id,
                size,
                base_size: size,
                last_fsync: Instant::now(),
                unsynced: false,
                pending: Vec::new(),
                recorded: 0,
                broken: false,
                last_retry: Instant::now(),
                rewrite_not_before: None,
                rewrite_delay: Duration::ZERO,
            }),
            write_errno: AtomicI32::new(0),
            rewrites: AtomicU64::new(0),
            rewrite_failed: AtomicBool::new(false),
            rewrite_failures: AtomicU64::new(0),
            durable_points: AtomicU64::new(0),
            last_error_log: Mutex::new(None),
            size_seen: AtomicU64::new(size),
            base_size_seen: AtomicU64::new(size),
            stream: None,
            resume,
        })
    }

    /// Where a restarted replica can resume its master's stream (a replica snapshot
    /// with nothing applied after it), taken once.
    pub fn take_resume(&mut self) -> Option<snapshot::ReplPosition> {
        self.resume.take()
    }

    /// Numbers for INFO. Takes no lock, so a transaction may run INFO.
    pub fn info(&self) -> AofInfo {
        AofInfo {
            size: self.size_seen.load(Ordering::Relaxed),
            base_size: self.base_size_seen.load(Ordering::Relaxed),
            rewrites: self.rewrites.load(Ordering::Relaxed),
            last_rewrite_failed: self.rewrite_failed.load(Ordering::Relaxed),
            rewrite_failures: self.rewrite_failures.load(Ordering::Relaxed),
            write_errno: self.write_error(),
            durable_points: self.durable_points.load(Ordering::Relaxed),
        }
    }

    /// The errno of the write or fsync that failed, while the AOF cannot take writes.
    pub fn write_error(&self) -> Option<i32> {
        match self.write_errno.load(Ordering::Relaxed) {
            0 => None,
            e => Some(e),
        }
    }

    fn fail(&self, op: &'static str, e: &io::Error) -> ServerError {
        let errno = errno_of(e);
        let was_ok = self.write_errno.swap(errno, Ordering::Relaxed) == 0;
        // The retry fails once a second while the disk is full: log the first failure, then
        // at most every 30 s, as Redis does (`AOF_WRITE_LOG_ERROR_RATE`).
        let mut last = self.last_error_log.lock();
        if was_ok || last.is_none_or(|t| t.elapsed() >= ERROR_LOG_EVERY) {
            *last = Some(Instant::now());
            tracing::error!(path = %self.path.display(), op, error = %e,
                "Error writing to the AOF file; write commands are refused until it succeeds again");
        }
        ServerError::Io {
            op,
            path: self.path.clone(),
            source: io::Error::from_raw_os_error(errno),
        }
    }

    fn publish_sizes(&self, g: &AofFile) {
        self.size_seen.store(g.size, Ordering::Relaxed);
        self.base_size_seen.store(g.base_size, Ordering::Relaxed);
    }

    fn recovered(&self) {
        if self.write_errno.swap(0, Ordering::Relaxed) != 0 {
            tracing::info!(path = %self.path.display(),
                "AOF write error looks solved; write commands are accepted again");
        }
    }

    /// Appends the pending commands. On failure they stay pending and the file is cut back
    /// to its last whole command.
    fn write_pending(&self, g: &mut AofFile) -> Result<(), ServerError> {
        if g.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = g.file.append(&g.pending) {
            // IMPORTANT: a failed append may have written part of the buffer (a full disk
            // takes what fits); cut it back so the file ends with a whole command and the
            // retry appends after it.
            if let Err(cut) = g.file.set_len(g.size) {
                tracing::error!(path = %self.path.display(), error = %cut,
                    "could not remove a partial write from the AOF; it will be rewritten");
                g.broken = true;
            }
            return Err(self.fail("write", &e));
        }
        g.size += g.pending.len() as u64;
        self.publish_sizes(g);
        g.pending.clear();
        g.unsynced = true;
        Ok(())
    }

    /// fsyncs the AOF. A failure marks the file broken: it is never synced again as if
    /// that could bring back what the failed sync lost.
    fn sync(&self, g: &mut AofFile) -> Result<(), ServerError> {
        if let Err(e) = g.file.sync_data() {
            g.broken = true;
            return Err(self.fail("fsync", &e));
        }
        g.unsynced = false;
        g.last_fsync = Instant::now();
        self.durable_points.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the commands recorded in `ks`, then fsyncs as `mode` says.
    ///
    /// # Errors
    /// The write or fsync error, or the error the AOF is already failing with (the commands
    /// then stay pending for [`Aof::retry`]).
    pub fn flush(&self, ks: &KeyspaceLock, mode: FlushMode) -> Result<(), ServerError> {
        let mut g = self.inner.lock();
        // Taken under the file lock, so buffers reach the file in the order they were made.
        g.take(&mut ks.lock(), self.stream.as_deref());
        if let Some(errno) = self.write_error() {
            return Err(ServerError::Io {
                op: "write",
                path: self.path.clone(),
                source: io::Error::from_raw_os_error(errno),
            });
        }
        self.write_pending(&mut g)?;
        let sync = match mode {
            FlushMode::Write => false,
            FlushMode::Periodic => {
                self.fsync == AppendFsync::Everysec
                    && g.last_fsync.elapsed() >= Duration::from_secs(1)
            }
            FlushMode::Sync => true,
        };
        if g.unsynced && sync {
            // IMPORTANT: durability point for `always` and `everysec`.
            self.sync(&mut g)?;
        }
        Ok(())
    }

    /// Retries a failing AOF, at most once a second: appends the pending commands again
    /// after a failed write, or rewrites the whole state into a new file when the old one
    /// cannot be trusted (failed fsync, partial write not cut back). Writes are accepted
    /// again once it succeeds. Does nothing while the AOF is healthy.
    ///
    /// # Errors
    /// The I/O error of the retry; the AOF stays failing.
    pub fn retry(&self, ks: &KeyspaceLock) -> Result<(), ServerError> {
        {
            let mut g = self.inner.lock();
            if self.write_error().is_none() || g.last_retry.elapsed() < RETRY_EVERY {
                return Ok(());
            }
            g.last_retry = Instant::now();
            if !g.broken {
                g.take(&mut ks.lock(), self.stream.as_deref());
                self.write_pending(&mut g)?;
                if self.fsync != AppendFsync::No && g.unsynced {
                    self.sync(&mut g)?;
                }
                self.recovered();
                return Ok(());
            }
        }
        self.rewrite(ks)
    }

    /// True when the file grew past the rewrite threshold and rewrites are not backing off
    /// after repeated failures.
    pub fn needs_rewrite(&self, percentage: u64, min_size: u64) -> bool {
        if percentage == 0 {
            return false;
        }
        let g = self.inner.lock();
        if g.rewrite_not_before.is_some_and(|t| Instant::now() < t) {
            return false;
        }
        g.size >= min_size && g.size > g.base_size + g.base_size.max(1) * percentage / 100
    }

    /// Rewrites the AOF as the minimal commands for the current state (a `base` file).
    ///
    /// The keyspace lock is held while the state is encoded (our stand-in for Redis's
    /// fork). The new file is written and fsynced without any lock while clients keep
    /// appending to the old file; then, under the file lock, the commands recorded since the
    /// encoding (from the old file's tail, then what is still pending) are appended, and
    /// the new file replaces the old one. No recorded command is lost in between, and none
    /// is applied twice.
    ///
    /// # Errors
    /// I/O errors: the old file then stays in place and in use, the new one is removed,
    /// and INFO says `aof_last_bgrewrite_status:err`.
    pub fn rewrite(&self, ks: &KeyspaceLock) -> Result<(), ServerError> {
        let tmp = self.dir.join(REWRITE_FILE);
        match self.rewrite_into(ks, &tmp) {
            Ok(()) => {
                self.rewrite_failed.store(false, Ordering::Relaxed);
                self.rewrite_failures.store(0, Ordering::Relaxed);
                self.rewrites.fetch_add(1, Ordering::Relaxed);
                let mut g = self.inner.lock();
                g.rewrite_not_before = None;
                g.rewrite_delay = Duration::ZERO;
                Ok(())
            }
            Err(e) => {
                if let Err(rm) = self.fs.remove_file(&tmp)
                    && rm.kind() != io::ErrorKind::NotFound
                {
                    tracing::warn!(path = %tmp.display(), error = %rm, "could not remove the failed rewrite's file");
                }
                self.rewrite_failed.store(true, Ordering::Relaxed);
                let n = self.rewrite_failures.fetch_add(1, Ordering::Relaxed) + 1;
                tracing::error!(error = %e, consecutive_failures = n,
                    "Background AOF rewrite terminated with error; the old AOF stays in use");
                if n >= REWRITE_BACKOFF_AFTER {
                    let mut g = self.inner.lock();
                    g.rewrite_delay = if g.rewrite_delay.is_zero() {
                        REWRITE_BACKOFF_FIRST
                    } else {
                        (g.rewrite_delay * 2).min(REWRITE_BACKOFF_MAX)
                    };
                    g.rewrite_not_before = Some(Instant::now() + g.rewrite_delay);
                    tracing::warn!(
                        retry_in_s = g.rewrite_delay.as_secs(),
                        "AOF rewrite has failed repeatedly; automatic rewrites wait"
                    );
                }
                Err(e)
            }
        }
    }

    fn rewrite_into(&self, ks: &KeyspaceLock, tmp: &Path) -> Result<(), ServerError> {
        let id: u64 = rand::random();
        let mut bytes = header(id, true);
        // Everything recorded up to `encoded_at` is in the encoded state.
        let encoded_at = {
            let mut g = self.inner.lock();
            let mut k = ks.lock();
            g.take(&mut k, self.stream.as_deref());
            dump_commands(&k, &mut bytes);
            k.dirty = 0;
            g.recorded
        };
        let f = self
            .fs
            .open(tmp, OpenMode::CreateTruncate)
            .map_err(io_err("create", tmp))?;
        f.append(&bytes).map_err(io_err("write", tmp))?;
        f.sync_data().map_err(io_err("fsync", tmp))?;

        let mut g = self.inner.lock();
        g.take(&mut ks.lock(), self.stream.as_deref());
        let written = g.recorded - g.pending.len() as u64;
        let mut tail = 0u64;
        if written > encoded_at {
            // Commands after the encoding that reached the old file: copy them over, unless
            // that file cannot be trusted any more (then the next attempt starts afresh).
            if g.broken {
                return Err(ServerError::Io {
                    op: "copy tail",
                    path: self.path.clone(),
                    source: io::Error::from_raw_os_error(self.write_error().unwrap_or(libc::EIO)),
                });
            }
            let from = g.size - (written - encoded_at);
            let old = self
                .fs
                .open(&self.path, OpenMode::Read)
                .map_err(io_err("open", &self.path))?;
            let mut chunk = vec![0u8; 1 << 20];
            let mut at = from;
            while at < g.size {
                let want = (g.size - at).min(chunk.len() as u64) as usize;
                old.read_exact_at(&mut chunk[..want], at)
                    .map_err(io_err("read", &self.path))?;
                f.append(&chunk[..want]).map_err(io_err("write", tmp))?;
                at += want as u64;
            }
            tail += g.size - from;
        }
        // Then what never reached the old file (all of it, or what was recorded after the
        // encoding if some of it came before).
        let skip = encoded_at.saturating_sub(written) as usize;
        if g.pending.len() > skip {
            f.append(&g.pending[skip..]).map_err(io_err("write", tmp))?;
            tail += (g.pending.len() - skip) as u64;
        }
        // IMPORTANT: the new file is complete and durable before it replaces the old one.
        f.sync_all().map_err(io_err("fsync", tmp))?;
        drop(f);
        self.fs
            .rename(tmp, &self.path)
            .map_err(io_err("rename", &self.path))?;
        // From here the new file is the AOF whatever happens next: appends must go to it,
        // not to the old one, which the rename unlinked.
        let dir_synced = durable::sync_dir(&*self.fs, &self.dir);
        g.pending.clear();
        g.id = id;
        g.size = bytes.len() as u64 + tail;
        g.base_size = g.size;
        self.publish_sizes(&g);
        g.unsynced = false;
        g.file = self.fs.open(&self.path, OpenMode::Append).map_err(|e| {
            g.broken = true;
            self.fail("open", &e)
        })?;
        if let Err(e) = dir_synced {
            // The rename may not survive a power cut: not durable yet, so try again.
            g.broken = true;
            return Err(self.fail("fsync dir", &e.source));
        }
        g.broken = false;
        self.durable_points.fetch_add(1, Ordering::Relaxed);
        self.recovered();
        tracing::info!(bytes = g.size, tail, "AOF rewritten");
        Ok(())
    }

    /// Writes the shutdown snapshot (superseding the current AOF) and starts a fresh,
    /// empty incremental AOF.
    ///
    /// # Errors
    /// I/O errors; the AOF is then left as it was, still complete (as far as the disk let
    /// it be written), and any temporary file is removed.
    pub fn snapshot(&self, ks: &KeyspaceLock) -> Result<(), ServerError> {
        let mut g = self.inner.lock();
        let bytes;
        {
            let mut k = ks.lock();
            g.take(&mut k, self.stream.as_deref());
            // A replica records where in its master's stream these keys stand.
            let repl = self.stream.as_ref().and_then(|r| r.resume.lock().clone());
            bytes = snapshot::encode_with_repl(&k, g.id, repl.as_ref());
            k.dirty = 0;
        }
        // The AOF is the fallback should the snapshot fail: bring it up to date first. Its
        // failure does not stop the snapshot, which holds everything anyway.
        if self.write_error().is_none() && self.write_pending(&mut g).is_ok() && g.unsynced {
            let _ = self.sync(&mut g);
        }
        self.replace(&self.dir.join(SNAP_FILE), &bytes)?;
        let id: u64 = rand::random();
        let head = header(id, false);
        self.replace(&self.path, &head)?;
        g.pending.clear();
        g.id = id;
        g.size = head.len() as u64;
        g.base_size = g.size;
        self.publish_sizes(&g);
        g.unsynced = false;
        g.broken = false;
        self.durable_points.fetch_add(1, Ordering::Relaxed);
        self.recovered();
        g.file = self.fs.open(&self.path, OpenMode::Append).map_err(|e| {
            g.broken = true;
            self.fail("open", &e)
        })?;
        tracing::info!(bytes = bytes.len(), "snapshot written");
        Ok(())
    }

    /// [`durable::write_atomic`], removing its temporary file when it fails.
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), ServerError> {
        durable::write_atomic(&*self.fs, path, bytes).map_err(|e| {
            let tmp = durable::tmp_path(path);
            if let Err(rm) = self.fs.remove_file(&tmp)
                && rm.kind() != io::ErrorKind::NotFound
            {
                tracing::warn!(path = %tmp.display(), error = %rm, "could not remove a temporary file");
            }
            tracing::error!(error = %e, "could not replace {}", path.display());
            ServerError::from(e)
        })
    }
}

/// Appends the commands recreating every live key of `ks` to `out`.
pub fn dump_commands(ks: &Keyspace, out: &mut Vec<u8>) {
    let now = ks.now_ms();
    for (key, e) in ks.iter() {
        if !ks.is_live_at(e, now) {
            continue;
        }
        let members: Vec<&Member> = e.set.iter().collect();
        for chunk in members.chunks(1024) {
            let mut args: Vec<&[u8]> = Vec::with_capacity(chunk.len() + 2);
            args.push(b"SADD");
            args.push(key);
            args.extend(chunk.iter().map(|m| m.as_bytes()));
            encode_command(out, &args);
        }
        if let Some(t) = e.expire_at {
            encode_command(out, &[b"PEXPIREAT", key, t.to_string().as_bytes()]);
        }
    }
}
