//! The block cache: a sharded LRU of decompressed, checksum-verified HFile data blocks,
//! keyed by `(file_id, block offset)` and bounded in bytes. One cache is shared by every
//! store of a `Db`.
//!
//! At the bound the least recently used blocks of the shard are evicted; a block larger
//! than a shard's capacity is not cached at all (readers still get it). The cache never
//! reads files and never returns unverified bytes; `hfile::reader` fills it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

/// Number of independently locked shards.
const SHARDS: usize = 16;
/// Bookkeeping bytes charged per entry on top of the block itself.
const ENTRY_OVERHEAD: usize = 64;
const NIL: usize = usize::MAX;

type Key = (u64, u64);

#[derive(Debug)]
struct Node {
    key: Key,
    value: Bytes,
    prev: usize,
    next: usize,
}

/// One LRU list: a slab of nodes linked most-recent-first, and a map into it.
#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Key, usize>,
    nodes: Vec<Node>,
    free: Vec<usize>,
    head: usize,
    tail: usize,
    bytes: usize,
}

impl Shard {
    fn new() -> Shard {
        Shard {
            head: NIL,
            tail: NIL,
            ..Shard::default()
        }
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.nodes[i].prev, self.nodes[i].next);
        if p == NIL {
            self.head = n
        } else {
            self.nodes[p].next = n
        }
        if n == NIL {
            self.tail = p
        } else {
            self.nodes[n].prev = p
        }
    }

    fn push_front(&mut self, i: usize) {
        self.nodes[i].prev = NIL;
        self.nodes[i].next = self.head;
        if self.head != NIL {
            self.nodes[self.head].prev = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    fn remove(&mut self, i: usize) -> Bytes {
        self.unlink(i);
        let key = self.nodes[i].key;
        self.map.remove(&key);
        self.free.push(i);
        let v = std::mem::take(&mut self.nodes[i].value);
        self.bytes -= v.len() + ENTRY_OVERHEAD;
        v
    }
}

/// Counters of the block cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    pub inserts: u64,
    pub evictions: u64,
    /// Bytes currently charged (blocks + per-entry overhead).
    pub bytes: u64,
    /// Blocks currently cached.
    pub entries: u64,
    /// Configured capacity in bytes.
    pub capacity: u64,
}

/// A sharded, byte-bounded LRU of decompressed blocks. `Send + Sync`; share in an `Arc`.
#[derive(Debug)]
pub struct BlockCache {
    shards: Vec<Mutex<Shard>>,
    shard_capacity: usize,
    capacity: usize,
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
}

impl BlockCache {
    /// A cache holding at most `capacity_bytes` (0 disables caching).
    pub fn new(capacity_bytes: usize) -> BlockCache {
        BlockCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::new())).collect(),
            shard_capacity: capacity_bytes / SHARDS,
            capacity: capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            inserts: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    fn shard(&self, key: Key) -> &Mutex<Shard> {
        let h = (key.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ key.1.wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
        .rotate_left(17);
        &self.shards[(h as usize) % SHARDS]
    }

    /// The cached block at `offset` of file `file_id`, marking it most recently used.
    pub fn get(&self, file_id: u64, offset: u64) -> Option<Bytes> {
        let key = (file_id, offset);
        let mut s = self.shard(key).lock();
        match s.map.get(&key).copied() {
            Some(i) => {
                s.unlink(i);
                s.push_front(i);
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(s.nodes[i].value.clone())
            }
            None => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Caches a verified block, evicting least recently used blocks of its shard to stay
    /// within the bound. A block larger than a shard's capacity is not cached.
    pub fn insert(&self, file_id: u64, offset: u64, block: Bytes) {
        let charge = block.len() + ENTRY_OVERHEAD;
        if charge > self.shard_capacity {
            return;
        }
        let key = (file_id, offset);
        let mut s = self.shard(key).lock();
        if let Some(i) = s.map.get(&key).copied() {
            s.remove(i);
        }
        let mut evicted = 0;
        while s.bytes + charge > self.shard_capacity && s.tail != NIL {
            let t = s.tail;
            s.remove(t);
            evicted += 1;
        }
        let node = Node {
            key,
            value: block,
            prev: NIL,
            next: NIL,
        };
        let i = match s.free.pop() {
            Some(i) => {
                s.nodes[i] = node;
                i
            }
            None => {
                s.nodes.push(node);
                s.nodes.len() - 1
            }
        };
        s.map.insert(key, i);
        s.push_front(i);
        s.bytes += charge;
        drop(s);
        self.inserts.fetch_add(1, Ordering::Relaxed);
        self.evictions.fetch_add(evicted, Ordering::Relaxed);
    }

    /// Drops every block of `file_id` (after the file is deleted). O(cached blocks).
    pub fn evict_file(&self, file_id: u64) {
        for shard in &self.shards {
            let mut s = shard.lock();
            let victims: Vec<usize> = s
                .map
                .iter()
                .filter(|(k, _)| k.0 == file_id)
                .map(|(_, &i)| i)
                .collect();
            for i in victims {
                s.remove(i);
            }
        }
    }

    /// Counters and current size.
    pub fn stats(&self) -> CacheStats {
        let (mut bytes, mut entries) = (0u64, 0u64);
        for shard in &self.shards {
            let s = shard.lock();
            bytes += s.bytes as u64;
            entries += s.map.len() as u64;
        }
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            inserts: self.inserts.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            bytes,
            entries,
            capacity: self.capacity as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_misses_and_lru_eviction_within_the_bound() {
        let c = BlockCache::new(SHARDS * (3 * (100 + ENTRY_OVERHEAD)));
        // All keys of file 1 that land in one shard.
        let same: Vec<u64> = (0..10_000u64)
            .filter(|&o| std::ptr::eq(c.shard((1, o)), c.shard((1, 0))))
            .take(5)
            .collect();
        for &o in &same[..3] {
            c.insert(1, o, Bytes::from(vec![o as u8; 100]));
        }
        assert!(c.get(1, same[0]).is_some()); // same[0] now most recent
        c.insert(1, same[3], Bytes::from(vec![0u8; 100])); // evicts same[1]
        assert!(c.get(1, same[1]).is_none());
        assert!(c.get(1, same[0]).is_some());
        assert!(c.get(1, same[2]).is_some());
        assert!(c.get(1, same[3]).is_some());
        let s = c.stats();
        assert_eq!(s.evictions, 1);
        assert_eq!(s.hits, 4);
        assert_eq!(s.misses, 1);
        assert!(s.bytes <= s.capacity);
        c.evict_file(1);
        assert_eq!(c.stats().entries, 0);
        assert_eq!(c.stats().bytes, 0);
    }

    #[test]
    fn oversize_blocks_and_zero_capacity_are_not_cached() {
        let c = BlockCache::new(0);
        c.insert(1, 0, Bytes::from_static(b"x"));
        assert!(c.get(1, 0).is_none());
        let c = BlockCache::new(SHARDS * 1000);
        c.insert(1, 0, Bytes::from(vec![0u8; 2000]));
        assert!(c.get(1, 0).is_none());
    }

    #[test]
    fn many_inserts_stay_within_capacity() {
        let c = BlockCache::new(64 << 10);
        for i in 0..5000u64 {
            c.insert(
                i % 7,
                i * 4096,
                Bytes::from(vec![1u8; 300 + (i % 500) as usize]),
            );
            assert!(c.stats().bytes <= 64 << 10);
        }
        assert!(c.stats().evictions > 0);
    }
}
