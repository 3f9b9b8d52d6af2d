//! The ingest binaries' metrics: the shared Prometheus registry of `speedlayer-metrics`
//! (on `prometheus-client`; one registry per process, with build info and uptime), and an
//! axum router serving it at `/metrics` in the Prometheus text format 0.0.4.
//!
//! This module only re-exports the registry's handles and serves them; the worker's and
//! the collector's series are registered where they are counted (`worker::stats`,
//! `collect::agent`). It is not a general metrics facade: no push gateway, no timestamps.

use std::net::SocketAddr;
use std::sync::Arc;

pub use speedlayer_metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry};

use crate::error::{Error, Result};

/// An axum router serving `GET /metrics` from `registry`.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let r = registry.clone();
            async move {
                (
                    [("content-type", speedlayer_metrics::CONTENT_TYPE)],
                    r.render(),
                )
            }
        }),
    )
}

/// Binds `addr` (e.g. `127.0.0.1:0`) and serves `/metrics` in a background task; returns
/// the bound address.
///
/// # Errors
/// [`Error::Io`] if the address cannot be bound.
pub async fn serve(registry: Arc<Registry>, addr: &str) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io("bind", addr, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr", addr, e))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(registry)).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let r = Registry::new();
        r.counter("x_total", "X.", &[]).add(7);
        let addr = serve(r, "127.0.0.1:0").await.unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("x_total 7"), "{body}");
    }
}
