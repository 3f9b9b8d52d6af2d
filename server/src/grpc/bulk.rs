//! `Data.BulkLoad`: a client stream of sorted puts staged into HFiles and adopted
//! atomically when the stream ends normally (`storage/docs/bulk_load.md`).
//!
//! The stream is read on the async side and handed, chunk by chunk, through a channel of
//! [`BULK_CHANNEL_CHUNKS`] slots to one blocking task that owns the storage stage: a slow
//! disk applies back-pressure to the client rather than growing a buffer, and every chunk
//! is bounded by the server's message limit. A stream that breaks (the loader killed, the
//! connection lost) never reaches the commit: the stage is dropped and nothing is adopted.
//! This module does not decide boundaries or ordering; the storage stage does.

use std::time::Instant;

use speedlayer_proto as pb;
use tonic::{Request, Response, Status, Streaming};

use super::Backend;
use super::status::{join_status, to_status};
use crate::metrics::Rpc;

/// Chunks buffered between the stream and the staging task.
pub const BULK_CHANNEL_CHUNKS: usize = 4;
/// Bulk loads staged at once by this process; one more is refused with
/// `RESOURCE_EXHAUSTED` (the loader retries), so loads cannot take every blocking thread
/// and file handle.
pub const MAX_CONCURRENT_BULK_LOADS: usize = 4;

static BULK_LOADS: tokio::sync::Semaphore =
    tokio::sync::Semaphore::const_new(MAX_CONCURRENT_BULK_LOADS);

/// Most families a row-grouped stream may name (`BulkColumn.family` indexes them).
pub const MAX_BULK_FAMILIES: usize = 256;

enum Chunk {
    Cells(Vec<pb::BulkCell>),
    Rows(Vec<pb::BulkRow>),
    /// Packed row groups (`storage/docs/bulk_load.md` §8), decoded by the staging task.
    Packed(bytes::Bytes),
    End,
}

/// The chunk's cells, in whichever form it carries them; a chunk with two is refused.
fn chunk_of(m: pb::BulkLoadRequest) -> Result<Chunk, Status> {
    match (m.cells.is_empty(), m.rows.is_empty(), m.packed.is_empty()) {
        (false, true, true) | (true, true, true) => Ok(Chunk::Cells(m.cells)),
        (true, false, true) => Ok(Chunk::Rows(m.rows)),
        (true, true, false) => Ok(Chunk::Packed(m.packed)),
        _ => Err(Status::invalid_argument(
            "a bulk load chunk carries its cells in more than one form",
        )),
    }
}

/// The family name a row-grouped cell's index names.
fn family_at(families: &[String], index: u32) -> Result<&str, Status> {
    usize::try_from(index)
        .ok()
        .and_then(|i| families.get(i))
        .map(String::as_str)
        .ok_or_else(|| {
            Status::invalid_argument(format!(
                "bulk load column names family {index} of {}",
                families.len()
            ))
        })
}

/// Stages every group of a packed chunk, one row at a time.
fn stage_packed(
    stage: &mut speedlayer_storage::bulk::BulkStage,
    families: &[String],
    packed: &[u8],
) -> Result<(), Status> {
    for group in pb::packed::groups(packed) {
        let group = group.map_err(|e| Status::invalid_argument(e.to_string()))?;
        // A family index outside the table is remembered and reported instead of the
        // stage's own error for its stand-in name (no family is named ""): either way the
        // stage has failed and nothing of the load is adopted. Resolving while the stage
        // walks the cells keeps it to one walk of the group.
        let bad = std::cell::Cell::new(None);
        let cells = group.cells().map(|c| {
            let family = families.get(usize::from(c.family)).map_or_else(
                || {
                    bad.set(Some(c.family));
                    ""
                },
                String::as_str,
            );
            (family, c.qualifier, c.timestamp, c.value)
        });
        let staged = stage.push_row(group.row, cells);
        if let Some(index) = bad.get() {
            family_at(families, u32::from(index))?;
        }
        staged.map_err(to_status)?;
    }
    Ok(())
}

