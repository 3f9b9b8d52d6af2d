//! Filesystem durability helpers: fsync a directory, replace a file atomically.
//!
//! A file's data is durable after `fsync` of the file; its *name* is durable only after
//! `fsync` of the directory holding it. Every create, rename and delete that recovery
//! depends on goes through these helpers. This module does not decide what to write.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// fsyncs the directory `dir` so that creates, renames and deletes in it are durable.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn sync_dir(dir: &Path) -> Result<()> {
    // IMPORTANT: without this a crash can forget a freshly created or renamed file.
    let f = File::open(dir).map_err(|e| Error::io(dir, e))?;
    f.sync_all().map_err(|e| Error::io(dir, e))
}

/// Creates `dir` (and parents) and fsyncs it and its parent.
///
/// # Errors
/// [`Error::Io`] naming the directory.
pub fn create_dir_synced(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    sync_dir(dir)?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically: write `<path>.tmp`, fsync it, rename over
/// `path`, fsync the directory. After a crash `path` holds either the old or the new
/// contents, never a mix.
///
/// # Errors
/// [`Error::Io`] naming the file that failed.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        f.write_all(contents).map_err(|e| Error::io(&tmp, e))?;
        // IMPORTANT: the data must be on disk before the rename makes it visible.
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_dir(parent_dir(path))
}

/// Deletes `path` and fsyncs its directory.
///
/// # Errors
/// [`Error::Io`] naming the file or directory.
pub fn remove_file_synced(path: &Path) -> Result<()> {
    std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    sync_dir(parent_dir(path))
}

/// Cuts `path` to `len` bytes and fsyncs it: how a recovered log drops a torn tail, so that
/// appends after recovery never follow the garbage.
///
/// # Errors
/// `Error::Io` naming the file if it cannot be opened, truncated or synced.
pub fn truncate_synced(path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.set_len(len).map_err(|e| Error::io(path, e))?;
    // IMPORTANT: the cut must be durable before new records are appended after it.
    f.sync_all().map_err(|e| Error::io(path, e))
}

/// The directory holding `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// `<path>.tmp`, the scratch name [`write_atomic`] uses.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_tmp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("CURRENT");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!tmp_path(&p).exists());
        remove_file_synced(&p).unwrap();
        assert!(!p.exists());
    }
}
