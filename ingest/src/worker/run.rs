//! The consume loop of one topic: Kafka → parse → store (`sync`) + rule engine → sets and
//! `overspeed` rows → offset commit. A worker runs one loop per configured topic
//! ([`super::topics`]), each with its own consumer in the group, so the commit protocol
//! holds per topic and partition.
//!
//! One cycle: gather a batch (bounded by events, bytes and linger time); apply pending
//! partition assignments/revocations; parse each record (bad ones and late ones to the
//! dead-letter topic with a `reason` header); put the rows (driving or car status) and wait for the
//! store's durable ack; wait for the dead letters' delivery reports; advance the rule
//! engine and flag its firings (RESP `SADD`+`EXPIRE`, `overspeed` rows); only then commit
//! what [`CommitTracker`] allows. A failing store, RESP service or DLQ pauses consumption
//! and retries the same step with capped exponential backoff; nothing is committed until
//! it succeeds, so a kill at any moment replays instead of losing.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;

use super::classify::{Classified, classify};
use super::commit::{self, OffsetSink, Outcome};
use super::config::{TopicConfig, WorkerConfig};
use super::consumer::{ClosingConsumer, OwnershipChange, Shared, WorkerContext};
use super::offsets::CommitTracker;
use super::rows::{
    CHECKPOINT_TABLE, FAMILY, OVERSPEED_TABLE, Row, checkpoint_key, overspeed_row, wall_clock_ms,
};
use super::sets::SetSink;
use super::stats::WorkerStats;
use super::store::Store;
use crate::error::{Error, Result};
use crate::kafka::{BatchProducer, OutRecord, consumer_config, producer_config};
use crate::metrics::Registry;
use crate::rules::reload::{Reload, RuleWatcher};
use crate::rules::{Engine, EngineOptions, Firing};

/// How long one dead-letter batch may wait for delivery reports before it is retried.
const DLQ_TIMEOUT: Duration = Duration::from_secs(30);

/// A cycle at least this long is logged at debug level with the time of each stage.
const SLOW_CYCLE: Duration = Duration::from_millis(100);

/// `fetch.wait.max.ms` of the worker's consumer (see [`Worker::connect`]).
const FETCH_WAIT_MAX_MS: &str = "20";

/// Retries `op` until it succeeds, pausing consumption meanwhile; `None` on shutdown.
async fn until_ok<T, F, Fut>(
    what: &str,
    consumer: &StreamConsumer<WorkerContext>,
    stats: &WorkerStats,
    backoff_max: Duration,
    shutdown: &mut watch::Receiver<bool>,
    mut op: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let mut delay = Duration::from_millis(50);
    let mut paused: Option<TopicPartitionList> = None;
    loop {
        match op().await {
            Ok(v) => {
                if let Some(tpl) = paused
                    && let Err(e) = consumer.resume(&tpl)
                {
                    tracing::warn!(error = %e, "resume failed");
                }
                if delay > Duration::from_millis(50) {
                    tracing::info!(what, "recovered");
                }
                return Some(v);
            }
            Err(e) => {
                stats.retries.inc();
                if paused.is_none()
                    && let Ok(tpl) = consumer.assignment()
                {
                    // IMPORTANT: stop fetching while a sink is down; nothing is committed.
                    if let Err(pe) = consumer.pause(&tpl) {
                        tracing::warn!(error = %pe, "pause failed");
                    }
                    paused = Some(tpl);
                }
                tracing::warn!(what, error = %e, retry_in = ?delay, "sink failed, backing off");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.changed() => return None,
                }
                delay = (delay * 2).min(backoff_max);
            }
        }
    }
}

/// The consume loop of one topic: owns its consumer, its rule engine (if the topic has
/// rules) and its dead-letter producer; shares the store and the set sink.
pub struct TopicLoop<S: Store> {
    cfg: WorkerConfig,
    topic: TopicConfig,
    store: Arc<S>,
    stats: WorkerStats,
    consumer: ClosingConsumer,
    shared: Arc<Shared>,
    dlq: Arc<BatchProducer>,
    sets: SetSink,
    /// The rule file and the engine, for a topic with rules.
    rules: Option<RuleWatcher>,
    engine: Option<Engine>,
    tracker: CommitTracker,
    /// When offsets were last committed (see [`WorkerConfig::commit_interval`]).
    last_commit: Instant,
    /// Time the loop spent waiting on its sinks, commits and rebalances, successful or
    /// not: excluded from the engine's clock (see [`Worker::engine_now`]).
    busy: Duration,
}

