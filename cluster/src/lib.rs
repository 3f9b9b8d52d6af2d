//! Cluster mode of Speedlayer on etcd (issue 12; the design is
//! `server/docs/cluster_design.md`).
//!
//! What exists so far: membership (a lease-bound key per region server carrying its
//! addresses), master election (etcd's election API on the member's lease), lease
//! self-fencing (a member serves only while its lease is confirmed, [`Fence`]) and reading
//! the cluster's state ([`ClusterStatus`]). Meta and assignment in etcd come next.
//!
//! Modules depend one way: `keys`, `info`, `config`, `fence` and `error` know nothing of the
//! others; `client` connects; `member` and `status` use them all.

#![deny(clippy::unwrap_used)]

mod client;
mod config;
mod error;
mod fence;
mod info;
mod keys;
mod member;
mod status;

pub use config::{ClusterConfig, DEFAULT_CLUSTER, DEFAULT_LEASE_TTL};
pub use error::{Error, Result};
pub use fence::Fence;
pub use info::ServerInfo;
pub use keys::{Keys, check_cluster_name};
pub use member::{Addresses, Member, MemberStats};
pub use status::ClusterStatus;
