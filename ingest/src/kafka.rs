//! Shared Kafka plumbing: `ClientConfig` builders with the settings that matter against
//! tansu (see issue 6's measurements), and [`BatchProducer`], an idempotent producer that
//! sends a batch asynchronously and reports when every record of it has a delivery report.
//!
//! Not a consumer framework: the worker owns its consume loop; this module only builds its
//! configuration.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use rdkafka::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::error::{Error, Result};

/// Producer settings: idempotent (so librdkafka's internal retries never duplicate or
/// reorder within a partition), `acks=all`, batched with a short linger, and a bounded
/// local queue (`QueueFull` makes [`BatchProducer::send_batch`] wait, never drop).
pub fn producer_config(brokers: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.messages", "200000")
        .set("queue.buffering.max.kbytes", "262144")
        .set("message.timeout.ms", "30000")
        .set("log_level", "4");
    c
}

/// Consumer settings for a group member against tansu: manual commits, cooperative
/// rebalancing, `session.timeout.ms=6000` (a join takes about half of it),
/// `fetch.queue.backoff.ms=10` (the default 1000 stalls consumption) and partition EOF
/// events so "caught up" is decided by EOF, not by tansu's approximate watermarks.
pub fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "cooperative-sticky")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .set("fetch.queue.backoff.ms", "10")
        .set("enable.partition.eof", "true")
        .set("log_level", "4");
    c
}

/// Delivery bookkeeping for one batch: how many records still wait for a report, and the
/// first failure.
#[derive(Debug, Default)]
pub struct BatchAck {
    remaining: AtomicUsize,
    state: Mutex<AckState>,
    done: Condvar,
}

#[derive(Debug, Default)]
struct AckState {
    finished: bool,
    first_error: Option<String>,
}

impl BatchAck {
    fn new(n: usize) -> Arc<BatchAck> {
        let a = Arc::new(BatchAck::default());
        a.remaining.store(n, Ordering::SeqCst);
        if n == 0 {
            a.state.lock().finished = true;
        }
        a
    }

    fn report(&self, error: Option<String>) {
        if let Some(e) = error {
            let mut st = self.state.lock();
            st.first_error.get_or_insert(e);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.state.lock().finished = true;
            self.done.notify_all();
        }
    }

    /// Blocks until every record has a delivery report or `timeout` passes.
    ///
    /// # Errors
    /// The first delivery failure, or a timeout, as [`Error::Sink`].
    pub fn wait(&self, sink: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut st = self.state.lock();
        while !st.finished {
            if self.done.wait_until(&mut st, deadline).timed_out() && !st.finished {
                return Err(Error::Sink {
                    sink: sink.to_owned(),
                    reason: format!(
                        "{} deliveries still pending after {timeout:?}",
                        self.remaining.load(Ordering::Acquire)
                    ),
                });
            }
        }
        match &st.first_error {
            None => Ok(()),
            Some(e) => Err(Error::Sink {
                sink: sink.to_owned(),
                reason: format!("delivery failed: {e}"),
            }),
        }
    }
}

/// Routes delivery reports to their batch's [`BatchAck`].
pub struct AckContext;

impl ClientContext for AckContext {}

impl ProducerContext for AckContext {
    type DeliveryOpaque = Arc<BatchAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, ack: Arc<BatchAck>) {
        ack.report(result.as_ref().err().map(|(e, _)| e.to_string()));
    }
}

/// One record to produce.
#[derive(Debug, Clone, Copy)]
pub struct OutRecord<'a> {
    /// Partitioning key (e.g. the car number), or none.
    pub key: Option<&'a [u8]>,
    /// Payload.
    pub payload: &'a [u8],
    /// Headers as (name, value).
    pub headers: &'a [(String, String)],
}

/// An idempotent producer for one topic with per-batch delivery tracking.
pub struct BatchProducer {
    producer: ThreadedProducer<AckContext>,
    topic: String,
    name: String,
}

impl BatchProducer {
    /// Creates the producer (`name` labels errors, e.g. the sink's name).
    ///
    /// # Errors
    /// [`Error::Kafka`] if the configuration is refused.
    pub fn new(config: &ClientConfig, topic: &str, name: &str) -> Result<Self> {
        let producer = config
            .create_with_context(AckContext)
            .map_err(|e| Error::kafka(format!("creating producer for {topic}"), e))?;
        Ok(BatchProducer {
            producer,
            topic: topic.to_owned(),
            name: name.to_owned(),
        })
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// Enqueues every record (waiting while librdkafka's bounded queue is full) and returns
    /// the batch's [`BatchAck`] without waiting for delivery.
    ///
    /// # Errors
    /// [`Error::Kafka`] if a record is refused for a reason other than a full queue (e.g.
    /// too large); records enqueued before it still get reports.
    pub fn send_batch<'a>(
        &self,
        records: impl ExactSizeIterator<Item = OutRecord<'a>>,
    ) -> Result<Arc<BatchAck>> {
        let len = records.len();
        let ack = BatchAck::new(len);
        for (sent, r) in records.enumerate() {
            let mut rec =
                BaseRecord::<[u8], [u8], Arc<BatchAck>>::with_opaque_to(&self.topic, ack.clone())
                    .payload(r.payload);
            if let Some(k) = r.key {
                rec = rec.key(k);
            }
            if !r.headers.is_empty() {
                let mut h = OwnedHeaders::new_with_capacity(r.headers.len());
                for (k, v) in r.headers {
                    h = h.insert(Header {
                        key: k,
                        value: Some(v.as_bytes()),
                    });
                }
                rec = rec.headers(h);
            }
            loop {
                match self.producer.send(rec) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        // Bounded local queue: wait for deliveries to drain it.
                        self.producer.poll(Duration::from_millis(5));
                        rec = back;
                    }
                    Err((e, _)) => {
                        // The records that will never be sent are reported failed so that
                        // waiters on this batch finish.
                        for _ in sent..len {
                            ack.report(Some(e.to_string()));
                        }
                        return Err(Error::kafka(format!("producing to {}", self.topic), e));
                    }
                }
            }
        }
        Ok(ack)
    }

    /// Sends a batch and waits for all its delivery reports.
    ///
    /// # Errors
    /// As [`send_batch`](Self::send_batch), plus any delivery failure or timeout.
    pub fn send_and_wait<'a>(
        &self,
        records: impl ExactSizeIterator<Item = OutRecord<'a>>,
        timeout: Duration,
    ) -> Result<()> {
        self.send_batch(records)?.wait(&self.name, timeout)
    }

    /// Flushes outstanding records.
    ///
    /// # Errors
    /// [`Error::Kafka`] on timeout.
    pub fn flush(&self, timeout: Duration) -> Result<()> {
        self.producer
            .flush(timeout)
            .map_err(|e| Error::kafka(format!("flushing {}", self.topic), e))
    }
}
