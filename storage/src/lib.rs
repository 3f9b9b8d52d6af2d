//! Speedlayer's storage engine: an HBase-style log-structured wide-column store.
//!
//! It holds the write-ahead log with group commit, the memstore, immutable sorted HFiles
//! (block index, bloom filter, lz4, CRC32), the manifest, the read path (get and scan with
//! filters) and compaction. It knows nothing of the network.

#![deny(clippy::unwrap_used)]

pub mod cell;
pub mod compaction;
pub mod error;

pub use cell::{Cell, CellKey, CellKind, KeyRef, SeqNo, Timestamp};
pub use error::{Error, Result};
