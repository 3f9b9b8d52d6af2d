//! The SPEC §1 records and their parsers: the `speedlayer-events` crate, re-exported so the
//! rest of this crate keeps naming them `crate::event`.

pub use speedlayer_events::event::*;
