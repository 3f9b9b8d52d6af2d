//! The life of a store's files after they are written: which files a running compaction
//! has claimed (so no two compactions take the same input), the files replaced by a
//! compaction that wait for their last reader before they are deleted (the graveyard),
//! the lock that serialises whole-store rewrites, and the store's I/O counters.
//!
//! Compaction (`compaction::run`) drives these; flush counts its bytes here. In test
//! builds (`cfg(test)` or the `test-hooks` feature) a fail point can stop the next
//! compaction of the store at a chosen step of its protocol.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};

use super::Version;
use super::counters::CompactionCounters;
use super::file::StoreFile;
use crate::error::Result;

/// A step of the compaction protocol at which a test can make the compaction fail, as if
/// the process died right there. Steps in order:
/// 1. `compaction_begin {id, inputs}` is durable in the manifest → [`FailPoint::AfterBegin`];
/// 2. the output file is written and fsynced → [`FailPoint::AfterOutputWritten`];
/// 3. one manifest edit adds the output, removes the inputs and ends the compaction →
///    [`FailPoint::AfterCommit`];
/// 4. the new version is installed; inputs wait for their last reader →
///    [`FailPoint::BeforeDeleteInputs`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailPoint {
    /// After the begin edit, before any output byte.
    AfterBegin,
    /// After the output file is complete, before the commit edit.
    AfterOutputWritten,
    /// After the commit edit, before the new version is installed.
    AfterCommit,
    /// After the new version is installed, before the inputs are deleted.
    BeforeDeleteInputs,
}

impl FailPoint {
    /// Every step, in protocol order.
    pub const ALL: [FailPoint; 4] = [
        FailPoint::AfterBegin,
        FailPoint::AfterOutputWritten,
        FailPoint::AfterCommit,
        FailPoint::BeforeDeleteInputs,
    ];
}

/// Files claimed, files awaiting deletion, and counters of one store.
#[derive(Debug, Default)]
pub struct FileLifecycle {
    busy: Mutex<BTreeSet<u64>>,
    /// Counters for `Db::stats`.
    pub counters: CompactionCounters,
    graveyard: Mutex<Vec<(Weak<StoreFile>, PathBuf, crate::fs::SharedFs)>>,
    /// Serialises major compactions of this store (on demand vs. periodic).
    major: Mutex<()>,
    #[cfg(any(test, feature = "test-hooks"))]
    fail_point: Mutex<Option<FailPoint>>,
}

/// Files claimed by one compaction; the claim ends when this is dropped, however the
/// compaction ends.
#[derive(Debug)]
pub struct Claim<'a> {
    busy: &'a Mutex<BTreeSet<u64>>,
    ids: Vec<u64>,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        let mut busy = self.busy.lock();
        for id in &self.ids {
            busy.remove(id);
        }
    }
}

impl FileLifecycle {
    /// Ids of the files claimed by running compactions.
    pub fn busy(&self) -> BTreeSet<u64> {
        self.busy.lock().clone()
    }

    /// Claims `ids` if every one is in the live version and none is claimed already;
    /// `None` otherwise. A concurrent compaction may have taken one, or even finished and
    /// removed it (its claim is then gone too), so the version is loaded (`live`) under the
    /// same lock as the claims are checked: loaded before it, a stale version would still
    /// list a file that is gone. Once claimed, only the claimant removes them.
    pub fn claim(&self, ids: &[u64], live: impl FnOnce() -> Arc<Version>) -> Option<Claim<'_>> {
        let mut busy = self.busy.lock();
        let live = live();
        if ids
            .iter()
            .any(|id| busy.contains(id) || !live.files.iter().any(|f| f.id == *id))
        {
            return None;
        }
        busy.extend(ids.iter().copied());
        Some(Claim {
            busy: &self.busy,
            ids: ids.to_vec(),
        })
    }

    /// Holds off other major compactions of this store while the guard lives.
    pub fn lock_major(&self) -> MutexGuard<'_, ()> {
        self.major.lock()
    }

    /// Replaced files go to the graveyard; [`FileLifecycle::reap`] deletes each once no
    /// version holds it.
    pub fn bury(&self, files: &[Arc<StoreFile>], fs: &crate::fs::SharedFs) {
        let mut g = self.graveyard.lock();
        for f in files {
            g.push((Arc::downgrade(f), f.path.clone(), fs.clone()));
        }
    }

    /// Files replaced by compactions whose last reader has not let go yet.
    pub fn graveyard_len(&self) -> usize {
        self.graveyard.lock().len()
    }

    /// Deletes replaced files that no version references any more; returns how many.
    pub fn reap(&self) -> usize {
        let mut g = self.graveyard.lock();
        let mut deleted = 0;
        g.retain(|(weak, path, fs)| {
            if weak.strong_count() > 0 {
                return true;
            }
            match fs.remove_file(path) {
                Ok(()) => deleted += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                // Left for the next open's orphan sweep; nothing reads it any more.
                Err(e) => tracing::warn!(file = %path.display(), error = %e, "cannot delete compacted file"),
            }
            false
        });
        deleted
    }

    /// Makes the next compaction of this store stop at `point` with
    /// [`Error::Injected`](crate::Error::Injected), leaving disk and manifest as a crash
    /// there would.
    #[cfg(any(test, feature = "test-hooks"))]
    pub fn set_fail_point(&self, point: Option<FailPoint>) {
        *self.fail_point.lock() = point;
    }

    /// Fails if the fail point is set to `here` (and clears it). Always `Ok` in builds
    /// without test hooks.
    ///
    /// # Errors
    /// `Injected` at the chosen step.
    pub fn check(&self, here: FailPoint) -> Result<()> {
        #[cfg(any(test, feature = "test-hooks"))]
        {
            let mut fp = self.fail_point.lock();
            if *fp == Some(here) {
                *fp = None;
                return Err(crate::error::Error::Injected(format!(
                    "compaction fail point {here:?}"
                )));
            }
        }
        let _ = here;
        Ok(())
    }
}
