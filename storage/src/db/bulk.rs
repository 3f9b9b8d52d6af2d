//! Adopting staged bulk loads, and finishing the ones a crash interrupted
//! (`storage/docs/bulk_load.md` §3).
//!
//! `Db::stage_bulk_load` hands out a [`BulkStage`] routed by the table's boundaries;
//! `Db::commit_bulk_load` checks it against the current ones under the catalog lock (so no
//! split runs meanwhile), writes the commit record, renames the parts into their regions
//! and records them in one manifest edit per region. [`recover`] runs in `Db::open` before
//! any region opens. This module does not write HFiles (the stage does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Db;
use super::catalog::Catalog;
use crate::bulk::commit::{CommitPart, CommitRecord};
use crate::bulk::{BulkStage, COMMIT_FILE, STAGING_DIR, load_dir, part_file_name};
use crate::cache::BlockCache;
use crate::error::{Error, Result};
use crate::fs::Fs;
use crate::hfile::{HFileReader, file_name};
use crate::manifest::{FileMeta, Manifest, ManifestOptions, VersionEdit};
use crate::store::StoreFile;

/// What a committed load adopted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BulkLoaded {
    /// Parts (region × family files) adopted.
    pub parts: u64,
    /// Regions that received parts.
    pub regions: u64,
    /// Cells adopted.
    pub cells: u64,
    /// Bytes of HFiles adopted.
    pub bytes: u64,
}

impl Db {
    /// Starts staging a bulk load of `table`, routed by its current region boundaries.
    ///
    /// # Errors
    /// `InvalidArgument` in cluster mode; `UnknownTable`; I/O errors creating the staging
    /// directory.
    pub fn stage_bulk_load(&self, table: &str) -> Result<BulkStage> {
        self.refuse_in_cluster_mode("bulk load")?;
        let t = self.table(table)?;
        let id = self.inner.next_bulk_load.fetch_add(1, Ordering::Relaxed);
        BulkStage::create(
            self.inner.opts.fs.clone(),
            load_dir(&self.inner.dir, id),
            Arc::clone(&t.schema),
            t.regions.iter().map(|r| r.info.clone()).collect(),
            self.inner.opts.limits.clone(),
        )
    }

    /// Adopts every part of `stage` atomically: after a crash at any point, either all of
    /// its cells are visible or none are. Loaded cells carry sequence 0, so for the same
    /// row, column and timestamp a cell already stored or written later wins
    /// (`bulk_load.md` §4). Writes go on meanwhile; splits wait for the commit.
    ///
    /// # Errors
    /// [`Error::BoundariesChanged`] (nothing adopted) if a part no longer fits its region;
    /// `InvalidArgument` in cluster mode or for a stage that failed; I/O errors. An error
    /// after the commit record is durable leaves the load for recovery at the next open.
    pub fn commit_bulk_load(&self, mut stage: BulkStage) -> Result<BulkLoaded> {
        self.refuse_in_cluster_mode("bulk load")?;
        stage.finish()?;
        let fs = &*self.inner.opts.fs;
        // IMPORTANT: the catalog lock keeps splits (and drops) out until the parts are in.
        let _cat = self.inner.catalog.lock();
        let t = self.table(stage.table())?;
        let boundaries_changed = |reason: String| Error::BoundariesChanged {
            table: stage.table().to_string(),
            reason,
        };
        let mut plan = Vec::with_capacity(stage.parts().len());
        for p in stage.parts() {
            let region = t
                .regions
                .iter()
                .find(|r| r.info.id == p.region.id && !r.is_closed())
                .ok_or_else(|| {
                    boundaries_changed(format!("region {} is gone (split?)", p.region.id))
                })?;
            let (first, last) = (&p.info.first_key.row, &p.info.last_key.row);
            if !region.info.contains(first) || !region.info.contains(last) {
                return Err(boundaries_changed(format!(
                    "part {} spans rows {:?}..={:?} outside region {}",
                    p.index,
                    String::from_utf8_lossy(first),
                    String::from_utf8_lossy(last),
                    region.info.id
                )));
            }
            plan.push((Arc::clone(region), p.clone(), region.allocate_file_id()));
        }
        let record = CommitRecord {
            table: stage.table().to_string(),
            parts: plan
                .iter()
                .map(|(r, p, id)| CommitPart {
                    index: p.index,
                    family: p.family.clone(),
                    region: r.info.id,
                    file_id: *id,
                })
                .collect(),
        };
        let commit = stage.dir().join(COMMIT_FILE);
        stage.keep();
        // IMPORTANT: the commit point; from here the load is finished, online or by recovery.
        if let Err(e) = crate::fs::write_atomic(fs, &commit, &record.encode()) {
            if !fs.exists(&commit).unwrap_or(true) {
                remove_load_dir(fs, stage.dir());
            }
            return Err(e);
        }
        let mut family_dirs = BTreeSet::new();
        for (r, p, id) in &plan {
            let fdir = r.dir().join(&p.family);
            let target = fdir.join(file_name(*id));
            fs.rename(&p.path, &target)
                .map_err(|e| Error::io(&target, e))?;
            family_dirs.insert(fdir);
        }
        for d in family_dirs
            .iter()
            .map(PathBuf::as_path)
            .chain([stage.dir()])
        {
            crate::fs::sync_dir(fs, d)?;
        }
        let mut by_region: BTreeMap<u64, Vec<usize>> = BTreeMap::new();
        for (i, (r, _, _)) in plan.iter().enumerate() {
            by_region.entry(r.info.id).or_default().push(i);
        }
        let mut loaded = BulkLoaded {
            regions: by_region.len() as u64,
            ..BulkLoaded::default()
        };
        for idxs in by_region.values() {
            let region = &plan[idxs[0]].0;
            let adds = idxs
                .iter()
                .map(|&i| {
                    let (_, p, id) = &plan[i];
                    (p.family.clone(), FileMeta::from_info(*id, p.size, &p.info))
                })
                .collect();
            region.manifest().lock().apply(&VersionEdit {
                add_files: adds,
                ..VersionEdit::default()
            })?;
            for &i in idxs {
                let (r, p, id) = &plan[i];
                let path = r.dir().join(&p.family).join(file_name(*id));
                let sf = StoreFile::open(fs, &path, *id, r.block_cache())?;
                if let Some(store) = r.stores().iter().find(|s| s.opts.name == p.family) {
                    store.apply(vec![Arc::new(sf)], &[]);
                }
                loaded.parts += 1;
                loaded.cells += p.info.cell_count;
                loaded.bytes += p.size;
            }
        }
        remove_load_dir(fs, stage.dir());
        tracing::info!(
            table = stage.table(),
            parts = loaded.parts,
            regions = loaded.regions,
            cells = loaded.cells,
            bytes = loaded.bytes,
            "bulk load adopted"
        );
        Ok(loaded)
    }
}

