//! The manifest log on disk (`storage/docs/manifest_format.md` §1, §2, §5): the
//! `CURRENT` pointer, `MANIFEST-<n>` edit logs (the shared `log` format: every frame is
//! synced before the next is written, so each confirms everything before it), replay
//! through the shared recovery, durable appends and compaction into a snapshot.
//!
//! It persists whatever [`ManifestState::apply`] accepts; it does not decide edits.

use std::path::{Path, PathBuf};

use super::edit::{ManifestState, VersionEdit};
use crate::error::{Error, Result};
use crate::fs::{File, OpenMode, SharedFs, remove_file_synced, sync_dir, write_atomic};
use crate::log::{self, FRAME_HEADER_BYTES, LogSpec, RecoveryMode, put_frame};

/// Manifest log magic (§1).
pub const MANIFEST_MAGIC: &[u8; 6] = b"SLMAN\0";
/// Manifest log format version (§1).
pub const MANIFEST_VERSION: u16 = 1;
/// Header bytes of a manifest log (§1).
pub const MANIFEST_HEADER_BYTES: usize = 8;
/// Largest edit payload (§1).
pub const MAX_EDIT_BYTES: usize = 64 << 20;
/// Name of the pointer file.
pub const CURRENT: &str = "CURRENT";

fn header() -> [u8; MANIFEST_HEADER_BYTES] {
    let mut h = [0u8; MANIFEST_HEADER_BYTES];
    h[..6].copy_from_slice(MANIFEST_MAGIC);
    h[6..].copy_from_slice(&MANIFEST_VERSION.to_le_bytes());
    h
}

/// `MANIFEST-<n:06>`.
pub fn manifest_name(n: u64) -> String {
    format!("MANIFEST-{n:06}")
}

fn parse_manifest_name(s: &str) -> Option<u64> {
    let d = s.strip_prefix("MANIFEST-")?;
    if d.len() < 6 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    d.parse().ok()
}

fn current_contents(n: u64) -> String {
    let name = manifest_name(n);
    format!("{name} {:08x}\n", crc32fast::hash(name.as_bytes()))
}

fn parse_current(path: &Path, s: &[u8]) -> Result<u64> {
    let bad = |reason: &str| Error::Corruption {
        file: path.to_path_buf(),
        offset: 0,
        reason: reason.to_string(),
    };
    let s = std::str::from_utf8(s).map_err(|_| bad("CURRENT is not UTF-8"))?;
    let line = s
        .strip_suffix('\n')
        .ok_or_else(|| bad("CURRENT lacks its newline"))?;
    let (name, crc) = line
        .split_once(' ')
        .ok_or_else(|| bad("CURRENT lacks its checksum"))?;
    let crc = u32::from_str_radix(crc, 16).map_err(|_| bad("CURRENT checksum is not hex"))?;
    if crc32fast::hash(name.as_bytes()) != crc || parse_manifest_name(name).is_none() {
        return Err(bad("CURRENT checksum mismatch or bad manifest name"));
    }
    parse_manifest_name(name).ok_or_else(|| bad("bad manifest name"))
}

/// Manifest tuning, and the file system it lives on.
#[derive(Clone, Debug)]
pub struct ManifestOptions {
    /// Rewrite the log as a snapshot once it exceeds this many bytes. Default 4 MiB:
    /// bounds replay time and disk use; smaller means more frequent rewrites.
    pub max_log_bytes: u64,
    /// What replay does with a damaged tail (default: cut a torn tail; `log_format.md` §4).
    pub recovery: RecoveryMode,
    /// The file system (default: the real one).
    pub fs: SharedFs,
    /// Cluster mode: every change is refused once the region's `FENCE` names another
    /// owner (default: none).
    pub fence: Option<std::sync::Arc<crate::fence::FenceFile>>,
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            max_log_bytes: 4 << 20,
            recovery: RecoveryMode::default(),
            fs: speedlayer_vfs::real(),
            fence: None,
        }
    }
}

/// The open manifest of one region directory. Not `Sync` by itself: wrap in a mutex.
#[derive(Debug)]
pub struct Manifest {
    dir: PathBuf,
    opts: ManifestOptions,
    number: u64,
    path: PathBuf,
    file: Box<dyn File>,
    len: u64,
    state: ManifestState,
    poisoned: Option<String>,
}

