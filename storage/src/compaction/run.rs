//! Running one compaction of one store of a region: the crash-safe protocol.
//!
//! 1. Choose a plan (`policy`) from the store's current version; mark its inputs busy.
//! 2. `compaction_begin {id, inputs}` → manifest (durable). The id is the output file id.
//! 3. Merge the inputs into `<family>/<id>.hfile` (`executor`), fsync it and the directory.
//! 4. One manifest edit: add the output, remove the inputs, `compaction_end id`.
//! 5. Install the new version (readers switch atomically; old readers keep theirs).
//! 6. Inputs go to the store's graveyard and are deleted once no version holds them.
//!
//! It needs of the region only its files ([`RegionFiles`]: manifest, file ids, block
//! cache, file system) and a read point, so it runs, and is tested, with no `Region`.
//!
//! A crash before 4 leaves an output file the manifest does not list and a pending
//! compaction: on open the region deletes the unlisted file and [`abort_pending`] closes the
//! pending entry, so the old file set stands. A crash after 4 leaves input files the
//! manifest no longer lists: deleted on open as well. Either the old set or the new one,
//! never a mix. Dropping expired files is a single manifest edit (no output).
//!
//! This module is the protocol; what to compact is `policy`, how to merge is `executor`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use super::executor::{OutputSink, merge_into};
use super::policy::{
    self, CandidateFile, CompactionOptions, CompactionPlan, FamilyPolicy, PlanKind,
};
use super::retain::RetainRules;
use super::throttle::SharedThrottle;
use crate::cell::{CellKey, SeqNo};
use crate::error::{Error, Result};
use crate::files::RegionFiles;
use crate::hfile::{FileOptions, HFileWriter, file_name};
use crate::manifest::{FileMeta, Manifest, VersionEdit};
use crate::store::{FailPoint, Store, StoreFile};

/// What a compaction needs besides the store: options, throttle, clock reading.
#[derive(Clone, Debug)]
pub struct RunContext {
    /// Policy tunables.
    pub opts: CompactionOptions,
    /// Shared I/O throttle, if any.
    pub throttle: Option<Arc<SharedThrottle>>,
    /// The engine clock's now, ms.
    pub now_ms: u64,
}

/// Closes compactions the manifest shows as begun but not ended (their output, not listed,
/// is removed by the region's orphan sweep). Called once when a region opens.
///
/// # Errors
/// Manifest write errors.
pub fn abort_pending(manifest: &mut Manifest) -> Result<usize> {
    let pending: Vec<u64> = manifest
        .state()
        .pending_compactions
        .keys()
        .copied()
        .collect();
    for id in &pending {
        tracing::warn!(
            compaction = id,
            "aborting compaction interrupted by a crash"
        );
        manifest.apply(&VersionEdit {
            compaction_end: Some(*id),
            ..VersionEdit::default()
        })?;
    }
    Ok(pending.len())
}

/// The store's files as the policy sees them, oldest → newest.
pub fn candidates(store: &Store) -> Vec<CandidateFile> {
    let version = store.current();
    let busy = store.lifecycle.busy();
    let mut files: Vec<CandidateFile> = version
        .files
        .iter()
        .map(|f| CandidateFile {
            id: f.id,
            size_bytes: f.meta.size,
            seq: f.meta.max_seq,
            min_ts: f.meta.min_ts,
            max_ts: f.meta.max_ts,
            cell_count: f.meta.cells,
            tombstones: f.meta.tombstones,
            created_ms: created_ms(f),
            being_compacted: busy.contains(&f.id),
        })
        .collect();
    files.sort_by_key(|f| (f.seq, f.id));
    files
}

