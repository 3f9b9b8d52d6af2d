//! The region server's HTTP endpoint (axum): `GET /metrics` (Prometheus text),
//! `GET /health` (200 while serving, 503 once shutdown began) and `GET /` (an HTML status
//! page of tables, regions, memstore and file sizes). Read-only; no writes over HTTP.

use std::fmt::Write;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::grpc::Backend;

#[derive(Clone)]
struct HttpState {
    backend: Backend,
    stopping: watch::Receiver<bool>,
}

/// The HTTP routes over the shared backend; `stopping` turns `/health` to 503.
pub fn router(backend: Backend, stopping: watch::Receiver<bool>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/", get(status_page))
        .with_state(HttpState { backend, stopping })
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
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        {
            let mut text = s.backend.metrics.render(&stats);
            if let Some(node) = s.backend.cluster.get() {
                node.render_metrics(&mut text);
            }
            text
        },
    )
        .into_response()
}

async fn health(State(s): State<HttpState>) -> Response {
    if *s.stopping.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn key(b: &[u8], empty: &str) -> String {
    if b.is_empty() {
        empty.to_string()
    } else {
        esc(&String::from_utf8_lossy(b))
    }
}

async fn status_page(State(s): State<HttpState>) -> Response {
    let db = s.backend.db.clone();
    let (stats, tables) =
        match tokio::task::spawn_blocking(move || (db.stats(), db.list_tables())).await {
            Ok(v) => v,
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("stats failed: {e}"),
                )
                    .into_response();
            }
        };
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>speedlayer region server</title>\
         <style>body{{font-family:sans-serif}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:2px 8px;text-align:right}}</style>\
         </head><body><h1>speedlayer region server</h1><p>gRPC {} &middot; block cache {} hits / {} misses ({} bytes)</p>",
        esc(&s.backend.advertise_addr),
        stats.block_cache_hits,
        stats.block_cache_misses,
        stats.block_cache_bytes
    );
    let _ = write!(
        page,
        "<h2>Tables</h2><table><tr><th>table</th><th>families</th><th>regions</th></tr>"
    );
    for t in &tables {
        let families: Vec<String> = t.families.iter().map(|f| esc(&f.name)).collect();
        let regions = stats.table(&t.name).map_or(0, |st| st.regions.len());
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.name),
            families.join(", "),
            regions
        );
    }
    let _ = write!(
        page,
        "</table><h2>Regions</h2><table><tr><th>table</th><th>region</th><th>start</th><th>end</th>\
         <th>memstore bytes</th><th>files</th><th>file bytes</th><th>flushes</th><th>cells written</th><th>wal syncs</th></tr>"
    );
    for t in &stats.tables {
        for r in &t.regions {
            let files: u64 = r.stores.iter().map(|s| s.files).sum();
            let file_bytes: u64 = r.stores.iter().map(|s| s.file_bytes).sum();
            let _ = write!(
                page,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&t.name),
                r.id,
                key(&r.start, "-&infin;"),
                key(&r.end, "+&infin;"),
                r.memstore_bytes,
                files,
                file_bytes,
                r.flushes,
                r.cells_written,
                r.wal_syncs
            );
        }
    }
    page.push_str("</table></body></html>");
    Html(page).into_response()
}
