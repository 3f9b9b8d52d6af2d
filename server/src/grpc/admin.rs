//! `speedlayer.v1.Admin`: tables, flushes, compactions, region statistics and lookup.
//! Each method validates its input, calls the engine on the blocking pool and maps errors
//! with [`super::status::to_status`]. No business logic of its own.

use speedlayer_proto as pb;
use speedlayer_proto::admin_server::Admin;
use tonic::{Request, Response, Status};

use std::sync::Arc;

use super::Backend;
use super::cluster::ClusterNode;
use super::convert::{location_to_pb, schema_from_pb, schema_to_pb};
use super::status::to_status;
use crate::metrics::Rpc;

/// The Admin service implementation.
#[derive(Debug, Clone)]
pub struct AdminService {
    backend: Backend,
}

impl AdminService {
    /// A service over `backend`.
    pub fn new(backend: Backend) -> AdminService {
        AdminService { backend }
    }

    /// Cluster mode: the joined node, or `UNAVAILABLE` while joining; `None` alone.
    fn cluster(&self) -> Option<Result<Arc<ClusterNode>, Status>> {
        self.backend.fence.as_ref()?;
        Some(
            self.backend.cluster.get().cloned().ok_or_else(|| {
                Status::unavailable("this server is still joining the cluster; retry")
            }),
        )
    }
}