/// The file's modification time (when it was written); `u64::MAX` if unknown, which never
/// makes a major due.
fn created_ms(f: &StoreFile) -> u64 {
    std::fs::metadata(&f.path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(u64::MAX, |d| d.as_millis() as u64)
}

/// Runs at most one compaction of `store` (a store of the region whose files are
/// `files`): the policy's choice, or a major compaction of every file when `force_major`.
/// `read_point` is the region's read point when called: cells above it are kept as they
/// are (an older read point only keeps more). Returns `Ok(true)` if it did one.
///
/// # Errors
/// Manifest, I/O and checksum errors; the store keeps its old files. An error after the
/// begin edit leaves a pending compaction that the next open aborts.
pub fn compact_store(
    files: &RegionFiles,
    read_point: SeqNo,
    store: &Arc<Store>,
    ctx: &RunContext,
    force_major: bool,
) -> Result<bool> {
    let state = &store.lifecycle;
    state.reap();
    let _major_lock = force_major.then(|| state.lock_major());
    let family = FamilyPolicy {
        ttl_ms: store.opts.ttl_ms,
        style: store.opts.compaction,
    };
    let plan = {
        let cands = candidates(store);
        let seed = files
            .region_id
            .wrapping_mul(31)
            .wrapping_add(store.name.len() as u64);
        let plan = if force_major {
            policy::select_major(&cands, "on demand")
        } else {
            policy::select(&cands, &ctx.opts, &family, ctx.now_ms, seed)
        };
        let Some(plan) = plan else {
            return Ok(false);
        };
        plan
    };
    // Claim the inputs; a concurrent compaction may have taken one since we looked.
    let Some(guard) = state.claim(&plan.inputs, || store.current()) else {
        return Ok(false);
    };
    let res = execute(files, read_point, store, ctx, &plan);
    drop(guard);
    match res {
        Ok(()) => {
            state.reap();
            Ok(true)
        }
        Err(e) => {
            state.counters.record_failure();
            Err(e)
        }
    }
}

fn execute(
    region: &RegionFiles,
    read_point: SeqNo,
    store: &Arc<Store>,
    ctx: &RunContext,
    plan: &CompactionPlan,
) -> Result<()> {
    let state = &store.lifecycle;
    let family = store.opts.name.clone();
    let version = store.current();
    let inputs: Vec<Arc<StoreFile>> = version
        .files
        .iter()
        .filter(|f| plan.inputs.contains(&f.id))
        .cloned()
        .collect();
    if inputs.len() != plan.inputs.len() {
        return Err(Error::InvalidArgument(format!(
            "compaction plan names files not in the store: {:?}",
            plan.inputs
        )));
    }
    let removes: Vec<(String, u64)> = plan.inputs.iter().map(|id| (family.clone(), *id)).collect();
    tracing::info!(
        table = %region.table,
        region = region.region_id,
        family = %family,
        kind = %plan.kind,
        inputs = ?plan.inputs,
        reason = %plan.reason,
        "compaction starts"
    );

    if plan.kind == PlanKind::DropExpired {
        let mut m = region.manifest().lock();
        m.apply(&VersionEdit {
            remove_files: removes,
            ..VersionEdit::default()
        })?;
        store.apply(Vec::new(), &plan.inputs);
        drop(m);
        state.bury(&inputs, &region.fs_shared());
        state.counters.record_drop(inputs.len() as u64);
        return Ok(());
    }

    let major = plan.kind == PlanKind::Major;
    let id = region.allocate_file_id();
    region.manifest().lock().apply(&VersionEdit {
        compaction_begin: Some((id, plan.inputs.clone())),
        next_file_id: Some(id + 1),
        ..VersionEdit::default()
    })?;
    state.check(FailPoint::AfterBegin)?;

    let path = store.dir.join(file_name(id));
    let written = write_output(region, store, ctx, &inputs, &path, major, read_point);
    let output = match written {
        Ok(out) => out,
        Err(e) => {
            abort(region, id, &path);
            return Err(e);
        }
    };
    state.check(FailPoint::AfterOutputWritten)?;

    let bytes_read: u64 = inputs.iter().map(|f| f.meta.size).sum();
    let mut adds = Vec::new();
    let mut opened = Vec::new();
    if let Some((meta, _)) = &output {
        adds.push((family.clone(), meta.clone()));
        // Open before committing: a file we cannot read must not replace readable ones.
        let sf = StoreFile::open(region.fs(), &path, id, region.block_cache());
        match sf {
            Ok(sf) => opened.push(Arc::new(sf)),
            Err(e) => {
                abort(region, id, &path);
                return Err(e);
            }
        }
    }
    {
        let mut m = region.manifest().lock();
        if let Err(e) = m.apply(&VersionEdit {
            add_files: adds,
            remove_files: removes,
            compaction_end: Some(id),
            ..VersionEdit::default()
        }) {
            drop(m);
            // A full disk proves the edit is not in the manifest (it was cut back): free
            // the output's space now. After any other failure the edit may still reach
            // the disk, so the output stays for the next open to keep or sweep.
            if e.is_no_space() {
                abort(region, id, &path);
            }
            return Err(e);
        }
        state.check(FailPoint::AfterCommit)?;
        store.apply(opened, &plan.inputs);
    }
    let (files_out, bytes_written, dropped) = match &output {
        Some((meta, dropped)) => (1, meta.size, *dropped),
        None => (0, 0, inputs.iter().map(|f| f.meta.cells).sum()),
    };
    state.counters.record_rewrite(
        major,
        inputs.len() as u64,
        bytes_read,
        files_out,
        bytes_written,
        dropped,
    );
    state.check(FailPoint::BeforeDeleteInputs)?;
    state.bury(&inputs, &region.fs_shared());
    tracing::info!(
        region = region.region_id,
        family = %family,
        kind = %plan.kind,
        output = id,
        bytes_read,
        bytes_written,
        "compaction done"
    );
    Ok(())
}

/// The output: `None` when nothing survived (no file is written).
type Output = Option<(FileMeta, u64)>;

fn write_output(
    region: &RegionFiles,
    store: &Store,
    ctx: &RunContext,
    inputs: &[Arc<StoreFile>],
    path: &std::path::Path,
    major: bool,
    read_point: SeqNo,
) -> Result<Output> {
    let o = &store.opts;
    let rules =
        RetainRules::new(major, o.max_versions, o.ttl_ms, ctx.now_ms).visible_at(read_point);
    let sources = inputs
        .iter()
        .map(|f| f.iter_from(None))
        .collect::<Result<Vec<_>>>()?;
    let mut sink = LazyWriter {
        fs: region.fs_shared(),
        path: path.to_path_buf(),
        opts: FileOptions::new(o.compression, o.bloom, o.block_size),
        writer: None,
    };
    let outcome = merge_into(sources, rules, ctx.throttle.as_deref(), &mut sink)?;
    let Some(writer) = sink.writer else {
        return Ok(None);
    };
    let info = writer.finish()?;
    let fs = region.fs();
    crate::fs::sync_dir(fs, &store.dir)?;
    let size = fs.file_len(path).map_err(|e| Error::io(path, e))?;
    let id = crate::hfile::parse_file_name(&file_name_of(path)).unwrap_or_default();
    Ok(Some((
        FileMeta::from_info(id, size, &info),
        outcome.retain.dropped(),
    )))
}

fn file_name_of(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Creates the HFile at the first kept cell, so an all-dead compaction writes nothing.
struct LazyWriter {
    fs: crate::fs::SharedFs,
    path: PathBuf,
    opts: FileOptions,
    writer: Option<HFileWriter>,
}

impl OutputSink for LazyWriter {
    fn push(&mut self, key: &CellKey, value: &bytes::Bytes) -> Result<()> {
        let w = match &mut self.writer {
            Some(w) => w,
            None => self
                .writer
                .insert(HFileWriter::create(&*self.fs, &self.path, self.opts)?),
        };
        w.push(key.as_ref(), value)
    }
}

/// Best-effort cleanup after a real (not injected) failure: remove the partial output and
/// end the pending compaction. Whatever fails here, the next open repeats.
fn abort(region: &RegionFiles, id: u64, path: &std::path::Path) {
    if let Err(e) = region.fs().remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(file = %path.display(), error = %e, "cannot remove failed compaction output");
    }
    if let Err(e) = region.manifest().lock().apply(&VersionEdit {
        compaction_end: Some(id),
        ..VersionEdit::default()
    }) {
        tracing::warn!(compaction = id, error = %e, "cannot record compaction abort");
    }
}
