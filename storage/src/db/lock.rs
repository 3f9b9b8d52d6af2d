//! The directory lock: one process at a time owns a data directory.
//!
//! [`DirLock::acquire`] opens `<dir>/LOCK` and takes an exclusive, non-blocking `flock` on
//! it. The flock is the truth: the kernel drops it when the holder's file is closed,
//! including when the process dies, so a crashed owner never leaves a stale lock behind and
//! nobody ever has to delete the file. The winner then writes its PID into the file, only so
//! that a refused process can name the holder in its error (as PostgreSQL's
//! `postmaster.pid` does); a PID read back is a hint, never a reason to trust or break the
//! lock.
//!
//! A refused `acquire` changes nothing: the directory and `LOCK` already exist (the holder
//! made them), the file is opened without truncation and only read.
//!
//! This is not a lock between threads or components of one process: a flock belongs to
//! the open file description, so a second `acquire` of the same directory in the same
//! process is refused like any other. Whoever acquired it passes it (or keeps it) for the
//! others. Nor does it stop a process that ignores it, or one that deletes `LOCK` while it
//! is held.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The lock file's name inside a locked directory.
pub const LOCK_FILE: &str = "LOCK";

/// Longest `LOCK` content read back for the holder's PID: a PID and a newline.
const PID_READ_LIMIT: u64 = 32;

/// Exclusive ownership of a directory, held until dropped (or the process ends).
#[derive(Debug)]
pub struct DirLock {
    dir: PathBuf,
    /// Kept open: closing it releases the flock.
    _file: File,
}

impl DirLock {
    /// Creates `dir` (and its parents) if missing, then takes the lock on `<dir>/LOCK` and
    /// records this process's PID in it. Does not wait: a held lock is an error at once.
    ///
    /// # Errors
    /// [`Error::DirInUse`] (with the holder's PID when it recorded one) if another open
    /// file — of another process, or an earlier `acquire` in this one — holds the lock;
    /// [`Error::Io`] if the directory or file cannot be created, opened or locked.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        // Creating the directory is what the lock itself needs; when another process holds
        // it, the directory exists and this changes nothing.
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        // SAFETY: flock on a file descriptor we own and keep open; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::WouldBlock {
                return Err(Error::DirInUse {
                    dir: dir.to_path_buf(),
                    pid: read_pid(&file),
                });
            }
            return Err(Error::io(&path, e));
        }
        // Only the owner gets here: now make the directory's creation durable.
        crate::fs::create_dir_synced(&crate::fs::RealFs, dir)?;
        if let Err(e) = write_pid(&file) {
            // The PID is informational; a full disk must not keep the owner from starting.
            tracing::warn!(path = %path.display(), error = %e, "cannot record the PID in the lock file");
        }
        Ok(DirLock {
            dir: dir.to_path_buf(),
            _file: file,
        })
    }

    /// The locked directory, as given to [`DirLock::acquire`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// The holder's PID as it recorded it, if the file holds one (it may not have yet).
fn read_pid(file: &File) -> Option<u32> {
    let mut text = String::new();
    file.take(PID_READ_LIMIT).read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

fn write_pid(file: &File) -> std::io::Result<()> {
    file.set_len(0)?;
    file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_acquire_is_refused_naming_the_holder_and_changes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let held = DirLock::acquire(&dir).unwrap();
        assert_eq!(held.dir(), dir);
        let path = dir.join(LOCK_FILE);
        let before = std::fs::read(&path).unwrap();
        assert_eq!(before, format!("{}\n", std::process::id()).into_bytes());
        let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

        let err = DirLock::acquire(&dir).unwrap_err();
        match &err {
            Error::DirInUse { dir: d, pid } => {
                assert_eq!(d, &dir);
                assert_eq!(*pid, Some(std::process::id()));
            }
            other => panic!("expected DirInUse, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("in use"), "{msg}");
        assert!(msg.contains(&dir.display().to_string()), "{msg}");
        assert!(msg.contains(&std::process::id().to_string()), "{msg}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
        assert_eq!(std::fs::metadata(&path).unwrap().modified().unwrap(), mtime);
    }

    #[test]
    fn dropping_the_lock_lets_the_next_owner_in() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(tmp.path()).unwrap();
        drop(first);
        let _second = DirLock::acquire(tmp.path()).unwrap();
    }

    #[test]
    fn a_holder_that_recorded_no_pid_is_reported_without_one() {
        let tmp = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(tmp.path()).unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), b"not a pid").unwrap();
        match DirLock::acquire(tmp.path()) {
            Err(Error::DirInUse { pid: None, .. }) => {}
            other => panic!("expected DirInUse without a PID, got {other:?}"),
        }
        drop(held);
    }

    #[test]
    fn a_stale_pid_from_a_dead_owner_does_not_hold_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join(LOCK_FILE), b"999999999\n").unwrap();
        let _lock = DirLock::acquire(tmp.path()).unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join(LOCK_FILE)).unwrap(),
            format!("{}\n", std::process::id()).into_bytes()
        );
    }
}
