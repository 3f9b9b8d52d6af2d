//! Table schemas: column families with their options, and the size limits every write is
//! checked against.
//!
//! This module only describes tables; it does not store them (the catalog in `db/` does)
//! and does not enforce anything itself beyond [`Limits::check_cell`].

use crate::error::{Error, Result};

pub use crate::hfile::{BloomType, Compression};

/// Default data block size of a family's files: 64 KiB.
pub const DEFAULT_BLOCK_SIZE: u32 = 64 * 1024;

/// How a family picks minor compactions. Part of the family's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum CompactionStyle {
    /// HBase's exploring (ratio-based) selection over adjacent files. The default.
    #[default]
    Exploring,
    /// Time windows by each file's newest timestamp; only files of one window merge.
    /// Meant for time-series families written roughly in time order.
    DateTiered {
        /// Size of the newest windows in ms (e.g. 1 hour). Values below 1 are treated as 1.
        base_window_ms: u64,
        /// How many windows of one size before the next tier's windows are this many times
        /// larger (the growth factor). Values below 2 are treated as 2.
        windows_per_tier: u64,
        /// Files whose newest cell is older than this (relative to now) are left alone.
        max_tier_age_ms: u64,
    },
}

/// Options of one column family. Every store of the family (one per region) uses them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyOptions {
    /// Family name (non-empty, at most 255 bytes, no `/`: it names a directory).
    pub name: String,
    /// Versions a read returns at most per column (default 1). Older versions stay on disk
    /// until compaction drops them; reads hide them.
    pub max_versions: u32,
    /// Cells older than this (now − timestamp > ttl) are invisible (default: forever).
    pub ttl_ms: Option<u64>,
    /// Block compression of the family's files (default lz4).
    pub compression: Compression,
    /// Bloom filter of the family's files (default: by row).
    pub bloom: BloomType,
    /// Target uncompressed size of a data block (default 64 KiB).
    pub block_size: u32,
    /// How minor compactions pick files (default exploring; date-tiered for time series).
    pub compaction: CompactionStyle,
}

impl FamilyOptions {
    /// A family with the defaults: 1 version, no TTL, lz4, row bloom, 64 KiB blocks.
    pub fn new(name: impl Into<String>) -> Self {
        FamilyOptions {
            name: name.into(),
            max_versions: 1,
            ttl_ms: None,
            compression: Compression::Lz4,
            bloom: BloomType::Row,
            block_size: DEFAULT_BLOCK_SIZE,
            compaction: CompactionStyle::Exploring,
        }
    }

    /// Sets `max_versions` (builder style).
    pub fn max_versions(mut self, n: u32) -> Self {
        self.max_versions = n;
        self
    }

    /// Sets the TTL in milliseconds (builder style).
    pub fn ttl_ms(mut self, ttl: u64) -> Self {
        self.ttl_ms = Some(ttl);
        self
    }
}

/// A table: its name and its column families.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSchema {
    /// Table name (non-empty, at most 255 bytes of `[A-Za-z0-9_.-]`: it names a directory).
    pub name: String,
    /// The families; at least one, names unique.
    pub families: Vec<FamilyOptions>,
}

impl TableSchema {
    /// A table with the given families.
    pub fn new(name: impl Into<String>, families: Vec<FamilyOptions>) -> Self {
        TableSchema {
            name: name.into(),
            families,
        }
    }

    /// The options of family `name`, if the table has it.
    pub fn family(&self, name: &[u8]) -> Option<&FamilyOptions> {
        self.families.iter().find(|f| f.name.as_bytes() == name)
    }

    /// Checks names and options.
    ///
    /// # Errors
    /// `InvalidArgument` naming the first problem found.
    pub fn validate(&self) -> Result<()> {
        valid_name("table", &self.name)?;
        if self.families.is_empty() {
            return Err(Error::InvalidArgument(format!(
                "table '{}' has no column family",
                self.name
            )));
        }
        for (i, f) in self.families.iter().enumerate() {
            valid_name("family", &f.name)?;
            if self.families[..i].iter().any(|g| g.name == f.name) {
                return Err(Error::InvalidArgument(format!(
                    "family '{}' appears twice in table '{}'",
                    f.name, self.name
                )));
            }
            if f.max_versions == 0 {
                return Err(Error::InvalidArgument(format!(
                    "family '{}': max_versions must be at least 1",
                    f.name
                )));
            }
            if f.block_size < 256 || f.block_size > 16 * 1024 * 1024 {
                return Err(Error::InvalidArgument(format!(
                    "family '{}': block_size {} outside 256 B ..= 16 MiB",
                    f.name, f.block_size
                )));
            }
        }
        Ok(())
    }
}

