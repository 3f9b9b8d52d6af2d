//! Connecting to etcd, and every call bounded in time.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};

use crate::config::ClusterConfig;
use crate::error::{Error, Result, etcd};

/// Connects to the configured endpoints.
///
/// # Errors
/// [`Error::Etcd`] or [`Error::Timeout`] when no endpoint answers within the call timeout.
pub async fn connect(cfg: &ClusterConfig) -> Result<Client> {
    connect_with(cfg, true).await
}

/// Connects for calls that wait by design (an election campaign waits until every
/// earlier candidate is gone): the same as [`connect`] without a per-request timeout.
///
/// # Errors
/// As [`connect`].
pub async fn connect_for_waiting(cfg: &ClusterConfig) -> Result<Client> {
    connect_with(cfg, false).await
}

async fn connect_with(cfg: &ClusterConfig, request_timeout: bool) -> Result<Client> {
    cfg.validate()?;
    let mut opts = ConnectOptions::new()
        .with_connect_timeout(cfg.call_timeout)
        .with_keep_alive(Duration::from_secs(2), cfg.call_timeout);
    if request_timeout {
        opts = opts.with_timeout(cfg.call_timeout);
    }
    if let Some(ca) = &cfg.etcd_ca
        && cfg.endpoints.iter().all(|e| e.starts_with("https://"))
    {
        let pem = std::fs::read(ca).map_err(|e| {
            Error::Config(format!(
                "reading the etcd CA certificate {}: {e}",
                ca.display()
            ))
        })?;
        opts = opts.with_tls(
            etcd_client::TlsOptions::new().ca_certificate(etcd_client::Certificate::from_pem(pem)),
        );
    }
    bounded(
        "connect",
        cfg.call_timeout,
        Client::connect(cfg.endpoints.clone(), Some(opts)),
    )
    .await
}

/// Runs one etcd call, failing with [`Error::Timeout`] after `limit`.
///
/// # Errors
/// The call's own error, or the timeout.
pub async fn bounded<T>(
    what: &'static str,
    limit: Duration,
    call: impl Future<Output = std::result::Result<T, etcd_client::Error>>,
) -> Result<T> {
    match tokio::time::timeout(limit, call).await {
        Ok(r) => r.map_err(etcd(what)),
        Err(_) => Err(Error::Timeout {
            what,
            millis: limit.as_millis(),
        }),
    }
}
