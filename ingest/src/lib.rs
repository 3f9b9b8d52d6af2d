//! `speedlayer-ingest`: the Kafka ingest worker with the overspeed rule engine, the
//! Flume-style collector agent and the smart-car log simulator.
//!
//! Layout: [`event`] is the SPEC §1 data model shared by everything; [`kafka`] and
//! [`metrics`] are shared plumbing; [`simulate`] writes car logs; [`collect`] ships them.

pub mod collect;
pub mod error;
pub mod event;
#[doc(hidden)]
pub mod fuzzing;
pub mod kafka;
pub mod metrics;
pub mod rules;
pub mod simulate;
pub mod worker;

pub use error::{Error, ParseError, Result};
