//! Speedlayer's storage engine: an HBase-style log-structured wide-column store.
//!
//! It holds the write-ahead log with group commit, the memstore, immutable sorted HFiles
//! (block index, bloom filter, lz4, CRC32), the manifest, the read path (get and scan with
//! filters) and compaction. It knows nothing of the network.

#![deny(clippy::unwrap_used)]

pub mod bulk;
pub mod cache;
pub mod cell;
pub mod coding;
pub mod compaction;
pub mod db;
pub mod error;
pub mod fence;
pub mod files;
pub mod filter;
pub mod fs;
#[doc(hidden)]
pub mod fuzzing;
pub mod hfile;
pub mod log;
pub mod manifest;
pub mod memstore;
pub mod merge;
pub mod mutation;
pub mod options;
pub mod read;
pub mod region;
pub mod scan;
pub mod schema;
pub mod store;
pub mod wal;

pub use bulk::BulkStage;
pub use cell::{Cell, CellKey, CellKind, KeyRef, SeqNo, Timestamp};
pub use db::{BulkLoaded, Db, DbScan, DbStats, DirLock};
pub use error::{Error, Result};
pub use filter::{CompareOp, Filter};
pub use log::RecoveryMode;
pub use mutation::{Mutation, MutationOp};
pub use options::{Clock, EngineOptions};
pub use read::{CellView, Column, Get, ReadOptions, Row, RowView, Scan, TimeRange};
pub use region::RegionInfo;
pub use schema::{BloomType, Compression, FamilyOptions, Limits, TableSchema};
pub use wal::Durability;