impl<S: Store> TopicLoop<S> {
    /// Sets up the loop of `topic` (its consumer joins the group in [`run`](Self::run)).
    ///
    /// # Errors
    /// An invalid rule file or an unusable Kafka configuration.
    pub async fn connect(
        cfg: &WorkerConfig,
        topic: TopicConfig,
        store: Arc<S>,
        sets: SetSink,
        registry: Arc<Registry>,
    ) -> Result<Self> {
        let (rules, engine) = if topic.rules {
            let rules = RuleWatcher::open(&cfg.rules)?;
            let engine = Engine::new(
                rules.current(),
                EngineOptions {
                    idle_timeout: cfg.idle_flush,
                    ..EngineOptions::default()
                },
            );
            (Some(rules), Some(engine))
        } else {
            (None, None)
        };
        let shared = Arc::new(Shared::default());
        let consumer: StreamConsumer<WorkerContext> = consumer_config(&cfg.brokers, &cfg.group)
            // Bounds how long a fetch may be held by the broker when it has nothing new
            // (librdkafka's default is 500 ms): a floor of the end-to-end latency.
            .set("fetch.wait.max.ms", FETCH_WAIT_MAX_MS)
            .create_with_context(WorkerContext {
                topic: topic.name.clone(),
                shared: shared.clone(),
            })
            .map_err(|e| Error::kafka("creating consumer", e))?;
        ensure_topic(&cfg.brokers, &topic.dlq_topic).await;
        let dlq = BatchProducer::new(&producer_config(&cfg.brokers), &topic.dlq_topic, "dlq")?;
        Ok(TopicLoop {
            stats: WorkerStats::new(registry, &topic.name),
            store,
            consumer: ClosingConsumer::new(consumer),
            shared,
            dlq: Arc::new(dlq),
            sets,
            rules,
            engine,
            tracker: CommitTracker::new(),
            last_commit: Instant::now(),
            busy: Duration::ZERO,
            cfg: cfg.clone(),
            topic,
        })
    }

