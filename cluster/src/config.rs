//! Settings of a cluster member and of tools that read the cluster.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::keys::check_cluster_name;

/// Default lease TTL: a dead member's regions can move after at most this long.
pub const DEFAULT_LEASE_TTL: Duration = Duration::from_secs(6);

/// Default cluster name.
pub const DEFAULT_CLUSTER: &str = "speedlayer";

/// Where etcd is and which cluster to join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// etcd client URLs (`http://127.0.0.1:2379`, …).
    pub endpoints: Vec<String>,
    /// Cluster name: one key prefix per cluster, so clusters can share an etcd.
    pub name: String,
    /// Lease TTL; etcd rounds it up to whole seconds, at least 2.
    pub lease_ttl: Duration,
    /// Host name or address other members and clients reach this one at.
    pub advertise_host: String,
    /// Limit of every single etcd call (connect, grant, put, read).
    pub call_timeout: Duration,
    /// A region server's storage root, shared by every server of the cluster (a common
    /// directory on one machine, a shared POSIX file system across machines).
    pub storage_root: Option<std::path::PathBuf>,
    /// While master, balance whenever region counts differ by more than one (else only
    /// when an operator asks).
    pub auto_balance: bool,
    /// While balancing, move regions by size only when the members' bytes differ by at
    /// least this much.
    pub balance_min_bytes: u64,
    /// The CA certificate (PEM file) that signed etcd's, for `https://` endpoints.
    pub etcd_ca: Option<std::path::PathBuf>,
}

impl ClusterConfig {
    /// A configuration with the defaults for `endpoints`.
    pub fn new(endpoints: Vec<String>) -> ClusterConfig {
        ClusterConfig {
            endpoints,
            name: DEFAULT_CLUSTER.to_owned(),
            lease_ttl: DEFAULT_LEASE_TTL,
            advertise_host: "127.0.0.1".to_owned(),
            call_timeout: Duration::from_secs(2),
            storage_root: None,
            auto_balance: true,
            balance_min_bytes: crate::assign::DEFAULT_BALANCE_MIN_BYTES,
            etcd_ca: None,
        }
    }

    /// Splits `--etcd URL[,URL…]`.
    pub fn parse_endpoints(text: &str) -> Vec<String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The lease TTL in whole seconds, as etcd grants it.
    pub fn ttl_secs(&self) -> i64 {
        self.lease_ttl.as_secs_f64().ceil().max(2.0) as i64
    }

    /// Refuses what cannot work.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::Config("no etcd endpoint given".into()));
        }
        for e in &self.endpoints {
            if !(e.starts_with("http://") || e.starts_with("https://")) {
                return Err(Error::Config(format!(
                    "etcd endpoint {e:?} must start with http:// or https://"
                )));
            }
        }
        let https = self
            .endpoints
            .iter()
            .filter(|e| e.starts_with("https://"))
            .count();
        if https != 0 && https != self.endpoints.len() {
            return Err(Error::Config(
                "etcd endpoints mix http:// and https://; use one scheme".into(),
            ));
        }
        if https != 0 && self.etcd_ca.is_none() {
            return Err(Error::Config(
                "https:// etcd endpoints need the CA certificate that signed etcd's (--etcd-ca)"
                    .into(),
            ));
        }
        check_cluster_name(&self.name).map_err(Error::Config)?;
        if self.lease_ttl > Duration::from_secs(3600) {
            return Err(Error::Config(format!(
                "lease TTL {:?} is more than an hour",
                self.lease_ttl
            )));
        }
        if self.advertise_host.is_empty() || self.advertise_host.contains(['/', ' ']) {
            return Err(Error::Config(format!(
                "advertised host {:?} is not a host name or address",
                self.advertise_host
            )));
        }
        Ok(())
    }
}
