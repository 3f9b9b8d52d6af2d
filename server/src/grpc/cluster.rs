//! Cluster mode inside the region server (issue 12; `docs/cluster_design.md`), as the gRPC
//! services see it (it lives here because meta stores schemas in their protobuf form): the glue
//! between the engine's hosted database and `speedlayer-cluster` (membership, meta,
//! master, assignment agent). Tables and regions come from meta in etcd; this server opens
//! and closes the regions meta assigns to it, and answers table and location questions
//! from meta, so any server's address works for a client.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use prost::Message;
use speedlayer_cluster::{
    ClusterConfig, ClusterStatus, Keys, MasterOptions, MasterStats, Member, MetaStore, RegionHost,
    RegionMeta, RegionState, TableMeta, TableState, connect, hex, run_agent, run_master, unhex,
};
use speedlayer_proto as pb;
use speedlayer_storage::{Db, TableSchema};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::Status;

use super::cluster_split::{SplitPolicy, SplitStats};
use super::convert::{schema_from_pb, schema_to_pb};
use crate::error::ServerError;

/// The engine as a region host: regions on the shared storage root, each opened under the
/// member's lease of the moment.
pub struct DbHost {
    db: Arc<Db>,
    leases: RwLock<HashMap<(String, u64), i64>>,
}

impl std::fmt::Debug for DbHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbHost").finish_non_exhaustive()
    }
}

/// A schema as meta stores it: the protobuf encoding, hex, in a JSON object.
pub fn schema_to_meta(schema: &TableSchema) -> serde_json::Value {
    serde_json::json!({ "pb": hex(&schema_to_pb(schema).encode_to_vec()) })
}

/// The schema of a table in meta.
///
/// # Errors
/// A value this version did not write.
pub fn schema_from_meta(meta: &TableMeta) -> Result<TableSchema, String> {
    let text = meta
        .schema
        .get("pb")
        .and_then(|v| v.as_str())
        .ok_or("schema without \"pb\"")?;
    let bytes = unhex(text).ok_or("schema \"pb\" is not hex")?;
    let pb = pb::TableSchema::decode(&bytes[..]).map_err(|e| e.to_string())?;
    schema_from_pb(Some(pb)).map_err(|s| s.message().to_owned())
}

impl RegionHost for DbHost {
    fn open(
        &self,
        table: &str,
        id: u64,
        region: &RegionMeta,
        schema: &TableMeta,
        lease: i64,
    ) -> Result<(), String> {
        let schema = schema_from_meta(schema)?;
        let (Some(start), Some(end)) = (unhex(&region.start), unhex(&region.end)) else {
            return Err("region boundary is not hex".into());
        };
        self.db
            .host_region(
                schema,
                id,
                Bytes::from(start),
                Bytes::from(end),
                region.epoch,
            )
            .map_err(|e| e.to_string())?;
        self.leases.write().insert((table.to_owned(), id), lease);
        Ok(())
    }

    fn close(&self, table: &str, id: u64) -> Result<(), String> {
        self.leases.write().remove(&(table.to_owned(), id));
        self.db.unhost_region(table, id).map_err(|e| e.to_string())
    }

    fn hosted(&self) -> Vec<(String, u64, u64)> {
        self.db.hosted_regions()
    }
}

/// A joined server's cluster side.
pub struct ClusterNode {
    member: Arc<Member>,
    store: MetaStore,
    client: speedlayer_cluster::EtcdClient,
    cfg: ClusterConfig,
    host: Arc<DbHost>,
    /// What the master loop did (while this member was master).
    pub master_stats: Arc<MasterStats>,
    /// What the split loop did.
    pub split_stats: Arc<SplitStats>,
    stop: watch::Sender<bool>,
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
    own_addr: String,
}

impl std::fmt::Debug for ClusterNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterNode")
            .field("member", &self.member.id())
            .finish_non_exhaustive()
    }
}

fn unavailable(e: impl std::fmt::Display) -> Status {
    Status::unavailable(format!("cluster meta (etcd): {e}"))
}