fn remove_load_dir(fs: &dyn Fs, dir: &Path) {
    if let Err(e) = fs.remove_dir_all(dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(dir = %dir.display(), error = %e, "could not remove a bulk-load staging directory; removed at the next open");
    }
}

/// Finishes committed loads and forgets uncommitted ones under `db_dir` (§3, recovery).
/// Runs before any region opens, after unlisted directories are removed.
///
/// # Errors
/// [`Error::Corruption`] for a commit record that does not decode, names a table or
/// region the catalog does not have, or a part whose staged and final files are both
/// missing; I/O and manifest errors.
pub(super) fn recover(
    fs: &crate::fs::SharedFs,
    recovery: crate::log::RecoveryMode,
    db_dir: &Path,
    catalog: &Catalog,
) -> Result<()> {
    let root = db_dir.join(STAGING_DIR);
    if !fs.exists(&root).map_err(|e| Error::io(&root, e))? {
        return Ok(());
    }
    let mut loads = crate::fs::read_dir(&**fs, &root)?;
    loads.sort();
    for dir in loads {
        let commit = dir.join(COMMIT_FILE);
        if fs.exists(&commit).map_err(|e| Error::io(&commit, e))? {
            roll_forward(fs, recovery, db_dir, &dir, &commit, catalog)?;
        } else {
            tracing::warn!(dir = %dir.display(), "removing a bulk load staged but never committed");
        }
        fs.remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    }
    fs.remove_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    crate::fs::sync_dir(&**fs, db_dir)
}

fn roll_forward(
    fs: &crate::fs::SharedFs,
    recovery: crate::log::RecoveryMode,
    db_dir: &Path,
    dir: &Path,
    commit: &Path,
    catalog: &Catalog,
) -> Result<()> {
    let bytes = fs.read(commit).map_err(|e| Error::io(commit, e))?;
    let record = CommitRecord::decode(&bytes).map_err(|e| e.into_error(commit, 0))?;
    let corrupt = |reason: String| Error::Corruption {
        file: commit.to_path_buf(),
        offset: 0,
        reason,
    };
    let Some(table) = catalog
        .tables
        .iter()
        .find(|t| t.schema.name == record.table)
    else {
        return Err(corrupt(format!(
            "names table '{}', not in the catalog",
            record.table
        )));
    };
    let mut by_region: BTreeMap<u64, Vec<&CommitPart>> = BTreeMap::new();
    for p in &record.parts {
        if !table.regions.iter().any(|r| r.id == p.region) {
            return Err(corrupt(format!(
                "names region {}, not in the catalog",
                p.region
            )));
        }
        by_region.entry(p.region).or_default().push(p);
    }
    let cache = Arc::new(BlockCache::new(0));
    for (region, parts) in by_region {
        let rdir = db_dir.join(&record.table).join(region.to_string());
        let (mut manifest, state) = Manifest::open_with(
            &rdir,
            ManifestOptions {
                fs: fs.clone(),
                recovery,
                ..ManifestOptions::default()
            },
        )?;
        let live = state.live_file_ids();
        let mut adds = Vec::new();
        for p in parts {
            if live.contains(&p.file_id) {
                continue;
            }
            let fdir = rdir.join(&p.family);
            let target = fdir.join(file_name(p.file_id));
            if !fs.exists(&target).map_err(|e| Error::io(&target, e))? {
                let staged = dir.join(part_file_name(p.index));
                if !fs.exists(&staged).map_err(|e| Error::io(&staged, e))? {
                    return Err(corrupt(format!(
                        "part {} ({}) is neither staged nor in region {region}",
                        p.index,
                        target.display()
                    )));
                }
                crate::fs::create_dir_synced(&**fs, &fdir)?;
                fs.rename(&staged, &target)
                    .map_err(|e| Error::io(&target, e))?;
                crate::fs::sync_dir(&**fs, &fdir)?;
            }
            let reader = HFileReader::open(&**fs, &target, 0, Arc::clone(&cache))?;
            adds.push((
                p.family.clone(),
                FileMeta::from_info(p.file_id, reader.size(), reader.info()),
            ));
        }
        if !adds.is_empty() {
            tracing::warn!(
                table = %record.table,
                region,
                parts = adds.len(),
                "finishing a bulk load a crash interrupted"
            );
            manifest.apply(&VersionEdit {
                add_files: adds,
                ..VersionEdit::default()
            })?;
        }
    }
    Ok(())
}
