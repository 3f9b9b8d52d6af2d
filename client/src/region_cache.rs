//! The client's cache of region locations, per table, loaded with one `DescribeTable`.
//!
//! A lookup finds the region whose `[start_key, end_key)` holds the row. The cache is
//! dropped for a table when the server answers `NOT_FOUND` (a region moved or split, or
//! the table was recreated) and reloaded on the next request. It is not a consistency
//! mechanism: the server remains the authority on which region holds a row.

use std::collections::HashMap;

use parking_lot::RwLock;
use speedlayer_proto::RegionLocation;

/// Region locations of the tables this client has touched.
#[derive(Debug, Default)]
pub struct RegionCache {
    tables: RwLock<HashMap<String, Vec<RegionLocation>>>,
}

impl RegionCache {
    /// The cached region holding `row`, if the table's regions are cached and cover it.
    pub fn lookup(&self, table: &str, row: &[u8]) -> Option<RegionLocation> {
        let tables = self.tables.read();
        let regions = tables.get(table)?;
        // Regions are sorted by start key; the holder is the last one starting at or before row.
        let idx = regions.partition_point(|r| r.start_key.as_ref() <= row);
        let region = regions.get(idx.checked_sub(1)?)?;
        let below_end = region.end_key.is_empty() || row < region.end_key.as_ref();
        below_end.then(|| region.clone())
    }

    /// Replaces the table's regions.
    pub fn insert(&self, table: &str, mut regions: Vec<RegionLocation>) {
        regions.sort_by(|a, b| a.start_key.cmp(&b.start_key));
        self.tables.write().insert(table.to_string(), regions);
    }

    /// Every cached region of the table, sorted by start key.
    pub fn regions(&self, table: &str) -> Option<Vec<RegionLocation>> {
        self.tables.read().get(table).cloned()
    }

    /// Forgets the table's regions.
    pub fn invalidate(&self, table: &str) {
        self.tables.write().remove(table);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn region(id: u64, start: &'static str, end: &'static str) -> RegionLocation {
        RegionLocation {
            region_id: id,
            table: "t".into(),
            start_key: Bytes::from_static(start.as_bytes()),
            end_key: Bytes::from_static(end.as_bytes()),
            server_addr: "http://127.0.0.1:1".into(),
        }
    }

    #[test]
    fn lookup_finds_the_holding_region() {
        let cache = RegionCache::default();
        cache.insert("t", vec![region(2, "m", ""), region(1, "", "m")]);
        assert_eq!(cache.lookup("t", b"a").unwrap().region_id, 1);
        assert_eq!(cache.lookup("t", b"").unwrap().region_id, 1);
        assert_eq!(cache.lookup("t", b"m").unwrap().region_id, 2);
        assert_eq!(cache.lookup("t", b"zzz").unwrap().region_id, 2);
        assert!(cache.lookup("other", b"a").is_none());
        cache.invalidate("t");
        assert!(cache.lookup("t", b"a").is_none());
    }

    #[test]
    fn a_gap_is_a_miss() {
        let cache = RegionCache::default();
        cache.insert("t", vec![region(1, "", "c"), region(2, "f", "")]);
        assert!(cache.lookup("t", b"d").is_none());
    }
}
