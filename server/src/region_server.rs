//! The region server's lifecycle: open the database (which replays WALs), bind the gRPC
//! and HTTP listeners, serve until told to stop, then shut down gracefully — stop
//! accepting, let in-flight requests finish, flush memstores and sync (`Db::close`).
//!
//! The gRPC endpoint carries `speedlayer.v1.Admin`, `speedlayer.v1.Data`, the standard
//! health service and server reflection; a background task (`splitter`) splits regions
//! that outgrow the split size. Flag parsing lives in `config`; the services in
//! `grpc` and `http`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use speedlayer_cluster::Fence;
use speedlayer_proto::admin_server::AdminServer;
use speedlayer_proto::data_server::DataServer;
use speedlayer_storage::{Db, EngineOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::interceptor::InterceptedService;

use crate::error::ServerError;
use crate::grpc::Backend;
use crate::grpc::admin::AdminService;
use crate::grpc::auth::{TokenCheck, tls_config};
use crate::grpc::data::DataService;
use crate::metrics::Metrics;

/// Default largest gRPC message accepted: 64 MiB, the storage engine's batch limit.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long graceful shutdown waits for in-flight gRPC requests before closing them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Settings of the region server (built by `config` from flags and TOML).
#[derive(Debug, Clone)]
pub struct RegionConfig {
    /// Where the tables live (`<data-dir>/regions`).
    pub dir: PathBuf,
    /// gRPC listen address (default `127.0.0.1:16020`).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address for metrics, health and status (default `127.0.0.1:16030`).
    pub http_addr: SocketAddr,
    /// Largest encoded gRPC request accepted; larger ones fail with `OUT_OF_RANGE` before
    /// any decoding (default 64 MiB).
    pub max_message_bytes: usize,
    /// Concurrent requests per HTTP/2 connection (default 256); more wait for a slot.
    pub max_concurrent_streams: u32,
    /// How often regions are checked against `engine.region_split_bytes` (default 1 s).
    pub split_check_interval: Duration,
    /// Storage engine options (memstore size, region split size, limits...).
    pub engine: EngineOptions,
    /// Cluster mode: the lease self-fence every request checks (`None` alone).
    pub fence: Option<Arc<Fence>>,
    /// Cluster mode: the storage root every server shares; the database is opened hosted
    /// there (`Db::open_hosted`) instead of over `dir`.
    pub hosted_root: Option<PathBuf>,
    /// TLS on the gRPC listener: certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS on the gRPC listener: private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The bearer token Admin, Data and reflection requests must carry.
    pub token_file: Option<PathBuf>,
    /// The process's Prometheus registry (default: a fresh one for `speedlayer-server`);
    /// the binary passes the one the RESP service's series are included in.
    pub registry: Arc<speedlayer_metrics::Registry>,
    /// What the web console shows about this server and serves of the TTL set service.
    pub console: crate::http::ConsoleConfig,
}

impl RegionConfig {
    /// `https` with TLS on the listener, else `http`: the scheme of the addresses this
    /// server reports to clients.
    pub fn scheme(&self) -> &'static str {
        if self.tls_cert.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// Defaults for a data directory.
    pub fn new(dir: PathBuf) -> RegionConfig {
        RegionConfig {
            dir,
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 16020)),
            http_addr: SocketAddr::from(([127, 0, 0, 1], 16030)),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_concurrent_streams: 256,
            split_check_interval: Duration::from_secs(1),
            engine: EngineOptions::default(),
            fence: None,
            hosted_root: None,
            tls_cert: None,
            tls_key: None,
            token_file: None,
            registry: speedlayer_metrics::Registry::for_binary("speedlayer-server"),
            console: crate::http::ConsoleConfig::default(),
        }
    }
}

/// The descriptor sets reflection serves: every service on the gRPC port.
///
/// Both reflection versions get all of them, since a client picks one version (grpcurl
/// 1.8.6 asks only v1alpha; later releases try v1 first) and then expects to see, describe
/// and call every service through it.
const REFLECTED_DESCRIPTOR_SETS: [&[u8]; 4] = [
    speedlayer_proto::FILE_DESCRIPTOR_SET,
    tonic_health::pb::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
    tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
];

