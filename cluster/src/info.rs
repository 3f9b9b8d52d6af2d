//! What a member publishes about itself under `servers/<id>`.

use serde::{Deserialize, Serialize};

/// A member's addresses and identity, stored as JSON under its lease-bound key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerInfo {
    /// `<advertised-host>:<grpc-port>:<start-ms>`: a restart (or a lost lease) makes a new
    /// member, so nothing of an earlier life is mistaken for this one.
    pub id: String,
    /// gRPC address clients and other servers use.
    pub grpc: String,
    /// HTTP address (metrics, health, status page).
    pub http: String,
    /// RESP address, when the TTL set service runs.
    pub resp: Option<String>,
    /// When this incarnation joined, in Unix milliseconds.
    pub started_ms: u64,
    /// `speedlayer-server`'s version.
    pub version: String,
}

impl ServerInfo {
    /// The member id for a host, gRPC port and start time.
    pub fn make_id(host: &str, grpc_port: u16, started_ms: u64) -> String {
        format!("{host}:{grpc_port}:{started_ms}")
    }
}
