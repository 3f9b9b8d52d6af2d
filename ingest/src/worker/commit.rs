//! The commit protocol: what the worker may commit, and in which order.
//!
//! 1. The commits due are the owned partitions whose acknowledged offset (every record
//!    below it durably stored and dead-lettered) passed the committed one, held back to the
//!    lowest offset an open rule window still needs ([`CommitTracker::due`]).
//! 2. The rule engine's checkpoint is written to the `checkpoint` table, one row per
//!    partition, and acknowledged durable by the store.
//! 3. Only then the offsets are committed to the consumer group, each carrying the same
//!    checkpoint as metadata. A newer checkpoint with an older commit is safe (the replay
//!    is deduplicated by the checkpoint's floors); the reverse would lose windows.
//! 4. The tracker records the commit only once the group accepted it; a failure at 2 or 3
//!    leaves everything due, to be retried at the next commit.
//!
//! Generic over the store ([`Store`]) and the offset sink ([`OffsetSink`]: the Kafka
//! consumer in the worker), so it is unit-tested here without a broker.

use super::offsets::CommitTracker;
use super::rows::{CHECKPOINT_TABLE, Row, checkpoint_row};
use super::store::Store;
use crate::error::Error;

/// Where committed offsets go.
pub trait OffsetSink {
    /// Commits `offsets` (partition, next offset to read) of `topic`, each with `metadata`.
    ///
    /// # Errors
    /// The group refused or could not be reached; nothing may be assumed committed.
    fn commit_offsets(
        &self,
        topic: &str,
        offsets: &[(i32, i64)],
        metadata: &str,
    ) -> Result<(), Error>;
}

/// How one commit attempt ended.
#[derive(Debug)]
pub enum Outcome {
    /// No partition had anything new to commit.
    NothingDue,
    /// The checkpoint rows were not stored: nothing was committed.
    CheckpointNotStored(Error),
    /// The checkpoint is stored but the group did not take the offsets.
    NotCommitted(Error),
    /// The offsets are committed with this checkpoint.
    Committed {
        offsets: Vec<(i32, i64)>,
        checkpoint: String,
    },
}

