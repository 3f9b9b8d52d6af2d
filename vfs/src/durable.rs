//! Durable-file helpers on top of [`Fs`], written once for every crate: a directory fsync,
//! create-and-sync a directory, atomic replace, remove-and-sync, truncate-and-sync.
//!
//! A file's data is durable after `fsync` of the file; its *name* is durable only after
//! `fsync` of the directory holding it. Every create, rename and delete that recovery
//! depends on goes through these helpers. This module does not decide what to write.

use std::path::{Path, PathBuf};

use crate::{Error, Fs, OpenMode, Result};

/// fsyncs the directory `dir` so that creates, renames and deletes in it are durable.
///
/// # Errors
/// [`Error`] naming the directory.
pub fn sync_dir(fs: &dyn Fs, dir: &Path) -> Result<()> {
    // IMPORTANT: without this a crash can forget a freshly created or renamed file.
    fs.sync_dir(dir)
        .map_err(|e| Error::new("fsync dir", dir, e))
}

/// Creates `dir` (and parents) and fsyncs it and every parent up to the first one that
/// already existed, so the whole new chain survives a power cut.
///
/// # Errors
/// [`Error`] naming the directory.
pub fn create_dir_synced(fs: &dyn Fs, dir: &Path) -> Result<()> {
    // The highest ancestor that does not exist yet: everything from its parent down must
    // be synced for the new chain to be durable.
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(p) = at.filter(|p| !p.as_os_str().is_empty()) {
        if fs.is_dir(p).map_err(|e| Error::new("stat", p, e))? {
            break;
        }
        missing.push(p.to_path_buf());
        at = p.parent();
    }
    fs.create_dir_all(dir)
        .map_err(|e| Error::new("create dir", dir, e))?;
    sync_dir(fs, dir)?;
    for m in &missing {
        sync_dir(fs, parent_dir(m))?;
    }
    if missing.is_empty()
        && let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty())
    {
        // The directory existed: its entry may still be unsynced from an earlier run that
        // crashed between creating and syncing it.
        sync_dir(fs, parent)?;
    }
    Ok(())
}

/// Replaces `path` with `contents` atomically: write `<path>.tmp`, fsync it, rename over
/// `path`, fsync the directory. After a crash `path` holds either the old or the new
/// contents, never a mix.
///
/// # Errors
/// [`Error`] naming the file that failed.
pub fn write_atomic(fs: &dyn Fs, path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = tmp_path(path);
    {
        let f = fs
            .open(&tmp, OpenMode::CreateTruncate)
            .map_err(|e| Error::new("create", &tmp, e))?;
        f.append(contents)
            .map_err(|e| Error::new("write", &tmp, e))?;
        // IMPORTANT: the data must be on disk before the rename makes it visible.
        f.sync_all().map_err(|e| Error::new("fsync", &tmp, e))?;
    }
    fs.rename(&tmp, path)
        .map_err(|e| Error::new("rename", path, e))?;
    sync_dir(fs, parent_dir(path))
}

/// Deletes `path` and fsyncs its directory.
///
/// # Errors
/// [`Error`] naming the file or directory.
pub fn remove_file_synced(fs: &dyn Fs, path: &Path) -> Result<()> {
    fs.remove_file(path)
        .map_err(|e| Error::new("remove", path, e))?;
    sync_dir(fs, parent_dir(path))
}

/// Cuts `path` to `len` bytes and fsyncs it: how a recovered log drops a torn tail, so
/// that appends after recovery never follow the garbage.
///
/// # Errors
/// [`Error`] naming the file if it cannot be opened, truncated or synced.
pub fn truncate_synced(fs: &dyn Fs, path: &Path, len: u64) -> Result<()> {
    let f = fs
        .open(path, OpenMode::Append)
        .map_err(|e| Error::new("open", path, e))?;
    f.set_len(len)
        .map_err(|e| Error::new("truncate", path, e))?;
    // IMPORTANT: the cut must be durable before new records are appended after it.
    f.sync_all().map_err(|e| Error::new("fsync", path, e))
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
    use crate::RealFs;

    #[test]
    fn write_atomic_replaces_and_leaves_no_tmp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("CURRENT");
        write_atomic(&RealFs, &p, b"one").unwrap();
        write_atomic(&RealFs, &p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert!(!tmp_path(&p).exists());
        remove_file_synced(&RealFs, &p).unwrap();
        assert!(!p.exists());
    }

    #[test]
    fn create_dir_synced_makes_the_whole_chain() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/c");
        create_dir_synced(&RealFs, &p).unwrap();
        assert!(p.is_dir());
        create_dir_synced(&RealFs, &p).unwrap();
    }

    #[test]
    fn truncate_synced_cuts_and_appends_follow() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("log");
        write_atomic(&RealFs, &p, b"hello world").unwrap();
        truncate_synced(&RealFs, &p, 5).unwrap();
        let f = RealFs.open(&p, OpenMode::Append).unwrap();
        f.append(b"!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"hello!");
    }
}
