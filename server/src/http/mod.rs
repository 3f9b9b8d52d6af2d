//! The region server's HTTP endpoint (axum): `GET /metrics` (Prometheus text), `GET
//! /health` (200 while serving, 503 once shutdown began), and the web console: its pages
//! at `/` (`console`: HTML, CSS, JS and the vendored chart library, embedded in the
//! binary) and the JSON they read under `/api/` (`api`, `fleet`, `history`).
//!
//! Read-only: every route is a GET and none changes data; a visitor can read what the
//! server hosts, nothing more. The console binds where the HTTP address binds (loopback
//! by default). Each JSON view is bounded (see the modules' limits).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::watch;

use crate::error::ServerError;
use crate::grpc::Backend;
use crate::resp::server::Shared;

pub mod api;
pub mod console;
pub mod fleet;
pub mod history;

/// What the console shows besides what the backend knows: set by the binary.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// The TTL set service of this process, if it runs.
    pub resp: Option<Arc<Shared>>,
    /// Settings and listeners as `(label, value)`, in display order.
    pub about: Vec<(String, String)>,
    /// Region split size (`None`: no local splits).
    pub split_bytes: Option<u64>,
}

impl ConsoleConfig {
    /// Shows the addresses actually bound (a configured port 0 becomes the real port).
    pub fn listening(&mut self, grpc: std::net::SocketAddr, http: std::net::SocketAddr) {
        for (label, value) in &mut self.about {
            match label.as_str() {
                "gRPC listen" => *value = grpc.to_string(),
                "HTTP listen" => *value = http.to_string(),
                _ => {}
            }
        }
    }
}

#[derive(Clone)]
struct HttpState {
    backend: Backend,
    stopping: watch::Receiver<bool>,
    console: ConsoleConfig,
    history: Arc<Mutex<history::History>>,
}

/// The HTTP routes over the shared backend; `stopping` turns `/health` to 503 and ends the
/// console's sampler. Starts the sampler (so call it inside a runtime).
pub fn router(backend: Backend, stopping: watch::Receiver<bool>, console: ConsoleConfig) -> Router {
    let history = Arc::new(Mutex::new(history::History::default()));
    tokio::spawn(history::run(
        backend.clone(),
        console.resp.clone(),
        history.clone(),
        stopping.clone(),
    ));
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/", get(index))
        .route("/api/server", get(server))
        .route("/api/history", get(history_view))
        .route("/api/tables", get(tables))
        .route("/api/tables/{table}/regions/{id}", get(region))
        .route("/api/resp", get(resp))
        .route("/api/resp/key", get(resp_key))
        .route("/api/fleet/flagged", get(flagged))
        .route("/api/fleet/speed", get(speed))
        .route("/api/cluster", get(cluster))
        .merge(console::routes())
        .with_state(HttpState {
            backend,
            stopping,
            console,
            history,
        })
}

fn error(status: StatusCode, msg: String) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

fn server_error(e: ServerError) -> Response {
    match e {
        ServerError::BadRequest(msg) => error(StatusCode::BAD_REQUEST, msg),
        ServerError::Storage(speedlayer_storage::Error::UnknownTable(t)) => {
            error(StatusCode::NOT_FOUND, format!("no table {t:?} here"))
        }
        other => error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Runs a blocking read on the blocking pool, answering JSON or the error.
async fn blocking<T, F>(f: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce() -> Result<T, ServerError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Json(v).into_response(),
        Ok(Err(e)) => server_error(e),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("read failed: {e}"),
        ),
    }
}

/// Cluster mode: the whole cluster as etcd holds it (members, master, every region), read
/// at one revision — the console's cluster view. 404 on a server running alone.
async fn cluster(State(s): State<HttpState>) -> Response {
    let Some(node) = s.backend.cluster.get().cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            "this server runs alone (started without --etcd)".into(),
        );
    };
    match node.status().await {
        Ok(status) => Json(status).into_response(),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("cluster meta (etcd): {e}"),
        ),
    }
}

