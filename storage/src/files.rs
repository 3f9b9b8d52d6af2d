//! A region's files on disk, as flush and compaction share them: the manifest, file-id
//! allocation, the block cache readers of new files use, the file system, and the sweep
//! of unlisted files at open.
//!
//! This is what a compaction needs of a region, and no more: `compaction::run` takes a
//! [`RegionFiles`] and a read point, so the crash-safe protocol runs (and is tested) with
//! no `Region` and no `Db`. The region owns one and flushes through it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::cell::SeqNo;
use crate::error::Result;
use crate::hfile::file_name;
use crate::manifest::{FileMeta, Manifest, ManifestOptions, VersionEdit};
use crate::schema::FamilyOptions;
use crate::store::{FileCache, StoreFile};

/// What every region of a Db shares for its files (the block cache).
#[derive(Debug)]
pub struct Shared {
    pub cache: FileCache,
    /// The file system of every region's files.
    pub fs: crate::fs::SharedFs,
    /// Recovery mode of every region's manifest.
    pub recovery: crate::log::RecoveryMode,
}

impl Shared {
    /// The shared state: a block cache of `block_cache_bytes`, the file system, and the
    /// manifests' recovery mode.
    pub fn new(
        block_cache_bytes: usize,
        fs: crate::fs::SharedFs,
        recovery: crate::log::RecoveryMode,
    ) -> Shared {
        Shared {
            cache: FileCache::new(block_cache_bytes),
            fs,
            recovery,
        }
    }

    /// Block cache (hits, misses, bytes).
    pub fn cache_counters(&self) -> (u64, u64, u64) {
        let s = self.cache.cache.stats();
        (s.hits, s.misses, s.bytes)
    }
}

/// What [`RegionFiles::open`] finds: the files, live files per family, the flushed sequence.
pub type Opened = (RegionFiles, Vec<Vec<Arc<StoreFile>>>, SeqNo);

/// One region's manifest, file-id allocator, block cache and file system.
#[derive(Debug)]
pub struct RegionFiles {
    /// The region's id (in logs and as a seed for compaction's tie-breaks).
    pub region_id: u64,
    /// The region's table (in logs).
    pub table: String,
    next_file_id: AtomicU64,
    cache: FileCache,
    fs: crate::fs::SharedFs,
    manifest: Mutex<Manifest>,
}

impl RegionFiles {
    /// Opens the files of region `region_id` of `table` in `dir`: live files per family
    /// (in `fams` order) and the flushed sequence; deletes files in family directories that
    /// the manifest does not list (half-written flush or compaction output). Compactions
    /// the manifest shows as begun are left for the caller to close
    /// (`compaction::run::abort_pending`); their outputs are unlisted, so swept here.
    pub fn open(
        dir: &Path,
        fams: &[FamilyOptions],
        shared: &Shared,
        region_id: u64,
        table: &str,
        fence: Option<Arc<crate::fence::FenceFile>>,
    ) -> Result<Opened> {
        let fs = &*shared.fs;
        let opts = ManifestOptions {
            fs: shared.fs.clone(),
            recovery: shared.recovery,
            fence,
            ..Default::default()
        };
        let (manifest, state) = Manifest::open_with(dir, opts)?;
        let live: Vec<(String, u64)> = state
            .files
            .iter()
            .flat_map(|(fam, files)| files.keys().map(move |id| (fam.clone(), *id)))
            .collect();
        let (flushed_seq, next_id) = (state.flushed_seq, state.next_file_id);
        let mut per_family = Vec::with_capacity(fams.len());
        let mut max_id = next_id;
        for f in fams {
            let fdir = dir.join(&f.name);
            crate::fs::create_dir_synced(fs, &fdir)?;
            let ids: Vec<u64> = live
                .iter()
                .filter(|(fam, _)| *fam == f.name)
                .map(|(_, id)| *id)
                .collect();
            let removed =
                crate::manifest::remove_orphans(fs, &fdir, &ids.iter().copied().collect())?;
            for p in removed {
                tracing::warn!(file = %p.display(), "removed file not listed in the manifest");
            }
            let mut files = Vec::with_capacity(ids.len());
            for id in ids {
                max_id = max_id.max(id + 1);
                files.push(Arc::new(StoreFile::open(
                    fs,
                    &fdir.join(file_name(id)),
                    id,
                    &shared.cache,
                )?));
            }
            per_family.push(files);
        }
        Ok((
            RegionFiles {
                region_id,
                table: table.to_string(),
                next_file_id: AtomicU64::new(max_id.max(1)),
                cache: shared.cache.clone(),
                fs: shared.fs.clone(),
                manifest: Mutex::new(manifest),
            },
            per_family,
            flushed_seq,
        ))
    }

    /// The manifest; compaction records its edits here (holding the lock across its
    /// `apply`, then calling [`Store::apply`](crate::store::Store::apply)).
    pub fn manifest(&self) -> &Mutex<Manifest> {
        &self.manifest
    }

    /// Cluster mode: the next file id is at least `floor`, so a new owner's files never
    /// take the names of files a deposed owner may still write.
    pub fn raise_file_id_floor(&self, floor: u64) {
        self.next_file_id.fetch_max(floor, Ordering::Relaxed);
    }

    /// Allocates an id for a new file of this region (never reused).
    pub fn allocate_file_id(&self) -> u64 {
        self.next_file_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The block cache shared by every region (readers of new files use it).
    pub fn block_cache(&self) -> &FileCache {
        &self.cache
    }

    /// The file system the region's files live on.
    pub fn fs(&self) -> &dyn crate::fs::Fs {
        &*self.fs
    }

    /// The file system the region's files live on, shared.
    pub fn fs_shared(&self) -> crate::fs::SharedFs {
        self.fs.clone()
    }

    /// Records flushed files and the flushed sequence in one manifest edit; durable when
    /// it returns.
    ///
    /// # Errors
    /// Manifest write errors (on a full disk the edit is cut back and not recorded).
    pub fn record_flush(&self, adds: Vec<(String, FileMeta)>, flushed_seq: SeqNo) -> Result<()> {
        self.manifest.lock().apply(&VersionEdit {
            add_files: adds,
            flushed_seq: Some(flushed_seq),
            next_file_id: Some(self.next_file_id.load(Ordering::Relaxed)),
            ..VersionEdit::default()
        })
    }
}

/// Removes the output of a failed flush or compaction, best effort (the orphan sweep at
/// the next open removes whatever this cannot).
pub fn remove_failed_output(fs: &dyn crate::fs::Fs, path: &Path) {
    match fs.remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a failed output file")
        }
    }
}
