//! Speedlayer's storage engine: an HBase-style log-structured wide-column store.
//!
//! It holds the write-ahead log with group commit, the memstore, immutable sorted HFiles
//! (block index, bloom filter, lz4, CRC32), the manifest, the read path (get and scan with
//! filters) and compaction. It knows nothing of the network.

#![deny(clippy::unwrap_used)]

pub mod cell;
pub mod compaction;
pub mod error;
mod filecfg;
pub mod filter;
pub mod memstore;
pub mod mutation;
pub mod options;
pub mod read;
pub mod scan;
pub mod schema;

pub use cell::{Cell, CellKey, CellKind, KeyRef, SeqNo, Timestamp};
pub use error::{Error, Result};
pub use filter::{CompareOp, Filter};
pub use mutation::{Mutation, MutationOp};
pub use options::{Durability, EngineOptions};
pub use read::{Column, Get, Row, Scan, TimeRange};
pub use schema::{BloomType, Compression, FamilyOptions, Limits, TableSchema};