async fn metrics(State(s): State<HttpState>) -> Response {
    let db = s.backend.db.clone();
    let stats = match tokio::task::spawn_blocking(move || db.stats()).await {
        Ok(stats) => stats,
        Err(e) => {
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stats failed: {e}"),
            )
                .into_response();
        }
    };
    let metrics = s.backend.metrics.clone();
    let cluster = s.backend.cluster.get().cloned();
    let text = tokio::task::spawn_blocking(move || {
        let mut text = metrics.render(&stats);
        if let Some(node) = cluster {
            node.render_metrics(&mut text);
        }
        text
    })
    .await
    .unwrap_or_default();
    (
        [(header::CONTENT_TYPE, speedlayer_metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

async fn index(State(s): State<HttpState>) -> Response {
    let db = s.backend.db.clone();
    match tokio::task::spawn_blocking(move || db.stats()).await {
        Ok(stats) => console::index(&stats).into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stats failed: {e}"),
        ),
    }
}

async fn health(State(s): State<HttpState>) -> Response {
    if *s.stopping.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn server(State(s): State<HttpState>) -> Response {
    let registry = s.backend.metrics.registry();
    let process = registry.process();
    let hosted = s.backend.cluster.get().map(|_| {
        s.backend
            .db
            .hosted_regions()
            .into_iter()
            .map(|(t, id, _)| (t, id))
            .collect()
    });
    Json(api::ServerView {
        binary: process.map_or_else(|| "speedlayer-server".to_owned(), |p| p.binary.clone()),
        version: speedlayer_metrics::build::VERSION,
        commit: speedlayer_metrics::build::GIT_COMMIT,
        profile: speedlayer_metrics::build::PROFILE,
        uptime_s: process.map_or(0.0, |p| p.uptime().as_secs_f64()),
        about: s.console.about.clone(),
        cluster_hosted: hosted,
    })
    .into_response()
}

async fn history_view(State(s): State<HttpState>) -> Response {
    Json(s.history.lock().view()).into_response()
}

async fn tables(State(s): State<HttpState>) -> Response {
    let db = s.backend.db.clone();
    let split = s.console.split_bytes;
    let seen = s.history.lock().last_seen();
    blocking(move || Ok(api::tables(&db, &db.stats(), split, &seen))).await
}

async fn region(State(s): State<HttpState>, Path((table, id)): Path<(String, u64)>) -> Response {
    let db = s.backend.db.clone();
    blocking(move || api::region_files(&db, &table, id).map_err(ServerError::from)).await
}

fn no_resp() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "the TTL set service is not running in this server (--resp-addr off)".into(),
    )
}

async fn resp(State(s): State<HttpState>) -> Response {
    let Some(shared) = s.console.resp.clone() else {
        return no_resp();
    };
    blocking(move || {
        Ok(api::RespPage {
            view: crate::resp::view::view(&shared),
            commands: shared.metrics.command_counts(),
        })
    })
    .await
}

async fn resp_key(
    State(s): State<HttpState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let Some(shared) = s.console.resp.clone() else {
        return no_resp();
    };
    let Some(key) = q.get("key").cloned() else {
        return error(StatusCode::BAD_REQUEST, "missing ?key=".into());
    };
    blocking(move || Ok(api::resp_key(&shared, key.as_bytes()))).await
}

async fn flagged(State(s): State<HttpState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let db = s.backend.db.clone();
    let resp = s.console.resp.clone();
    let day = q.get("day").cloned().unwrap_or_default();
    blocking(move || fleet::flagged(&db, resp.as_deref(), &day)).await
}

async fn speed(State(s): State<HttpState>, Query(q): Query<HashMap<String, String>>) -> Response {
    let db = s.backend.db.clone();
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let (car, from, to) = (get("car"), get("from"), get("to"));
    blocking(move || fleet::speed(&db, &car, &from, &to)).await
}
