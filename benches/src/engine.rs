//! The key-value surface the db_bench driver needs from an engine.
//!
//! db_bench's workloads need only put, point get, a forward scan from a key and "start
//! over with an empty database". The data operations take `&self` and the trait is `Sync`,
//! so the multi-threaded workloads (`--threads=N`, `readwhilewriting`) share one engine
//! between threads, as db_bench shares one `DB*`. Keeping that behind a small trait lets the driver's
//! bookkeeping (found counts, byte counts, fresh-database rules) be unit-tested against a
//! `BTreeMap`, while [`crate::speedlayer`] maps it onto the real storage engine.
//!
//! This is not a general storage abstraction: it exists for the benchmark driver only.

use bytes::Bytes;

use crate::error::Result;

/// What the db_bench driver drives.
pub trait KvEngine: Sync {
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
    fn put(&self, key: Bytes, value: Bytes) -> Result<()>;

    /// Looks `key` up; returns the value's length when found.
    ///
    /// # Errors
    /// The engine's failure.
    fn get(&self, key: &[u8]) -> Result<Option<usize>>;

    /// Iterates forward from the first key `>= start` (from the first key if `None`),
    /// calling `visit(key, value_len)` for at most `limit` entries.
    ///
    /// # Errors
    /// The engine's failure.
    fn scan(
        &self,
        start: Option<&[u8]>,
        limit: u64,
        visit: &mut dyn FnMut(&[u8], usize),
    ) -> Result<()>;

    /// Flushes and closes, as db_bench does at exit (not timed).
    ///
    /// # Errors
    /// The engine's failure.
    fn close(&mut self) -> Result<()>;
}
