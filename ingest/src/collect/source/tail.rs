//! The tail source: follows a growing file like `tail -F`, across rotation and truncation,
//! remembering its position in a checkpoint file so a restart neither skips nor repeats
//! lines.
//!
//! Rotation (the path now names another file) does not close the old file when the new one
//! is seen. The old descriptor is read to its end again, because the read that last found
//! "the end" ran before the rotation was seen and lines written just before the rename
//! land after it. It is then followed until it has had no new bytes for
//! [`TailOptions::rotation_quiet`], for writers that still hold it open after the rename (a
//! logger that reopens its file late). Only then is it finished: a last line without a
//! newline is sent as a line (no writer is expected to complete it), the file is closed, and
//! the new file is read from its start. Every line of the old file therefore precedes every
//! line of the new one. The new file is opened when the rotation is seen, so a second
//! rotation during the drain cannot skip it. Bytes written to the old file after it was
//! closed are not read.
//!
//! Truncation (the file is shorter than the position, copytruncate style): the same
//! descriptor is read again from the start. Lines written between the last read and the copy
//! exist only in the copy and are not read; that race is copytruncate's own.
//!
//! The checkpoint is written only after a batch is in the channels, so a crash repeats at
//! most the last batch (at-least-once) and a clean stop repeats nothing. Format (one line):
//! `speedlayer-tail v1 <dev> <ino> <offset> <crc32 of the preceding text, hex>`. It is
//! replaced atomically and synced with its directory through [`TailOptions::fs`]; a
//! missing or unreadable one (a power cut before the first save, a damaged disk) is not an
//! error: the file is read again from its start, and a stale one from its older offset.
//! While a rotated file is drained the checkpoint keeps naming it; it names the new file
//! only once the old one's last line is in the channels. If the checkpointed file was
//! rotated while the agent was down (or during a drain), it is found again by inode in the
//! same directory and drained the same way before the new file is read.
//!
//! Not a multi-file glob tailer: one path per source. Growth is detected by polling;
//! [`TailSource::step`] is one poll with the clock passed in, and its two halves are public
//! so a test can rotate the file between "read to the end" and "look for rotation".

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use speedlayer_vfs::{Fs, SharedFs, durable};

use super::{Emit, Source};
use crate::error::{Error, Result};
use crate::metrics::Gauge;

/// Largest line kept whole; longer ones are cut into pieces (the validator refuses them).
pub const MAX_LINE: usize = 64 * 1024;

/// Tail source options.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// The followed path.
    pub path: PathBuf,
    /// The checkpoint file.
    pub position_file: PathBuf,
    /// Lines per batch (one channel put).
    pub batch_lines: usize,
    /// How often to look for growth, rotation and truncation when idle.
    pub poll_interval: Duration,
    /// How long a rotated file must have had no new bytes before it is closed and the new
    /// file read. Longer waits out writers that reopen late, but delays the new file's
    /// lines (and a final line without newline) by as much at every rotation.
    pub rotation_quiet: Duration,
    /// The file system the position file is written through (the followed files are only
    /// read, with `std::fs`). Default: the real one.
    pub fs: SharedFs,
}

/// A saved position: which file (device, inode) and the offset after the last sent line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Device id.
    pub dev: u64,
    /// Inode.
    pub ino: u64,
    /// Byte offset after the last complete line handed to the channel.
    pub offset: u64,
}

impl Position {
    fn encode(&self) -> String {
        let text = format!(
            "speedlayer-tail v1 {} {} {}",
            self.dev, self.ino, self.offset
        );
        let crc = crc32fast::hash(text.as_bytes());
        format!("{text} {crc:08x}\n")
    }

    fn decode(s: &str) -> Option<Position> {
        let s = s.trim_end();
        let (text, crc) = s.rsplit_once(' ')?;
        if u32::from_str_radix(crc, 16).ok()? != crc32fast::hash(text.as_bytes()) {
            return None;
        }
        let mut it = text.split(' ');
        if it.next()? != "speedlayer-tail" || it.next()? != "v1" {
            return None;
        }
        Some(Position {
            dev: it.next()?.parse().ok()?,
            ino: it.next()?.parse().ok()?,
            offset: it.next()?.parse().ok()?,
        })
    }

