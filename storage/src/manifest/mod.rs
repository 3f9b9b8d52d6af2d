//! The manifest: the authoritative, durable list of live HFiles per store of one region
//! directory, with the flushed sequence number, next file id and pending compactions.
//! Format: `storage/docs/manifest_format.md`.
//!
//! It records decisions made elsewhere (flushes, compactions); it neither opens HFiles nor
//! chooses what to compact. [`list_orphans`] finds store files it does not list.

mod edit;
mod log;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub use edit::{EDIT_VERSION, FileMeta, ManifestState, VersionEdit};
pub use log::{
    CURRENT, MANIFEST_HEADER_BYTES, MANIFEST_MAGIC, MANIFEST_VERSION, MAX_EDIT_BYTES, Manifest,
    ManifestOptions, manifest_name,
};

use crate::error::{Error, Result};
use crate::fs::Fs;

/// Files in the store directory `store_dir` that are HFiles (`<id:020>.hfile`) not in
/// `live`, or scratch files (`*.tmp`): output of a flush or compaction that crashed before
/// the manifest recorded it. A missing directory has no orphans.
///
/// # Errors
/// [`Error::Io`] if the directory cannot be listed.
pub fn list_orphans(fs: &dyn Fs, store_dir: &Path, live: &BTreeSet<u64>) -> Result<Vec<PathBuf>> {
    let rd = match fs.read_dir(store_dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(store_dir, e)),
    };
    let mut out = Vec::new();
    for path in rd {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let orphan = match crate::hfile::parse_file_name(name) {
            Some(id) => !live.contains(&id),
            None => name.ends_with(".tmp"),
        };
        if orphan {
            out.push(path.clone());
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes [`list_orphans`] and fsyncs the directory; returns what was deleted.
///
/// # Errors
/// [`Error::Io`].
pub fn remove_orphans(fs: &dyn Fs, store_dir: &Path, live: &BTreeSet<u64>) -> Result<Vec<PathBuf>> {
    let orphans = list_orphans(fs, store_dir, live)?;
    for p in &orphans {
        tracing::info!(file = %p.display(), "removing file the manifest does not list");
        fs.remove_file(p).map_err(|e| Error::io(p, e))?;
    }
    if !orphans.is_empty() {
        crate::fs::sync_dir(fs, store_dir)?;
    }
    Ok(orphans)
}
