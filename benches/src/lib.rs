//! Criterion benches and comparison drivers: a `db_bench`-compatible driver for the storage
//! engine, and scripts that run RocksDB's `db_bench` and `redis-server` in the same run.
//!
//! The driver is split by concept: [`flags`] (db_bench's command line), [`keys`] and
//! [`values`] (db_bench's key and value generation), [`stats`] (report lines), [`driver`]
//! (the workloads, over the [`engine::KvEngine`] trait), [`speedlayer`] (that trait over
//! the storage engine) and [`rss`] (peak memory). The
//! `dbbench` binary wires them to the real engine.
//!
//! This crate is not part of the product: nothing here runs in the server.

pub mod driver;
pub mod engine;
pub mod error;
pub mod flags;
pub mod keys;
pub mod rss;
pub mod speedlayer;
pub mod stats;
pub mod values;

pub use error::{BenchError, Result};
