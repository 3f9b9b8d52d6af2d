//! Counters of a whole database, per table, region and store, for `Db::stats` (the
//! server exports them). Collecting them takes no long lock.

use std::sync::Arc;

use crate::files::Shared;
use crate::region::{Region, RegionStats};

/// Stats of one table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    pub name: String,
    pub regions: Vec<RegionStats>,
}

/// Stats of the whole database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbStats {
    pub tables: Vec<TableStats>,
    pub block_cache_hits: u64,
    pub block_cache_misses: u64,
    pub block_cache_bytes: u64,
    /// Background compactions that failed (their inputs stay; each is logged).
    pub compactions_failed: u64,
    /// Regions waiting for (or in) a background compaction: the compaction queue.
    pub compactions_queued: u64,
}

impl DbStats {
    pub(super) fn collect<'a>(
        tables: impl Iterator<Item = (&'a String, &'a [Arc<Region>])>,
        shared: &Shared,
    ) -> DbStats {
        let (hits, misses, bytes) = shared.cache_counters();
        DbStats {
            tables: tables
                .map(|(name, regions)| TableStats {
                    name: name.clone(),
                    regions: regions.iter().map(|r| r.stats()).collect(),
                })
                .collect(),
            block_cache_hits: hits,
            block_cache_misses: misses,
            block_cache_bytes: bytes,
            compactions_failed: 0,
            compactions_queued: 0,
        }
    }

    /// The stats of a table, if present.
    pub fn table(&self, name: &str) -> Option<&TableStats> {
        self.tables.iter().find(|t| t.name == name)
    }
}

impl TableStats {
    /// Sum over regions of cells written.
    pub fn cells_written(&self) -> u64 {
        self.regions.iter().map(|r| r.cells_written).sum()
    }

    /// Sum over regions and stores of live files.
    pub fn files(&self) -> u64 {
        self.regions
            .iter()
            .flat_map(|r| r.stores.iter())
            .map(|s| s.files)
            .sum()
    }

    /// Sum over regions and stores of files skipped by bloom or key/time range.
    pub fn bloom_skipped_files(&self) -> u64 {
        self.regions
            .iter()
            .flat_map(|r| r.stores.iter())
            .map(|s| s.bloom_skipped_files)
            .sum()
    }

    /// Sum over regions of flushes.
    pub fn flushes(&self) -> u64 {
        self.regions.iter().map(|r| r.flushes).sum()
    }
}
