//! Splitting a region in two at a row key, crash-safely.
//!
//! Steps (the catalog write is the commit point):
//! 1. refuse new writes to the parent and flush it: every edit is then in its files;
//! 2. build each daughter directory: the parent's cells of the daughter's key range are
//!    rewritten into new HFiles (all versions and delete markers, sequence numbers kept),
//!    recorded in the daughter's manifest with the parent's last sequence as flushed;
//! 3. atomically replace the catalog: parent out, daughters in;
//! 4. open the daughters, route to them, delete the parent directory.
//!
//! A crash before 3 leaves daughter directories the catalog does not list: `Db::open`
//! removes them and the parent is intact. A crash after 3 leaves the parent directory
//! unlisted: removed at open. A failure before 3 re-opens the parent for writes.
//! Rewriting costs one pass over the region's data; reference files (HBase's half-file
//! references) would avoid it and are a possible later improvement.
//!
//! [`Db::split_point`] proposes the split key: the row of the middle cell of the region's
//! largest file (HBase uses the middle block of the largest file the same way). Deciding
//! *when* to split is the server's job, not this module's.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

use super::catalog::RegionEntry;
use super::{Db, Table, open_region};
use crate::cell::KeyRef;
use crate::error::{Error, Result};
use crate::hfile::{FileOptions, HFileWriter, file_name};
use crate::manifest::{FileMeta, Manifest, VersionEdit};
use crate::region::{Region, RegionInfo};

impl Db {
    /// A row key near the middle of region `region_id`'s flushed data: the row of the
    /// middle cell of its largest file, moved forward to the next distinct row when it is
    /// the file's first row (so the left daughter is never empty). `None` when the region
    /// has no file or its largest file holds a single row. Memstore contents are not
    /// considered; the cost is reading half of the largest file once.
    ///
    /// # Errors
    /// `UnknownTable`, `InvalidArgument` (no such region), read errors.
    pub fn split_point(&self, table: &str, region_id: u64) -> Result<Option<Bytes>> {
        let region = self.region(table, region_id)?;
        let largest = region
            .stores()
            .iter()
            .flat_map(|s| s.current().files.clone())
            .max_by_key(|f| f.meta.size);
        let Some(file) = largest else {
            return Ok(None);
        };
        let half = file.meta.cells / 2;
        let mut candidate: Option<Bytes> = None;
        for (i, item) in file.reader().iter().enumerate() {
            let (k, _) = item?;
            if (i as u64) < half {
                continue;
            }
            if k.row > file.meta.first_row {
                candidate = Some(k.row);
                break;
            }
        }
        Ok(candidate.filter(|row| row[..] > region.info.start[..] && region.info.contains(row)))
    }

