//! The file-system seam: the narrow set of operations every durable writer and reader of
//! Speedlayer performs (create, append, sync, rename, sync a directory, truncate, remove,
//! read), behind one trait, [`Fs`].
//!
//! Two implementations:
//! - [`RealFs`], a pass-through to `std::fs` that costs one virtual call per operation;
//! - [`FaultFs`], which runs on a real directory but remembers what a power cut would
//!   forget (unsynced bytes, directory entries not made durable by a directory sync) and can
//!   cut power ([`FaultFs::power_cut`]) or fail chosen operations with `EIO`/`ENOSPC`
//!   ([`FaultFs::inject`]).
//!
//! [`durable`] holds the helpers built on the trait (atomic replace, create-and-sync a
//! directory, truncate-and-sync), written once for every crate.
//!
//! This crate does not know any file format, and it does not decide when to sync: callers
//! do, and the fault-injecting implementation holds them to it.

#![deny(clippy::unwrap_used)]

pub mod durable;
mod error;
mod fault;
mod real;

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use error::{Error, Result, is_no_space};
pub use fault::{CutMode, CutReport, FaultFs, FaultRule, Op};
pub use real::RealFs;

/// How [`Fs::open`] opens a file. Every writable file is append-only: writes go to its end
/// (durable formats here are logs or files written once, front to back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Read only; the file must exist.
    Read,
    /// Create a new file for appending; fails if the name exists.
    CreateNew,
    /// Create the file, or empty an existing one, for appending.
    CreateTruncate,
    /// Open an existing file for appending (and reading).
    Append,
}

/// An open file. `Send + Sync`: a log shares its file between the appender and a
/// background syncer.
pub trait File: Send + Sync + fmt::Debug {
    /// Appends all of `buf` at the end of the file.
    ///
    /// # Errors
    /// The OS error (e.g. `ENOSPC`); part of `buf` may have been written.
    fn append(&self, buf: &[u8]) -> io::Result<()>;

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at the end).
    ///
    /// # Errors
    /// The OS error.
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// `fdatasync`: the file's data (and the size needed to read it) is durable.
    ///
    /// # Errors
    /// The OS error. After a failed sync the file's unsynced data is in an unknown state.
    fn sync_data(&self) -> io::Result<()>;

    /// `fsync`: data and all metadata durable.
    ///
    /// # Errors
    /// The OS error.
    fn sync_all(&self) -> io::Result<()>;

    /// The file's current length.
    ///
    /// # Errors
    /// The OS error.
    fn len(&self) -> io::Result<u64>;

    /// Whether the file is empty.
    ///
    /// # Errors
    /// The OS error.
    fn is_empty(&self) -> io::Result<bool> {
        self.len().map(|n| n == 0)
    }

    /// Cuts (or extends with zeros) the file to `len` bytes. Not durable until synced.
    ///
    /// # Errors
    /// The OS error.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset`.
    ///
    /// # Errors
    /// `UnexpectedEof` if the file ends first, or the OS error.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended before the requested range",
                    ));
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The file-system operations durable code performs. Paths are ordinary paths; an
/// implementation may only allow those under a root it was given.
pub trait Fs: Send + Sync + fmt::Debug {
    /// Opens `path` as `mode` says.
    ///
    /// # Errors
    /// The OS error (`NotFound`, `AlreadyExists`, `ENOSPC`, ...).
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn File>>;

    /// Creates `dir` and any missing parents. Not durable until the parents are synced.
    ///
    /// # Errors
    /// The OS error.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The paths of the entries of `dir` (`dir` joined with each name), in no particular order.
    ///
    /// # Errors
    /// The OS error.
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<PathBuf>>;

    /// Renames `from` to `to`, replacing `to` if it exists. Durable once both parents are
    /// synced.
    ///
    /// # Errors
    /// The OS error.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes the file `path`. Durable once its parent is synced.
    ///
    /// # Errors
    /// The OS error.
    fn remove_file(&self, path: &Path) -> io::Result<()>;

    /// Removes the directory `dir` and everything under it.
    ///
    /// # Errors
    /// The OS error.
    fn remove_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// `fsync`s the directory `dir`: creates, renames and removes in it become durable.
    ///
    /// # Errors
    /// The OS error.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Whether `path` names a file or directory (`Ok(false)` if not).
    ///
    /// # Errors
    /// The OS error other than `NotFound`.
    fn exists(&self, path: &Path) -> io::Result<bool>;

    /// Whether `path` names a directory.
    ///
    /// # Errors
    /// The OS error other than `NotFound`.
    fn is_dir(&self, path: &Path) -> io::Result<bool>;

    /// The whole contents of the file `path`.
    ///
    /// # Errors
    /// The OS error.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open(path, OpenMode::Read)?;
        let len = usize::try_from(f.len()?)
            .map_err(|_| io::Error::other("file too large to read into memory"))?;
        let mut buf = vec![0u8; len];
        let mut at = 0;
        while at < buf.len() {
            match f.read_at(&mut buf[at..], at as u64)? {
                0 => break,
                n => at += n,
            }
        }
        buf.truncate(at);
        Ok(buf)
    }

    /// The length of the file `path`.
    ///
    /// # Errors
    /// The OS error.
    fn file_len(&self, path: &Path) -> io::Result<u64> {
        self.open(path, OpenMode::Read)?.len()
    }
}

/// A shared handle to a file system, as durable code holds it.
pub type SharedFs = Arc<dyn Fs>;

/// The real file system as a [`SharedFs`]: the default of every option that takes one.
pub fn real() -> SharedFs {
    Arc::new(RealFs)
}

/// Adapts an open [`File`] to `std::io::Read` from a starting offset, for decoders that
/// read a file front to back.
#[derive(Debug)]
pub struct SeqReader<'a> {
    file: &'a dyn File,
    pos: u64,
}

impl<'a> SeqReader<'a> {
    /// Reads `file` from `offset` on.
    pub fn new(file: &'a dyn File, offset: u64) -> SeqReader<'a> {
        SeqReader { file, pos: offset }
    }

    /// The offset of the next byte to read.
    pub fn position(&self) -> u64 {
        self.pos
    }
}

impl io::Read for SeqReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Adapts an open [`File`] to `std::io::Write` (every write appends), so a `BufWriter` can
/// batch small writes of a file written front to back.
#[derive(Debug)]
pub struct AppendWriter(Box<dyn File>);

impl AppendWriter {
    /// Appends to `file`.
    pub fn new(file: Box<dyn File>) -> AppendWriter {
        AppendWriter(file)
    }

    /// The file.
    pub fn file(&self) -> &dyn File {
        &*self.0
    }
}

impl io::Write for AppendWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.append(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
