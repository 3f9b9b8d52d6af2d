//! The Kafka ingest worker (issue 6): consume the driving topic in a consumer group, store
//! every event durably, run the rule engine, flag firings, commit only what is safe.
//!
//! - [`config`]: flags, TOML and defaults.
//! - [`consumer`]: group membership, rebalance hooks.
//! - [`run`]: the consume loop: gather, classify, store, fire, commit.
//! - [`classify`]: a batch into rows, dead letters and acks (pure).
//! - [`commit`]: the commit protocol (checkpoint, then offsets), without Kafka.
//! - [`offsets`]: what may be committed (pure).
//! - [`rows`]: row keys and cells of `driving` and `overspeed`.
//! - [`store`]: the region-server operations as a trait; [`grpc_store`]: over gRPC.
//! - [`sets`]: `SADD`/`EXPIRE` on the TTL set service.
//! - [`stats`]: Prometheus metrics.

pub mod classify;
pub mod commit;
pub mod config;
pub mod consumer;
pub mod grpc_store;
pub mod offsets;
pub mod rows;
pub mod run;
pub mod sets;
pub mod stats;
pub mod store;

pub use config::{WorkerArgs, WorkerConfig};
pub use grpc_store::GrpcStore;
pub use run::Worker;
pub use store::{MemoryStore, Store};
