//! A region's `FENCE` file in cluster mode (`server/docs/cluster_design.md` §5b): the epoch
//! of the one owner allowed to change the region's files. Written by each new owner before
//! it lists the WAL; read by the owner after every acknowledged write and before every
//! manifest change, so a deposed owner neither acknowledges a write nor changes the files
//! the new owner reads.
//!
//! Format: the epoch in decimal and a newline (`7\n`), replaced atomically (temp file,
//! fsync, rename, directory fsync). A missing or unreadable file is epoch 0, which matches
//! no owner.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::fs::Fs;

/// The file's name in a region directory.
pub const FENCE_FILE: &str = "FENCE";

/// One owner's view of a region's fence: where it is and the epoch this owner holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceFile {
    /// `<region dir>/FENCE`.
    pub path: PathBuf,
    /// The epoch this owner opened the region for.
    pub epoch: u64,
    /// The region's table (for the error).
    pub table: String,
    /// The region's id (for the error).
    pub region: u64,
}

impl FenceFile {
    /// Writes this owner's epoch: from now on, older owners are refused.
    ///
    /// # Errors
    /// I/O errors.
    pub fn claim(&self, fs: &dyn Fs) -> Result<()> {
        crate::fs::write_atomic(fs, &self.path, format!("{}\n", self.epoch).as_bytes())
    }

    /// The epoch the file holds now (0: missing or unreadable).
    pub fn read(&self, fs: &dyn Fs) -> u64 {
        fs.read(&self.path)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    /// `Ok` while the file still holds this owner's epoch.
    ///
    /// # Errors
    /// [`Error::Fenced`] naming the epoch found.
    pub fn check(&self, fs: &dyn Fs) -> Result<()> {
        let found = self.read(fs);
        if found == self.epoch && found != 0 {
            return Ok(());
        }
        tracing::error!(table = %self.table, region = self.region, epoch = self.epoch, found, "region fenced: another server owns it");
        Err(Error::Fenced {
            table: self.table.clone(),
            region: self.region,
            epoch: self.epoch,
            found,
        })
    }
}