    /// Reads a checkpoint. `None` if it is absent, unreadable or does not decode: the caller
    /// then reads the file from its start (at-least-once), never stops.
    pub fn load(fs: &dyn Fs, path: &Path) -> Option<Position> {
        let bytes = match fs.read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable tail position; reading the file again from its start");
                return None;
            }
        };
        let text = String::from_utf8_lossy(&bytes);
        let p = Position::decode(&text);
        if p.is_none() {
            tracing::warn!(path = %path.display(), content = ?text, "not a tail position; reading the file again from its start");
        }
        p
    }

    /// Replaces the checkpoint atomically (`<path>.tmp`, fsync, rename, fsync of the
    /// directory).
    ///
    /// # Errors
    /// [`Error::Io`] naming the file that failed.
    pub fn save(&self, fs: &dyn Fs, path: &Path) -> Result<()> {
        // IMPORTANT: after a power cut the file holds this position or the previous one.
        Ok(durable::write_atomic(fs, path, self.encode().as_bytes())?)
    }
}

struct Open {
    file: File,
    dev: u64,
    ino: u64,
    /// Offset after the last complete line extracted.
    offset: u64,
    /// Bytes read past `offset` (an incomplete line).
    pending: Vec<u8>,
}

impl Open {
    fn at(path: &Path, offset: u64) -> Result<Open> {
        let mut file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let md = file.metadata().map_err(|e| Error::io("stat", path, e))?;
        let offset = if md.len() < offset { 0 } else { offset };
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::io("seek", path, e))?;
        Ok(Open {
            file,
            dev: md.dev(),
            ino: md.ino(),
            offset,
            pending: Vec::new(),
        })
    }

    /// The file now at `path` if it is not this one (the path was rotated); `None` if the
    /// path names this file or nothing.
    fn replacement(&self, path: &Path) -> Result<Option<Open>> {
        let Ok(md) = fs::metadata(path) else {
            return Ok(None);
        };
        if md.dev() == self.dev && md.ino() == self.ino {
            return Ok(None);
        }
        match Open::at(path, 0) {
            // Renamed back between the stat and the open.
            Ok(next) if next.dev == self.dev && next.ino == self.ino => Ok(None),
            Ok(next) => Ok(Some(next)),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Back to the start of the same file (it was truncated); the partial line is gone with
    /// the bytes it came from.
    fn rewind(&mut self, path: &Path) -> Result<()> {
        self.file
            .seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", path, e))?;
        self.offset = 0;
        self.pending.clear();
        Ok(())
    }

    /// Reads what is there and splits complete lines into `out` (up to `max`); returns the
    /// number of bytes read from the file.
    fn read_lines(&mut self, out: &mut Vec<Vec<u8>>, max: usize, path: &Path) -> Result<usize> {
        let mut buf = [0u8; 64 * 1024];
        let mut read = 0;
        while out.len() < max {
            // Split what is pending first.
            let mut start = 0;
            while out.len() < max {
                match self.pending[start..].iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        let mut line = &self.pending[start..start + i];
                        if let Some(l) = line.strip_suffix(b"\r") {
                            line = l;
                        }
                        out.push(line.to_vec());
                        start += i + 1;
                    }
                    None => break,
                }
            }
            self.pending.drain(..start);
            self.offset += start as u64;
            if self.pending.len() >= MAX_LINE {
                let cut: Vec<u8> = self.pending.drain(..MAX_LINE).collect();
                self.offset += cut.len() as u64;
                out.push(cut);
            }
            if out.len() >= max {
                break;
            }
            let n = self
                .file
                .read(&mut buf)
                .map_err(|e| Error::io("read", path, e))?;
            if n == 0 {
                break;
            }
            read += n;
            self.pending.extend_from_slice(&buf[..n]);
        }
        Ok(read)
    }

    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
        }
    }
}

/// What one [`TailSource::step`], or one half of it, did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Lines were sent or the followed file changed: step again at once.
    Progress,
    /// Nothing to do until the file grows or time passes.
    Idle,
}

