//! Flushing a region: frozen memstores become HFiles recorded in the manifest, then the
//! WAL is trimmed. Also the region's on-disk file state at open (live files, orphans).
//!
//! Order (the crash-safety argument, `docs/api.md`):
//! 1. write each family's file and fsync it (`HFileWriter::finish`), fsync the directory;
//! 2. record the files and the flushed sequence in the manifest (durable when it returns);
//! 3. install the files in the stores' versions, then drop the frozen memstore;
//! 4. `wal.mark_flushed(seq)`: only now may segments holding those edits go.
//!
//! A crash before 2 leaves files the manifest does not list: deleted at the next open,
//! the data comes back from the WAL. A crash after 2 replays only newer WAL entries.
//! Any failure poisons the region (writes refused) rather than guessing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cell::SeqNo;
use crate::error::{Error, Result};
use crate::hfile::{FileInfo, FileOptions, HFileWriter, file_name};
use crate::manifest::FileMeta;
use crate::schema::FamilyOptions;
use crate::store::{FileCache, StoreFile};

use super::{MemGen, MemState, Region};

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
    /// The shared state for a database with these options.
    pub fn new(opts: &crate::options::EngineOptions) -> Shared {
        Shared {
            cache: FileCache::new(opts.block_cache_bytes),
            fs: opts.fs.clone(),
            recovery: opts.recovery,
        }
    }

    /// Block cache (hits, misses, bytes).
    pub fn cache_counters(&self) -> (u64, u64, u64) {
        let s = self.cache.cache.stats();
        (s.hits, s.misses, s.bytes)
    }
}

/// What [`FileState::open`] finds: the state, live files per family, the flushed sequence.
pub(crate) type Opened = (FileState, Vec<Vec<Arc<StoreFile>>>, SeqNo);

/// The region's manifest and file-id allocator.
#[derive(Debug)]
pub(crate) struct FileState {
    next_file_id: AtomicU64,
    cache: FileCache,
    fs: crate::fs::SharedFs,
    pub(crate) log: manifest_log::ManifestLog,
}

/// A file written by a flush, not yet recorded.
struct NewFile {
    store: usize,
    id: u64,
    path: PathBuf,
    meta: FileMeta,
}

impl FileState {
    /// Opens the file state of a region: live files per family (in `fams` order) and the
    /// flushed sequence; deletes files in family directories that the manifest does not
    /// list (half-written flush or compaction output).
    pub(crate) fn open(dir: &Path, fams: &[FamilyOptions], shared: &Shared) -> Result<Opened> {
        let fs = &*shared.fs;
        let (log, live, flushed_seq, next_id) =
            manifest_log::ManifestLog::open(dir, shared.fs.clone(), shared.recovery)?;
        // Compaction hook: close compactions a crash interrupted (their unlisted output
        // is removed with the other orphans below).
        crate::compaction::run::abort_pending(&mut log.manifest().lock())?;
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
            FileState {
                next_file_id: AtomicU64::new(max_id.max(1)),
                cache: shared.cache.clone(),
                fs: shared.fs.clone(),
                log,
            },
            per_family,
            flushed_seq,
        ))
    }
}

impl Region {
    /// The region's manifest; compaction records its edits here (holding the lock across
    /// its `apply`, then calling [`Store::apply`](crate::store::Store::apply)).
    pub fn manifest(&self) -> &parking_lot::Mutex<crate::manifest::Manifest> {
        self.files.log.manifest()
    }

    /// Allocates an id for a new file of this region (never reused).
    pub fn allocate_file_id(&self) -> u64 {
        self.files.next_file_id.fetch_add(1, Ordering::Relaxed)
    }

    /// The block cache shared by every region (readers of new files use it).
    pub fn block_cache(&self) -> &FileCache {
        &self.files.cache
    }

    /// The file system the region's files live on.
    pub fn fs(&self) -> &dyn crate::fs::Fs {
        &*self.files.fs
    }

