//! Flushing a region: frozen memstores become HFiles recorded in the manifest, then the
//! WAL is trimmed. The files themselves (manifest, ids, cache) are `crate::files`.
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

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cell::SeqNo;
use crate::error::{Error, Result};
use crate::files::{RegionFiles, remove_failed_output};
use crate::hfile::{FileInfo, FileOptions, HFileWriter, file_name};
use crate::manifest::FileMeta;
use crate::store::{FileCache, StoreFile};

use super::{MemGen, MemState, Region};

/// Returns the allocator's free pages to the OS after a memstore is dropped.
///
/// A memstore is tens of MiB of small allocations made by whichever threads wrote it;
/// glibc keeps one arena per writing thread and does not give freed chunks back by itself,
/// and a later writer on another thread grows its own arena instead of reusing them. In
/// db_bench's `readwhilewriting` (a new writer thread after single-threaded fills) peak RSS
/// was 225 MiB with this growth, 202 MiB with this trim, and 123 MiB with one arena
/// (`MALLOC_ARENA_MAX=1`): the trim returns what is free, it cannot stop the new arena
/// from growing (a memstore arena of its own would). `malloc_trim` walks every arena and
/// releases whole free pages; once per flush (every `memstore_flush_bytes` written) its
/// cost is negligible. A no-op off glibc.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free; it takes no
    // pointer and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A file written by a flush, not yet recorded.
struct NewFile {
    store: usize,
    id: u64,
    path: PathBuf,
    meta: FileMeta,
}

impl Region {
    /// The region's manifest; compaction records its edits here (holding the lock across
    /// its `apply`, then calling [`Store::apply`](crate::store::Store::apply)).
    pub fn manifest(&self) -> &parking_lot::Mutex<crate::manifest::Manifest> {
        self.files.manifest()
    }

    /// Allocates an id for a new file of this region (never reused).
    pub fn allocate_file_id(&self) -> u64 {
        self.files.allocate_file_id()
    }

    /// The block cache shared by every region (readers of new files use it).
    pub fn block_cache(&self) -> &FileCache {
        self.files.block_cache()
    }

    /// The file system the region's files live on.
    pub fn fs(&self) -> &dyn crate::fs::Fs {
        self.files.fs()
    }

    /// The file system the region's files live on, shared.
    pub fn fs_shared(&self) -> crate::fs::SharedFs {
        self.files.fs_shared()
    }

    /// The region's files: what compaction works on.
    pub fn files(&self) -> &RegionFiles {
        &self.files
    }
}

impl Region {
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
            // The flushed memstore is freed here unless a reader still holds it (then that
            // reader frees it, and the next flush returns its pages).
            drop(mg);
            release_freed_memory();
            // IMPORTANT: only after the manifest records the files.
            self.wal.mark_flushed(sealed)?;
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            let (lock, cv) = &self.flushed;
            *lock.lock() += 1;
            cv.notify_all();
        }
    }

    /// Deletes files that compactions replaced and whose last reader has let go since.
    /// A compaction reaps only when it starts and ends, so a reader that still held the
    /// inputs at the end left them on disk until the store's next compaction (in an
    /// overwrite run that measured 94 MB of dead files beside 164 MB of live ones, there
    /// when the process exited); each flush and close now also reap.
    pub(super) fn reap_replaced_files(&self) {
        for store in &self.stores {
            store.lifecycle.reap();
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
            let id = self.files.allocate_file_id();
            let path = store.dir.join(file_name(id));
            let o = &store.opts;
            let fs = self.files.fs();
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
            store.lifecycle.counters.record_flush(user_bytes, size);
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
        if let Err(e) = self.files.record_flush(adds, sealed) {
            // Only a full disk proves the edit is not in the manifest (its partial frame was
            // cut back). After any other failure the frame may still reach the disk, so
            // the files stay; if unlisted, the next open sweeps them.
            if e.is_no_space() {
                for f in &written {
                    remove_failed_output(self.files.fs(), &f.path);
                }
            }
            return Err(e);
        }
        for f in written {
            let sf = StoreFile::open(self.files.fs(), &f.path, f.id, self.files.block_cache())?;
            self.stores[f.store].apply(vec![Arc::new(sf)], &[]);
        }
        self.reap_replaced_files();
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
