//! The append-only file: every write as a RESP command, replayed at start.
//!
//! Format (see `server/docs/resp_persistence.md`): one header line
//! `SLAOF 1 <id:16 hex> <base|incr>\r\n`, then RESP arrays of bulk strings. Only the
//! commands [`replay`] knows are ever written: `SADD SREM DEL PEXPIREAT PERSIST RENAME SMOVE
//! FLUSHALL` — expiries are absolute times, expired keys are `DEL`eted, SPOP is `SREM`,
//! *STORE is `DEL` + `SADD`. A `base` file holds a whole state (after a rewrite); an `incr`
//! file continues the snapshot whose `supersedes` id differs from its own. A truncated tail
//! is cut back to the last whole command (logged); anything else unparsable refuses to
//! start. The rewrite and the shutdown snapshot are here too; the snapshot encoding is in
//! `snapshot`.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::config::{AppendFsync, Limits};
use super::frame::{FrameError, parse_i64, parse_request};
use super::keyspace::{Keyspace, encode_command};
use super::member::Member;
use super::server::Shared;
use super::snapshot;
use crate::error::ServerError;

/// The AOF file name inside the RESP directory.
pub const AOF_FILE: &str = "appendonly.aof";
/// The snapshot file name inside the RESP directory.
pub const SNAP_FILE: &str = "dump.snap";

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> ServerError + 'a {
    move |source| ServerError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug)]
struct AofFile {
    file: File,
    id: u64,
    size: u64,
    base_size: u64,
    last_fsync: Instant,
    unsynced: bool,
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
}

/// An open append-only file.
#[derive(Debug)]
pub struct Aof {
    dir: PathBuf,
    path: PathBuf,
    fsync: AppendFsync,
    inner: Mutex<AofFile>,
    rewrites: std::sync::atomic::AtomicU64,
}

fn header(id: u64, base: bool) -> Vec<u8> {
    format!(
        "SLAOF 1 {id:016x} {}\r\n",
        if base { "base" } else { "incr" }
    )
    .into_bytes()
}

fn fsync_dir(dir: &Path) -> Result<(), ServerError> {
    // IMPORTANT: a rename is durable only once the directory is fsynced.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync dir", dir))
}

/// Writes `bytes` to `dir/name` atomically (temp file, fsync, rename, fsync dir).
pub fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), ServerError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
    f.write_all(bytes).map_err(io_err("write", &tmp))?;
    f.sync_all().map_err(io_err("fsync", &tmp))?;
    std::fs::rename(&tmp, &dst).map_err(io_err("rename", &dst))?;
    fsync_dir(dir)
}

