//! Cluster mode of Speedlayer on etcd (issue 12; the design is
//! `server/docs/cluster_design.md`).
//!
//! Membership (a lease-bound key per region server carrying its addresses), master
//! election (etcd's election API on the member's lease), lease self-fencing (a member
//! serves only while its lease is confirmed, [`Fence`]), meta in etcd (tables, regions and
//! their assignment, changed only by compare-and-swap transactions), the master (assign,
//! fail over, move, balance), the region servers' agent, operators' requests, and reading
//! the cluster's state ([`ClusterStatus`]).
//!
//! Modules depend one way: `keys`, `info`, `config`, `fence` and `error` know nothing of the
//! others; `client` connects; `member` and `status` use them all.

#![deny(clippy::unwrap_used)]

mod agent;
mod assign;
mod changes;
mod client;
mod config;
mod error;
mod fence;
mod info;
mod keys;
mod master;
mod member;
mod meta;
mod region_state;
mod requests;
mod status;

pub use agent::{RegionHost, run_agent};
pub use assign::{
    DEFAULT_BALANCE_MIN_BYTES, MAX_MOVES_AT_ONCE, Step, balance, balance_bytes, in_transition, plan,
};
pub use config::{ClusterConfig, DEFAULT_CLUSTER, DEFAULT_LEASE_TTL};
pub use error::{Error, Result};
pub use fence::Fence;
pub use info::ServerInfo;
pub use keys::{Keys, check_cluster_name};
pub use master::{MasterOptions, MasterStats, live_members, run_master};
pub use member::{Addresses, Member, MemberStats};
pub use meta::{MasterGuard, MetaStore, MetaView, TableMeta, TableState, Versioned, Writer, check};
pub use region_state::{Event, Illegal, RegionMeta, RegionState, hex, unhex};
pub use requests::{
    MoveRequest, Requests, done as request_done, pending as request_pending, read as read_requests,
    request_balance, request_move,
};
pub use status::{ClusterStatus, RegionStatus};

/// Connects to etcd with the configuration's timeouts.
pub use client::connect;

/// The etcd connection type `connect` returns.
pub use etcd_client::Client as EtcdClient;
