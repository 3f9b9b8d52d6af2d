//! The SPEC §1 records, shared by everything that reads log lines: the driving and car
//! status events with their strict parsers ([`event`]), the reason a line is bad
//! ([`ParseError`]), and how a status event becomes a `car_status` row ([`status_row`]).
//!
//! It knows no network, no Kafka and no storage: the ingest worker and the `speedlayer`
//! CLI's bulk loader (crates that cannot depend on each other) both use it, so a status
//! line becomes the same row whichever path stores it.

pub mod error;
pub mod event;
pub mod status_row;

pub use error::ParseError;
pub use event::*;