/// A reflection builder holding [`REFLECTED_DESCRIPTOR_SETS`].
///
/// The builder's own `include_reflection_service` adds only the version being built;
/// registering both here lists both, and the builder keeps one copy of a file seen twice.
fn reflection_builder() -> tonic_reflection::server::Builder<'static> {
    REFLECTED_DESCRIPTOR_SETS.iter().fold(
        tonic_reflection::server::Builder::configure(),
        |builder, set| builder.register_encoded_file_descriptor_set(set),
    )
}

/// A running region server.
pub struct RegionServer {
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    backend: Backend,
    stop: watch::Sender<bool>,
    grpc_task: JoinHandle<Result<(), tonic::transport::Error>>,
    http_task: JoinHandle<std::io::Result<()>>,
    split_task: JoinHandle<()>,
    health: tonic_health::server::HealthReporter,
}

impl std::fmt::Debug for RegionServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegionServer")
            .field("grpc_addr", &self.grpc_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

impl RegionServer {
    /// Opens the database and starts serving. Returns once both listeners are bound.
    ///
    /// # Errors
    /// Storage errors opening the data directory, bind failures, reflection set-up.
    pub async fn start(config: RegionConfig) -> Result<RegionServer, ServerError> {
        let dir = config.dir.clone();
        let engine = config.engine.clone();
        let hosted_root = config.hosted_root.clone();
        let db = tokio::task::spawn_blocking(move || match hosted_root {
            Some(root) => Db::open_hosted(&root, engine),
            None => Db::open(&dir, engine),
        })
        .await
        .map_err(|e| ServerError::Task {
            what: "open database",
            reason: e.to_string(),
        })??;
        log_recovered(&db);
        let db = Arc::new(db);

        let grpc_listener = bind(config.grpc_addr).await?;
        let http_listener = bind(config.http_addr).await?;
        let grpc_addr = local_addr(&grpc_listener, config.grpc_addr)?;
        let http_addr = local_addr(&http_listener, config.http_addr)?;

        let backend = Backend {
            db,
            metrics: Arc::new(Metrics::new(config.registry.clone())),
            advertise_addr: Arc::from(format!("{}://{grpc_addr}", config.scheme())),
            fence: config.fence.clone(),
            cluster: Arc::default(),
        };
        let (stop, stop_rx) = watch::channel(false);

        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<AdminServer<AdminService>>().await;
        health.set_serving::<DataServer<DataService>>().await;
        let reflection_v1 = reflection_builder()
            .build_v1()
            .map_err(|e| ServerError::Grpc {
                what: "reflection v1",
                reason: e.to_string(),
            })?;
        let reflection_v1alpha =
            reflection_builder()
                .build_v1alpha()
                .map_err(|e| ServerError::Grpc {
                    what: "reflection v1alpha",
                    reason: e.to_string(),
                })?;

        let max = config.max_message_bytes;
        let token = match &config.token_file {
            Some(path) => TokenCheck::from_file(path)?,
            None => TokenCheck::open(),
        };
        let guard = |t: &TokenCheck| {
            let t = t.clone();
            move |req| t.check(req)
        };
        let admin = AdminServer::new(AdminService::new(backend.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let data = DataServer::new(DataService::new(backend.clone()))
            .max_decoding_message_size(max)
            .max_encoding_message_size(max);
        let mut builder = tonic::transport::Server::builder();
        if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            builder =
                builder
                    .tls_config(tls_config(cert, key)?)
                    .map_err(|e| ServerError::Grpc {
                        what: "TLS configuration",
                        reason: e.to_string(),
                    })?;
        }
        let router = builder
            .max_concurrent_streams(config.max_concurrent_streams)
            .http2_keepalive_interval(Some(Duration::from_secs(30)))
            .add_service(health_service)
            .add_service(InterceptedService::new(reflection_v1, guard(&token)))
            .add_service(InterceptedService::new(reflection_v1alpha, guard(&token)))
            .add_service(InterceptedService::new(admin, guard(&token)))
            .add_service(InterceptedService::new(data, guard(&token)));
        let mut grpc_stop = stop_rx.clone();
        let grpc_task = tokio::spawn(router.serve_with_incoming_shutdown(
            TcpListenerStream::new(grpc_listener),
            async move {
                let _ = grpc_stop.wait_for(|s| *s).await;
            },
        ));

        // Cluster mode splits through meta (`grpc::cluster_split`): no local splits there.
        let split_bytes = match config.hosted_root {
            Some(_) => u64::MAX,
            None => config.engine.region_split_bytes,
        };
        let split_task = tokio::spawn(crate::splitter::run(
            backend.clone(),
            split_bytes,
            config.split_check_interval,
            stop_rx.clone(),
        ));
        let mut console = config.console.clone();
        console.listening(grpc_addr, http_addr);
        let app = crate::http::router(backend.clone(), stop_rx.clone(), console);
        let mut http_stop = stop_rx;
        let http_task = tokio::spawn(async move {
            axum::serve(http_listener, app)
                .with_graceful_shutdown(async move {
                    let _ = http_stop.wait_for(|s| *s).await;
                })
                .await
        });
        tracing::info!(grpc = %grpc_addr, http = %http_addr, "region server listening");
        Ok(RegionServer {
            grpc_addr,
            http_addr,
            backend,
            stop,
            grpc_task,
            http_task,
            split_task,
            health,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The shared database and metrics.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// Graceful shutdown: health turns NOT_SERVING, listeners stop accepting, in-flight
    /// requests finish, then memstores are flushed and the WAL synced.
    ///
    /// # Errors
    /// Failures of the servers or of `Db::close` (the data is then only as durable as the
    /// WAL made it; the next start replays it).
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.health
            .set_not_serving::<AdminServer<AdminService>>()
            .await;
        self.health
            .set_not_serving::<DataServer<DataService>>()
            .await;
        let _ = self.stop.send(true);
        // In-flight requests get SHUTDOWN_GRACE; a stream that never ends (a health Watch,
        // an abandoned scan) must not keep the server from flushing and exiting.
        let mut grpc_task = self.grpc_task;
        let grpc = match tokio::time::timeout(SHUTDOWN_GRACE, &mut grpc_task).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!(
                    grace = ?SHUTDOWN_GRACE,
                    "requests still open after the grace period; closing them"
                );
                grpc_task.abort();
                Ok(Ok(()))
            }
        };
        let http = self.http_task.await;
        // A split in progress finishes before the database closes.
        if let Err(e) = self.split_task.await {
            tracing::warn!("split task ended abnormally: {e}");
        }
        let db = self.backend.db.clone();
        // IMPORTANT: close only after the servers stopped, so no acknowledged write is
        // applied after the final flush.
        let closed = tokio::task::spawn_blocking(move || db.close())
            .await
            .map_err(|e| ServerError::Task {
                what: "close database",
                reason: e.to_string(),
            })?;
        match grpc {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Err(ServerError::Grpc {
                    what: "serve",
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                return Err(ServerError::Task {
                    what: "gRPC server",
                    reason: e.to_string(),
                });
            }
        }
        if let Ok(Err(e)) | Err(e) = http.map_err(std::io::Error::other) {
            tracing::warn!("HTTP server ended with an error: {e}");
        }
        closed?;
        tracing::info!("region server stopped; memstores flushed and WAL synced");
        Ok(())
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

fn local_addr(l: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, ServerError> {
    l.local_addr().map_err(|source| ServerError::Bind {
        addr: asked,
        source,
    })
}

/// Logs what the open found: tables, regions and the cells waiting in memstores (which
/// after a restart are exactly what the WAL replay recovered).
fn log_recovered(db: &Db) {
    let stats = db.stats();
    for t in &stats.tables {
        let memstore: u64 = t.regions.iter().map(|r| r.memstore_bytes).sum();
        tracing::info!(
            table = %t.name,
            regions = t.regions.len(),
            files = t.files(),
            recovered_memstore_bytes = memstore,
            "table opened (WAL replayed)"
        );
    }
}
