//! The spooling-directory source: picks up completed files dropped into a directory (oldest
//! first), sends every line, and marks a file done — renames it with `done_suffix` — only
//! after every line of it is in the channels. A file that changes while being read (size,
//! mtime or inode differ from when it was opened) is refused with
//! [`Error::SpoolFileChanged`]: it is left in place, logged, counted and not retried in this
//! run, because a spool directory only accepts files that are complete when dropped.
//!
//! Ignored: hidden files (`.name`, so writers can drop `.name.tmp` and rename), names
//! ending in `done_suffix` or `.tmp`, and names matching `ignore_pattern`.
//! Not a tail: files are expected to be immutable once dropped. After a crash a partially
//! sent file is sent again from its start (at-least-once).
//!
//! Spooled files are only read, with `std::fs`; the done-rename, which recovery depends on,
//! goes through the file-system seam ([`SpoolOptions::fs`]) and is synced with the
//! directory before the file counts as done. A power cut before that sync sends the file
//! again (at-least-once).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use regex::Regex;
use speedlayer_vfs::{SharedFs, durable};

use super::{Emit, Source};
use crate::error::{Error, Result};
use crate::metrics::Counter;

/// Spooldir options.
#[derive(Debug, Clone)]
pub struct SpoolOptions {
    /// The watched directory.
    pub dir: PathBuf,
    /// Suffix appended to finished files (default `.done`).
    pub done_suffix: String,
    /// Extra names to ignore.
    pub ignore_pattern: Option<Regex>,
    /// Lines per batch.
    pub batch_lines: usize,
    /// How often to scan for new files when idle.
    pub poll_interval: Duration,
    /// The file system the done-renames go through. Default: the real one.
    pub fs: SharedFs,
}

/// The spooldir source.
pub struct SpoolDirSource {
    opts: SpoolOptions,
    refused: HashSet<PathBuf>,
    errors: Counter,
    files_done: Counter,
}

#[derive(Debug, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: Option<SystemTime>,
    ino: u64,
}

fn stamp(md: &fs::Metadata) -> Stamp {
    Stamp {
        len: md.len(),
        mtime: md.modified().ok(),
        ino: md.ino(),
    }
}

impl SpoolDirSource {
    /// A spooldir source; `errors` counts refused files, `files_done` finished ones.
    pub fn new(opts: SpoolOptions, errors: Counter, files_done: Counter) -> Self {
        SpoolDirSource {
            opts,
            refused: HashSet::new(),
            errors,
            files_done,
        }
    }

    /// Candidate files, oldest first (mtime, then name).
    fn candidates(&self) -> Result<Vec<PathBuf>> {
        let dir = &self.opts.dir;
        let mut out = Vec::new();
        for e in fs::read_dir(dir).map_err(|e| Error::io("list", dir, e))? {
            let e = e.map_err(|e| Error::io("list", dir, e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.')
                || name.ends_with(&self.opts.done_suffix)
                || name.ends_with(".tmp")
                || self
                    .opts
                    .ignore_pattern
                    .as_ref()
                    .is_some_and(|r| r.is_match(&name))
            {
                continue;
            }
            let Ok(md) = e.metadata() else { continue };
            if !md.is_file() || self.refused.contains(&e.path()) {
                continue;
            }
            out.push((md.modified().ok(), name, e.path()));
        }
        out.sort();
        Ok(out.into_iter().map(|(_, _, p)| p).collect())
    }

    /// Sends every line of `path`, then renames it done.
    fn ingest(&mut self, path: &Path, emit: &mut Emit<'_>, stop: &AtomicBool) -> Result<bool> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let before = stamp(&file.metadata().map_err(|e| Error::io("stat", path, e))?);
        let check = |file: &File| -> Result<()> {
            let now_fd = stamp(&file.metadata().map_err(|e| Error::io("stat", path, e))?);
            let now_path = fs::metadata(path).map(|m| stamp(&m)).ok();
            if now_fd != before || now_path.as_ref() != Some(&before) {
                return Err(Error::SpoolFileChanged {
                    path: path.to_owned(),
                    what: format!(
                        "opened with {} bytes (inode {}), now {} bytes{}",
                        before.len,
                        before.ino,
                        now_fd.len,
                        if now_fd.mtime != before.mtime {
                            ", modified"
                        } else {
                            ""
                        }
                    ),
                });
            }
            Ok(())
        };
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut batch = Vec::with_capacity(self.opts.batch_lines);
        loop {
            let mut line = Vec::new();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| Error::io("read", path, e))?;
            if n > 0 {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                batch.push(line);
            }
            if batch.len() >= self.opts.batch_lines || (n == 0 && !batch.is_empty()) {
                check(&file)?;
                emit(std::mem::take(&mut batch))?;
                if stop.load(Ordering::Relaxed) && n != 0 {
                    // Stopping mid-file: not marked done, resent from its start next time.
                    return Ok(false);
                }
            }
            if n == 0 {
                break;
            }
        }
        check(&file)?;
        let mut done = path.as_os_str().to_owned();
        done.push(&self.opts.done_suffix);
        let done = PathBuf::from(done);
        // IMPORTANT: only now is every line in the channels.
        self.opts
            .fs
            .rename(path, &done)
            .map_err(|e| Error::io("rename", path, e))?;
        durable::sync_dir(&*self.opts.fs, &self.opts.dir)?;
        self.files_done.inc();
        Ok(true)
    }
}

impl Source for SpoolDirSource {
    fn run(&mut self, emit: &mut Emit<'_>, stop: &AtomicBool) -> Result<()> {
        fs::create_dir_all(&self.opts.dir)
            .map_err(|e| Error::io("create dir", &self.opts.dir, e))?;
        while !stop.load(Ordering::Relaxed) {
            let files = self.candidates()?;
            if files.is_empty() {
                std::thread::sleep(self.opts.poll_interval); // idle scan interval
                continue;
            }
            for f in files {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match self.ingest(&f, emit, stop) {
                    Ok(_) => {}
                    Err(e @ Error::SpoolFileChanged { .. }) => {
                        tracing::error!(error = %e, "refusing spool file");
                        self.errors.inc();
                        self.refused.insert(f);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(())
    }
}
