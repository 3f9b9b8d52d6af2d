//! The key-value surface the db_bench driver needs from an engine.
//!
//! db_bench's four workloads need only put, point get, a forward scan and "start over
//! with an empty database". Keeping that behind a small trait lets the driver's
//! bookkeeping (found counts, byte counts, fresh-database rules) be unit-tested against a
//! `BTreeMap`, while [`crate::speedlayer`] maps it onto the real storage engine.
//!
//! This is not a general storage abstraction: it exists for the benchmark driver only.

use bytes::Bytes;

use crate::error::Result;

/// What the db_bench driver drives.
pub trait KvEngine {
    /// One line saying how writes are made durable (printed in the header).
    fn durability_note(&self) -> String;

    /// Destroys the database and opens an empty one (db_bench's "fresh db").
    ///
    /// # Errors
    /// Any I/O or engine error while removing or reopening.
    fn destroy_and_reopen(&mut self) -> Result<()>;

    /// Writes one key (one write call with one mutation).
    ///
    /// # Errors
    /// The engine's refusal or failure.
    fn put(&mut self, key: Bytes, value: Bytes) -> Result<()>;

    /// Looks `key` up; returns the value's length when found.
    ///
    /// # Errors
    /// The engine's failure.
    fn get(&mut self, key: &[u8]) -> Result<Option<usize>>;

    /// Iterates forward from the first key, calling `visit(key_len, value_len)` for at
    /// most `limit` entries.
    ///
    /// # Errors
    /// The engine's failure.
    fn scan(&mut self, limit: u64, visit: &mut dyn FnMut(usize, usize)) -> Result<()>;

    /// Flushes and closes, as db_bench does at exit (not timed).
    ///
    /// # Errors
    /// The engine's failure.
    fn close(&mut self) -> Result<()>;
}
