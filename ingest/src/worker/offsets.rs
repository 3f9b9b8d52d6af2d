//! The offset commit protocol, as a pure bookkeeping type.
//!
//! A partition's offset may be committed up to (exclusive) the smaller of
//! - one past the highest offset whose batch the store acknowledged with `sync` durability
//!   (and whose dead letters were delivered), and
//! - the lowest offset still held by an open rule window ([`crate::rules::Engine::held_offset`]).
//!
//! Committing only that far is what makes a kill at any moment lose nothing: everything
//! after the commit is replayed, and replays overwrite themselves. This type decides what
//! to commit; it does not talk to Kafka.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default)]
struct Part {
    acked_next: Option<i64>,
    committed: Option<i64>,
}

/// Per-partition acknowledged and committed offsets of the owned partitions.
#[derive(Debug, Default)]
pub struct CommitTracker {
    parts: BTreeMap<i32, Part>,
}

impl CommitTracker {
    /// An empty tracker.
    pub fn new() -> CommitTracker {
        CommitTracker::default()
    }

    /// Starts tracking an assigned partition.
    pub fn assign(&mut self, partition: i32) {
        self.parts.entry(partition).or_default();
    }

    /// Forgets a revoked partition.
    pub fn revoke(&mut self, partition: i32) {
        self.parts.remove(&partition);
    }

    /// The owned partitions, ascending.
    pub fn partitions(&self) -> Vec<i32> {
        self.parts.keys().copied().collect()
    }

    /// Whether the partition is owned.
    pub fn owns(&self, partition: i32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// Records that every offset of `partition` below `next` is durably handled.
    pub fn acked(&mut self, partition: i32, next: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.acked_next = Some(p.acked_next.map_or(next, |a| a.max(next)));
        }
    }

    /// The commits due: `(partition, offset)` pairs that would advance the committed offset.
    /// `held` gives the lowest offset an open window holds for a partition.
    pub fn due(&self, held: impl Fn(i32) -> Option<i64>) -> Vec<(i32, i64)> {
        let mut out = Vec::new();
        for (&partition, p) in &self.parts {
            let Some(acked) = p.acked_next else { continue };
            let target = held(partition).map_or(acked, |h| h.min(acked));
            if p.committed.is_none_or(|c| target > c) {
                out.push((partition, target));
            }
        }
        out
    }

    /// Records a commit that was sent.
    pub fn committed(&mut self, partition: i32, offset: i64) {
        if let Some(p) = self.parts.get_mut(&partition) {
            p.committed = Some(p.committed.map_or(offset, |c| c.max(offset)));
        }
    }

    /// The last committed offset of a partition.
    pub fn committed_offset(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).and_then(|p| p.committed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_wait_for_both_the_store_and_the_windows() {
        let mut t = CommitTracker::new();
        t.assign(0);
        t.assign(1);
        assert!(t.due(|_| None).is_empty(), "nothing acked yet");
        t.acked(0, 100);
        assert_eq!(
            t.due(|_| Some(40)),
            vec![(0, 40)],
            "a window holds offset 40"
        );
        assert_eq!(
            t.due(|_| Some(400)),
            vec![(0, 100)],
            "the store has only 100"
        );
        t.committed(0, 100);
        assert!(t.due(|_| None).is_empty(), "no regression, no repeat");
        t.acked(0, 90);
        assert!(t.due(|_| None).is_empty(), "acks never move backwards");
        t.revoke(0);
        t.acked(0, 200);
        assert!(
            t.due(|_| None).is_empty(),
            "revoked partitions are not committed"
        );
        assert_eq!(t.committed_offset(0), None);
    }
}
