//! The server's data directory: what lives where under `--data-dir`, and the lock that
//! makes one process its owner.
//!
//! ```text
//! <data-dir>/LOCK       flock'd by the running server for its whole life; holds its PID
//! <data-dir>/regions/   the storage engine's `Db` (catalog, tables, WALs, HFiles, its own LOCK)
//! <data-dir>/resp/      the TTL set service's append-only file and snapshot
//! ```
//!
//! [`lock`] is the first thing the binary does with the directory, in every mode (full,
//! `--only-resp`, `--resp-addr off`): before the AOF is loaded or rewritten, before the
//! snapshot, before the catalog and regions are opened, before any subdirectory is created.
//! A second server on the same directory therefore stops at the lock, having read and
//! changed nothing, instead of loading (and on its way out rewriting) files that the
//! running server still appends to. The lock is held until the process has shut every
//! service down.
//!
//! `regions/LOCK` is separate: the `Db` takes it on its own directory, so tools that open
//! `regions/` directly are refused too. Under the server it is always free, because the
//! server took `<data-dir>/LOCK` first. This module does not start services.

use std::path::Path;

use speedlayer_storage::DirLock;

use crate::error::ServerError;

/// Subdirectory of the region server's `Db`.
pub const REGIONS_DIR: &str = "regions";

/// Subdirectory of the RESP service's AOF and snapshot.
pub const RESP_DIR: &str = "resp";

/// Takes the data directory's lock (creating the directory itself if it is missing, and
/// nothing else), recording this process's PID in `<data-dir>/LOCK`.
///
/// # Errors
/// [`ServerError::DataDirLock`]: another process holds the lock (the error names the
/// directory and, when recorded, the holder's PID), or the lock file cannot be opened.
pub fn lock(data_dir: &Path) -> Result<DirLock, ServerError> {
    DirLock::acquire(data_dir).map_err(ServerError::DataDirLock)
}