    /// Splits region `region_id` of `table` at `split_key`: the left daughter holds rows
    /// `< split_key`, the right one rows `≥ split_key`. Writes to the parent during the
    /// split fail with a retryable `TooBusy`. Returns the daughters.
    ///
    /// # Errors
    /// `UnknownTable`, `InvalidArgument` (no such region, split key not strictly inside
    /// the region), flush and I/O errors (the parent then stays in service).
    pub fn split_region(
        &self,
        table: &str,
        region_id: u64,
        split_key: &[u8],
    ) -> Result<(RegionInfo, RegionInfo)> {
        self.refuse_in_cluster_mode("split a region")?;
        let mut cat = self.inner.catalog.lock();
        let t = self.table(table)?;
        let parent = t
            .regions
            .iter()
            .find(|r| r.info.id == region_id)
            .cloned()
            .ok_or_else(|| {
                Error::InvalidArgument(format!("table '{table}' has no region {region_id}"))
            })?;
        if split_key.is_empty()
            || split_key <= &parent.info.start[..]
            || !parent.info.contains(split_key)
        {
            return Err(Error::InvalidArgument(format!(
                "split key {:?} is not strictly inside region {region_id}",
                String::from_utf8_lossy(split_key)
            )));
        }
        let split = Bytes::copy_from_slice(split_key);
        let left = RegionEntry {
            id: cat.next_region_id,
            start: parent.info.start.clone(),
            end: split.clone(),
        };
        let right = RegionEntry {
            id: cat.next_region_id + 1,
            start: split,
            end: parent.info.end.clone(),
        };
        let table_dir = self.inner.dir.join(table);
        parent.close_writes(true);
        let built = parent.flush().and_then(|()| {
            for d in [&left, &right] {
                build_daughter(
                    &parent,
                    &self.inner.opts,
                    &table_dir.join(d.id.to_string()),
                    d,
                )?;
            }
            Ok(())
        });
        let mut next = cat.clone();
        next.next_region_id += 2;
        if let Some(te) = next.tables.iter_mut().find(|te| te.schema.name == table) {
            te.regions.retain(|r| r.id != region_id);
            te.regions.push(left.clone());
            te.regions.push(right.clone());
            te.regions.sort_by(|a, b| a.start.cmp(&b.start));
        }
        // IMPORTANT: the catalog write is the commit point of the split.
        if let Err(e) = built.and_then(|()| next.store(&*self.inner.opts.fs, &self.inner.dir)) {
            for d in [&left, &right] {
                let _ = self
                    .inner
                    .opts
                    .fs
                    .remove_dir_all(&table_dir.join(d.id.to_string()));
            }
            parent.close_writes(false);
            return Err(e);
        }
        *cat = next;
        let mut daughters = Vec::with_capacity(2);
        for d in [&left, &right] {
            daughters.push(Arc::new(open_region(
                &self.inner.dir,
                &t.schema,
                d,
                &self.inner.opts,
                &self.inner.shared,
                &self.inner.wake,
                None,
            )?));
        }
        let mut regions: Vec<Arc<Region>> = t
            .regions
            .iter()
            .filter(|r| r.info.id != region_id)
            .cloned()
            .chain(daughters.iter().cloned())
            .collect();
        regions.sort_by(|a, b| a.info.start.cmp(&b.info.start));
        self.inner.tables.write().insert(
            table.to_string(),
            Arc::new(Table {
                schema: Arc::clone(&t.schema),
                regions,
                hosted: false,
            }),
        );
        drop(cat);
        let pdir = parent.dir().to_path_buf();
        drop(parent);
        if let Err(e) = self.inner.opts.fs.remove_dir_all(&pdir) {
            tracing::warn!(dir = %pdir.display(), error = %e, "could not remove split parent; removed at next open");
        }
        tracing::info!(
            table,
            parent = region_id,
            left = left.id,
            right = right.id,
            "split region"
        );
        Ok((daughters[0].info.clone(), daughters[1].info.clone()))
    }
}

/// Cluster mode's split, in three calls around the commit in meta (etcd), which the
/// region server makes: [`Db::prepare_hosted_split`] stops the parent's writes, flushes it
/// (fenced, as every flush of a hosted region) and builds both daughter directories under
/// the storage root with ids meta reserved; then meta's transaction (parent `split`,
/// daughters `opening` on this server) commits the split, after which
/// [`Db::finish_hosted_split`] drops the parent; if the transaction fails (the region was
/// taken away meanwhile), [`Db::abort_hosted_split`] removes the daughters and lets the
/// parent take writes again. A crash anywhere leaves either the parent (daughter
/// directories nobody lists, under ids never handed out again) or committed daughters
/// whose directories are complete (built and synced before the commit).
impl Db {
    /// Prepares splitting hosted region `parent_id` of `table` at `split_key` into regions
    /// `ids[0]` (rows `< split_key`) and `ids[1]`: writes to the parent are refused with a
    /// retryable `TooBusy` from now on, it is flushed, and the daughters' directories are
    /// built. On error the daughters are removed and the parent takes writes again.
    ///
    /// # Errors
    /// `InvalidArgument` outside cluster mode, for an unknown region or a split key not
    /// strictly inside it; `Fenced` when the region has a newer owner; I/O errors.
    pub fn prepare_hosted_split(
        &self,
        table: &str,
        parent_id: u64,
        split_key: &[u8],
        ids: [u64; 2],
    ) -> Result<()> {
        if self.inner.hosted.is_none() {
            return Err(Error::InvalidArgument(
                "prepare_hosted_split needs a hosted database".into(),
            ));
        }
        let parent = self.region(table, parent_id)?;
        if split_key.is_empty()
            || split_key <= &parent.info.start[..]
            || !parent.info.contains(split_key)
            || ids[0] == ids[1]
            || ids.contains(&parent_id)
        {
            return Err(Error::InvalidArgument(format!(
                "split key {:?} is not strictly inside region {parent_id}, or daughter ids {ids:?} are not new",
                String::from_utf8_lossy(split_key)
            )));
        }
        let split = Bytes::copy_from_slice(split_key);
        let daughters = [
            RegionEntry {
                id: ids[0],
                start: parent.info.start.clone(),
                end: split.clone(),
            },
            RegionEntry {
                id: ids[1],
                start: split,
                end: parent.info.end.clone(),
            },
        ];
        let table_dir = self.inner.dir.join(table);
        parent.close_writes(true);
        let built = parent.flush().and_then(|()| {
            for d in &daughters {
                build_daughter(
                    &parent,
                    &self.inner.opts,
                    &table_dir.join(d.id.to_string()),
                    d,
                )?;
            }
            crate::fs::sync_dir(&*self.inner.opts.fs, &table_dir)
        });
        if let Err(e) = built {
            self.abort_hosted_split(table, parent_id, ids);
            return Err(e);
        }
        tracing::info!(
            table,
            parent = parent_id,
            left = ids[0],
            right = ids[1],
            "split prepared; committing in meta"
        );
        Ok(())
    }