fn need_table(name: &str) -> Result<(), Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("table name is empty"));
    }
    Ok(())
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn create_table(
        &self,
        request: Request<pb::CreateTableRequest>,
    ) -> Result<Response<pb::CreateTableResponse>, Status> {
        let req = request.into_inner();
        let splits: Vec<Vec<u8>> = req.split_keys.iter().map(|k| k.to_vec()).collect();
        let schema = schema_from_pb(req.schema)?;
        let name = schema.name.clone();
        if let Some(node) = self.cluster() {
            node?.create_table(schema, splits).await?;
            tracing::info!(table = %name, "table created in cluster meta");
            return Ok(Response::new(pb::CreateTableResponse {}));
        }
        if !splits.is_empty() {
            return Err(Status::invalid_argument(
                "split keys at creation need cluster mode; a single server splits regions as they grow",
            ));
        }
        self.backend
            .call(Rpc::CreateTable, move |db| {
                db.create_table(schema).map_err(to_status)
            })
            .await?;
        tracing::info!(table = %name, "table created");
        Ok(Response::new(pb::CreateTableResponse {}))
    }

    async fn delete_table(
        &self,
        request: Request<pb::DeleteTableRequest>,
    ) -> Result<Response<pb::DeleteTableResponse>, Status> {
        let table = request.into_inner().table;
        need_table(&table)?;
        let name = table.clone();
        if let Some(node) = self.cluster() {
            node?.drop_table(&table).await?;
            tracing::info!(table = %name, "table marked dropped in cluster meta");
            return Ok(Response::new(pb::DeleteTableResponse {}));
        }
        self.backend
            .call(Rpc::DeleteTable, move |db| {
                db.drop_table(&table).map_err(to_status)
            })
            .await?;
        tracing::info!(table = %name, "table dropped");
        Ok(Response::new(pb::DeleteTableResponse {}))
    }

    async fn list_tables(
        &self,
        _request: Request<pb::ListTablesRequest>,
    ) -> Result<Response<pb::ListTablesResponse>, Status> {
        let mut tables = match self.cluster() {
            Some(node) => node?.list_tables().await?,
            None => {
                self.backend
                    .call(Rpc::ListTables, |db| Ok(db.list_tables()))
                    .await?
            }
        };
        tables.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Response::new(pb::ListTablesResponse {
            tables: tables.iter().map(schema_to_pb).collect(),
        }))
    }

    async fn describe_table(
        &self,
        request: Request<pb::DescribeTableRequest>,
    ) -> Result<Response<pb::DescribeTableResponse>, Status> {
        let table = request.into_inner().table;
        need_table(&table)?;
        if let Some(node) = self.cluster() {
            let (schema, regions) = node?.describe(&table).await?;
            return Ok(Response::new(pb::DescribeTableResponse {
                schema: Some(schema_to_pb(&schema)),
                regions,
            }));
        }
        let (schema, regions) = self
            .backend
            .call(Rpc::DescribeTable, move |db| {
                let schema = db.describe_table(&table).map_err(to_status)?;
                let regions = db.regions(&table).map_err(to_status)?;
                Ok((schema, regions))
            })
            .await?;
        let addr = &self.backend.advertise_addr;
        Ok(Response::new(pb::DescribeTableResponse {
            schema: Some(schema_to_pb(&schema)),
            regions: regions.iter().map(|r| location_to_pb(r, addr)).collect(),
        }))
    }

    async fn flush(
        &self,
        request: Request<pb::FlushRequest>,
    ) -> Result<Response<pb::FlushResponse>, Status> {
        let table = request.into_inner().table;
        need_table(&table)?;
        self.backend
            .call(Rpc::Flush, move |db| db.flush(&table).map_err(to_status))
            .await?;
        Ok(Response::new(pb::FlushResponse {}))
    }

    async fn compact(
        &self,
        request: Request<pb::CompactRequest>,
    ) -> Result<Response<pb::CompactResponse>, Status> {
        let req = request.into_inner();
        need_table(&req.table)?;
        let major = match pb::CompactionKind::try_from(req.kind) {
            Ok(pb::CompactionKind::Major) => true,
            Ok(pb::CompactionKind::Minor | pb::CompactionKind::Unspecified) => false,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "unknown compaction kind {}",
                    req.kind
                )));
            }
        };
        let table = req.table;
        self.backend
            .call(Rpc::Compact, move |db| {
                db.compact(&table, major).map_err(to_status)
            })
            .await?;
        self.backend.metrics.add_compaction();
        Ok(Response::new(pb::CompactResponse {}))
    }

    async fn region_stats(
        &self,
        request: Request<pb::RegionStatsRequest>,
    ) -> Result<Response<pb::RegionStatsResponse>, Status> {
        let only = request.into_inner().table;
        let stats = self
            .backend
            .call(Rpc::RegionStats, move |db| {
                if let Some(t) = &only {
                    // Refuse unknown tables rather than answering "no regions".
                    db.describe_table(t).map_err(to_status)?;
                }
                let mut stats = db.stats();
                if let Some(t) = &only {
                    stats.tables.retain(|s| &s.name == t);
                }
                Ok(stats)
            })
            .await?;
        let addr = &self.backend.advertise_addr;
        let mut wal_syncs = 0;
        let mut regions = Vec::new();
        for t in &stats.tables {
            for r in &t.regions {
                wal_syncs += r.wal_syncs;
                regions.push(pb::RegionStat {
                    location: Some(pb::RegionLocation {
                        region_id: r.id,
                        table: t.name.clone(),
                        start_key: r.start.clone(),
                        end_key: r.end.clone(),
                        server_addr: addr.to_string(),
                    }),
                    memstore_bytes: r.memstore_bytes,
                    files: r.stores.iter().map(|s| s.files).sum(),
                    file_bytes: r.stores.iter().map(|s| s.file_bytes).sum(),
                    flushes: r.flushes,
                    compactions: r.stores.iter().map(|s| s.compaction.runs).sum(),
                    cells_written: r.cells_written,
                    stores: r
                        .stores
                        .iter()
                        .map(|s| pb::StoreStats {
                            family: s.family.clone(),
                            memstore_bytes: s.memstore_bytes,
                            files: s.files,
                            file_bytes: s.file_bytes,
                        })
                        .collect(),
                });
            }
        }
        Ok(Response::new(pb::RegionStatsResponse {
            regions,
            wal_syncs,
            block_cache_hits: stats.block_cache_hits,
            block_cache_misses: stats.block_cache_misses,
        }))
    }

    async fn locate_region(
        &self,
        request: Request<pb::LocateRegionRequest>,
    ) -> Result<Response<pb::LocateRegionResponse>, Status> {
        let req = request.into_inner();
        need_table(&req.table)?;
        if let Some(node) = self.cluster() {
            let (_, regions) = node?.describe(&req.table).await?;
            let location = regions
                .into_iter()
                .rev()
                .find(|r| r.start_key[..] <= req.row[..])
                .filter(|r| r.end_key.is_empty() || req.row[..] < r.end_key[..]);
            return match location {
                Some(l) => Ok(Response::new(pb::LocateRegionResponse {
                    location: Some(l),
                })),
                None => Err(Status::not_found("no region holds that row")),
            };
        }
        let region = self
            .backend
            .call(Rpc::LocateRegion, move |db| {
                db.locate(&req.table, &req.row).map_err(to_status)
            })
            .await?;
        Ok(Response::new(pb::LocateRegionResponse {
            location: Some(location_to_pb(&region, &self.backend.advertise_addr)),
        }))
    }

    async fn move_region(
        &self,
        request: Request<pb::MoveRegionRequest>,
    ) -> Result<Response<pb::MoveRegionResponse>, Status> {
        let req = request.into_inner();
        let Some(node) = self.cluster() else {
            return Err(Status::failed_precondition(
                "moving a region needs cluster mode; a single server holds every region",
            ));
        };
        let reply = node?
            .move_region(&req.table, req.region_id, &req.server, MOVE_LIMIT)
            .await?;
        Ok(Response::new(reply))
    }

    async fn balance(
        &self,
        _request: Request<pb::BalanceRequest>,
    ) -> Result<Response<pb::BalanceResponse>, Status> {
        let Some(node) = self.cluster() else {
            return Err(Status::failed_precondition(
                "balancing needs cluster mode; a single server holds every region",
            ));
        };
        Ok(Response::new(node?.balance(MOVE_LIMIT).await?))
    }
}

/// How long `MoveRegion` and `Balance` wait for the regions to open where they go: less
/// than the client library's default request timeout (60 s), so the caller gets the reason.
const MOVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(50);
