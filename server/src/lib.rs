//! `speedlayer-server`: the region server and the Redis-protocol TTL set service.
//!
//! It wires the storage engine to gRPC (regions, splits, metrics, status page) and hosts
//! the RESP listener for the TTL set service.

#![deny(clippy::unwrap_used)]

pub mod config;
pub mod error;
pub mod resp;

pub use error::ServerError;