/// One attempt of the protocol for `group` on `topic`. `held` gives the lowest offset an
/// open window holds per partition; `checkpoint` is called once, only if something is due.
pub async fn commit<S: Store>(
    store: &S,
    sink: &impl OffsetSink,
    tracker: &mut CommitTracker,
    held: impl Fn(i32) -> Option<i64>,
    checkpoint: impl FnOnce() -> String,
    group: &str,
    topic: &str,
) -> Outcome {
    let due = tracker.due(held);
    if due.is_empty() {
        return Outcome::NothingDue;
    }
    let checkpoint = checkpoint();
    let rows: Vec<Row> = due
        .iter()
        .map(|&(p, off)| checkpoint_row(group, topic, p, off, &checkpoint))
        .collect();
    // IMPORTANT: the checkpoint is durable before the offsets that rely on it.
    if let Err(e) = store.put(CHECKPOINT_TABLE, &rows).await {
        return Outcome::CheckpointNotStored(e);
    }
    if let Err(e) = sink.commit_offsets(topic, &due, &checkpoint) {
        return Outcome::NotCommitted(e);
    }
    for &(p, off) in &due {
        tracker.committed(p, off);
    }
    Outcome::Committed {
        offsets: due,
        checkpoint,
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use crate::worker::rows::{FAMILY, checkpoint_key};
    use crate::worker::store::MemoryStore;

    /// Offsets and checkpoint of one commit the group accepted.
    type Commit = (Vec<(i32, i64)>, String);

    /// Records commits; checks at each one that the checkpoint rows are already stored.
    struct Recorder<'a> {
        store: &'a MemoryStore,
        fail: bool,
        commits: RefCell<Vec<Commit>>,
        stored_before: RefCell<Vec<bool>>,
    }

    impl OffsetSink for Recorder<'_> {
        fn commit_offsets(
            &self,
            topic: &str,
            offsets: &[(i32, i64)],
            metadata: &str,
        ) -> Result<(), Error> {
            let store = self.store.clone();
            let keys: Vec<Vec<u8>> = offsets
                .iter()
                .map(|(p, _)| checkpoint_key("g", topic, *p))
                .collect();
            let stored = block_on_ready(async move {
                let mut all = true;
                for k in keys {
                    all &= store
                        .get_cell(CHECKPOINT_TABLE, &k, "checkpoint")
                        .await
                        .unwrap()
                        .is_some();
                }
                all
            });
            self.stored_before.borrow_mut().push(stored);
            if self.fail {
                return Err(Error::Sink {
                    sink: "group".into(),
                    reason: "coordinator not available".into(),
                });
            }
            self.commits
                .borrow_mut()
                .push((offsets.to_vec(), metadata.to_string()));
            Ok(())
        }
    }

    /// MemoryStore's futures complete at once: poll once, no runtime needed.
    fn block_on_ready<T>(f: impl std::future::Future<Output = T>) -> T {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => v,
            std::task::Poll::Pending => panic!("a MemoryStore future did not complete at once"),
        }
    }

    fn recorder(store: &MemoryStore, fail: bool) -> Recorder<'_> {
        Recorder {
            store,
            fail,
            commits: RefCell::new(Vec::new()),
            stored_before: RefCell::new(Vec::new()),
        }
    }

    fn tracker() -> CommitTracker {
        let mut t = CommitTracker::new();
        t.assign(0);
        t.assign(1);
        t.acked(0, 100);
        t.acked(1, 50);
        t
    }

    async fn store_with_table() -> MemoryStore {
        let s = MemoryStore::new();
        s.ensure_table(CHECKPOINT_TABLE, FAMILY).await.unwrap();
        s
    }

    fn run(
        store: &MemoryStore,
        sink: &Recorder<'_>,
        t: &mut CommitTracker,
        held: impl Fn(i32) -> Option<i64>,
    ) -> Outcome {
        block_on_ready(commit(
            store,
            sink,
            t,
            held,
            || "ck-1".into(),
            "g",
            "driving",
        ))
    }

    #[test]
    fn the_checkpoint_is_stored_before_the_offsets_are_committed() {
        let store = block_on_ready(store_with_table());
        let sink = recorder(&store, false);
        let mut t = tracker();
        let out = run(&store, &sink, &mut t, |_| None);
        assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
        assert_eq!(
            *sink.commits.borrow(),
            vec![(vec![(0, 100), (1, 50)], "ck-1".to_string())]
        );
        assert_eq!(*sink.stored_before.borrow(), vec![true]);
        assert_eq!(
            (t.committed_offset(0), t.committed_offset(1)),
            (Some(100), Some(50))
        );
        // Nothing new: nothing due, no second checkpoint, no commit.
        let out = run(&store, &sink, &mut t, |_| None);
        assert!(matches!(out, Outcome::NothingDue), "{out:?}");
        assert_eq!(sink.commits.borrow().len(), 1);
    }

    #[test]
    fn an_open_window_holds_its_partition_back() {
        let store = block_on_ready(store_with_table());
        let sink = recorder(&store, false);
        let mut t = tracker();
        let out = run(&store, &sink, &mut t, |p| (p == 0).then_some(40));
        assert!(matches!(out, Outcome::Committed { .. }), "{out:?}");
        assert_eq!(sink.commits.borrow()[0].0, vec![(0, 40), (1, 50)]);
        assert_eq!(t.committed_offset(0), Some(40));
    }

    #[test]
    fn a_checkpoint_the_store_refuses_commits_nothing_and_stays_due() {
        let store = MemoryStore::new(); // no checkpoint table: every put fails
        let sink = recorder(&store, false);
        let mut t = tracker();
        let out = run(&store, &sink, &mut t, |_| None);
        assert!(matches!(out, Outcome::CheckpointNotStored(_)), "{out:?}");
        assert!(
            sink.stored_before.borrow().is_empty(),
            "the group was never asked"
        );
        assert_eq!(t.committed_offset(0), None);
        assert_eq!(
            t.due(|_| None),
            vec![(0, 100), (1, 50)],
            "retried next time"
        );
    }

    #[test]
    fn a_commit_the_group_refuses_is_not_recorded_and_stays_due() {
        let store = block_on_ready(store_with_table());
        let sink = recorder(&store, true);
        let mut t = tracker();
        let out = run(&store, &sink, &mut t, |_| None);
        assert!(matches!(out, Outcome::NotCommitted(_)), "{out:?}");
        assert_eq!(*sink.stored_before.borrow(), vec![true]);
        assert_eq!(t.committed_offset(1), None);
        assert_eq!(t.due(|_| None), vec![(0, 100), (1, 50)]);
    }
}
