//! `speedlayer-server`: the region server and the Redis-protocol TTL set service.
//!
//! It owns a data directory (`data_dir`: its layout and the lock taken before anything
//! else), wires the storage engine to gRPC (`grpc`, `region_server`), serves metrics, health
//! and a status page over HTTP (`http`, `metrics`), and hosts the RESP listener for the
//! TTL set service (`resp`). It knows nothing of Kafka or the ingest pipeline.

#![deny(clippy::unwrap_used)]

pub mod config;
pub mod data_dir;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod region_server;
pub mod resp;
pub mod splitter;

pub use error::ServerError;
pub use region_server::{RegionConfig, RegionServer};
