//! The worker's Kafka consumer: group membership with cooperative-sticky rebalancing, and
//! a context that hands partition assignments and revocations to the consume loop.
//!
//! librdkafka calls the rebalance hooks on the thread that polls the consumer, so the
//! context only queues the events; the loop applies them to the rule engine and the commit
//! tracker between batches. Before partitions are revoked, the context commits their last
//! committable offsets (published by the loop), so the next owner replays as little as
//! possible. Not the consume loop itself (see [`super::run`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

/// Bound of the rebalance event queue; past it the loop resynchronises from the
/// consumer's assignment instead.
pub const MAX_PENDING_REBALANCES: usize = 1024;

/// A change of ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnershipChange {
    /// Partitions newly assigned.
    Assigned(Vec<i32>),
    /// Partitions revoked.
    Revoked(Vec<i32>),
    /// Events were dropped at the bound: rebuild ownership from the assignment.
    Resync,
}

/// State shared between the consume loop and the consumer context.
#[derive(Debug, Default)]
pub struct Shared {
    /// Pending ownership changes, oldest first (bounded by [`MAX_PENDING_REBALANCES`]).
    pub changes: Mutex<VecDeque<OwnershipChange>>,
    /// Per partition, the offset and checkpoint the loop last found safe to commit.
    pub committable: Mutex<BTreeMap<i32, (i64, String)>>,
}

impl Shared {
    fn push(&self, c: OwnershipChange) {
        let mut q = self.changes.lock();
        if q.len() >= MAX_PENDING_REBALANCES {
            q.clear();
            q.push_back(OwnershipChange::Resync);
        } else {
            q.push_back(c);
        }
    }
}

/// The consumer context of the worker.
#[derive(Debug)]
pub struct WorkerContext {
    /// The driving topic.
    pub topic: String,
    /// State shared with the loop.
    pub shared: Arc<Shared>,
}

impl ClientContext for WorkerContext {}

fn partitions(tpl: &TopicPartitionList, topic: &str) -> Vec<i32> {
    tpl.elements_for_topic(topic)
        .iter()
        .map(|e| e.partition())
        .collect()
}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            let revoked = partitions(tpl, &self.topic);
            let mut commit = TopicPartitionList::new();
            {
                let committable = self.shared.committable.lock();
                for p in &revoked {
                    if let Some((off, meta)) = committable.get(p)
                        && commit
                            .add_partition_offset(&self.topic, *p, Offset::Offset(*off))
                            .is_ok()
                        && let Some(mut e) = commit.find_partition(&self.topic, *p)
                    {
                        e.set_metadata(meta.as_str());
                    }
                }
            }
            if commit.count() > 0
                && let Err(e) = consumer.commit(&commit, CommitMode::Sync)
            {
                tracing::warn!(error = %e, "commit before revocation failed; the next owner replays more");
            }
            self.shared
                .committable
                .lock()
                .retain(|p, _| !revoked.contains(p));
            tracing::info!(?revoked, "partitions revoked");
            self.shared.push(OwnershipChange::Revoked(revoked));
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            let assigned = partitions(tpl, &self.topic);
            tracing::info!(?assigned, "partitions assigned");
            self.shared.push(OwnershipChange::Assigned(assigned));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_change_queue_is_bounded_and_degrades_to_a_resync() {
        let s = Shared::default();
        s.push(OwnershipChange::Assigned(vec![0]));
        s.push(OwnershipChange::Revoked(vec![0]));
        assert_eq!(s.changes.lock().len(), 2, "order kept below the bound");
        for i in 0..MAX_PENDING_REBALANCES as i32 {
            s.push(OwnershipChange::Assigned(vec![i]));
        }
        let q = s.changes.lock();
        assert!(q.len() <= MAX_PENDING_REBALANCES);
        assert!(
            q.contains(&OwnershipChange::Resync),
            "overflow asks for a resync"
        );
    }
}