    /// Undoes [`Db::prepare_hosted_split`] after meta refused the split: the daughters'
    /// directories are removed and the parent (if still held) takes writes again.
    pub fn abort_hosted_split(&self, table: &str, parent_id: u64, ids: [u64; 2]) {
        let table_dir = self.inner.dir.join(table);
        for id in ids {
            let dir = table_dir.join(id.to_string());
            if let Err(e) = self.inner.opts.fs.remove_dir_all(&dir)
                && self.inner.opts.fs.exists(&dir).unwrap_or(true)
            {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove an uncommitted daughter; nothing refers to it");
            }
        }
        if let Ok(parent) = self.region(table, parent_id) {
            parent.close_writes(false);
        }
    }

    /// Completes a split meta committed: the parent stops being held and its directory is
    /// removed (its data is in the daughters, which meta assigns like any region).
    ///
    /// # Errors
    /// Closing the parent failed (it is not held either way).
    pub fn finish_hosted_split(&self, table: &str, parent_id: u64) -> Result<()> {
        let dir = self.inner.dir.join(table).join(parent_id.to_string());
        let closed = self.unhost_region(table, parent_id);
        if let Err(e) = self.inner.opts.fs.remove_dir_all(&dir) {
            tracing::warn!(dir = %dir.display(), error = %e, "could not remove a split parent's directory; nothing refers to it");
        }
        closed
    }
}

/// Writes a daughter region directory holding the parent's cells of `d`'s key range.
fn build_daughter(
    parent: &Region,
    opts: &crate::options::EngineOptions,
    dir: &Path,
    d: &RegionEntry,
) -> Result<()> {
    let fs = &*opts.fs;
    if fs.exists(dir).map_err(|e| Error::io(dir, e))? {
        fs.remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    crate::fs::create_dir_synced(fs, dir)?;
    let (mut manifest, _) = Manifest::open_with(
        dir,
        crate::manifest::ManifestOptions {
            fs: opts.fs.clone(),
            recovery: opts.recovery,
            ..Default::default()
        },
    )?;
    let mut next_id = 1u64;
    let mut adds = Vec::new();
    for store in parent.stores() {
        let fdir = dir.join(&store.opts.name);
        crate::fs::create_dir_synced(fs, &fdir)?;
        let o = &store.opts;
        for f in &store.current().files {
            if (!d.end.is_empty() && f.meta.first_row >= d.end) || f.meta.last_row < d.start {
                continue;
            }
            let path = fdir.join(file_name(next_id));
            let mut w = HFileWriter::create(
                fs,
                &path,
                FileOptions::new(o.compression, o.bloom, o.block_size),
            )?;
            let iter = if d.start.is_empty() {
                f.reader().iter()
            } else {
                f.reader().iter_from(KeyRef::first_of_row(&d.start))?
            };
            for item in iter {
                let (k, v) = item?;
                if !d.end.is_empty() && k.row >= d.end {
                    break;
                }
                w.push(k.as_ref(), &v)?;
            }
            if w.cell_count() == 0 {
                drop(w);
                fs.remove_file(&path).map_err(|e| Error::io(&path, e))?;
                continue;
            }
            let info = w.finish()?;
            let size = fs.file_len(&path).map_err(|e| Error::io(&path, e))?;
            adds.push((o.name.clone(), FileMeta::from_info(next_id, size, &info)));
            next_id += 1;
        }
        crate::fs::sync_dir(fs, &fdir)?;
    }
    manifest.apply(&VersionEdit {
        add_files: adds,
        flushed_seq: Some(parent.last_seq()),
        next_file_id: Some(next_id),
        ..VersionEdit::default()
    })
}