    /// The file system the region's files live on, shared.
    pub fn fs_shared(&self) -> crate::fs::SharedFs {
        self.files.fs.clone()
    }

    /// Freezes the active memstore (if non-empty) and flushes every frozen one; returns
    /// when they are in files recorded by the manifest.
    ///
    /// # Errors
    /// I/O errors writing files or the manifest (the region is then poisoned).
    pub fn flush(&self) -> Result<()> {
        while !self.try_freeze(true) {
            self.flush_frozen()?;
        }
        self.flush_frozen()
    }

    /// Flushes the frozen memstores, oldest first (the background flusher calls this).
    ///
    /// # Errors
    /// As [`Region::flush`].
    pub fn flush_frozen(&self) -> Result<()> {
        let _g = self.flush_lock.lock();
        loop {
            if self.flush_paused.load(Ordering::Acquire) {
                return Err(Error::TooBusy(format!(
                    "flushes of region {} are paused",
                    self.info.id
                )));
            }
            let Some(mg) = self.mem.load().frozen.first().cloned() else {
                return Ok(());
            };
            if let Some(p) = self.poisoned.lock().as_ref() {
                return Err(Error::Poisoned(p.clone()));
            }
            let sealed = mg.sealed_seq.load(Ordering::Acquire);
            if let Err(e) = self.flush_gen(&mg, sealed) {
                self.counters.flush_failures.fetch_add(1, Ordering::Relaxed);
                // On a full disk the memstore stays frozen (its data is in the WAL) and the
                // flusher retries; the failed output was removed and the manifest untouched.
                if !e.is_no_space() {
                    self.poison(format!("flush failed: {e}"));
                }
                return Err(e);
            }
            {
                let _a = self.alloc.lock();
                let st = self.mem.load();
                let frozen = st
                    .frozen
                    .iter()
                    .filter(|g| !Arc::ptr_eq(g, &mg))
                    .cloned()
                    .collect();
                self.mem.store(Arc::new(MemState {
                    active: Arc::clone(&st.active),
                    frozen,
                }));
            }
            if self.files.log.durable() {
                // IMPORTANT: only after the manifest records the files.
                self.wal.mark_flushed(sealed)?;
            }
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            let (lock, cv) = &self.flushed;
            *lock.lock() += 1;
            cv.notify_all();
        }
    }