impl ClusterNode {
    /// Starts the master loop and the assignment agent for a joined member.
    ///
    /// # Errors
    /// etcd unreachable.
    pub async fn start(
        cfg: ClusterConfig,
        member: Arc<Member>,
        db: Arc<Db>,
        own_addr: String,
        splits: SplitPolicy,
    ) -> Result<ClusterNode, ServerError> {
        let client = connect(&cfg).await?;
        let store = MetaStore::new(client.clone(), &cfg.name, cfg.call_timeout);
        let keys = Keys::new(&cfg.name);
        let host = Arc::new(DbHost {
            db: db.clone(),
            leases: RwLock::default(),
        });
        let (stop, rx) = watch::channel(false);
        let master_stats = Arc::new(MasterStats::default());
        let master = tokio::spawn(run_master(
            member.clone(),
            client.clone(),
            store.clone(),
            keys.clone(),
            cfg.call_timeout,
            master_stats.clone(),
            MasterOptions {
                auto_balance: cfg.auto_balance,
                storage_root: cfg.storage_root.clone(),
                balance_min_bytes: cfg.balance_min_bytes,
            },
            rx.clone(),
        ));
        let split_stats = Arc::new(SplitStats::default());
        let splitter = tokio::spawn(super::cluster_split::run(
            member.clone(),
            store.clone(),
            db,
            splits,
            split_stats.clone(),
            rx.clone(),
        ));
        let h: Arc<dyn RegionHost> = host.clone();
        let agent = tokio::spawn(run_agent(
            member.clone(),
            client.clone(),
            store.clone(),
            keys,
            cfg.call_timeout,
            h,
            rx,
        ));
        Ok(ClusterNode {
            member,
            store,
            client,
            cfg,
            host,
            master_stats,
            split_stats,
            stop,
            tasks: parking_lot::Mutex::new(vec![master, agent, splitter]),
            own_addr,
        })
    }

    /// `https` when this server's listener has TLS (every member of a cluster is set up
    /// alike), else `http`: the scheme of the locations it reports.
    fn scheme(&self) -> &str {
        self.own_addr.split("://").next().unwrap_or("http")
    }

    /// The cluster as etcd holds it, over this server's connection.
    ///
    /// # Errors
    /// etcd unreachable.
    pub async fn status(&self) -> Result<ClusterStatus, speedlayer_cluster::Error> {
        ClusterStatus::read_with(&self.client, &self.cfg.name, self.cfg.call_timeout).await
    }

    /// The member.
    pub fn member(&self) -> &Arc<Member> {
        &self.member
    }

    /// Whether a region opened under an earlier lease is still held (it must not serve).
    pub fn holds_stale(&self, lease: i64) -> bool {
        self.host.leases.read().values().any(|l| *l != lease)
    }

