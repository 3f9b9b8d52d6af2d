//! The crate's one error: an I/O failure with the operation and the path it concerned.

use std::io;
use std::path::PathBuf;

/// Results of the [`crate::durable`] helpers.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An I/O error of a durable operation, naming what was being done and to which path.
#[derive(Debug)]
pub struct Error {
    /// What was being done: "open", "append", "fsync", "rename", ...
    pub op: &'static str,
    /// The file or directory.
    pub path: PathBuf,
    /// The operating system's error.
    pub source: io::Error,
}

impl Error {
    /// An error of `op` on `path`.
    pub fn new(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether the device is out of space (`ENOSPC`, or `EDQUOT` for a quota).
    pub fn is_no_space(&self) -> bool {
        is_no_space(&self.source)
    }
}

/// Whether `e` means the device (or the user's quota) is full.
pub fn is_no_space(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || e.kind() == io::ErrorKind::StorageFull
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.op, self.path.display(), self.source)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}
