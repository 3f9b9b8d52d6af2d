//! `speedlayer-ingest`: the Kafka ingest worker with the overspeed rule engine, the
//! Flume-style collector agent and the smart-car log simulator.

pub mod error;
pub mod rules;

pub use error::{IngestError, Result};
