//! Bulk load: the staging area where a load's cells become HFiles before any region adopts
//! them, and the commit record that makes the adoption atomic
//! (`storage/docs/bulk_load.md`).
//!
//! A [`BulkStage`] takes cells in store order and writes one part (an HFile of sequence-0
//! puts) per region and family, routed by the table's boundaries when the stage began. It
//! changes nothing in the table: `Db::commit_bulk_load` (in `db::bulk`) checks the parts
//! against the current boundaries, writes the commit record and adopts them; `Db::open`
//! finishes or forgets what a crash interrupted. This module neither locks the catalog nor
//! touches a manifest.

pub mod commit;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cell::{CellKind, KeyRef, Timestamp};
use crate::error::{Error, Result};
use crate::fs::SharedFs;
use crate::hfile::{FileInfo, FileOptions, HFileWriter};
use crate::region::RegionInfo;
use crate::schema::{Limits, TableSchema};

/// Name of the directory under the database directory holding every staged load (§1).
/// `@` is not allowed in a table name, so this is never a table directory.
pub const STAGING_DIR: &str = "@bulkload";
/// Name of the commit record in a load's staging directory (§2).
pub const COMMIT_FILE: &str = "COMMIT";
/// Most parts (region × family files) one load may have (§6).
pub const MAX_PARTS: usize = 1024;
/// Largest staged part, in bytes written (§6).
pub const MAX_PART_BYTES: u64 = 4 << 30;

/// The staging directory of load `id` under the database directory `db_dir`.
pub fn load_dir(db_dir: &Path, id: u64) -> PathBuf {
    db_dir.join(STAGING_DIR).join(format!("{id:020}"))
}

/// The file name of staged part `index`.
pub fn part_file_name(index: u64) -> String {
    format!("part-{index:06}.hfile")
}

/// A finished staged part.
#[derive(Clone, Debug)]
pub struct StagedPart {
    /// Names the file (`part_file_name`).
    pub index: u64,
    /// Its family.
    pub family: String,
    /// The region it was routed to when the stage began.
    pub region: RegionInfo,
    /// Its path in the staging directory.
    pub path: PathBuf,
    /// Its summary (first and last row, counts).
    pub info: FileInfo,
    /// Its size in bytes.
    pub size: u64,
}

/// Parts being written: those of the current region, one per family (a short list,
/// searched per cell: cheaper than a map for the few families a table has).
struct Open {
    region: usize,
    writers: Vec<(String, u64, HFileWriter)>,
}

/// One load being staged. Dropped before its commit, it removes its directory.
pub struct BulkStage {
    fs: SharedFs,
    dir: PathBuf,
    schema: Arc<TableSchema>,
    regions: Vec<RegionInfo>,
    limits: Limits,
    parts: Vec<StagedPart>,
    open: Option<Open>,
    last_row: Option<Vec<u8>>,
    next_index: u64,
    cells: u64,
    failed: Option<String>,
    finished: bool,
    /// Set once a commit record may exist: the directory then belongs to recovery.
    keep: bool,
}

impl std::fmt::Debug for BulkStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkStage")
            .field("dir", &self.dir)
            .field("table", &self.schema.name)
            .field("parts", &self.parts.len())
            .field("cells", &self.cells)
            .finish_non_exhaustive()
    }
}

impl BulkStage {
    /// A stage in `dir` (created durably here) for `schema`'s table, routed by `regions`
    /// (sorted by start key, covering the table).
    ///
    /// # Errors
    /// [`Error::Io`] creating the directory.
    pub fn create(
        fs: SharedFs,
        dir: PathBuf,
        schema: Arc<TableSchema>,
        regions: Vec<RegionInfo>,
        limits: Limits,
    ) -> Result<BulkStage> {
        crate::fs::create_dir_synced(&*fs, &dir)?;
        Ok(BulkStage {
            fs,
            dir,
            schema,
            regions,
            limits,
            parts: Vec::new(),
            open: None,
            last_row: None,
            next_index: 0,
            cells: 0,
            failed: None,
            finished: false,
            keep: false,
        })
    }