/// Serves one `BulkLoad` call.
///
/// # Errors
/// The status of the first failure: an empty or misnamed stream (`INVALID_ARGUMENT`),
/// storage errors of staging or commit (`ABORTED` when boundaries changed), `CANCELLED`
/// when the stream broke, `RESOURCE_EXHAUSTED` beyond [`MAX_CONCURRENT_BULK_LOADS`].
pub async fn bulk_load(
    backend: &Backend,
    request: Request<Streaming<pb::BulkLoadRequest>>,
) -> Result<Response<pb::BulkLoadResponse>, Status> {
    let started = Instant::now();
    let result = run(backend, request).await;
    let result = result.and_then(|r| backend.fenced().map(|()| r));
    backend
        .metrics
        .observe(Rpc::BulkLoad, started.elapsed(), result.is_ok());
    match &result {
        Ok(r) => backend.metrics.add_cells_in(r.cells),
        Err(s) => {
            tracing::info!(code = ?s.code(), message = s.message(), "bulk load not adopted")
        }
    }
    result.map(Response::new)
}

async fn run(
    backend: &Backend,
    request: Request<Streaming<pb::BulkLoadRequest>>,
) -> Result<pb::BulkLoadResponse, Status> {
    backend.fenced()?;
    let _slot = BULK_LOADS.try_acquire().map_err(|_| {
        Status::resource_exhausted(format!(
            "{MAX_CONCURRENT_BULK_LOADS} bulk loads are already in progress on this server; retry later"
        ))
    })?;
    let mut stream = request.into_inner();
    let first = stream
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("bulk load stream is empty"))?;
    if first.table.is_empty() {
        return Err(Status::invalid_argument(
            "the first bulk load chunk must name the table",
        ));
    }
    if first.abort {
        return Err(Status::cancelled(
            "the loader aborted the bulk load; nothing was adopted",
        ));
    }
    let table = first.table.clone();
    if first.families.len() > MAX_BULK_FAMILIES {
        return Err(Status::invalid_argument(format!(
            "a bulk load may name at most {MAX_BULK_FAMILIES} families"
        )));
    }
    let families = first.families.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(BULK_CHANNEL_CHUNKS);
    let db = backend.db.clone();
    let families_for_stage = families.clone();
    let stage_table = table.clone();
    let worker = tokio::task::spawn_blocking(move || {
        let families = families_for_stage;
        let mut stage = db.stage_bulk_load(&stage_table).map_err(to_status)?;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Chunk::Cells(cells) => {
                    for c in cells {
                        stage
                            .push(&c.row, &c.family, &c.qualifier, c.timestamp, &c.value)
                            .map_err(to_status)?;
                    }
                }
                Chunk::Rows(rows) => {
                    for r in rows {
                        for c in r.columns {
                            let family = family_at(&families, c.family)?;
                            stage
                                .push(&r.row, family, &c.qualifier, c.timestamp, &c.value)
                                .map_err(to_status)?;
                        }
                    }
                }
                Chunk::Packed(packed) => stage_packed(&mut stage, &families, &packed)?,
                Chunk::End => {
                    let done = db.commit_bulk_load(stage).map_err(to_status)?;
                    return Ok(pb::BulkLoadResponse {
                        cells: done.cells,
                        parts: done.parts,
                        regions: done.regions,
                        bytes: done.bytes,
                    });
                }
            }
        }
        Err(Status::cancelled(
            "the bulk load stream broke before its end; nothing was adopted",
        ))
    });
    let mut next = Some(chunk_of(first)?);
    while let Some(chunk) = next.take() {
        // A send fails only when the staging task stopped on an error: report that.
        if tx.send(chunk).await.is_err() {
            break;
        }
        next = match stream.message().await {
            Ok(Some(m)) if !m.table.is_empty() && m.table != table => {
                drop(tx);
                let _ = worker.await;
                return Err(Status::invalid_argument(format!(
                    "a bulk load chunk names table '{}' in a load of '{table}'",
                    m.table
                )));
            }
            Ok(Some(m)) if !m.families.is_empty() && m.families != families => {
                drop(tx);
                let _ = worker.await;
                return Err(Status::invalid_argument(
                    "a later bulk load chunk names other families than the first",
                ));
            }
            Ok(Some(m)) if m.abort => {
                drop(tx);
                let _ = worker.await;
                return Err(Status::cancelled(
                    "the loader aborted the bulk load; nothing was adopted",
                ));
            }
            Ok(Some(m)) => match chunk_of(m) {
                Ok(c) => Some(c),
                Err(status) => {
                    drop(tx);
                    let _ = worker.await;
                    return Err(status);
                }
            },
            Ok(None) => {
                let _ = tx.send(Chunk::End).await;
                None
            }
            Err(status) => {
                tracing::info!(table = %table, error = %status, "bulk load stream broke");
                None
            }
        };
    }
    drop(tx);
    worker.await.map_err(join_status)?
}
