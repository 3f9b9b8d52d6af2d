//! The keyspace: named sets with optional absolute expiry times.
//!
//! Every read goes through [`Keyspace::live`] / [`Keyspace::live_mut`], which delete an
//! expired key on the spot (lazy expiry) and record the deletion as `DEL` for the AOF.
//! Keys with a TTL are also kept in a dense vector so that the active expiry loop
//! ([`Keyspace::expire_sample`]) can sample them at random in O(1), as Redis samples its
//! `expires` dictionary. This module knows nothing about the protocol or files: writes are
//! recorded into [`Keyspace::take_propagated`] as RESP commands for the AOF layer, and
//! reported to the WATCH bookkeeping ([`Watches`]). Writes that must be applied whole are
//! bracketed by [`Keyspace::begin_atomic`] / [`Keyspace::end_atomic`].

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use rand::Rng;

use super::clock::Clock;
pub use super::set::{Set, SetFull};
use super::watch::Watches;

/// One key: its set and its expiry.
#[derive(Debug)]
pub struct Entry {
    /// The members (never empty while the key exists).
    pub set: Set,
    /// Absolute expiry time in Unix ms, if any.
    pub expire_at: Option<i64>,
    /// Position in `Keyspace::volatile` when `expire_at` is set.
    vidx: usize,
    /// Position in `Keyspace::keys`.
    kidx: usize,
}

/// Counters the keyspace maintains for INFO.
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyspaceStats {
    /// Keys deleted because they expired (lazily or actively).
    pub expired_keys: u64,
    /// Reads that found their key.
    pub keyspace_hits: u64,
    /// Reads that did not.
    pub keyspace_misses: u64,
}

/// All keys of database 0.
#[derive(Debug)]
pub struct Keyspace {
    map: HashMap<Bytes, Entry>,
    /// Every key, densely: SCAN walks positions here (see [`crate::resp::set`] for why a
    /// walk from the end with swap-removal misses nothing present throughout).
    keys: Vec<Bytes>,
    volatile: Vec<Bytes>,
    clock: Arc<dyn Clock>,
    /// Commands to append to the AOF (RESP encoded), drained by the AOF layer.
    propagated: Vec<u8>,
    propagate: bool,
    /// While loading the AOF, nothing expires (replay must be deterministic).
    pub loading: bool,
    /// A replica of a master (`REPLICAOF host port`): keys are never reclaimed here, only by
    /// the master's `DEL`s; a key past its expiry reads as missing (Redis's replicas).
    pub replica: bool,
    /// Counters for INFO.
    pub stats: KeyspaceStats,
    /// Number of commands that changed data since the last snapshot/rewrite.
    pub dirty: u64,
    /// Who watches which keys (WATCH), told of every change.
    pub watches: Watches,
    /// Nesting depth of atomic blocks, where the outermost one starts in `propagated`, and
    /// how many commands it has recorded.
    atomic_depth: u32,
    atomic_start: usize,
    atomic_cmds: usize,
    /// The time a transaction sees from start to end (Redis 7.0 caches the time for the
    /// whole EXEC, so a key cannot expire between two of its commands).
    frozen_now: Option<i64>,
}

