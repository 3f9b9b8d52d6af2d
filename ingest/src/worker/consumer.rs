//! The worker's Kafka consumer: group membership with cooperative-sticky rebalancing, and
//! a context that hands partition assignments and revocations to the consume loop.
//!
//! librdkafka calls the rebalance hooks on the thread that polls the consumer, so the
//! context only queues the events; the loop applies them to the rule engine and the commit
//! tracker between batches. Before partitions are revoked, the context commits their last
//! committable offsets (published by the loop), so the next owner replays as little as
//! possible. Not the consume loop itself (see [`super::run`]).

use std::collections::{BTreeMap, VecDeque};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
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

impl ClientContext for WorkerContext {
    /// librdkafka reports every partition end (`enable.partition.eof`, which the loop relies
    /// on to know it has caught up) as an error event too, and rdkafka's default logs each
    /// one at ERROR: a healthy worker on a slow stream would log one per quiet moment. A
    /// partition end is normal, so it is traced; real errors keep their level.
    fn error(&self, error: KafkaError, reason: &str) {
        if is_partition_eof(&error) {
            tracing::trace!(reason, "partition end reached");
        } else {
            tracing::error!(error = %error, reason, "librdkafka error");
        }
    }
}

/// Whether `error` is the end-of-partition event, however rdkafka wrapped it.
fn is_partition_eof(error: &KafkaError) -> bool {
    matches!(error, KafkaError::PartitionEOF(_))
        || error.rdkafka_error_code() == Some(RDKafkaErrorCode::PartitionEOF)
}

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

/// How long dropping a [`ClosingConsumer`] waits for the consumer to close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The worker's consumer, closed within a bound when dropped.
///
/// Dropping a librdkafka consumer closes it: revoke, final commit, leave the group. With
/// the broker unreachable that close can block indefinitely, which would turn a shutdown
/// (or a test that failed while Kafka was stopped) into a hang. The drop therefore closes
/// the consumer on a helper thread and waits at most [`CLOSE_TIMEOUT`]; past it the close
/// is left running in the background with a warning (the group expires the member after
/// `session.timeout.ms`, as it would for a crashed worker).
pub struct ClosingConsumer(Option<Arc<StreamConsumer<WorkerContext>>>);

impl std::fmt::Debug for ClosingConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClosingConsumer").finish_non_exhaustive()
    }
}

impl ClosingConsumer {
    /// Takes ownership of `consumer`.
    pub fn new(consumer: StreamConsumer<WorkerContext>) -> ClosingConsumer {
        ClosingConsumer(Some(Arc::new(consumer)))
    }
}

impl Deref for ClosingConsumer {
    type Target = Arc<StreamConsumer<WorkerContext>>;

    fn deref(&self) -> &Self::Target {
        // Only `drop` takes the consumer out.
        self.0
            .as_ref()
            .unwrap_or_else(|| unreachable!("consumer used after drop"))
    }
}

impl Drop for ClosingConsumer {
    fn drop(&mut self) {
        let Some(consumer) = self.0.take() else {
            return;
        };
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let spawned = std::thread::Builder::new()
            .name("kafka-close".into())
            .spawn(move || {
                drop(consumer);
                let _ = done_tx.send(());
            });
        match spawned {
            // The closure (and the consumer) was dropped here, inline, by the failed spawn.
            Err(e) => tracing::warn!(error = %e, "no thread for the consumer close; closed inline"),
            Ok(_) => {
                if done_rx.recv_timeout(CLOSE_TIMEOUT).is_err() {
                    tracing::warn!(
                        timeout = ?CLOSE_TIMEOUT,
                        "Kafka consumer did not close in time (broker unreachable?); left closing in the background"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_end_is_recognised_however_it_is_wrapped() {
        assert!(is_partition_eof(&KafkaError::PartitionEOF(3)));
        assert!(is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::PartitionEOF
        )));
        assert!(!is_partition_eof(&KafkaError::Global(
            RDKafkaErrorCode::BrokerTransportFailure
        )));
    }

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
