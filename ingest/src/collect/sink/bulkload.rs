//! The bulkload sink: events are appended to files exactly as the file_roll sink writes
//! them (fsynced before `deliver` returns, rolled by size or age), and every completed file
//! is then bulk-loaded into a table of the region server through the CLI's loader
//! (`speedlayer_client::bulk`: parse, sort with a memory budget, stream, adopted atomically;
//! `storage/docs/bulk_load.md`) and deleted once the server has adopted it. This is
//! Flume's spooled batch files ending up in HBase by `LoadIncrementalHFiles` instead of
//! row-by-row puts.
//!
//! Delivery is at least once: a file is deleted only after the load is acknowledged, and
//! loading a file again stores the same cells (same row, column, timestamp, value). A load
//! that fails (server down, boundaries changed beyond the retries) keeps the file and is
//! retried on the next batch or idle tick; lines the format refuses go to `<file>.bad`
//! beside it, with their reason, and are counted. The loader's runtime is this sink's own
//! (sinks run on plain threads). This module does not parse lines itself.

use std::path::PathBuf;

use speedlayer_client::Client;
use speedlayer_client::bulk::{LoadOptions, load_file};
use speedlayer_vfs::durable;

use super::Sink;
use super::file_roll::{FileRollOptions, FileRollSink};
use crate::collect::Event;
use crate::error::{Error, Result};

/// bulkload sink options.
#[derive(Debug, Clone)]
pub struct BulkLoadSinkOptions {
    /// Where files are written and rolled (as file_roll's options).
    pub roll: FileRollOptions,
    /// Region server gRPC address.
    pub server: String,
    /// The table loaded.
    pub table: String,
    /// How lines become cells, the memory budget, where the sort spills.
    pub load: LoadOptions,
}

/// The bulkload sink.
pub struct BulkLoadSink {
    name: String,
    roll: FileRollSink,
    opts: BulkLoadSinkOptions,
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    /// Files loaded, lines in them, bad lines dead-lettered (for logs).
    loaded: (u64, u64, u64),
}

impl BulkLoadSink {
    /// Creates the sink (its directory, and its loader runtime); files a crash left
    /// completed or in progress are loaded on the first batch or tick.
    ///
    /// # Errors
    /// If the directory or the runtime cannot be created.
    pub fn new(name: &str, opts: BulkLoadSinkOptions) -> Result<Self> {
        let roll = FileRollSink::new(name, opts.roll.clone())?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start", "the bulkload sink's runtime", e))?;
        Ok(BulkLoadSink {
            name: name.to_owned(),
            roll,
            opts,
            rt,
            client: None,
            loaded: (0, 0, 0),
        })
    }

    fn sink_err(&self, reason: String) -> Error {
        Error::Sink {
            sink: self.name.clone(),
            reason,
        }
    }

    /// Completed files (`events-*.log`), oldest first.
    fn completed(&self) -> Result<Vec<PathBuf>> {
        let dir = &self.opts.roll.dir;
        let mut v: Vec<PathBuf> = self
            .opts
            .roll
            .fs
            .read_dir(dir)
            .map_err(|e| Error::io("list", dir, e))?
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("events-") && n.ends_with(".log"))
            })
            .collect();
        v.sort();
        Ok(v)
    }

    /// Loads every completed file, oldest first, deleting each once adopted; stops at the
    /// first failure (the file stays for the next attempt).
    fn load_completed(&mut self) -> Result<()> {
        for path in self.completed()? {
            let client = match &self.client {
                Some(c) => c.clone(),
                None => {
                    let c = self
                        .rt
                        .block_on(Client::connect(&self.opts.server))
                        .map_err(|e| {
                            self.sink_err(format!("connecting to {}: {e}", self.opts.server))
                        })?;
                    self.client = Some(c.clone());
                    c
                }
            };
            let report = self
                .rt
                .block_on(load_file(&client, &self.opts.table, &path, &self.opts.load))
                .map_err(|e| {
                    self.sink_err(format!(
                        "bulk load of {} into {}: {e} (kept; retried)",
                        path.display(),
                        self.opts.table
                    ))
                })?;
            // IMPORTANT: only once the server adopted the file.
            self.opts
                .roll
                .fs
                .remove_file(&path)
                .map_err(|e| Error::io("remove", &path, e))?;
            durable::sync_dir(&*self.opts.roll.fs, &self.opts.roll.dir)?;
            self.loaded.0 += 1;
            self.loaded.1 += report.lines;
            self.loaded.2 += report.bad_lines;
            if report.bad_lines > 0 {
                tracing::warn!(
                    sink = %self.name,
                    file = %path.display(),
                    bad_lines = report.bad_lines,
                    dead_letters = %report.bad_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default(),
                    "bulk-loaded file had bad lines"
                );
            }
            tracing::info!(
                sink = %self.name,
                file = %path.display(),
                table = %self.opts.table,
                lines = report.lines,
                cells = report.adopted.cells,
                files_loaded = self.loaded.0,
                "bulk-loaded a completed file"
            );
        }
        Ok(())
    }
}

impl Sink for BulkLoadSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&mut self, events: &[&Event]) -> Result<()> {
        self.roll.deliver(events)?;
        // The batch is durable in the file now; a failed load is retried later and must not
        // make the runner deliver the batch again.
        if let Err(e) = self.load_completed() {
            tracing::warn!(sink = %self.name, error = %e, "bulk load failed; will retry");
        }
        Ok(())
    }

    fn tick(&mut self) -> Result<()> {
        self.roll.tick()?;
        self.load_completed()
    }

    fn close(&mut self) -> Result<()> {
        self.roll.close()?;
        self.load_completed()
    }
}