fn valid_name(what: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "{what} name '{name}' must be 1..=255 bytes of [A-Za-z0-9_.-]"
        )))
    }
}

/// Size limits on what a write may carry. Violations are `InvalidArgument` errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest row key (default 4 KiB).
    pub max_row_bytes: usize,
    /// Longest qualifier (default 1 KiB).
    pub max_qualifier_bytes: usize,
    /// Largest value (default 10 MiB).
    pub max_value_bytes: usize,
    /// Largest write request, summed over its cells (default 64 MiB).
    pub max_batch_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_row_bytes: 4 * 1024,
            max_qualifier_bytes: 1024,
            max_value_bytes: 10 * 1024 * 1024,
            max_batch_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks a row key: non-empty and within `max_row_bytes`.
    ///
    /// # Errors
    /// `InvalidArgument` with the sizes involved.
    pub fn check_row(&self, row: &[u8]) -> Result<()> {
        if row.is_empty() {
            return Err(Error::InvalidArgument("row key is empty".into()));
        }
        if row.len() > self.max_row_bytes {
            return Err(Error::InvalidArgument(format!(
                "row key of {} bytes exceeds the limit of {} bytes",
                row.len(),
                self.max_row_bytes
            )));
        }
        Ok(())
    }

    /// Checks a qualifier and a value against their limits.
    ///
    /// # Errors
    /// `InvalidArgument` with the sizes involved.
    pub fn check_cell(&self, qualifier: &[u8], value: &[u8]) -> Result<()> {
        if qualifier.len() > self.max_qualifier_bytes {
            return Err(Error::InvalidArgument(format!(
                "qualifier of {} bytes exceeds the limit of {} bytes",
                qualifier.len(),
                self.max_qualifier_bytes
            )));
        }
        if value.len() > self.max_value_bytes {
            return Err(Error::InvalidArgument(format!(
                "value of {} bytes exceeds the limit of {} bytes",
                value.len(),
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_spec() {
        let f = FamilyOptions::new("cf1");
        assert_eq!(f.max_versions, 1);
        assert_eq!(f.ttl_ms, None);
        assert_eq!(f.compression, Compression::Lz4);
        assert_eq!(f.bloom, BloomType::Row);
        assert_eq!(f.block_size, 64 * 1024);
    }

    #[test]
    fn validate_rejects_bad_schemas() {
        let ok = TableSchema::new("t", vec![FamilyOptions::new("a")]);
        assert!(ok.validate().is_ok());
        for bad in [
            TableSchema::new("", vec![FamilyOptions::new("a")]),
            TableSchema::new("a/b", vec![FamilyOptions::new("a")]),
            TableSchema::new("t", vec![]),
            TableSchema::new("t", vec![FamilyOptions::new("a"), FamilyOptions::new("a")]),
            TableSchema::new("t", vec![FamilyOptions::new("a").max_versions(0)]),
            TableSchema::new("t", vec![FamilyOptions::new("..")]),
        ] {
            assert!(
                matches!(bad.validate(), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn limits_reject_empty_and_oversize() {
        let l = Limits {
            max_row_bytes: 4,
            max_qualifier_bytes: 2,
            max_value_bytes: 3,
            max_batch_bytes: 100,
        };
        assert!(l.check_row(b"").is_err());
        assert!(l.check_row(b"abcde").is_err());
        assert!(l.check_row(b"abcd").is_ok());
        assert!(l.check_cell(b"abc", b"").is_err());
        assert!(l.check_cell(b"ab", b"abcd").is_err());
        assert!(l.check_cell(b"ab", b"abc").is_ok());
    }
}
