//! Temporary stand-ins for `hfile::{Compression, BloomType}` and `wal::Durability` until the
//! on-disk modules land; replaced by re-exports then.

/// Block compression of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Compression {
    None,
    #[default]
    Lz4,
}

/// Bloom filter kind of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum BloomType {
    None,
    #[default]
    Row,
    RowCol,
}

/// Per-write durability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Durability {
    SkipWal,
    #[default]
    Async,
    Sync,
}
