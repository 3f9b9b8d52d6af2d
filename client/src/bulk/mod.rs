//! The bulk loader of `speedlayer bulkload` and `speedlayer import`: input lines become
//! cells ([`format`]), are sorted with bounded memory ([`sort`]) and streamed to the
//! server's `BulkLoad`, which writes them into HFiles at its region boundaries and adopts
//! them atomically, one input file per load ([`load`]). Protocol and ordering rules:
//! `storage/docs/bulk_load.md`.
//!
//! It knows the gRPC contract and the SPEC §1 records, never the storage engine.

pub mod format;
pub mod load;
pub mod record;
pub mod sort;

pub use format::{CsvField, CsvMapping, LineFormat};
pub use load::{FileReport, LoadOptions, load_file, load_sorted};
pub use sort::{Sorted, Sorter};

/// Milliseconds since the Unix epoch by the wall clock (0 before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