    /// Creates a table in meta, one region per range between `splits`.
    ///
    /// # Errors
    /// `ALREADY_EXISTS`, `INVALID_ARGUMENT`, `UNAVAILABLE` (etcd).
    pub async fn create_table(
        &self,
        schema: TableSchema,
        splits: Vec<Vec<u8>>,
    ) -> Result<(), Status> {
        schema
            .validate()
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        match self
            .store
            .create_table(&schema.name, schema_to_meta(&schema), &splits)
            .await
        {
            Ok(_) => Ok(()),
            Err(speedlayer_cluster::Error::TableExists(n)) => Err(Status::already_exists(format!(
                "table '{n}' already exists"
            ))),
            Err(speedlayer_cluster::Error::Config(m)) => Err(Status::invalid_argument(m)),
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Marks a table dropped; the master closes its regions and deletes it.
    ///
    /// # Errors
    /// `NOT_FOUND`, `UNAVAILABLE`.
    pub async fn drop_table(&self, name: &str) -> Result<(), Status> {
        match self.store.drop_table(name).await {
            Ok(()) => Ok(()),
            Err(speedlayer_cluster::Error::NoSuchTable(n)) => {
                Err(Status::not_found(format!("table '{n}' does not exist")))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// Every enabled table's schema.
    ///
    /// # Errors
    /// `UNAVAILABLE`, `DATA_LOSS` for a schema this version cannot read.
    pub async fn list_tables(&self) -> Result<Vec<TableSchema>, Status> {
        let view = self.store.load().await.map_err(unavailable)?;
        view.tables
            .values()
            .filter(|t| t.value.state == TableState::Enabled)
            .map(|t| schema_from_meta(&t.value).map_err(Status::data_loss))
            .collect()
    }

    /// A table's schema and its regions' locations: the gRPC address of the server each
    /// region is open (or opening) on; a region on no server is reported here (a request
    /// then gets `NOT_FOUND` and the client locates again).
    ///
    /// # Errors
    /// `NOT_FOUND`, `UNAVAILABLE`.
    pub async fn describe(
        &self,
        table: &str,
    ) -> Result<(TableSchema, Vec<pb::RegionLocation>), Status> {
        let view = self.store.load().await.map_err(unavailable)?;
        let t = view
            .tables
            .get(table)
            .filter(|t| t.value.state == TableState::Enabled)
            .ok_or_else(|| Status::not_found(format!("table '{table}' does not exist")))?;
        let schema = schema_from_meta(&t.value).map_err(Status::data_loss)?;
        let status = ClusterStatus::read_with(&self.client, &self.cfg.name, self.cfg.call_timeout)
            .await
            .map_err(unavailable)?;
        let addr_of = |id: &str| {
            status
                .servers
                .iter()
                .find(|s| s.id == id)
                .map(|s| format!("{}://{}", self.scheme(), s.grpc))
        };
        let mut locations = Vec::new();
        for (id, r) in view.regions.get(table).into_iter().flatten() {
            let r = &r.value;
            if r.state == RegionState::Split {
                continue;
            }
            let server = r.server.as_deref().and_then(addr_of);
            locations.push(pb::RegionLocation {
                region_id: *id,
                table: table.to_owned(),
                start_key: Bytes::from(unhex(&r.start).unwrap_or_default()),
                end_key: Bytes::from(unhex(&r.end).unwrap_or_default()),
                server_addr: server.unwrap_or_else(|| self.own_addr.clone()),
            });
        }
        locations.sort_by(|a, b| a.start_key.cmp(&b.start_key));
        Ok((schema, locations))
    }

    /// The member id `server` names: a member id, or the gRPC address a member advertises.
    async fn member_named(&self, server: &str) -> Result<String, Status> {
        let status = ClusterStatus::read_with(&self.client, &self.cfg.name, self.cfg.call_timeout)
            .await
            .map_err(unavailable)?;
        let wanted = server.trim_start_matches("http://");
        status
            .servers
            .iter()
            .find(|s| s.id == server || s.grpc == wanted)
            .map(|s| s.id.clone())
            .ok_or_else(|| {
                Status::not_found(format!(
                    "no live server {server:?}; `speedlayer cluster status` lists them"
                ))
            })
    }

    /// Moves region `id` of `table` to `server` through the master and waits until it is
    /// open there (or `limit` passes), measuring how long it was not open.
    ///
    /// # Errors
    /// `NOT_FOUND` (table, region, server), `FAILED_PRECONDITION` (split region),
    /// `DEADLINE_EXCEEDED`, `UNAVAILABLE` (etcd).
    pub async fn move_region(
        &self,
        table: &str,
        id: u64,
        server: &str,
        limit: Duration,
    ) -> Result<pb::MoveRegionResponse, Status> {
        let target = self.member_named(server).await?;
        let view = self.store.load().await.map_err(unavailable)?;
        let found;
        let table = if table.is_empty() {
            found = view
                .regions
                .iter()
                .find(|(_, r)| r.contains_key(&id))
                .map(|(t, _)| t.clone())
                .ok_or_else(|| Status::not_found(format!("no table has a region {id}")))?;
            found.as_str()
        } else {
            table
        };
        view.tables
            .get(table)
            .filter(|t| t.value.state == TableState::Enabled)
            .ok_or_else(|| Status::not_found(format!("table '{table}' does not exist")))?;
        let r = view
            .regions
            .get(table)
            .and_then(|r| r.get(&id))
            .map(|r| r.value.clone())
            .ok_or_else(|| Status::not_found(format!("table '{table}' has no region {id}")))?;
        if r.state == RegionState::Split {
            return Err(Status::failed_precondition(format!(
                "region {id} of '{table}' was split; move its daughters"
            )));
        }
        let from = r.server.clone().unwrap_or_default();
        if r.state == RegionState::Open && r.server.as_deref() == Some(target.as_str()) {
            return Ok(pb::MoveRegionResponse {
                from_server: from,
                to_server: target,
                epoch: r.epoch,
                unavailable_micros: 0,
            });
        }
        let keys = Keys::new(&self.cfg.name);
        speedlayer_cluster::request_move(
            &self.client,
            &keys,
            self.cfg.call_timeout,
            table,
            id,
            &target,
        )
        .await
        .map_err(unavailable)?;
        let started = tokio::time::Instant::now();
        let mut closed_at = None;
        let key = keys.move_request(table, id);
        loop {
            // The request first, then meta: a request gone before meta was read means
            // meta already shows what the master did with it.
            let still_asked =
                speedlayer_cluster::request_pending(&self.client, &key, self.cfg.call_timeout)
                    .await
                    .map_err(unavailable)?;
            let view = self.store.load().await.map_err(unavailable)?;
            let now = tokio::time::Instant::now();
            let Some(r) = view
                .regions
                .get(table)
                .and_then(|r| r.get(&id))
                .map(|r| &r.value)
            else {
                return Err(Status::not_found(format!(
                    "region {id} of '{table}' is gone"
                )));
            };
            let open_here =
                r.state == RegionState::Open && r.server.as_deref() == Some(target.as_str());
            if r.state != RegionState::Open && closed_at.is_none() {
                closed_at = Some(now);
            }
            if open_here {
                let unavailable = closed_at.map_or(Duration::ZERO, |t| now - t);
                return Ok(pb::MoveRegionResponse {
                    from_server: from,
                    to_server: target,
                    epoch: r.epoch,
                    unavailable_micros: unavailable.as_micros() as u64,
                });
            }
            // Settled elsewhere with the request consumed: the master dropped it (the
            // target left, the table was dropped) or another move took it elsewhere.
            if !still_asked && r.state == RegionState::Open && r.target.is_none() {
                return Err(Status::failed_precondition(format!(
                    "region {id} of '{table}' did not move to {target} (the target left, or another move took it); it is open on {:?}",
                    r.server
                )));
            }
            if now - started > limit {
                return Err(Status::deadline_exceeded(format!(
                    "region {id} of '{table}' is {:?} on {:?} after {limit:?}",
                    r.state, r.server
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Asks the master for one balancer run and waits until it ran and no region is in
    /// transition (or `limit` passes).
    ///
    /// # Errors
    /// `DEADLINE_EXCEEDED`, `UNAVAILABLE` (etcd).
    pub async fn balance(&self, limit: Duration) -> Result<pb::BalanceResponse, Status> {
        let keys = Keys::new(&self.cfg.name);
        let before = self.store.load().await.map_err(unavailable)?;
        speedlayer_cluster::request_balance(&self.client, &keys, self.cfg.call_timeout)
            .await
            .map_err(unavailable)?;
        let started = tokio::time::Instant::now();
        loop {
            let asked = speedlayer_cluster::request_pending(
                &self.client,
                &keys.balance_request(),
                self.cfg.call_timeout,
            )
            .await
            .map_err(unavailable)?;
            let view = self.store.load().await.map_err(unavailable)?;
            if !asked && !speedlayer_cluster::in_transition(&view) {
                let live =
                    speedlayer_cluster::live_members(&self.client, &keys, self.cfg.call_timeout)
                        .await
                        .map_err(unavailable)?;
                let mut counts: std::collections::BTreeMap<String, u32> =
                    live.into_iter().map(|s| (s, 0)).collect();
                let mut moved = 0;
                for (table, regions) in &view.regions {
                    for (id, r) in regions {
                        let r = &r.value;
                        if r.state == RegionState::Open
                            && let Some(s) = &r.server
                        {
                            *counts.entry(s.clone()).or_default() += 1;
                            let was = before
                                .regions
                                .get(table)
                                .and_then(|b| b.get(id))
                                .and_then(|b| b.value.server.clone());
                            if was.as_deref() != Some(s.as_str()) {
                                moved += 1;
                            }
                        }
                    }
                }
                return Ok(pb::BalanceResponse {
                    servers: counts
                        .into_iter()
                        .map(|(server, regions)| pb::ServerRegionCount { server, regions })
                        .collect(),
                    moved,
                });
            }
            if started.elapsed() > limit {
                return Err(Status::deadline_exceeded(format!(
                    "regions still in transition after {limit:?}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Leaves the cluster: the loops stop, every hosted region is closed (flushed), then
    /// the lease is revoked so the regions move at once.
    pub async fn leave(&self) {
        let _ = self.stop.send(true);
        let tasks: Vec<_> = std::mem::take(&mut *self.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        let host = self.host.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (t, id, _) in host.hosted() {
                if let Err(e) = host.close(&t, id) {
                    tracing::warn!(table = %t, region = id, "closing on leave: {e}");
                }
            }
        })
        .await;
        self.member.leave().await;
    }
}

impl ClusterNode {
    /// The cluster's part of `/metrics` (Prometheus text format): membership, lease,
    /// mastership, the master's transitions and the regions held here.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        use std::sync::atomic::Ordering::Relaxed;
        let m = self.member.stats();
        let fence = self.member.fence();
        let ms = &self.master_stats;
        let hosted = self.host.hosted().len();
        let ss = &self.split_stats;
        let rows: [(&str, &str, &str, u64); 18] = [
            (
                "speedlayer_cluster_is_master",
                "gauge",
                "1 while this server is the elected master.",
                u64::from(m.master),
            ),
            (
                "speedlayer_cluster_lease_serving",
                "gauge",
                "1 while etcd has confirmed this server's lease recently enough to serve.",
                u64::from(fence.serving()),
            ),
            (
                "speedlayer_cluster_hosted_regions",
                "gauge",
                "Regions this server holds open.",
                hosted as u64,
            ),
            (
                "speedlayer_cluster_sessions_total",
                "counter",
                "Cluster sessions (leases) this process started; more than 1 means it lost a lease and joined again.",
                m.sessions,
            ),
            (
                "speedlayer_cluster_leases_lost_total",
                "counter",
                "Leases etcd ended while this process lived.",
                m.leases_lost,
            ),
            (
                "speedlayer_cluster_keepalives_total",
                "counter",
                "Lease keepalives etcd confirmed.",
                m.keepalives,
            ),
            (
                "speedlayer_cluster_keepalive_failures_total",
                "counter",
                "Lease keepalives that failed or went unanswered in time.",
                m.keepalive_failures,
            ),
            (
                "speedlayer_cluster_master_terms_total",
                "counter",
                "Times this server became master.",
                m.master_terms,
            ),
            (
                "speedlayer_cluster_master_assigned_total",
                "counter",
                "Regions this server assigned while master.",
                ms.assigned.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_lost_total",
                "counter",
                "Regions this server took from gone servers while master (failovers).",
                ms.lost.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_closes_total",
                "counter",
                "Regions this server asked to close while master.",
                ms.closes.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_conflicts_total",
                "counter",
                "Master transactions refused because meta had changed (read again and retried).",
                ms.conflicts.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_moves_total",
                "counter",
                "Regions this server moved for operators (admin move) while master.",
                ms.moves.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_balanced_total",
                "counter",
                "Regions the balancer moved while this server was master.",
                ms.balanced.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_balanced_by_size_total",
                "counter",
                "Of the balancer's moves, those made by size because region counts were already even.",
                ms.balanced_by_size.load(Relaxed),
            ),
            (
                "speedlayer_cluster_master_requests_refused_total",
                "counter",
                "Operators' requests dropped because they could never apply.",
                ms.requests_refused.load(Relaxed),
            ),
            (
                "speedlayer_cluster_splits_total",
                "counter",
                "Region splits this server committed in meta.",
                ss.splits.load(Relaxed),
            ),
            (
                "speedlayer_cluster_split_failures_total",
                "counter",
                "Region splits this server abandoned (meta refused, or storage failed).",
                ss.failed.load(Relaxed),
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        }
    }
}

/// How long a graceful leave may take before the lease is simply revoked.
pub const LEAVE_LIMIT: Duration = Duration::from_secs(30);
