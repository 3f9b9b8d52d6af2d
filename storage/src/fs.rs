//! The engine's view of the file-system seam: the [`Fs`] every durable file goes through
//! (chosen by [`EngineOptions::fs`](crate::EngineOptions::fs)), and the durable helpers of
//! `speedlayer_vfs::durable` with this crate's error type.
//!
//! This module does not decide what to write or when to sync.

use std::path::Path;

pub use speedlayer_vfs::durable::{parent_dir, tmp_path};
pub use speedlayer_vfs::{
    CutMode, CutReport, FaultFs, FaultRule, File, Fs, Op, OpenMode, RealFs, SharedFs,
};

use crate::error::{Error, Result};

/// Opens `path` as `mode` says, naming the file in the error.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn open(fs: &dyn Fs, path: &Path, mode: OpenMode) -> Result<Box<dyn File>> {
    fs.open(path, mode).map_err(|e| Error::io(path, e))
}

/// fsyncs the directory `dir` so that creates, renames and deletes in it are durable.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    Ok(speedlayer_vfs::durable::sync_dir(fs, dir)?)
}

/// Creates `dir` (and parents) durably.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn create_dir_synced(fs: &dyn Fs, dir: &Path) -> Result<()> {
    Ok(speedlayer_vfs::durable::create_dir_synced(fs, dir)?)
}

/// Replaces `path` with `contents` atomically (temp file, fsync, rename, directory fsync).
///
/// # Errors
/// [`Error::Io`] naming the file that failed.
pub fn write_atomic(fs: &dyn Fs, path: &Path, contents: &[u8]) -> Result<()> {
    Ok(speedlayer_vfs::durable::write_atomic(fs, path, contents)?)
}

/// Deletes `path` and fsyncs its directory.
///
/// # Errors
/// [`Error::Io`] naming the file or directory.
pub fn remove_file_synced(fs: &dyn Fs, path: &Path) -> Result<()> {
    Ok(speedlayer_vfs::durable::remove_file_synced(fs, path)?)
}

/// Cuts `path` to `len` bytes and fsyncs it.
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn truncate_synced(fs: &dyn Fs, path: &Path, len: u64) -> Result<()> {
    Ok(speedlayer_vfs::durable::truncate_synced(fs, path, len)?)
}

/// The entries of `dir`, as paths.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn read_dir(fs: &dyn Fs, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    fs.read_dir(dir).map_err(|e| Error::io(dir, e))
}