impl Aof {
    /// Loads `dir/dump.snap` and `dir/appendonly.aof` into `ks` (repairing a torn tail),
    /// then opens the AOF for appending. Creates `dir` if needed.
    ///
    /// # Errors
    /// I/O errors, [`ServerError::AofCorrupted`], [`ServerError::SnapshotCorrupted`].
    pub fn open(dir: &Path, fsync: AppendFsync, ks: &mut Keyspace) -> Result<Aof, ServerError> {
        std::fs::create_dir_all(dir).map_err(io_err("create dir", dir))?;
        let path = dir.join(AOF_FILE);
        let snap_path = dir.join(SNAP_FILE);
        let snap_supersedes = if snap_path.exists() {
            let bytes = std::fs::read(&snap_path).map_err(io_err("read", &snap_path))?;
            Some(snapshot::decode(&bytes, &snap_path, ks)?)
        } else {
            None
        };
        let mut valid_header = false;
        let mut id = 0;
        if path.exists() {
            let (hid, loaded) = load_aof(&path, snap_supersedes, ks)?;
            valid_header = loaded;
            id = hid;
        }
        if !valid_header {
            // No AOF yet (or only a torn header): start one that holds the current state.
            id = rand::random();
            let mut bytes = header(id, true);
            dump_commands(ks, &mut bytes);
            write_atomic(dir, AOF_FILE, &bytes)?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .map_err(io_err("open", &path))?;
        let size = file.metadata().map_err(io_err("stat", &path))?.len();
        ks.dirty = 0;
        Ok(Aof {
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
            }),
            rewrites: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// Numbers for INFO.
    pub fn info(&self) -> AofInfo {
        let g = self.inner.lock();
        AofInfo {
            size: g.size,
            base_size: g.base_size,
            rewrites: self.rewrites.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Writes the commands recorded in `ks`, then fsyncs as `mode` says.
    ///
    /// # Errors
    /// The write or fsync error.
    pub fn flush(&self, ks: &Mutex<Keyspace>, mode: FlushMode) -> Result<(), ServerError> {
        let mut g = self.inner.lock();
        // Taken under the file lock, so buffers reach the file in the order they were made.
        let pending = ks.lock().take_propagated();
        if !pending.is_empty() {
            g.file
                .write_all(&pending)
                .map_err(io_err("write", &self.path))?;
            g.size += pending.len() as u64;
            g.unsynced = true;
        }
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
            g.file.sync_data().map_err(io_err("fsync", &self.path))?;
            g.unsynced = false;
            g.last_fsync = Instant::now();
        }
        Ok(())
    }

    /// True when the file grew past the rewrite threshold.
    pub fn needs_rewrite(&self, percentage: u64, min_size: u64) -> bool {
        if percentage == 0 {
            return false;
        }
        let g = self.inner.lock();
        g.size >= min_size && g.size > g.base_size + g.base_size.max(1) * percentage / 100
    }

    /// Rewrites the AOF as the minimal commands for the current state (a `base` file).
    ///
    /// The keyspace lock is held while the state is encoded (our stand-in for Redis's
    /// fork). The new file is written and fsynced without any lock while clients keep
    /// appending to the old file; then, under the file lock, the old file's tail written
    /// since the encoding (exactly the commands after it) is copied over, and the new file
    /// replaces the old one. No recorded command is lost in between.
    ///
    /// # Errors
    /// I/O errors; the old file stays in place and in use.
    pub fn rewrite(&self, ks: &Mutex<Keyspace>) -> Result<(), ServerError> {
        let id: u64 = rand::random();
        let mut bytes = header(id, true);
        let offset = {
            let mut g = self.inner.lock();
            let mut k = ks.lock();
            let pending = k.take_propagated();
            g.file
                .write_all(&pending)
                .map_err(io_err("write", &self.path))?;
            g.size += pending.len() as u64;
            dump_commands(&k, &mut bytes);
            k.dirty = 0;
            g.size
        };
        let tmp = self.dir.join(format!("{AOF_FILE}.rewrite"));
        let mut f = File::create(&tmp).map_err(io_err("create", &tmp))?;
        f.write_all(&bytes).map_err(io_err("write", &tmp))?;
        f.sync_data().map_err(io_err("fsync", &tmp))?;

        let mut g = self.inner.lock();
        let pending = ks.lock().take_propagated();
        g.file
            .write_all(&pending)
            .map_err(io_err("write", &self.path))?;
        g.size += pending.len() as u64;
        let mut old = File::open(&self.path).map_err(io_err("open", &self.path))?;
        std::io::Seek::seek(&mut old, std::io::SeekFrom::Start(offset))
            .map_err(io_err("seek", &self.path))?;
        let copied = std::io::copy(&mut old.take(g.size - offset), &mut f)
            .map_err(io_err("copy tail", &tmp))?;
        // IMPORTANT: the new file is complete and durable before it replaces the old one.
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        std::fs::rename(&tmp, &self.path).map_err(io_err("rename", &self.path))?;
        fsync_dir(&self.dir)?;
        g.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err("open", &self.path))?;
        g.id = id;
        g.size = bytes.len() as u64 + copied;
        g.base_size = g.size;
        g.unsynced = false;
        self.rewrites
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::info!(bytes = g.size, tail = copied, "AOF rewritten");
        Ok(())
    }

    /// Writes the shutdown snapshot (superseding the current AOF) and starts a fresh,
    /// empty incremental AOF.
    ///
    /// # Errors
    /// I/O errors; the AOF is then left as it was, still complete.
    pub fn snapshot(&self, ks: &Mutex<Keyspace>) -> Result<(), ServerError> {
        let mut g = self.inner.lock();
        let bytes;
        {
            let mut k = ks.lock();
            let pending = k.take_propagated();
            g.file
                .write_all(&pending)
                .map_err(io_err("write", &self.path))?;
            g.size += pending.len() as u64;
            bytes = snapshot::encode(&k, g.id);
            k.dirty = 0;
        }
        g.file.sync_data().map_err(io_err("fsync", &self.path))?;
        write_atomic(&self.dir, SNAP_FILE, &bytes)?;
        let id: u64 = rand::random();
        let head = header(id, false);
        write_atomic(&self.dir, AOF_FILE, &head)?;
        g.file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io_err("open", &self.path))?;
        g.id = id;
        g.size = head.len() as u64;
        g.base_size = g.size;
        tracing::info!(bytes = bytes.len(), "snapshot written");
        Ok(())
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

fn parse_header(buf: &[u8]) -> Option<(u64, bool, usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..nl]).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    if parts.next()? != "SLAOF" || parts.next()? != "1" {
        return None;
    }
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let base = match parts.next()? {
        "base" => true,
        "incr" => false,
        _ => return None,
    };
    Some((id, base, nl + 1))
}

/// Loads the AOF at `path` into `ks`, cutting a torn tail off the file. Returns its id and
/// whether it had a valid header.
fn load_aof(
    path: &Path,
    snap_supersedes: Option<u64>,
    ks: &mut Keyspace,
) -> Result<(u64, bool), ServerError> {
    let f = File::open(path).map_err(io_err("open", path))?;
    let len = f.metadata().map_err(io_err("stat", path))?.len();
    let loaded = load(f, len, path, snap_supersedes, ks)?;
    if let Some(whole) = loaded.torn_tail_at {
        // A torn tail: the crash cut the last command short. Cut it off.
        tracing::warn!(path = %path.display(), offset = whole, dropped = len - whole,
            "AOF ends with a truncated command; truncating the file to the last whole command");
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        f.set_len(whole).map_err(io_err("truncate", path))?;
        f.sync_all().map_err(io_err("fsync", path))?;
    }
    if loaded.has_header {
        tracing::info!(path = %path.display(), commands = loaded.applied, "AOF loaded");
    } else {
        tracing::warn!(path = %path.display(), "AOF has only a torn header; starting it afresh");
    }
    Ok((loaded.id, loaded.has_header))
}

/// What [`load`] found in an AOF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loaded {
    /// The id in the header (0 without a header).
    pub id: u64,
    /// False when the file held only a torn header (nothing was loaded).
    pub has_header: bool,
    /// Commands applied to the keyspace (0 when the snapshot already includes them).
    pub applied: u64,
    /// When the file ends with a partial command: the length of the whole commands before
    /// it, which the file is to be truncated to.
    pub torn_tail_at: Option<u64>,
}

