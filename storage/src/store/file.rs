//! A live HFile of a store: the reader plus the summary the read path prunes with.
//!
//! Placeholder until `hfile` lands: no file can be constructed yet.

use bytes::Bytes;

use crate::cell::{KeyRef, SeqNo};
use crate::error::Result;
use crate::scan::merge::Source;

/// What the read path needs to know about a file without reading it.
#[derive(Clone, Debug, Default)]
pub struct FileSummary {
    pub size: u64,
    pub first_row: Bytes,
    pub last_row: Bytes,
    pub min_ts: u64,
    pub max_ts: u64,
    pub max_seq: SeqNo,
    pub cells: u64,
}

/// An open HFile of a store.
#[derive(Debug)]
pub struct StoreFile {
    pub id: u64,
    pub meta: FileSummary,
}

impl StoreFile {
    /// True if the file may hold cells of `row` (key range and bloom filter).
    pub fn may_contain_row(&self, row: &[u8]) -> bool {
        row >= &self.meta.first_row[..] && row <= &self.meta.last_row[..]
    }

    /// Cells from the first key ≥ `from`.
    ///
    /// # Errors
    /// I/O or checksum errors of the file.
    pub fn iter_from(&self, _from: Option<KeyRef<'_>>) -> Result<Source> {
        Ok(Box::new(std::iter::empty()))
    }

    /// The greatest row strictly below `row` (the last row if `None`).
    ///
    /// # Errors
    /// I/O or checksum errors of the file.
    pub fn last_row_before(&self, _row: Option<&[u8]>) -> Result<Option<Bytes>> {
        Ok(None)
    }
}