/// The file being read.
struct Follow {
    open: Open,
    /// The name it was opened by: the followed path, or a rotated name found on restart.
    name: PathBuf,
    /// Bytes arrived since the last look for rotation (a rotated file is not quiet).
    grew: bool,
    /// Set once the path is known to name another file.
    rotated: Option<Rotated>,
}

/// A rotated file being drained.
struct Rotated {
    /// The file at the path when the rotation was seen. `None` only when restarted on a
    /// rotated file while nothing was at the path; looked for again once quiet.
    next: Option<Open>,
    /// Since when the old file has had no new bytes.
    quiet_since: Instant,
}

/// The tail source.
pub struct TailSource {
    opts: TailOptions,
    lag: Gauge,
    follow: Option<Follow>,
}

impl TailSource {
    /// A tail source; `lag` receives the bytes between the position and the file's end.
    pub fn new(opts: TailOptions, lag: Gauge) -> Self {
        TailSource {
            opts,
            lag,
            follow: None,
        }
    }

    /// Finds a file in the followed path's directory with inode `ino` (a rotated file).
    fn find_rotated(&self, dev: u64, ino: u64) -> Option<PathBuf> {
        let dir = self
            .opts
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())?;
        fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok())
            .find_map(|e| {
                let md = e.metadata().ok()?;
                (md.dev() == dev && md.ino() == ino && md.is_file()).then(|| e.path())
            })
    }

    /// Where to start: the checkpointed file (maybe rotated away) at its offset.
    fn resume(&self, now: Instant) -> Result<Option<Follow>> {
        let path = &self.opts.path;
        let following = |open: Open| Follow {
            open,
            name: path.clone(),
            grew: false,
            rotated: None,
        };
        let pos = Position::load(&*self.opts.fs, &self.opts.position_file);
        let current = fs::metadata(path).ok();
        match (pos, current) {
            (Some(p), Some(md)) if md.dev() == p.dev && md.ino() == p.ino => {
                Ok(Some(following(Open::at(path, p.offset)?)))
            }
            (Some(p), _) => match self.find_rotated(p.dev, p.ino) {
                Some(old) => {
                    tracing::info!(file = %old.display(), offset = p.offset, "finishing a rotated file");
                    let open = Open::at(&old, p.offset)?;
                    let next = open.replacement(path)?;
                    Ok(Some(Follow {
                        open,
                        name: old,
                        grew: false,
                        rotated: Some(Rotated {
                            next,
                            quiet_since: now,
                        }),
                    }))
                }
                None if path.exists() => {
                    tracing::warn!(path = %path.display(), "checkpointed file is gone; starting the current file from 0");
                    Ok(Some(following(Open::at(path, 0)?)))
                }
                None => Ok(None),
            },
            (None, Some(_)) => Ok(Some(following(Open::at(path, 0)?))),
            (None, None) => Ok(None),
        }
    }

    /// One poll: [`read_batch`](Self::read_batch), and when it found nothing,
    /// [`at_end`](Self::at_end). `now` is the clock for the rotation quiet interval.
    ///
    /// # Errors
    /// I/O errors on the followed files or checkpoint; emitter errors.
    pub fn step(&mut self, now: Instant, emit: &mut Emit<'_>) -> Result<Step> {
        match self.read_batch(now, emit)? {
            Step::Progress => Ok(Step::Progress),
            Step::Idle => self.at_end(now, emit),
        }
    }

    /// Opens the file if none is open (from the checkpoint), reads up to a batch of lines,
    /// sends them and checkpoints. `Idle` when there is nothing to read (or no file yet).
    ///
    /// # Errors
    /// I/O errors on the followed files or checkpoint; emitter errors.
    pub fn read_batch(&mut self, now: Instant, emit: &mut Emit<'_>) -> Result<Step> {
        if self.follow.is_none() {
            self.follow = self.resume(now)?;
        }
        let Some(f) = self.follow.as_mut() else {
            return Ok(Step::Idle);
        };
        let mut lines = Vec::new();
        let read = f
            .open
            .read_lines(&mut lines, self.opts.batch_lines, &f.name)?;
        f.grew |= read > 0;
        if lines.is_empty() {
            return Ok(Step::Idle);
        }
        emit(lines)?;
        // IMPORTANT: the checkpoint moves only once the batch is in the channels.
        let pos = f.open.position();
        save_position(&self.opts, pos)?;
        if let Ok(md) = f.open.file.metadata() {
            self.lag.set(md.len().saturating_sub(f.open.offset) as i64);
        }
        Ok(Step::Progress)
    }

    /// At the end of what the open file holds: notices rotation and truncation and, once a
    /// rotated file has been quiet for `rotation_quiet`, finishes it and opens the new one.
    ///
    /// # Errors
    /// I/O errors on the followed files or checkpoint; emitter errors.
    pub fn at_end(&mut self, now: Instant, emit: &mut Emit<'_>) -> Result<Step> {
        let path = &self.opts.path;
        let Some(f) = self.follow.as_mut() else {
            return Ok(Step::Idle);
        };
        let grew = std::mem::take(&mut f.grew);
        let here = f
            .open
            .file
            .metadata()
            .map_err(|e| Error::io("stat", &f.name, e))?;
        self.lag
            .set(here.len().saturating_sub(f.open.offset) as i64);
        let Some(rotated) = f.rotated.as_mut() else {
            if let Some(next) = f.open.replacement(path)? {
                tracing::info!(path = %path.display(), "rotated; draining the old file first");
                f.rotated = Some(Rotated {
                    next: Some(next),
                    quiet_since: now,
                });
                // Read the old file again at once: what was written to it before the rename
                // is there now, though the last read found its end.
                return Ok(Step::Progress);
            }
            if here.len() < f.open.offset + f.open.pending.len() as u64 {
                tracing::info!(path = %path.display(), "file truncated; reading from the start");
                f.open.rewind(&f.name)?;
                let pos = f.open.position();
                save_position(&self.opts, pos)?;
                return Ok(Step::Progress);
            }
            return Ok(Step::Idle);
        };
        if grew {
            rotated.quiet_since = now;
        }
        if now.saturating_duration_since(rotated.quiet_since) < self.opts.rotation_quiet {
            return Ok(Step::Idle);
        }
        let next = match rotated.next.take() {
            Some(next) => next,
            None => match f.open.replacement(path)? {
                Some(next) => next,
                // Nothing at the path yet: the old file is still the one to follow.
                None => return Ok(Step::Idle),
            },
        };
        // The old file is finished: no writer is expected to complete a last partial line.
        if !f.open.pending.is_empty() {
            let last = std::mem::take(&mut f.open.pending);
            f.open.offset += last.len() as u64;
            emit(vec![last])?;
        }
        tracing::info!(file = %f.name.display(), offset = f.open.offset, "rotated file finished");
        // IMPORTANT: the checkpoint names the new file only once every line of the old one
        // is in the channels.
        let pos = next.position();
        self.follow = Some(Follow {
            open: next,
            name: path.clone(),
            grew: false,
            rotated: None,
        });
        save_position(&self.opts, pos)?;
        Ok(Step::Progress)
    }
}

/// Saves `pos` to the position file. A full disk is not fatal: the older position stays,
/// and a restart repeats lines (at-least-once) rather than the source stopping.
fn save_position(opts: &TailOptions, pos: Position) -> Result<()> {
    match pos.save(&*opts.fs, &opts.position_file) {
        Err(e) if e.is_no_space() => {
            tracing::warn!(error = %e, "cannot save the tail position (disk full); a restart repeats lines");
            Ok(())
        }
        r => r,
    }
}

impl Source for TailSource {
    fn run(&mut self, emit: &mut Emit<'_>, stop: &AtomicBool) -> Result<()> {
        while !stop.load(Ordering::Relaxed) {
            if self.step(Instant::now(), emit)? == Step::Idle {
                std::thread::sleep(self.opts.poll_interval); // idle poll, not a readiness wait
            }
        }
        if let Some(f) = &self.follow {
            save_position(&self.opts, f.open.position())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn position_round_trips_and_detects_corruption() {
        let p = Position {
            dev: 7,
            ino: 12345,
            offset: 999,
        };
        assert_eq!(Position::decode(&p.encode()), Some(p));
        let bad = p.encode().replace("999", "998");
        assert_eq!(Position::decode(&bad), None);
    }
}