impl Keyspace {
    /// An empty keyspace reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Keyspace {
            map: HashMap::new(),
            keys: Vec::new(),
            volatile: Vec::new(),
            clock,
            propagated: Vec::new(),
            propagate: false,
            loading: false,
            replica: false,
            stats: KeyspaceStats::default(),
            dirty: 0,
            watches: Watches::default(),
            atomic_depth: 0,
            atomic_start: 0,
            atomic_cmds: 0,
            frozen_now: None,
        }
    }

    /// Turns recording of writes for the AOF on or off.
    pub fn set_propagate(&mut self, on: bool) {
        self.propagate = on;
    }

    /// Now, in Unix ms (the transaction's time while one runs).
    pub fn now_ms(&self) -> i64 {
        self.frozen_now.unwrap_or_else(|| self.clock.now_ms())
    }

    /// The clock's time even inside EXEC. Redis 7.0 freezes only the time that decides
    /// whether a key has expired; EXPIRE's base, its "already past" check, TTL/PTTL and
    /// TIME read the running clock (verified against redis-server 7.0.15: `MULTI`,
    /// `PEXPIRE k 100`, `DEBUG SLEEP 0.2`, `PTTL k`, `EXISTS k`, `EXEC` gives `0` and `1`).
    pub fn clock_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Fixes the time until [`Keyspace::unfreeze_time`] (EXEC).
    pub fn freeze_time(&mut self) {
        self.frozen_now = Some(self.clock.now_ms());
    }

    /// Lets the time run again.
    pub fn unfreeze_time(&mut self) {
        self.frozen_now = None;
    }

    /// Number of keys (including expired ones not yet reclaimed, like Redis's DBSIZE).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys with a TTL.
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }

    /// Records a write, after it changed the state: for the AOF, and as a change of the
    /// keys it names for WATCH. Every change of a key goes through here as one of the AOF's
    /// commands (see `aof::replay`), so the keys are read off the command.
    pub fn propagate(&mut self, args: &[&[u8]]) {
        self.dirty += 1;
        if !self.watches.is_empty() {
            self.touch_keys_of(args);
        }
        if !self.propagate {
            return;
        }
        if self.atomic_depth > 0 {
            self.atomic_cmds += 1;
        }
        encode_command(&mut self.propagated, args);
    }

    fn touch_keys_of(&mut self, args: &[&[u8]]) {
        let Some(name) = args.first() else { return };
        let keys = match name.to_ascii_uppercase().as_slice() {
            b"SADD" | b"SREM" | b"PEXPIREAT" | b"PERSIST" => args.get(1..2),
            b"DEL" => args.get(1..),
            b"RENAME" | b"SMOVE" => args.get(1..3),
            _ => None,
        };
        for k in keys.unwrap_or_default() {
            let exists = self.map.contains_key(*k);
            self.watches.touched(k, exists);
        }
    }

    /// Opens a block of writes the AOF must apply whole (one command that records several
    /// AOF commands, or a transaction). Blocks nest; the outermost one is written as
    /// `MULTI` ... `EXEC` around its commands when it recorded more than one, as Redis 7.0
    /// wraps what one call propagates (a single command needs no wrapper).
    pub fn begin_atomic(&mut self) {
        if self.atomic_depth == 0 {
            self.atomic_start = self.propagated.len();
            self.atomic_cmds = 0;
        }
        self.atomic_depth += 1;
    }

    /// Closes the block [`Keyspace::begin_atomic`] opened.
    pub fn end_atomic(&mut self) {
        self.atomic_depth = self.atomic_depth.saturating_sub(1);
        if self.atomic_depth > 0 || self.atomic_cmds < 2 {
            return;
        }
        let mut multi = Vec::with_capacity(16);
        encode_command(&mut multi, &[b"MULTI"]);
        let at = self.atomic_start.min(self.propagated.len());
        self.propagated.splice(at..at, multi);
        encode_command(&mut self.propagated, &[b"EXEC"]);
        self.atomic_cmds = 0;
    }

    /// Takes the recorded commands (RESP encoded), leaving an open atomic block behind:
    /// it is taken whole once closed, so the AOF never holds half of one.
    pub fn take_propagated(&mut self) -> Vec<u8> {
        if self.atomic_depth > 0 {
            let at = self.atomic_start.min(self.propagated.len());
            let open = self.propagated.split_off(at);
            self.atomic_start = 0;
            return std::mem::replace(&mut self.propagated, open);
        }
        std::mem::take(&mut self.propagated)
    }

    /// Bytes currently waiting for the AOF.
    pub fn propagated_len(&self) -> usize {
        self.propagated.len()
    }

    fn is_expired(&self, e: &Entry, now: i64) -> bool {
        !self.loading && e.expire_at.is_some_and(|t| t <= now)
    }

    /// Deletes `key` if it has expired; returns true if it did.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        // Read the clock only for keys that have a TTL: most reads pay one lookup.
        let Some(at) = self.map.get(key).and_then(|e| e.expire_at) else {
            return false;
        };
        let expired = !self.loading && at <= self.now_ms();
        if self.replica {
            // Logically gone for readers; the master's DEL removes it.
            return expired;
        }
        if expired {
            self.remove(key);
            self.stats.expired_keys += 1;
            self.propagate(&[b"DEL", key]);
        }
        expired
    }

    /// The live entry of `key` (expiring it first if due).
    pub fn live(&mut self, key: &[u8]) -> Option<&Entry> {
        let gone = self.expire_if_needed(key);
        let e = if gone { None } else { self.map.get(key) };
        if e.is_some() {
            self.stats.keyspace_hits += 1;
        } else {
            self.stats.keyspace_misses += 1;
        }
        e
    }

    /// The live entry of `key`, mutable (expiring it first if due).
    pub fn live_mut(&mut self, key: &[u8]) -> Option<&mut Entry> {
        if self.expire_if_needed(key) {
            return None;
        }
        self.map.get_mut(key)
    }

    /// True when `key` exists and has not expired.
    pub fn exists(&mut self, key: &[u8]) -> bool {
        !self.expire_if_needed(key) && self.map.contains_key(key)
    }

    /// The live entry of `key`, created empty if missing. The caller must not leave it
    /// empty (use [`Keyspace::remove_if_empty`]).
    pub fn entry_mut(&mut self, key: &[u8]) -> &mut Entry {
        self.expire_if_needed(key);
        let kidx = self.keys.len();
        match self.map.entry(Bytes::copy_from_slice(key)) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                self.keys.push(v.key().clone());
                v.insert(Entry {
                    set: Set::new(),
                    expire_at: None,
                    vidx: 0,
                    kidx,
                })
            }
        }
    }

    /// Inserts `key` (absent) with `set` and no expiry, recording it in `keys`.
    fn create(&mut self, key: &[u8], set: Set) {
        // Copy the key only when it is new: the request buffer must not be retained.
        let key = Bytes::copy_from_slice(key);
        let e = Entry {
            set,
            expire_at: None,
            vidx: 0,
            kidx: self.keys.len(),
        };
        self.keys.push(key.clone());
        self.map.insert(key, e);
    }

    /// Adds `members` to the set at `key` (creating it; an existing TTL stays). Returns how
    /// many were new.
    ///
    /// # Errors
    /// [`SetFull`] when the set reaches [`Set::MAX_LEN`]; members before that point stay
    /// added.
    pub fn add_members<'a>(
        &mut self,
        key: &[u8],
        members: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<usize, SetFull> {
        self.expire_if_needed(key);
        if !self.map.contains_key(key) {
            self.create(key, Set::new());
        }
        let Some(e) = self.map.get_mut(key) else {
            return Ok(0);
        };
        let mut added = 0;
        let mut full = None;
        for m in members {
            match e.set.insert(m) {
                Ok(new) => added += usize::from(new),
                Err(f) => {
                    full = Some(f);
                    break;
                }
            }
        }
        if e.set.is_empty() {
            self.remove(key);
        }
        full.map_or(Ok(added), Err)
    }

    /// Deletes `key` if its set became empty (Redis deletes emptied sets).
    pub fn remove_if_empty(&mut self, key: &[u8]) -> bool {
        if self.map.get(key).is_some_and(|e| e.set.is_empty()) {
            self.remove(key);
            return true;
        }
        false
    }

    /// Removes `key` (no expiry check, no propagation); returns its entry.
    pub fn remove(&mut self, key: &[u8]) -> Option<Entry> {
        let e = self.map.remove(key)?;
        if e.expire_at.is_some() {
            self.volatile_remove(e.vidx);
        }
        self.keys.swap_remove(e.kidx);
        if let Some(moved) = self.keys.get(e.kidx)
            && let Some(m) = self.map.get_mut(moved)
        {
            m.kidx = e.kidx;
        }
        Some(e)
    }

    fn volatile_remove(&mut self, idx: usize) {
        self.volatile.swap_remove(idx);
        if let Some(moved) = self.volatile.get(idx)
            && let Some(m) = self.map.get_mut(moved)
        {
            m.vidx = idx;
        }
    }

    /// Inserts or replaces `key` with `set` and `expire_at` (an empty set deletes).
    pub fn insert(&mut self, key: &[u8], set: Set, expire_at: Option<i64>) {
        self.remove(key);
        if set.is_empty() {
            return;
        }
        self.create(key, set);
        if expire_at.is_some() {
            self.set_expire(key, expire_at);
        }
    }

    /// Sets or clears the expiry of an existing `key`; returns false if it does not exist.
    pub fn set_expire(&mut self, key: &[u8], expire_at: Option<i64>) -> bool {
        let Some(e) = self.map.get_mut(key) else {
            return false;
        };
        match (e.expire_at.is_some(), expire_at) {
            (false, Some(_)) => {
                e.vidx = self.volatile.len();
                e.expire_at = expire_at;
                self.volatile.push(Bytes::copy_from_slice(key));
            }
            (true, None) => {
                e.expire_at = None;
                let idx = e.vidx;
                self.volatile_remove(idx);
            }
            _ => e.expire_at = expire_at,
        }
        true
    }

    /// Moves `src` (with its TTL) to `dst`, replacing `dst`. False if `src` is missing.
    pub fn rename(&mut self, src: &[u8], dst: &[u8]) -> bool {
        let Some(e) = self.remove(src) else {
            return false;
        };
        self.insert(dst, e.set, e.expire_at);
        true
    }

    /// Moves `member` from `src` to `dst` (creating `dst`, deleting an emptied `src`).
    /// Returns false if `src` does not hold `member`.
    ///
    /// # Errors
    /// [`SetFull`] when `dst` is full (nothing moved).
    pub fn smove(&mut self, src: &[u8], dst: &[u8], member: &[u8]) -> Result<bool, SetFull> {
        // `live_mut`, not `live`: SMOVE's lookups are writes and do not count as hits.
        if !self.live_mut(src).is_some_and(|e| e.set.contains(member)) {
            return Ok(false);
        }
        if self
            .live_mut(dst)
            .is_some_and(|e| e.set.len() >= Set::MAX_LEN && !e.set.contains(member))
        {
            return Err(SetFull);
        }
        if let Some(e) = self.live_mut(src) {
            e.set.remove(member);
        }
        self.remove_if_empty(src);
        self.entry_mut(dst).set.insert(member)?;
        Ok(true)
    }

    /// A live key chosen at random, or None when there is none. Expired picks are
    /// reclaimed (recorded as `DEL`) and another is drawn, as Redis's `dbRandomKey` does.
    pub fn random_key(&mut self) -> Option<Bytes> {
        let mut rng = rand::rng();
        // A replica reclaims nothing: like Redis's, it gives up after 100 expired picks and
        // returns the last (all keys may be past their expiry, waiting for the master).
        let mut tries = 100;
        loop {
            if self.keys.is_empty() {
                return None;
            }
            let key = self.keys[rng.random_range(0..self.keys.len())].clone();
            if !self.expire_if_needed(&key) {
                return Some(key);
            }
            tries -= 1;
            if self.replica && tries == 0 {
                return Some(key);
            }
        }
    }

    /// Deletes everything.
    pub fn clear(&mut self) {
        if !self.watches.is_empty() {
            let map = &self.map;
            self.watches.flushed(|k| map.contains_key(k));
        }
        self.map.clear();
        self.keys.clear();
        self.volatile.clear();
    }

    /// `client` watches `key` (WATCH); false if it already did.
    pub fn watch(&mut self, client: u64, key: &[u8]) -> bool {
        let now = self.now_ms();
        let expired = self
            .map
            .get(key)
            .is_some_and(|e| e.expire_at.is_some_and(|t| t <= now));
        self.watches.watch(client, key, expired)
    }

    /// Whether `client`'s transaction must abort: one of its watched `keys` changed, or
    /// one that was live when watched has expired since (even if not yet reclaimed).
    pub fn watch_broken(&self, client: u64, keys: &[Bytes]) -> bool {
        if self.watches.is_dirty(client) {
            return true;
        }
        let now = self.now_ms();
        keys.iter().any(|k| {
            self.watches.watched_live(client, k)
                && self
                    .map
                    .get(&k[..])
                    .is_some_and(|e| e.expire_at.is_some_and(|t| t <= now))
        })
    }

    /// One round of active expiry: samples up to `n` keys with a TTL at random and deletes
    /// the expired ones. Returns `(sampled, expired)`.
    pub fn expire_sample(&mut self, n: usize) -> (usize, usize) {
        if self.loading || self.replica || self.volatile.is_empty() {
            return (0, 0);
        }
        let now = self.now_ms();
        let mut rng = rand::rng();
        let sampled = n.min(self.volatile.len());
        let mut expired = 0;
        for _ in 0..sampled {
            if self.volatile.is_empty() {
                break;
            }
            let idx = rng.random_range(0..self.volatile.len());
            let key = self.volatile[idx].clone();
            if self
                .map
                .get(&key[..])
                .is_some_and(|e| e.expire_at.is_some_and(|t| t <= now))
            {
                self.remove(&key);
                self.stats.expired_keys += 1;
                self.propagate(&[b"DEL", &key]);
                expired += 1;
            }
        }
        (sampled, expired)
    }

    /// Iterates over all keys and entries, expired or not (for SCAN, KEYS and snapshots;
    /// callers filter with [`Keyspace::is_live_at`]).
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Entry)> {
        self.map.iter()
    }

    /// One SCAN page of keys, expired or not (callers filter with
    /// [`Keyspace::is_live_at`]): at most `count` keys and the next cursor (0 = done).
    pub fn scan_keys(&self, cursor: u64, count: usize) -> (u64, &[Bytes]) {
        let (start, end) = super::set::page_bounds(self.keys.len(), cursor, count);
        (start as u64, &self.keys[start..end])
    }

    /// The entry of `key` without any expiry check (pair with [`Keyspace::is_live_at`]).
    pub fn iter_get(&self, key: &[u8]) -> Option<&Entry> {
        self.map.get(key)
    }

    /// True if `e` is not expired at `now`.
    pub fn is_live_at(&self, e: &Entry, now: i64) -> bool {
        !self.is_expired(e, now)
    }

    /// Approximate bytes used by keys and members (slots plus heap), for INFO.
    pub fn approx_bytes(&self) -> usize {
        let mut total = self.map.capacity() * (std::mem::size_of::<(Bytes, Entry)>() + 1);
        for (k, e) in &self.map {
            total += k.len() + e.set.heap_bytes();
        }
        total + self.volatile.capacity() * std::mem::size_of::<Bytes>()
    }
}

