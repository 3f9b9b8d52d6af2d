//! The Kafka ingest worker (issues 6, 15): consume its topics in a consumer group, store
//! every event durably (driving events in `driving`, car status events in `car_status`, as
//! configured per topic), run the rule engine on driving events, flag firings, commit only
//! what is safe.
//!
//! - [`config`]: flags, TOML and defaults; the topic → parser, table, DLQ, rules mapping.
//! - [`topics`]: the worker: one consume loop per topic.
//! - [`consumer`]: group membership, rebalance hooks.
//! - [`run`]: one topic's consume loop: gather, classify, store, fire, commit.
//! - [`classify`]: a batch into rows, dead letters and acks (pure).
//! - [`commit`]: the commit protocol (checkpoint, then offsets), without Kafka.
//! - [`offsets`]: what may be committed (pure).
//! - [`rows`]: row keys and cells of `driving`, `car_status` and `overspeed`.
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
pub mod topics;

pub use config::{Parser, TopicConfig, WorkerArgs, WorkerConfig};
pub use grpc_store::GrpcStore;
pub use run::TopicLoop;
pub use store::{MemoryStore, Store};
pub use topics::Worker;
