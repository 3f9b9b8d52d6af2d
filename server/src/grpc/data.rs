//! `speedlayer.v1.Data`: mutations, gets, streamed scans and check-and-mutate.
//!
//! A scan runs on one blocking task and sends chunks of rows through a channel of
//! [`SCAN_CHANNEL_CHUNKS`] slots, so a slow client applies back-pressure to the scan rather
//! than growing a buffer; when the client goes away the task stops at the next chunk.

use std::pin::Pin;
use std::time::Instant;

use futures::Stream;
use prost::Message;
use speedlayer_proto as pb;
use speedlayer_proto::data_server::Data;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::Backend;
use super::convert::{
    compare_op_from_pb, durability_from_pb, get_from_pb, mutation_from_pb, row_to_pb,
    row_view_to_pb, scan_from_pb,
};
use super::status::to_status;
use crate::metrics::Rpc;

/// Rows per scan message when the request leaves `batch_rows` at 0.
pub const DEFAULT_SCAN_BATCH_ROWS: usize = 256;
/// Most rows per scan message, whatever the request asks.
pub const MAX_SCAN_BATCH_ROWS: usize = 10_000;
/// A scan message is sent early once its rows encode to this many bytes (stays well under
/// any sane client decoding limit).
pub const SCAN_CHUNK_BYTES: usize = 1024 * 1024;
/// Scan chunks buffered between the scanning task and the client.
pub const SCAN_CHANNEL_CHUNKS: usize = 4;

/// The Data service implementation.
#[derive(Debug, Clone)]
pub struct DataService {
    backend: Backend,
}

impl DataService {
    /// A service over `backend`.
    pub fn new(backend: Backend) -> DataService {
        DataService { backend }
    }
}

type ScanStream = Pin<Box<dyn Stream<Item = Result<pb::ScanResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Data for DataService {
    async fn mutate(
        &self,
        request: Request<pb::MutateRequest>,
    ) -> Result<Response<pb::MutateResponse>, Status> {
        let req = request.into_inner();
        if req.table.is_empty() {
            return Err(Status::invalid_argument("table name is empty"));
        }
        let durability = durability_from_pb(req.durability)?;
        let cells: u64 = req.mutations.iter().map(|m| m.ops.len() as u64).sum();
        let batch = req
            .mutations
            .into_iter()
            .map(mutation_from_pb)
            .collect::<Result<Vec<_>, _>>()?;
        let table = req.table;
        self.backend
            .call(Rpc::Mutate, move |db| {
                db.write(&table, batch, durability).map_err(to_status)
            })
            .await?;
        self.backend.metrics.add_cells_in(cells);
        Ok(Response::new(pb::MutateResponse { cells }))
    }

    async fn get(
        &self,
        request: Request<pb::GetRequest>,
    ) -> Result<Response<pb::GetResponse>, Status> {
        let req = request.into_inner();
        let table = req.table.clone();
        let get = get_from_pb(req)?;
        let row = self
            .backend
            .call(Rpc::Get, move |db| db.get(&table, &get).map_err(to_status))
            .await?;
        if row.is_some() {
            self.backend.metrics.add_rows_out(1);
        }
        Ok(Response::new(pb::GetResponse {
            row: row.map(row_to_pb),
        }))
    }

    type ScanStream = ScanStream;

    async fn scan(
        &self,
        request: Request<pb::ScanRequest>,
    ) -> Result<Response<Self::ScanStream>, Status> {
        let req = request.into_inner();
        let table = req.table.clone();
        let batch_rows = match req.batch_rows as usize {
            0 => DEFAULT_SCAN_BATCH_ROWS,
            n => n.min(MAX_SCAN_BATCH_ROWS),
        };
        let scan = scan_from_pb(req)?;
        let started = Instant::now();
        self.backend.fenced()?;
        // Open the scan before answering, so a bad table or family is the call's status.
        let iter = {
            let db = self.backend.db.clone();
            let table = table.clone();
            tokio::task::spawn_blocking(move || db.scan(&table, &scan))
                .await
                .map_err(super::status::join_status)?
        };
        let iter = match iter {
            Ok(it) => it,
            Err(e) => {
                let status = to_status(e);
                self.backend
                    .metrics
                    .observe(Rpc::Scan, started.elapsed(), false);
                return Err(status);
            }
        };
        let (tx, rx) = tokio::sync::mpsc::channel(SCAN_CHANNEL_CHUNKS);
        let metrics = self.backend.metrics.clone();
        let backend = self.backend.clone();
        tokio::task::spawn_blocking(move || {
            let mut chunk = pb::ScanResponse::default();
            let mut chunk_bytes = 0;
            let mut rows = 0u64;
            let mut ok = true;
            let mut iter = iter;
            loop {
                match iter.next_view() {
                    Ok(None) => break,
                    Ok(Some(view)) => {
                        let row = row_view_to_pb(&view);
                        chunk_bytes += row.encoded_len();
                        chunk.rows.push(row);
                        rows += 1;
                        if chunk.rows.len() >= batch_rows || chunk_bytes >= SCAN_CHUNK_BYTES {
                            chunk_bytes = 0;
                            // Every chunk, like every request, only while the lease holds.
                            if let Err(status) = backend.fenced() {
                                ok = false;
                                let _ = tx.blocking_send(Err(status));
                                break;
                            }
                            if tx.blocking_send(Ok(std::mem::take(&mut chunk))).is_err() {
                                // The client went away: stop scanning.
                                ok = false;
                                break;
                            }
                        }
                    }
                    Err(e) => {
                        ok = false;
                        let status = to_status(e);
                        tracing::warn!(table = %table, error = %status.message(), "scan failed");
                        let _ = tx.blocking_send(Err(status));
                        break;
                    }
                }
            }
            if ok && !chunk.rows.is_empty() {
                ok = match backend.fenced() {
                    Ok(()) => tx.blocking_send(Ok(chunk)).is_ok(),
                    Err(status) => {
                        let _ = tx.blocking_send(Err(status));
                        false
                    }
                };
            }
            metrics.add_rows_out(rows);
            metrics.observe(Rpc::Scan, started.elapsed(), ok);
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn bulk_load(
        &self,
        request: Request<Streaming<pb::BulkLoadRequest>>,
    ) -> Result<Response<pb::BulkLoadResponse>, Status> {
        super::bulk::bulk_load(&self.backend, request).await
    }

    async fn check_and_mutate(
        &self,
        request: Request<pb::CheckAndMutateRequest>,
    ) -> Result<Response<pb::CheckAndMutateResponse>, Status> {
        let req = request.into_inner();
        let op = compare_op_from_pb(req.op)?;
        let durability = durability_from_pb(req.durability)?;
        let mutation = req
            .mutation
            .ok_or_else(|| Status::invalid_argument("CheckAndMutate: mutation is missing"))?;
        let mutation = mutation_from_pb(mutation)?;
        if req.expected.is_none() && op != speedlayer_storage::CompareOp::Eq {
            return Err(Status::invalid_argument(
                "CheckAndMutate: an absent expected value means 'column absent' and needs op EQ",
            ));
        }
        let applied = self
            .backend
            .call(Rpc::CheckAndMutate, move |db| {
                db.check_and_mutate(
                    &req.table,
                    &req.row,
                    &req.family,
                    &req.qualifier,
                    op,
                    req.expected,
                    mutation,
                    durability,
                )
                .map_err(to_status)
            })
            .await?;
        Ok(Response::new(pb::CheckAndMutateResponse { applied }))
    }
}
