//! WATCH bookkeeping: which clients watch which keys, and which clients' transactions a
//! change has doomed (Redis's `CLIENT_DIRTY_CAS`).
//!
//! The keyspace owns one [`Watches`] and reports every change of a key to it (and every
//! key a flush removes); `EXEC` then asks whether its client is dirty. Redis 7.0's
//! handling of expiry is kept: a watched key that expires counts as changed, but a key
//! that had already expired (not yet reclaimed) when it was watched does not change by
//! being reclaimed, only by being written again. This module knows nothing of clients'
//! connections or of the protocol.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

#[derive(Debug, Clone, Copy)]
struct Watcher {
    client: u64,
    /// The key existed but had expired when it was watched (Redis's `wk->expired`).
    expired: bool,
}

/// Watched keys and the clients whose next `EXEC` must fail.
#[derive(Debug, Default)]
pub struct Watches {
    by_key: HashMap<Bytes, Vec<Watcher>>,
    dirty: HashSet<u64>,
}

impl Watches {
    /// True when nobody watches anything (the common case: writes skip all the rest).
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// `client` watches `key`; `expired` says the key exists but has expired. Returns
    /// false if it already watched it (the first WATCH's state is kept, as in Redis).
    pub fn watch(&mut self, client: u64, key: &[u8], expired: bool) -> bool {
        let list = self.by_key.entry(Bytes::copy_from_slice(key)).or_default();
        if list.iter().any(|w| w.client == client) {
            return false;
        }
        list.push(Watcher { client, expired });
        true
    }

    /// Forgets `client`'s watches on `keys` (all it watched) and its dirty flag.
    pub fn unwatch(&mut self, client: u64, keys: &[Bytes]) {
        for k in keys {
            if let Some(list) = self.by_key.get_mut(k) {
                list.retain(|w| w.client != client);
                if list.is_empty() {
                    self.by_key.remove(k);
                }
            }
        }
        self.dirty.remove(&client);
    }

    /// `key` was just written or deleted; `exists` says whether it exists now.
    pub fn touched(&mut self, key: &[u8], exists: bool) {
        let Some(list) = self.by_key.get_mut(key) else {
            return;
        };
        for w in list {
            if w.expired && !exists {
                // An already expired key was reclaimed: logically nothing changed. From
                // now on it is an ordinary missing key.
                w.expired = false;
            } else {
                self.dirty.insert(w.client);
            }
        }
    }

    /// Every key is about to be deleted; `exists` says which ones exist. Keys that do not
    /// exist are not changed by a flush (Redis 7.0 touches only the keys it removes).
    pub fn flushed(&mut self, exists: impl Fn(&[u8]) -> bool) {
        for (key, list) in &mut self.by_key {
            if !exists(key) {
                continue;
            }
            for w in list {
                if w.expired {
                    w.expired = false;
                } else {
                    self.dirty.insert(w.client);
                }
            }
        }
    }

    /// Whether a change since `client`'s WATCH dooms its transaction.
    pub fn is_dirty(&self, client: u64) -> bool {
        self.dirty.contains(&client)
    }

    /// Whether `client` watched `key` while it was live (so its expiry counts as a change).
    pub fn watched_live(&self, client: u64, key: &[u8]) -> bool {
        self.by_key
            .get(key)
            .is_some_and(|l| l.iter().any(|w| w.client == client && !w.expired))
    }

    /// Number of keys watched by anyone (for tests and INFO-like checks).
    pub fn len(&self) -> usize {
        self.by_key.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_dirties_every_watcher_and_unwatch_forgets_all() {
        let mut w = Watches::default();
        assert!(w.watch(1, b"k", false));
        assert!(!w.watch(1, b"k", false));
        w.watch(2, b"k", false);
        w.watch(2, b"other", false);
        w.touched(b"nobody-watches", true);
        assert!(!w.is_dirty(1) && !w.is_dirty(2));
        w.touched(b"k", true);
        assert!(w.is_dirty(1) && w.is_dirty(2));
        w.unwatch(1, &[Bytes::from_static(b"k")]);
        assert!(!w.is_dirty(1));
        w.unwatch(2, &[Bytes::from_static(b"k"), Bytes::from_static(b"other")]);
        assert!(w.is_empty());
    }

    #[test]
    fn reclaiming_a_key_that_had_expired_before_watch_is_no_change() {
        let mut w = Watches::default();
        w.watch(1, b"k", true);
        assert!(!w.watched_live(1, b"k"));
        w.touched(b"k", false);
        assert!(!w.is_dirty(1));
        assert!(w.watched_live(1, b"k"), "now an ordinary missing key");
        w.touched(b"k", true);
        assert!(w.is_dirty(1));
    }

    #[test]
    fn a_flush_changes_only_keys_that_exist() {
        let mut w = Watches::default();
        w.watch(1, b"missing", false);
        w.watch(2, b"present", false);
        w.flushed(|k| k == b"present");
        assert!(!w.is_dirty(1));
        assert!(w.is_dirty(2));
    }
}