/// Appends `args` to `out` as a RESP array of bulk strings.
pub fn encode_command(out: &mut Vec<u8>, args: &[&[u8]]) {
    out.push(b'*');
    out.extend_from_slice(args.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in args {
        out.push(b'$');
        out.extend_from_slice(a.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::clock::ManualClock;

    #[test]
    fn lazy_and_active_expiry_keep_volatile_index_consistent() {
        let clock = Arc::new(ManualClock::new(1_000));
        let mut ks = Keyspace::new(clock.clone());
        for i in 0..100u32 {
            let key = format!("k{i}");
            let mut s = Set::new();
            s.insert(b"m").unwrap();
            ks.insert(
                key.as_bytes(),
                s,
                (i % 2 == 0).then_some(2_000 + i64::from(i)),
            );
        }
        assert_eq!(ks.volatile_len(), 50);
        clock.set(2_050);
        assert!(ks.live(b"k10").is_none());
        assert!(ks.live(b"k11").is_some());
        while ks.expire_sample(20).1 > 0 {}
        // Anything left in `volatile` must point back at itself.
        for (i, k) in ks.volatile.iter().enumerate() {
            assert_eq!(ks.map[&k[..]].vidx, i);
        }
        assert_eq!(ks.keys.len(), ks.map.len());
        for (i, k) in ks.keys.iter().enumerate() {
            assert_eq!(ks.map[&k[..]].kidx, i);
        }
        ks.set_expire(b"k98", None);
        assert_eq!(ks.map.len(), 100 - ks.stats.expired_keys as usize);
    }

    fn commands(bytes: &[u8]) -> Vec<String> {
        let mut buf = bytes::BytesMut::from(bytes);
        let mut args = Vec::new();
        let mut out = Vec::new();
        let limits = crate::resp::config::Limits::default();
        while let Ok(true) = crate::resp::frame::parse_request(&mut buf, &limits, true, &mut args) {
            let words: Vec<String> = args
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            out.push(words.join(" "));
        }
        assert!(buf.is_empty(), "a whole number of commands");
        out
    }

    /// Nested blocks are written once, around everything the outermost one recorded; a
    /// block of one command is written bare; a flush in the middle of a block takes only
    /// what came before it.
    #[test]
    fn atomic_blocks_nest_and_are_taken_whole() {
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(1_000)));
        ks.set_propagate(true);
        ks.begin_atomic();
        ks.propagate(&[b"SADD", b"k", b"a"]);
        ks.end_atomic();
        assert_eq!(commands(&ks.take_propagated()), ["SADD k a"]);

        ks.propagate(&[b"SADD", b"before", b"x"]);
        ks.begin_atomic();
        ks.propagate(&[b"DEL", b"k"]);
        ks.begin_atomic();
        ks.propagate(&[b"DEL", b"d"]);
        ks.propagate(&[b"SADD", b"d", b"m"]);
        ks.end_atomic();
        assert_eq!(commands(&ks.take_propagated()), ["SADD before x"]);
        ks.propagate(&[b"SREM", b"k", b"a"]);
        ks.end_atomic();
        assert_eq!(
            commands(&ks.take_propagated()),
            ["MULTI", "DEL k", "DEL d", "SADD d m", "SREM k a", "EXEC"]
        );
        ks.begin_atomic();
        ks.end_atomic();
        assert!(
            ks.take_propagated().is_empty(),
            "an empty block writes nothing"
        );
    }

    /// SCAN pages hold at most COUNT keys, and a key present for the whole scan is
    /// returned even while other keys are deleted, renamed and created between pages.
    #[test]
    fn scan_keys_misses_nothing_present_throughout() {
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(1_000)));
        let one = |ks: &mut Keyspace, k: &str| {
            ks.add_members(k.as_bytes(), [&b"m"[..]]).unwrap();
        };
        for i in 0..5_000 {
            one(&mut ks, &format!("keep{i}"));
            one(&mut ks, &format!("churn{i}"));
        }
        let (mut cursor, mut seen, mut step) = (0u64, std::collections::HashSet::new(), 0);
        loop {
            let (next, page) = ks.scan_keys(cursor, 10);
            assert!(page.len() <= 10);
            seen.extend(page.iter().cloned());
            for j in 0..5 {
                let i = (step * 5 + j) % 5_000;
                ks.remove(format!("churn{i}").as_bytes());
                // Only keep0..keep499 are renamed away and back.
                let r = format!("keep{}", i % 500);
                ks.rename(r.as_bytes(), b"tmp");
                ks.rename(b"tmp", r.as_bytes());
                one(&mut ks, &format!("new{step}-{j}"));
            }
            step += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        // keep500..keep4999 were present throughout.
        assert!(step > 500, "{step} pages");
        for i in 500..5_000 {
            assert!(
                seen.contains(format!("keep{i}").as_bytes()),
                "keep{i} missed"
            );
        }
        assert_eq!(ks.keys.len(), ks.map.len());
        for (i, k) in ks.keys.iter().enumerate() {
            assert_eq!(ks.map[&k[..]].kidx, i);
        }
    }
}
