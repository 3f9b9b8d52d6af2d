//! The region server's gRPC services: `speedlayer.v1.Admin` ([`admin`]) and
//! `speedlayer.v1.Data` ([`data`]) over one shared [`Backend`], plus the conversions
//! ([`convert`]) and error mapping ([`status`]) they use.
//!
//! Storage calls block (fsync, file reads), so each runs on tokio's blocking pool; a scan
//! runs on one blocking task that streams chunks through a bounded channel. This module
//! does not bind sockets: `region_server` does.

pub mod admin;
pub mod auth;
pub mod bulk;
pub mod cluster;
pub mod cluster_split;
pub mod convert;
pub mod data;
pub mod status;

use std::sync::Arc;
use std::time::Instant;

use speedlayer_cluster::Fence;
use speedlayer_storage::Db;
use tonic::Status;

use crate::metrics::{Metrics, Rpc};

/// What the services share: the database, the metrics and how this server is addressed.
#[derive(Debug, Clone)]
pub struct Backend {
    /// The storage engine.
    pub db: Arc<Db>,
    /// Request counters.
    pub metrics: Arc<Metrics>,
    /// The address clients reach this server at, reported in region locations.
    pub advertise_addr: Arc<str>,
    /// Cluster mode's lease self-fence (`server/docs/cluster_design.md` §5a): while etcd has
    /// not confirmed this member's lease recently enough, nothing is served or
    /// acknowledged. `None` alone (single-node mode).
    pub fence: Option<Arc<Fence>>,
    /// Cluster mode: set once this server has joined (meta, assignment, region host).
    pub cluster: Arc<std::sync::OnceLock<Arc<cluster::ClusterNode>>>,
}

impl Backend {
    /// Runs a blocking storage call on the blocking pool, timing it into the metrics.
    pub async fn call<T, F>(&self, rpc: Rpc, f: F) -> Result<T, Status>
    where
        F: FnOnce(&Db) -> Result<T, Status> + Send + 'static,
        T: Send + 'static,
    {
        let started = Instant::now();
        let db = self.db.clone();
        let result = match self.fenced() {
            Err(s) => Err(s),
            Ok(()) => tokio::task::spawn_blocking(move || f(&db))
                .await
                .map_err(status::join_status)
                .and_then(|r| r),
        };
        // Checked again after the call: a write that finished after the lease stopped
        // being confirmed is not acknowledged (its outcome is unknown to the client, which
        // retries; puts are idempotent by key and timestamp).
        let result = result.and_then(|r| self.fenced().map(|()| r));
        self.metrics.observe(rpc, started.elapsed(), result.is_ok());
        if let Err(s) = &result {
            tracing::debug!(rpc = rpc.name(), code = ?s.code(), message = s.message(), "request failed");
        }
        result
    }

    /// `UNAVAILABLE` while the cluster lease is not confirmed; always `Ok` alone.
    ///
    /// # Errors
    /// The status to answer with.
    pub fn fenced(&self) -> Result<(), Status> {
        match &self.fence {
            Some(f) if !f.serving() => Err(Status::unavailable(
                "this server's cluster lease is not confirmed by etcd, so it serves nothing \
                 until it is; retry (another server may hold the data now)",
            )),
            Some(f) if self.cluster.get().is_some_and(|n| n.holds_stale(f.lease())) => {
                Err(Status::unavailable(
                    "this server joined the cluster again and is letting go of the regions of \
                     its earlier membership; retry",
                ))
            }
            _ => Ok(()),
        }
    }
}