impl Manifest {
    /// Opens (or creates) the manifest in `dir` with default options and replays it.
    ///
    /// # Errors
    /// See [`Manifest::open_with`].
    pub fn open(dir: &Path) -> Result<(Manifest, ManifestState)> {
        Manifest::open_with(dir, ManifestOptions::default())
    }

    /// Opens (or creates) the manifest in `dir` and replays it (§2). A torn tail is
    /// truncated; other damage fails.
    ///
    /// # Errors
    /// [`Error::Corruption`]/[`Error::ChecksumMismatch`] naming file and offset,
    /// [`Error::Io`].
    pub fn open_with(dir: &Path, opts: ManifestOptions) -> Result<(Manifest, ManifestState)> {
        let shared = opts.fs.clone();
        let fs = &*shared;
        crate::fs::create_dir_synced(fs, dir)?;
        let current = dir.join(CURRENT);
        let cur = match fs.read(&current) {
            Ok(b) => Some(parse_current(&current, &b)?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::io(&current, e)),
        };
        let Some(number) = cur else {
            // Nothing was ever committed: stray logs from a crash before CURRENT go.
            for (_, p) in list_logs(fs, dir)? {
                remove_file_synced(fs, &p)?;
            }
            let state = ManifestState::default();
            let m = Manifest::create_log(dir, opts, 1, &state)?;
            return Ok((m, state));
        };
        let path = dir.join(manifest_name(number));
        let (state, len) = replay(fs, &path, opts.recovery)?;
        let file = crate::fs::open(fs, &path, OpenMode::Append)?;
        // Logs older than CURRENT are leftovers of an interrupted compaction.
        for (n, p) in list_logs(fs, dir)? {
            if n != number {
                remove_file_synced(fs, &p)?;
            }
        }
        let mut m = Manifest {
            dir: dir.to_path_buf(),
            opts,
            number,
            path,
            file,
            len,
            state: state.clone(),
            poisoned: None,
        };
        if m.len > m.opts.max_log_bytes {
            m.compact()?;
        }
        Ok((m, state))
    }

    /// Writes `MANIFEST-<number>` holding `state` as snapshot edits, then points
    /// `CURRENT` at it.
    fn create_log(
        dir: &Path,
        opts: ManifestOptions,
        number: u64,
        state: &ManifestState,
    ) -> Result<Manifest> {
        let path = dir.join(manifest_name(number));
        let mut buf = header().to_vec();
        if *state != ManifestState::default() {
            for e in state.snapshot_edits() {
                put_frame(&mut buf, &e.encode());
            }
        }
        let fs = &*opts.fs;
        let file = crate::fs::open(fs, &path, OpenMode::CreateTruncate)?;
        file.append(&buf).map_err(|e| Error::io(&path, e))?;
        // IMPORTANT: the log must be durable before CURRENT names it.
        file.sync_all().map_err(|e| Error::io(&path, e))?;
        sync_dir(fs, dir)?;
        write_atomic(fs, &dir.join(CURRENT), current_contents(number).as_bytes())?;
        Ok(Manifest {
            dir: dir.to_path_buf(),
            opts,
            number,
            path,
            file,
            len: buf.len() as u64,
            state: state.clone(),
            poisoned: None,
        })
    }