/// Replays the AOF bytes read from `src` (`len` bytes, named `path` in errors) into `ks`.
/// Reads and parses only; the caller truncates a torn tail. The loader at start uses this.
///
/// # Errors
/// [`ServerError::AofCorrupted`] for a bad header, a frame that is not a command array, or
/// a command the AOF never contains; [`ServerError::Io`] when reading fails.
pub fn load<R: Read>(
    mut src: R,
    len: u64,
    path: &Path,
    snap_supersedes: Option<u64>,
    ks: &mut Keyspace,
) -> Result<Loaded, ServerError> {
    let corrupted = |offset: u64, reason: String| ServerError::AofCorrupted {
        path: path.to_path_buf(),
        offset,
        len,
        reason,
    };
    // One read for a small file, 1 MiB at a time for a large one.
    let chunk_len = usize::try_from(len).map_or(1 << 20, |l| l.saturating_add(1).min(1 << 20));
    let mut buf = BytesMut::with_capacity(chunk_len);
    let mut chunk = vec![0u8; chunk_len];
    let mut eof = false;
    let fill = |src: &mut R, buf: &mut BytesMut, chunk: &mut [u8], eof: &mut bool| {
        let n = src.read(chunk).map_err(io_err("read", path))?;
        if n == 0 {
            *eof = true;
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok::<(), ServerError>(())
    };
    // Header.
    let (id, base, hlen) = loop {
        if let Some(h) = parse_header(&buf) {
            break h;
        }
        if eof || buf.len() > 256 {
            let is_torn_prefix =
                buf.len() < 64 && b"SLAOF 1 ".starts_with(&buf[..buf.len().min(8)]);
            if eof && is_torn_prefix {
                return Ok(Loaded {
                    id: 0,
                    has_header: false,
                    applied: 0,
                    torn_tail_at: None,
                });
            }
            return Err(corrupted(0, "missing or invalid SLAOF header".into()));
        }
        fill(&mut src, &mut buf, &mut chunk, &mut eof)?;
    };
    bytes::Buf::advance(&mut buf, hlen);
    let skip = !base && snap_supersedes == Some(id);
    if base {
        ks.clear();
    }
    ks.loading = true;
    let limits = Limits {
        query_buffer_limit: usize::MAX,
        ..Limits::default()
    };
    let mut offset = hlen as u64;
    let mut args: Vec<Bytes> = Vec::new();
    let mut applied = 0u64;
    let mut torn_tail_at = None;
    loop {
        if !buf.is_empty() && buf[0] != b'*' {
            ks.loading = false;
            return Err(corrupted(
                offset,
                format!("expected '*', found byte {:#04x}", buf[0]),
            ));
        }
        let before = buf.len();
        match parse_request(&mut buf, &limits, true, &mut args) {
            Ok(true) => {
                offset += (before - buf.len()) as u64;
                if skip {
                    continue;
                }
                if let Err(reason) = replay(ks, &args) {
                    ks.loading = false;
                    return Err(corrupted(offset - (before - buf.len()) as u64, reason));
                }
                applied += 1;
            }
            Ok(false) | Err(FrameError::Incomplete) => {
                if !eof {
                    fill(&mut src, &mut buf, &mut chunk, &mut eof)?;
                    continue;
                }
                if !buf.is_empty() {
                    torn_tail_at = Some(offset);
                }
                break;
            }
            Err(FrameError::Protocol(msg)) => {
                ks.loading = false;
                return Err(corrupted(offset, msg));
            }
        }
    }
    ks.loading = false;
    Ok(Loaded {
        id,
        has_header: true,
        applied,
        torn_tail_at,
    })
}

/// Applies one AOF command to `ks` (no expiry while loading).
///
/// # Errors
/// A reason when the command is not one the AOF can contain, including an empty array
/// (`*0`), which the AOF never holds.
pub fn replay(ks: &mut Keyspace, args: &[Bytes]) -> Result<(), String> {
    let Some(first) = args.first() else {
        return Err("empty command array".into());
    };
    let name = first.to_ascii_uppercase();
    let bad = || {
        format!(
            "unexpected command {:?} with {} arguments",
            String::from_utf8_lossy(first),
            args.len()
        )
    };
    match (&name[..], args.len()) {
        (b"SADD", n) if n >= 3 => {
            // A full set: the original command met the same limit at the same member.
            let _ = ks.add_members(&args[1], args[2..].iter().map(|m| &m[..]));
        }
        (b"SREM", n) if n >= 3 => {
            if let Some(e) = ks.live_mut(&args[1]) {
                for m in &args[2..] {
                    e.set.remove(&m[..]);
                }
            }
            ks.remove_if_empty(&args[1]);
        }
        (b"DEL", n) if n >= 2 => {
            for k in &args[1..] {
                ks.remove(k);
            }
        }
        (b"PEXPIREAT", 3) => {
            let t = parse_i64(&args[2]).ok_or_else(bad)?;
            ks.set_expire(&args[1], Some(t));
        }
        (b"PERSIST", 2) => {
            ks.set_expire(&args[1], None);
        }
        (b"RENAME", 3) => {
            ks.rename(&args[1], &args[2]);
        }
        (b"SMOVE", 4) => {
            ks.smove(&args[1], &args[2], &args[3])
                .map_err(|full| format!("SMOVE into a full set: {full}"))?;
        }
        (b"FLUSHALL", _) => ks.clear(),
        _ => return Err(bad()),
    }
    Ok(())
}

/// Background task: writes recorded commands every 10 ms (fsync per policy) and starts a
/// rewrite when the file outgrew its threshold.
pub async fn writer_loop(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stop = tokio::select! {
            _ = tick.tick() => false,
            _ = shutdown.changed() => true,
        };
        let s = shared.clone();
        let r = tokio::task::spawn_blocking(move || {
            s.flush_aof(if stop {
                FlushMode::Sync
            } else {
                FlushMode::Periodic
            })?;
            if let Some(aof) = &s.aof
                && aof.needs_rewrite(
                    s.config.auto_aof_rewrite_percentage,
                    s.config.auto_aof_rewrite_min_size,
                )
            {
                aof.rewrite(&s.ks)?;
            }
            Ok::<(), ServerError>(())
        })
        .await;
        match r {
            Ok(Err(e)) => tracing::error!(error = %e, "AOF write failed; refusing writes"),
            Err(e) => tracing::error!(error = %e, "AOF writer task failed"),
            Ok(Ok(())) => {}
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::clock::ManualClock;

    #[test]
    fn an_empty_command_array_is_corruption_not_a_panic() {
        // Found by the `resp_aof` fuzz target (kept in server/fuzz/regressions/resp_aof/).
        let aof = b"SLAOF 1 00000000000000bb incr\r\n*1\r\n$8\r\nFLUSHALL\r\n*0\r\n";
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(0)));
        let err = load(
            &aof[..],
            aof.len() as u64,
            Path::new("appendonly.aof"),
            None,
            &mut ks,
        )
        .unwrap_err();
        match err {
            ServerError::AofCorrupted { offset, reason, .. } => {
                assert_eq!(offset, 49, "the offset of the `*0`");
                assert_eq!(reason, "empty command array");
            }
            other => panic!("expected AofCorrupted, got {other}"),
        }
        assert!(!ks.loading);
        // Negative counts parse as empty arrays too.
        let aof = b"SLAOF 1 00000000000000bb base\r\n*-1\r\n";
        let err = load(&aof[..], aof.len() as u64, Path::new("x"), None, &mut ks).unwrap_err();
        assert!(matches!(err, ServerError::AofCorrupted { .. }), "{err}");
    }
}
