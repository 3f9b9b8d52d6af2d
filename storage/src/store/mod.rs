//! A store: the part of a region holding one column family — its options and its live
//! file set.
//!
//! The live file set is an immutable [`Version`] swapped atomically (`ArcSwap`): a reader
//! holds the version it started with, and flush and compaction install new versions
//! without blocking it. The store's memstores belong to the region (frozen together so
//! one flushed sequence number covers the whole region); this module does not write.

pub mod counters;
pub mod file;
pub mod lifecycle;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::schema::FamilyOptions;
pub use counters::{CompactionCounters, CompactionStats, write_amplification};
pub use file::{FileCache, StoreFile};
pub use lifecycle::{Claim, FailPoint, FileLifecycle};

/// The live files of a store, newest first (by the highest sequence they hold).
#[derive(Debug, Default)]
pub struct Version {
    pub files: Vec<Arc<StoreFile>>,
}

impl Version {
    /// A version holding `files` (sorted newest first here).
    pub fn new(mut files: Vec<Arc<StoreFile>>) -> Version {
        files.sort_by(|a, b| b.meta.max_seq.cmp(&a.meta.max_seq).then(b.id.cmp(&a.id)));
        Version { files }
    }

    /// Total bytes of the files.
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.meta.size).sum()
    }
}

/// One family of one region.
#[derive(Debug)]
pub struct Store {
    /// Family name as bytes (what cells carry).
    pub name: Bytes,
    /// Family options from the schema.
    pub opts: Arc<FamilyOptions>,
    /// Directory of the family's files: `<region>/<family>/`.
    pub dir: PathBuf,
    /// The live file set; replaced whole, never mutated.
    pub version: ArcSwap<Version>,
    /// Files skipped by a get thanks to bloom or key/time range.
    pub bloom_skipped: AtomicU64,
    /// Serialises version changes (flush adds, compaction replaces).
    edit: Mutex<()>,
    /// Claimed files, files awaiting their last reader, counters.
    pub lifecycle: FileLifecycle,
}

impl Store {
    /// A store over `files`.
    pub fn new(opts: FamilyOptions, dir: PathBuf, files: Vec<Arc<StoreFile>>) -> Store {
        Store {
            name: Bytes::copy_from_slice(opts.name.as_bytes()),
            opts: Arc::new(opts),
            dir,
            version: ArcSwap::from_pointee(Version::new(files)),
            bloom_skipped: AtomicU64::new(0),
            edit: Mutex::new(()),
            lifecycle: FileLifecycle::default(),
        }
    }

    /// The current version.
    pub fn current(&self) -> Arc<Version> {
        self.version.load_full()
    }

    /// Installs a version with `add` added and the files with ids in `remove` removed.
    /// Flush and compaction call this after their manifest edit is durable.
    pub fn apply(&self, add: Vec<Arc<StoreFile>>, remove: &[u64]) {
        let _g = self.edit.lock();
        let cur = self.version.load();
        let mut files: Vec<Arc<StoreFile>> = cur
            .files
            .iter()
            .filter(|f| !remove.contains(&f.id))
            .cloned()
            .collect();
        files.extend(add);
        self.version.store(Arc::new(Version::new(files)));
    }
}
