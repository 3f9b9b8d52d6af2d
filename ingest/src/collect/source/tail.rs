//! The tail source: follows a growing file like `tail -F`, across rotation (the path now
//! names a new file: the old one is finished first) and truncation (the file shrank: read
//! again from the start), remembering its position in a checkpoint file so a restart
//! neither skips nor repeats lines.
//!
//! The checkpoint is written only after a batch is in the channels, so a crash repeats at
//! most the last batch (at-least-once) and a clean stop repeats nothing. Format (one line):
//! `speedlayer-tail v1 <dev> <ino> <offset> <crc32 of the preceding text, hex>`.
//! If the checkpointed file was rotated while the agent was down, it is found again by
//! inode in the same directory and finished before the new file is read.
//!
//! Not a multi-file glob tailer: one path per source. Growth is detected by polling.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

    /// Reads a checkpoint; `Ok(None)` if absent.
    ///
    /// # Errors
    /// [`Error::Corrupt`] if it exists but does not decode.
    pub fn load(path: &Path) -> Result<Option<Position>> {
        match fs::read_to_string(path) {
            Ok(s) => Position::decode(&s)
                .map(Some)
                .ok_or_else(|| Error::Corrupt {
                    path: path.to_owned(),
                    offset: 0,
                    reason: format!("not a tail checkpoint: {s:?}"),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", path, e)),
        }
    }

    fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("pos.tmp");
        fs::write(&tmp, self.encode()).map_err(|e| Error::io("write", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))
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

    /// Reads what is there and splits complete lines into `out` (up to `max`).
    fn read_lines(&mut self, out: &mut Vec<Vec<u8>>, max: usize, path: &Path) -> Result<()> {
        let mut buf = [0u8; 64 * 1024];
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
            self.pending.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    fn position(&self) -> Position {
        Position {
            dev: self.dev,
            ino: self.ino,
            offset: self.offset,
        }
    }
}

/// The tail source.
pub struct TailSource {
    opts: TailOptions,
    lag: Gauge,
}

impl TailSource {
    /// A tail source; `lag` receives the bytes between the position and the file's end.
    pub fn new(opts: TailOptions, lag: Gauge) -> Self {
        TailSource { opts, lag }
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
    fn resume(&self) -> Result<Option<(Open, Option<PathBuf>)>> {
        let path = &self.opts.path;
        let pos = Position::load(&self.opts.position_file)?;
        let current = fs::metadata(path).ok();
        match (pos, current) {
            (Some(p), Some(md)) if md.dev() == p.dev && md.ino() == p.ino => {
                Ok(Some((Open::at(path, p.offset)?, None)))
            }
            (Some(p), _) => match self.find_rotated(p.dev, p.ino) {
                Some(old) => {
                    tracing::info!(file = %old.display(), offset = p.offset, "finishing file rotated while stopped");
                    Ok(Some((Open::at(&old, p.offset)?, Some(old))))
                }
                None if path.exists() => {
                    tracing::warn!(path = %path.display(), "checkpointed file is gone; starting the current file from 0");
                    Ok(Some((Open::at(path, 0)?, None)))
                }
                None => Ok(None),
            },
            (None, Some(_)) => Ok(Some((Open::at(path, 0)?, None))),
            (None, None) => Ok(None),
        }
    }
}

impl Source for TailSource {
    fn run(&mut self, emit: &mut Emit<'_>, stop: &AtomicBool) -> Result<()> {
        let path = self.opts.path.clone();
        let mut cur: Option<(Open, Option<PathBuf>)> = None;
        let mut lines = Vec::with_capacity(self.opts.batch_lines);
        while !stop.load(Ordering::Relaxed) {
            if cur.is_none() {
                cur = self.resume()?;
                if cur.is_none() {
                    std::thread::sleep(self.opts.poll_interval); // waiting for the file to appear
                    continue;
                }
            }
            let Some((open, rotated_path)) = cur.as_mut() else {
                continue;
            };
            let reading = rotated_path.clone().unwrap_or_else(|| path.clone());
            lines.clear();
            open.read_lines(&mut lines, self.opts.batch_lines, &reading)?;
            if !lines.is_empty() {
                emit(std::mem::take(&mut lines))?;
                open.position().save(&self.opts.position_file)?;
                if let Ok(md) = open.file.metadata() {
                    self.lag.set(md.len().saturating_sub(open.offset) as i64);
                }
                continue;
            }
            // At the end of what is there: rotation, truncation, or just idle.
            let here = open
                .file
                .metadata()
                .map_err(|e| Error::io("stat", &reading, e))?;
            let named = fs::metadata(&path).ok();
            let rotated = rotated_path.is_some()
                || named
                    .as_ref()
                    .is_some_and(|m| m.ino() != open.ino || m.dev() != open.dev);
            if rotated {
                // The old file is finished (writers have moved on): flush a final partial line.
                if !open.pending.is_empty() {
                    let last = std::mem::take(&mut open.pending);
                    open.offset += last.len() as u64;
                    emit(vec![last])?;
                }
                if named.is_some() {
                    let next = Open::at(&path, 0)?;
                    next.position().save(&self.opts.position_file)?;
                    cur = Some((next, None));
                    continue;
                }
            } else if here.len() < open.offset + open.pending.len() as u64 {
                tracing::info!(path = %path.display(), "file truncated; reading from the start");
                *open = Open::at(&reading, 0)?;
                open.position().save(&self.opts.position_file)?;
                continue;
            }
            self.lag.set(here.len().saturating_sub(open.offset) as i64);
            std::thread::sleep(self.opts.poll_interval); // idle poll, not a readiness wait
        }
        if let Some((open, _)) = &cur {
            open.position().save(&self.opts.position_file)?;
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
