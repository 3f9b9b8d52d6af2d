//! The Rust client of the region server, and the `speedlayer` CLI's logic.
//!
//! It will hold an async client (region cache, retries, batching writer) that knows only
//! the `proto` crate.
