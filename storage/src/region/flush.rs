//! Flushing a region: frozen memstores become HFiles recorded in the manifest, then the
//! WAL is trimmed. Also the region's on-disk file state at open.
//!
//! Stub until `hfile` and `manifest` land: there are no files and flush keeps data in
//! memory (the WAL still holds it, so reopen replays it).

use std::path::Path;
use std::sync::Arc;

use crate::cell::SeqNo;
use crate::error::Result;
use crate::schema::FamilyOptions;
use crate::store::StoreFile;

use super::Region;

/// What every region of a Db shares for its files (the block cache).
#[derive(Debug, Default)]
pub struct Shared {}

impl Shared {
    /// The shared state for a database with these options.
    pub fn new(_opts: &crate::options::EngineOptions) -> Shared {
        Shared {}
    }

    /// Block cache (hits, misses, bytes).
    pub fn cache_counters(&self) -> (u64, u64, u64) {
        (0, 0, 0)
    }
}

/// What [`FileState::open`] finds: live files per family and the flushed sequence.
pub(crate) type Opened = (FileState, Vec<Vec<Arc<StoreFile>>>, SeqNo);

/// The region's manifest and file-id allocator.
#[derive(Debug)]
pub(crate) struct FileState {}

impl FileState {
    /// Opens the file state of a region: live files per family (in `fams` order) and the
    /// flushed sequence.
    pub(crate) fn open(_dir: &Path, fams: &[FamilyOptions], _shared: &Shared) -> Result<Opened> {
        Ok((FileState {}, fams.iter().map(|_| Vec::new()).collect(), 0))
    }
}

impl Region {
    /// Freezes the active memstore (if non-empty) and flushes every frozen one; returns
    /// when they are in files recorded by the manifest.
    ///
    /// # Errors
    /// I/O errors writing files or the manifest (the region is then poisoned).
    pub fn flush(&self) -> Result<()> {
        let _g = self.flush_lock.lock();
        Ok(())
    }

    /// Flushes the frozen memstores, oldest first (the background flusher calls this).
    ///
    /// # Errors
    /// As [`Region::flush`].
    pub fn flush_frozen(&self) -> Result<()> {
        let _ = &self.files;
        Ok(())
    }
}