    /// Runs until `shutdown` turns true; then commits what is safe and returns.
    ///
    /// # Errors
    /// [`Error::Kafka`] if the topic cannot be subscribed.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<()> {
        let (store, consumer, stats) = (
            self.store.clone(),
            self.consumer.clone(),
            self.stats.clone(),
        );
        let mut tables = vec![(self.topic.table.clone(), self.topic.ttl)];
        if self.engine.is_some() {
            tables.push((OVERSPEED_TABLE.into(), None));
        }
        tables.push((CHECKPOINT_TABLE.into(), None));
        for (table, ttl) in &tables {
            let made = until_ok(
                "create table",
                &consumer,
                &stats,
                self.cfg.backoff_max,
                &mut shutdown,
                || store.ensure_table_ttl(table, FAMILY, *ttl),
            )
            .await;
            if made.is_none() {
                return Ok(());
            }
        }
        self.consumer
            .subscribe(&[&self.topic.name])
            .map_err(|e| Error::kafka(format!("subscribing to {}", self.topic.name), e))?;
        // Aborted when `run` ends or is dropped, and holding only a weak reference, so a
        // killed worker's consumer is really gone (it must not keep its partitions).
        let _lag = AbortOnDrop(tokio::spawn(lag_loop(
            Arc::downgrade(&self.consumer),
            self.topic.name.clone(),
            self.stats.clone(),
        )));
        let mut last_poll = Instant::now();
        tracing::info!(
            topic = %self.topic.name,
            table = %self.topic.table,
            rules = self.topic.rules,
            group = %self.cfg.group,
            "worker running"
        );
        while !*shutdown.borrow() {
            let batch = tokio::select! {
                b = self.gather() => b,
                _ = shutdown.changed() => break,
            };
            if !self.cycle(batch, &mut shutdown).await {
                break;
            }
            if last_poll.elapsed() >= self.cfg.rules_poll {
                last_poll = Instant::now();
                self.reload();
            }
        }
        self.commit(CommitMode::Sync).await;
        tracing::info!("worker stopped");
        Ok(())
    }

    /// The engine's processing-time clock: real time minus [`busy`](Self::busy), so it
    /// runs only while the worker reads from Kafka and evaluates rules. Partition idleness
    /// is measured on this clock: a partition is idle when it delivered nothing while the
    /// worker was reading. Time spent waiting on a slow, failing or stalled store, the
    /// RESP service, the dead-letter topic or a commit is backpressure, not silence; were
    /// it counted, every partition would look idle after a long wait, the open windows
    /// would fire with only part of their events, and the rest would be late (as Flink's
    /// idleness timer, this clock pauses under backpressure). The cost: under sustained
    /// backpressure a truly silent partition is declared idle later in real time.
    fn engine_now(&self) -> Instant {
        let now = Instant::now();
        now.checked_sub(self.busy).unwrap_or(now)
    }

    /// Receives a batch: waits up to the linger time for the first record, then takes the
    /// records already received (librdkafka prefetches while a cycle runs), up to the event
    /// and byte bounds, without waiting for more. Under load a batch holds what arrived
    /// during the previous cycle, so batches grow with the load; a light stream's event
    /// waits for no one.
    async fn gather(&self) -> Vec<OwnedMessage> {
        let first_by = tokio::time::Instant::now() + self.cfg.batch_linger;
        let mut out = Vec::new();
        let mut bytes = 0;
        while out.len() < self.cfg.batch_max_events && bytes < self.cfg.batch_max_bytes {
            // Before the first record: wait until the linger deadline. After it: only what
            // is ready now (a timeout polls its future once before looking at the clock).
            let deadline = if out.is_empty() {
                first_by
            } else {
                tokio::time::Instant::now()
            };
            match tokio::time::timeout_at(deadline, self.consumer.recv()).await {
                Err(_) => break,
                Ok(Ok(m)) => {
                    bytes += m.payload_len();
                    out.push(m.detach());
                }
                Ok(Err(KafkaError::PartitionEOF(_))) => {}
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "consume error; librdkafka reconnects");
                    break;
                }
            }
        }
        out
    }

    async fn apply_ownership(&mut self) {
        let changes: Vec<_> = self.shared.changes.lock().drain(..).collect();
        let now = self.engine_now();
        for c in changes {
            match c {
                OwnershipChange::Revoked(ps) => {
                    for p in ps {
                        if let Some(e) = self.engine.as_mut() {
                            e.revoke(p);
                        }
                        self.tracker.revoke(p);
                    }
                }
                OwnershipChange::Assigned(ps) => self.assign(&ps, now).await,
                OwnershipChange::Resync => {
                    for p in self.tracker.partitions() {
                        if let Some(e) = self.engine.as_mut() {
                            e.revoke(p);
                        }
                        self.tracker.revoke(p);
                    }
                    let ps = self.consumer.assignment().map_or_else(
                        |_| Vec::new(),
                        |tpl| {
                            tpl.elements_for_topic(&self.topic.name)
                                .iter()
                                .map(|e| e.partition())
                                .collect()
                        },
                    );
                    self.assign(&ps, now).await;
                }
            }
        }
        self.stats.owned.set(self.tracker.partitions().len() as i64);
    }

    async fn assign(&mut self, ps: &[i32], now: Instant) {
        let mut tpl = TopicPartitionList::new();
        for &p in ps {
            if let Some(e) = self.engine.as_mut() {
                e.assign(p, now);
            }
            self.tracker.assign(p);
            tpl.add_partition(&self.topic.name, p);
        }
        let Some(engine) = self.engine.as_mut() else {
            return; // no rules, no checkpoint to restore
        };
        // Restore the rule checkpoints of the last commits, so replayed events of windows
        // that fired before are not fired again as partial batches. The store's copy is
        // authoritative (written before each commit); commit metadata is the fallback.
        let mut restored = Vec::new();
        for &p in ps {
            let key = checkpoint_key(&self.cfg.group, &self.topic.name, p);
            match self
                .store
                .get_cell(CHECKPOINT_TABLE, &key, "checkpoint")
                .await
            {
                Ok(Some(v)) => {
                    engine.restore(p, &String::from_utf8_lossy(&v));
                    restored.push(p);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, partition = p, "cannot read checkpoint"),
            }
        }
        match self.consumer.committed_offsets(tpl, Duration::from_secs(5)) {
            Ok(committed) => {
                for e in committed.elements_for_topic(&self.topic.name) {
                    if !e.metadata().is_empty() && !restored.contains(&e.partition()) {
                        engine.restore(e.partition(), e.metadata());
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read committed checkpoints"),
        }
    }

    /// One cycle; `false` if shutdown interrupted a retry.
    async fn cycle(
        &mut self,
        batch: Vec<OwnedMessage>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let started = Instant::now();
        self.apply_ownership().await; // reads checkpoints and commits: off the clock
        self.busy += started.elapsed();
        let engine_now = self.engine_now();
        let tracker = &self.tracker;
        let Classified {
            rows,
            dead,
            next,
            consumed,
            parse_bad,
            late,
        } = classify(
            &batch,
            |p| tracker.owns(p),
            self.topic.parser,
            self.engine.as_mut(),
            engine_now,
        );
        self.stats.consumed.add(consumed);
        let (store, consumer, stats, max) = (
            self.store.clone(),
            self.consumer.clone(),
            self.stats.clone(),
            self.cfg.backoff_max,
        );
        let t_parsed = Instant::now();
        if !rows.is_empty() {
            let table = &self.topic.table;
            let ok = until_ok("store rows", &consumer, &stats, max, shutdown, || {
                store.put(table, &rows)
            })
            .await;
            if ok.is_none() {
                return false;
            }
            self.stats.stored.add(rows.len() as u64);
        }
        if !dead.is_empty() {
            let dlq = self.dlq.clone();
            let dead = Arc::new(dead);
            let ok = until_ok(
                "dead-letter topic",
                &consumer,
                &stats,
                max,
                shutdown,
                || {
                    let (dlq, dead) = (dlq.clone(), dead.clone());
                    async move {
                        tokio::task::spawn_blocking(move || {
                            dlq.send_and_wait(
                                dead.iter().map(|d| OutRecord {
                                    key: d.key.as_deref(),
                                    payload: &d.payload,
                                    headers: &d.headers,
                                }),
                                DLQ_TIMEOUT,
                            )
                        })
                        .await
                        .map_err(|e| Error::Sink {
                            sink: "dlq".into(),
                            reason: e.to_string(),
                        })?
                    }
                },
            )
            .await;
            if ok.is_none() {
                return false;
            }
            self.stats.dead_parse.add(parse_bad);
            self.stats.dead_late.add(late);
            self.stats.late.add(late);
        }
        for (p, n) in next {
            self.tracker.acked(p, n);
        }
        let t_stored = Instant::now();
        // IMPORTANT: the wait on the store (however long, failed or not) is off the clock
        // before the engine looks at idleness; see `engine_now`.
        self.busy += t_stored - t_parsed;
        let now = self.engine_now();
        let firings = self
            .engine
            .as_mut()
            .map_or_else(Vec::new, |e| e.advance(now));
        let t_advanced = Instant::now();
        let fired = firings.len();
        let sunk = firings.is_empty() || self.sink_firings(firings, shutdown).await;
        let t_fired = Instant::now();
        if sunk && self.last_commit.elapsed() >= self.cfg.commit_interval {
            self.last_commit = Instant::now();
            self.commit(CommitMode::Async).await;
        }
        self.busy += t_advanced.elapsed();
        if !sunk {
            return false;
        }
        if !batch.is_empty() {
            self.stats
                .batch_seconds
                .observe(started.elapsed().as_secs_f64());
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            // Age of the batch's oldest record (Kafka timestamp → now): the broker leg of
            // the latency. Computed only when someone reads it.
            let oldest_ms = batch
                .iter()
                .filter_map(|m| m.timestamp().to_millis())
                .min()
                .map(|t| wall_clock_ms().saturating_sub(t));
            if oldest_ms.is_some_and(|a| a >= SLOW_CYCLE.as_millis() as i64) {
                tracing::debug!(events = batch.len(), ?oldest_ms, "old records consumed");
            }
        }
        if started.elapsed() >= SLOW_CYCLE {
            tracing::debug!(
                events = batch.len(),
                fired,
                parse_ms = (t_parsed - started).as_millis() as u64,
                store_ms = (t_stored - t_parsed).as_millis() as u64,
                fire_ms = (t_fired - t_stored).as_millis() as u64,
                commit_ms = t_fired.elapsed().as_millis() as u64,
                "slow cycle"
            );
        }
        true
    }

    async fn sink_firings(
        &mut self,
        firings: Vec<Firing>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> bool {
        let (store, consumer, stats, max) = (
            self.store.clone(),
            self.consumer.clone(),
            self.stats.clone(),
            self.cfg.backoff_max,
        );
        let firings = Arc::new(firings);
        let sets = self.sets.clone();
        let ok = until_ok("flag sets", &consumer, &stats, max, shutdown, || {
            let (mut sets, firings) = (sets.clone(), firings.clone());
            async move { sets.flag(&firings).await }
        })
        .await;
        if ok.is_none() {
            return false;
        }
        let rows: Vec<Row> = firings.iter().map(overspeed_row).collect();
        let ok = until_ok(
            "store overspeed rows",
            &consumer,
            &stats,
            max,
            shutdown,
            || store.put(OVERSPEED_TABLE, &rows),
        )
        .await;
        if ok.is_none() {
            return false;
        }
        self.stats.firings.add(firings.len() as u64);
        true
    }

    async fn commit(&mut self, mode: CommitMode) {
        let sink = KafkaOffsets {
            consumer: &self.consumer,
            mode,
        };
        let engine = self.engine.as_ref();
        let out = commit::commit(
            &*self.store,
            &sink,
            &mut self.tracker,
            |p| engine.and_then(|e| e.held_offset(p)),
            || engine.map_or_else(String::new, Engine::checkpoint),
            &self.cfg.group,
            &self.topic.name,
        )
        .await;
        match out {
            Outcome::NothingDue => {}
            Outcome::CheckpointNotStored(e) => {
                tracing::warn!(error = %e, "checkpoint not stored; commit retried next cycle");
            }
            Outcome::NotCommitted(e) => {
                tracing::warn!(error = %e, "commit failed; retried next cycle");
            }
            Outcome::Committed {
                offsets,
                checkpoint,
            } => {
                let mut committable = self.shared.committable.lock();
                for (p, off) in offsets {
                    self.stats.committed(p).set(off);
                    committable.insert(p, (off, checkpoint.clone()));
                }
            }
        }
    }

    fn reload(&mut self) {
        let (Some(rules), Some(engine)) = (self.rules.as_mut(), self.engine.as_mut()) else {
            return;
        };
        match rules.poll() {
            Reload::Unchanged => {}
            Reload::Applied(set) => {
                tracing::info!(rules = set.rules.len(), "rule file reloaded");
                engine.set_rules(&set);
                self.stats.reloads_applied.inc();
            }
            Reload::Refused(e) => {
                tracing::error!(error = %e, "rule file refused; the old rules stay");
                self.stats.reloads_refused.inc();
            }
        }
    }
}

/// Creates the dead-letter topic if it is missing (brokers such as tansu do not
/// auto-create topics). Failure is only logged: dead letters then retry until it exists.
/// The consumer group as the commit protocol's offset sink.
struct KafkaOffsets<'a> {
    consumer: &'a ClosingConsumer,
    mode: CommitMode,
}

impl OffsetSink for KafkaOffsets<'_> {
    fn commit_offsets(&self, topic: &str, offsets: &[(i32, i64)], metadata: &str) -> Result<()> {
        let mut tpl = TopicPartitionList::new();
        for &(p, off) in offsets {
            tpl.add_partition_offset(topic, p, Offset::Offset(off))
                .map_err(|e| Error::kafka("building the commit", e))?;
            if let Some(mut e) = tpl.find_partition(topic, p) {
                e.set_metadata(metadata);
            }
        }
        self.consumer
            .commit(&tpl, self.mode)
            .map_err(|e| Error::kafka("committing offsets", e))
    }
}

async fn ensure_topic(brokers: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = match ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
    {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, topic, "cannot create an admin client");
            return;
        }
    };
    let new = NewTopic::new(topic, 1, TopicReplication::Fixed(1));
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    match admin.create_topics([&new], &opts).await {
        Ok(results) => {
            for r in results {
                match r {
                    Ok(_) => tracing::info!(topic, "dead-letter topic created"),
                    Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                    Err((t, code)) => tracing::warn!(topic = %t, ?code, "cannot create topic"),
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, topic, "cannot create topic"),
    }
}

/// Aborts a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Every 2 s, publishes high watermark minus position per owned partition.
async fn lag_loop(
    consumer: Weak<StreamConsumer<WorkerContext>>,
    topic: String,
    stats: WorkerStats,
) {
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Some(c) = consumer.upgrade() else { return };
        let t = topic.clone();
        let lags = tokio::task::spawn_blocking(move || {
            let Ok(pos) = c.position() else {
                return Vec::new();
            };
            pos.elements_for_topic(&t)
                .iter()
                .filter_map(|e| {
                    let p = e.partition();
                    let (_, high) = c.fetch_watermarks(&t, p, Duration::from_secs(1)).ok()?;
                    let at = match e.offset() {
                        Offset::Offset(o) => o,
                        _ => return Some((p, high)),
                    };
                    Some((p, (high - at).max(0)))
                })
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for (p, lag) in lags {
            stats.lag(p).set(lag);
        }
    }
}