    /// Checks `edit` against the state, appends it and fsyncs; returns only when durable.
    /// Compacts the log when it grew past `max_log_bytes`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] if the edit does not fit the state (nothing written),
    /// [`Error::Poisoned`] after an earlier failure, [`Error::Io`] (which poisons).
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<()> {
        if let Some(p) = &self.poisoned {
            return Err(Error::Poisoned(p.clone()));
        }
        if let Some(f) = &self.opts.fence {
            f.check(&*self.opts.fs)?;
        }
        let mut next = self.state.clone();
        next.apply(edit).map_err(Error::InvalidArgument)?;
        let payload = edit.encode();
        if payload.len() > MAX_EDIT_BYTES {
            return Err(Error::InvalidArgument(format!(
                "manifest edit of {} bytes exceeds {MAX_EDIT_BYTES}",
                payload.len()
            )));
        }
        let mut frame = Vec::with_capacity(payload.len() + FRAME_HEADER_BYTES);
        put_frame(&mut frame, &payload);
        if let Err(e) = self.file.append(&frame) {
            // A full disk refuses this edit only, once its partial frame is cut off again.
            if speedlayer_vfs::is_no_space(&e) && self.file.set_len(self.len).is_ok() {
                return Err(Error::io(&self.path, e));
            }
            let e = Error::io(&self.path, e);
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        // IMPORTANT: the edit is acknowledged only once it is on disk.
        if let Err(e) = self.file.sync_data() {
            let e = Error::io(&self.path, e);
            self.poisoned = Some(e.to_string());
            return Err(e);
        }
        self.len += frame.len() as u64;
        self.state = next;
        if self.len > self.opts.max_log_bytes
            && let Err(e) = self.compact()
        {
            // The edit itself is durable in the old log, so this apply succeeded; the
            // failed rewrite poisoned the manifest and the next apply reports it.
            tracing::error!(error = %e, "manifest compaction failed; manifest poisoned");
        }
        Ok(())
    }

    /// Rewrites the log as a snapshot of the state into the next `MANIFEST-<n>`, switches
    /// `CURRENT` and deletes the old log.
    ///
    /// # Errors
    /// [`Error::Io`] (which poisons the manifest).
    pub fn compact(&mut self) -> Result<()> {
        self.roll_to(self.number + 1)
    }

    /// As [`Manifest::compact`], into `MANIFEST-<number>` (at least the next number).
    /// Cluster mode rolls to a number above `epoch << 40` when it opens a region, so a
    /// deposed owner, appending to or rolling its own log, never writes the new owner's.
    ///
    /// # Errors
    /// [`Error::Fenced`] (nothing written), [`Error::Io`] (which poisons the manifest).
    pub fn roll_to(&mut self, number: u64) -> Result<()> {
        if let Some(f) = &self.opts.fence {
            f.check(&*self.opts.fs)?;
        }
        let old = self.path.clone();
        let number = number.max(self.number + 1);
        let res =
            Manifest::create_log(&self.dir, self.opts.clone(), number, &self.state).and_then(|m| {
                *self = m;
                remove_file_synced(&*self.opts.fs, &old)
            });
        if let Err(e) = &res {
            self.poisoned = Some(e.to_string());
        }
        res
    }

    /// The current state.
    pub fn state(&self) -> &ManifestState {
        &self.state
    }

    /// Path of the live log.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the live log in bytes.
    pub fn log_bytes(&self) -> u64 {
        self.len
    }
}

fn list_logs(fs: &dyn crate::fs::Fs, dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let mut v = Vec::new();
    for p in crate::fs::read_dir(fs, dir)? {
        if let Some(n) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(parse_manifest_name)
        {
            v.push((n, p));
        }
    }
    v.sort();
    Ok(v)
}

/// Replays the log at `path` into a state through the shared recovery; a torn tail is
/// truncated unless `mode` is strict. Returns the state and the log's length after
/// recovery.
fn replay(fs: &dyn crate::fs::Fs, path: &Path, mode: RecoveryMode) -> Result<(ManifestState, u64)> {
    let accept = |p: &[u8]| VersionEdit::decode(p).is_ok();
    let plausible = |p: &[u8]| p.first() == Some(&super::edit::EDIT_VERSION);
    // Every edit is synced before the next is appended: a valid frame at `at` proves all
    // bytes before it were durable.
    let confirms = |at: usize, _: &[u8]| at as u64;
    let spec = LogSpec {
        header: &header(),
        max_payload: MAX_EDIT_BYTES,
        plausible: &plausible,
        accept: &accept,
        confirms: &confirms,
    };
    // CURRENT names only logs whose header was fsynced: the log is never "the last file"
    // whose header may be torn, but its frames' tail may be.
    let rec = log::recover(fs, path, &spec, true, mode)?;
    if rec.len < MANIFEST_HEADER_BYTES as u64 {
        return Err(Error::Corruption {
            file: path.to_path_buf(),
            offset: 0,
            reason: "bad manifest header".into(),
        });
    }
    let mut state = ManifestState::default();
    for (off, range) in &rec.frames {
        let edit = VersionEdit::decode(&rec.data[range.clone()])
            .map_err(|e| e.into_error(path, (off + FRAME_HEADER_BYTES) as u64))?;
        state.apply(&edit).map_err(|r| Error::Corruption {
            file: path.to_path_buf(),
            offset: *off as u64,
            reason: format!("edit does not apply: {r}"),
        })?;
    }
    Ok((state, rec.len))
}