    /// The table being loaded.
    pub fn table(&self) -> &str {
        &self.schema.name
    }

    /// The staging directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Cells pushed so far.
    pub fn cells(&self) -> u64 {
        self.cells
    }

    /// The finished parts (all of them after [`BulkStage::finish`]).
    pub fn parts(&self) -> &[StagedPart] {
        &self.parts
    }

    /// Hands the directory to recovery: it is no longer removed on drop.
    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }

    /// Adds one put. Cells must come in store order: rows never decrease, and within a
    /// row and family (qualifier ascending, timestamp descending) strictly increase.
    ///
    /// # Errors
    /// [`Error::UnknownFamily`]; [`Error::InvalidArgument`] for an empty or oversize row,
    /// qualifier or value, a cell out of order or repeated, too many parts or a part too
    /// large; I/O errors writing the part. After any error the stage refuses further
    /// cells and must be dropped.
    pub fn push(
        &mut self,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        timestamp: Timestamp,
        value: &[u8],
    ) -> Result<()> {
        if let Some(why) = &self.failed {
            return Err(Error::InvalidArgument(format!(
                "bulk stage already failed: {why}"
            )));
        }
        let r = self.push_inner(row, family, qualifier, timestamp, value);
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }

    /// Adds every cell of one row: the row is checked and routed once, not per cell (a
    /// bulk load pushes tens of millions of cells; see [`BulkStage::push`] for the rules,
    /// which are the same). `cells` are (family, qualifier, timestamp, value) in store
    /// order within each family.
    ///
    /// # Errors
    /// As [`BulkStage::push`]; after any error the stage refuses further cells.
    pub fn push_row<'c>(
        &mut self,
        row: &[u8],
        cells: impl IntoIterator<Item = (&'c str, &'c [u8], Timestamp, &'c [u8])>,
    ) -> Result<()> {
        if let Some(why) = &self.failed {
            return Err(Error::InvalidArgument(format!(
                "bulk stage already failed: {why}"
            )));
        }
        let mut r = self.begin_row(row);
        if r.is_ok() {
            for (family, qualifier, timestamp, value) in cells {
                r = self.push_cell(row, family, qualifier, timestamp, value);
                if r.is_err() {
                    break;
                }
            }
        }
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        r
    }

    fn push_inner(
        &mut self,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        timestamp: Timestamp,
        value: &[u8],
    ) -> Result<()> {
        self.begin_row(row)?;
        self.push_cell(row, family, qualifier, timestamp, value)
    }

    /// Checks `row` (size, not below the previous row) and opens its region's parts when
    /// it leaves the current region.
    fn begin_row(&mut self, row: &[u8]) -> Result<()> {
        if self.finished {
            return Err(Error::InvalidArgument("bulk stage is finished".into()));
        }
        let l = &self.limits;
        if row.is_empty() || row.len() > l.max_row_bytes {
            return Err(Error::InvalidArgument(format!(
                "row of {} bytes: must be 1..={}",
                row.len(),
                l.max_row_bytes
            )));
        }
        match &mut self.last_row {
            Some(last) if row < &last[..] => {
                return Err(Error::InvalidArgument(format!(
                    "bulk-load rows must not decrease: {:?} after {:?}",
                    String::from_utf8_lossy(row),
                    String::from_utf8_lossy(last)
                )));
            }
            Some(last) if row == &last[..] => {}
            Some(last) => {
                last.clear();
                last.extend_from_slice(row);
            }
            None => self.last_row = Some(row.to_vec()),
        }
        let in_current = self
            .open
            .as_ref()
            .is_some_and(|o| self.regions[o.region].contains(row));
        if !in_current {
            self.close_open()?;
            let i = self
                .regions
                .partition_point(|r| r.start[..] <= *row)
                .saturating_sub(1);
            if !self.regions.get(i).is_some_and(|r| r.contains(row)) {
                return Err(Error::InvalidArgument(format!(
                    "no region of table '{}' holds row {:?}",
                    self.schema.name,
                    String::from_utf8_lossy(row)
                )));
            }
            self.open = Some(Open {
                region: i,
                writers: Vec::new(),
            });
        }
        Ok(())
    }

    /// Adds one cell of the row [`begin_row`](Self::begin_row) accepted last.
    fn push_cell(
        &mut self,
        row: &[u8],
        family: &str,
        qualifier: &[u8],
        timestamp: Timestamp,
        value: &[u8],
    ) -> Result<()> {
        let l = &self.limits;
        if qualifier.len() > l.max_qualifier_bytes || value.len() > l.max_value_bytes {
            return Err(Error::InvalidArgument(format!(
                "qualifier of {} bytes or value of {} bytes above the limits ({}, {})",
                qualifier.len(),
                value.len(),
                l.max_qualifier_bytes,
                l.max_value_bytes
            )));
        }
        let Some(open) = self.open.as_mut() else {
            return Err(Error::InvalidArgument(
                "bulk stage has no open region".into(),
            ));
        };
        let at = match open.writers.iter().position(|(f, _, _)| f == family) {
            Some(at) => at,
            None => {
                // Looked up when a part opens, not per cell: a family's part stays open
                // until the region changes, and an unknown family never opens one.
                let Some(fam) = self.schema.family(family.as_bytes()) else {
                    return Err(Error::UnknownFamily {
                        family: family.to_string(),
                        table: self.schema.name.clone(),
                    });
                };
                if self.parts.len() + open.writers.len() >= MAX_PARTS {
                    return Err(Error::InvalidArgument(format!(
                        "a bulk load may have at most {MAX_PARTS} parts (regions × families)"
                    )));
                }
                let index = self.next_index;
                self.next_index += 1;
                let path = self.dir.join(part_file_name(index));
                let w = HFileWriter::create(
                    &*self.fs,
                    &path,
                    FileOptions::new(fam.compression, fam.bloom, fam.block_size),
                )?;
                open.writers.push((family.to_string(), index, w));
                open.writers.len() - 1
            }
        };
        let Some((_, _, w)) = open.writers.get_mut(at) else {
            return Err(Error::InvalidArgument(
                "bulk stage lost a part writer".into(),
            ));
        };
        if w.bytes_written() > MAX_PART_BYTES {
            return Err(Error::InvalidArgument(format!(
                "a bulk-load part may hold at most {MAX_PART_BYTES} bytes"
            )));
        }
        let key = KeyRef {
            row,
            qualifier,
            timestamp,
            kind: CellKind::Put,
            // Loaded cells carry sequence 0: older than every write (bulk_load.md §4).
            seq: 0,
        };
        w.push(key, value)?;
        self.cells += 1;
        Ok(())
    }

    /// Finishes (writes the trailer of, and fsyncs) every open part.
    fn close_open(&mut self) -> Result<()> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let region = self.regions[open.region].clone();
        let mut writers = open.writers;
        // Parts in family order, as they always were.
        writers.sort_by(|a, b| a.0.cmp(&b.0));
        for (family, index, w) in writers {
            let path = w.path().to_path_buf();
            let info = w.finish()?;
            let size = self.fs.file_len(&path).map_err(|e| Error::io(&path, e))?;
            self.parts.push(StagedPart {
                index,
                family,
                region: region.clone(),
                path,
                info,
                size,
            });
        }
        Ok(())
    }

    /// Finishes every part and fsyncs the staging directory: the parts are durable.
    ///
    /// # Errors
    /// I/O errors; the error that failed an earlier `push`.
    pub fn finish(&mut self) -> Result<()> {
        if let Some(why) = &self.failed {
            return Err(Error::InvalidArgument(format!("bulk stage failed: {why}")));
        }
        if self.finished {
            return Ok(());
        }
        let r = self
            .close_open()
            .and_then(|()| crate::fs::sync_dir(&*self.fs, &self.dir));
        if let Err(e) = &r {
            self.failed = Some(e.to_string());
        }
        self.finished = r.is_ok();
        r
    }
}

impl Drop for BulkStage {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Open writers hold files in the directory; drop them first.
        self.open = None;
        match self.fs.remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                dir = %self.dir.display(),
                error = %e,
                "could not remove an abandoned bulk-load stage; removed at the next open"
            ),
        }
    }
}