    fn flush_gen(&self, mg: &MemGen, sealed: SeqNo) -> Result<()> {
        // Writers that took a sequence before the freeze may still be inserting.
        while mg.writers.load(Ordering::Acquire) > 0 {
            std::thread::yield_now();
        }
        let mut written: Vec<NewFile> = Vec::new();
        for (i, store) in self.stores.iter().enumerate() {
            let mem = &mg.stores[i];
            if mem.is_empty() {
                continue;
            }
            let id = self.files.next_file_id.fetch_add(1, Ordering::Relaxed);
            let path = store.dir.join(file_name(id));
            let o = &store.opts;
            let fs = &*self.files.fs;
            let write = || -> Result<(FileInfo, u64, u64)> {
                let mut w = HFileWriter::create(
                    fs,
                    &path,
                    FileOptions::new(o.compression, o.bloom, o.block_size),
                )?;
                let mut user_bytes = 0u64;
                for item in mem.iter_from(None) {
                    let (k, v) = item?;
                    user_bytes += (k.row.len() + k.qualifier.len() + v.len()) as u64;
                    w.push(k.as_ref(), &v)?;
                }
                let info = w.finish()?;
                crate::fs::sync_dir(fs, &store.dir)?;
                let size = fs.file_len(&path).map_err(|e| Error::io(&path, e))?;
                Ok((info, user_bytes, size))
            };
            let (info, user_bytes, size) = match write() {
                Ok(w) => w,
                Err(e) => {
                    // A failed output must not hold space on a disk that may be full; an
                    // unlisted file would be swept at the next open anyway.
                    remove_failed_output(fs, &path);
                    for f in &written {
                        remove_failed_output(fs, &f.path);
                    }
                    return Err(e);
                }
            };
            // Compaction hook: write amplification counts flushed bytes.
            store.compaction.counters.record_flush(user_bytes, size);
            written.push(NewFile {
                store: i,
                id,
                path,
                meta: FileMeta::from_info(id, size, &info),
            });
        }
        let adds: Vec<(String, FileMeta)> = written
            .iter()
            .map(|f| (self.stores[f.store].opts.name.clone(), f.meta.clone()))
            .collect();
        let nfiles = adds.len();
        if let Err(e) = self.files.log.record_flush(
            adds,
            sealed,
            self.files.next_file_id.load(Ordering::Relaxed),
        ) {
            // Only a full disk proves the edit is not in the manifest (its partial frame was
            // cut back). After any other failure the frame may still reach the disk, so
            // the files stay; if unlisted, the next open sweeps them.
            if e.is_no_space() {
                for f in &written {
                    remove_failed_output(&*self.files.fs, &f.path);
                }
            }
            return Err(e);
        }
        for f in written {
            let sf = StoreFile::open(&*self.files.fs, &f.path, f.id, &self.files.cache)?;
            self.stores[f.store].apply(vec![Arc::new(sf)], &[]);
        }
        tracing::debug!(
            table = %self.info.table,
            region = self.info.id,
            sealed,
            files = nfiles,
            "flushed memstore"
        );
        Ok(())
    }
}

/// Removes the output of a failed flush or compaction, best effort (the orphan sweep at
/// the next open removes whatever this cannot).
pub(crate) fn remove_failed_output(fs: &dyn crate::fs::Fs, path: &Path) {
    match fs.remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "could not remove a failed output file")
        }
    }
}

/// The manifest as the region uses it: one `Manifest` per region directory.
mod manifest_log {
    use std::path::Path;

    use parking_lot::Mutex;

    use crate::cell::SeqNo;
    use crate::error::Result;
    use crate::manifest::{FileMeta, Manifest, VersionEdit};

    /// Live files as (family, id).
    pub(super) type Live = Vec<(String, u64)>;

    #[derive(Debug)]
    pub(crate) struct ManifestLog {
        m: Mutex<Manifest>,
    }

    impl ManifestLog {
        pub(super) fn open(
            dir: &Path,
            fs: crate::fs::SharedFs,
            recovery: crate::log::RecoveryMode,
        ) -> Result<(ManifestLog, Live, SeqNo, u64)> {
            let opts = crate::manifest::ManifestOptions {
                fs,
                recovery,
                ..Default::default()
            };
            let (m, state) = Manifest::open_with(dir, opts)?;
            let live = state
                .files
                .iter()
                .flat_map(|(fam, files)| files.keys().map(move |id| (fam.clone(), *id)))
                .collect();
            Ok((
                ManifestLog { m: Mutex::new(m) },
                live,
                state.flushed_seq,
                state.next_file_id,
            ))
        }

        /// True if recorded flushes survive a restart (so the WAL may be trimmed).
        pub(super) fn durable(&self) -> bool {
            true
        }

        /// Records flushed files and the flushed sequence; durable when it returns.
        pub(super) fn record_flush(
            &self,
            adds: Vec<(String, FileMeta)>,
            flushed_seq: SeqNo,
            next_file_id: u64,
        ) -> Result<()> {
            self.m.lock().apply(&VersionEdit {
                add_files: adds,
                flushed_seq: Some(flushed_seq),
                next_file_id: Some(next_file_id),
                ..VersionEdit::default()
            })
        }

        /// The manifest, for compaction (which records its own edits).
        pub(crate) fn manifest(&self) -> &Mutex<Manifest> {
            &self.m
        }
    }
}
