//! The worker's metrics, registered in the crate's Prometheus [`Registry`].
//!
//! Names: `ingest_consumed_total`, `ingest_stored_total`, `ingest_dead_lettered_total`
//! (label `reason`: `parse` or `late`), `ingest_late_total`, `ingest_rule_firings_total`,
//! `ingest_rule_reloads_total` (label `result`), `ingest_store_retries_total`,
//! `ingest_batch_seconds` (histogram: batch consumed → stored, flagged and committed),
//! `ingest_partitions_owned` (gauge: partitions of the topic this worker owns),
//! `ingest_consumer_lag` and `ingest_committed_offset` (label `partition`). Every series
//! but the rule reloads (one rule file per worker) carries the label `topic` (first): a
//! worker serving several topics counts each apart.

use std::sync::Arc;

use crate::metrics::{Counter, Gauge, Histogram, LATENCY_BUCKETS, Registry};

/// Handles on the worker's metrics.
#[derive(Debug, Clone)]
pub struct WorkerStats {
    registry: Arc<Registry>,
    topic: String,
    /// Records received from Kafka.
    pub consumed: Counter,
    /// Driving rows acknowledged by the store.
    pub stored: Counter,
    /// Unparsable records dead-lettered.
    pub dead_parse: Counter,
    /// Late events dead-lettered (they are stored too).
    pub dead_late: Counter,
    /// Late events.
    pub late: Counter,
    /// Rule firings flagged.
    pub firings: Counter,
    /// Rule reloads applied.
    pub reloads_applied: Counter,
    /// Rule reloads refused (invalid file).
    pub reloads_refused: Counter,
    /// Retries of store, RESP or DLQ calls.
    pub retries: Counter,
    /// Batch latency.
    pub batch_seconds: Histogram,
    /// Partitions of the topic currently owned (changes with every rebalance).
    pub owned: Gauge,
}

impl WorkerStats {
    /// Registers the worker's metrics.
    pub fn new(registry: Arc<Registry>, topic: &str) -> WorkerStats {
        let r = &registry;
        let dead = "Records sent to the dead-letter topic";
        let t = ("topic", topic);
        WorkerStats {
            consumed: r.counter("ingest_consumed_total", "Records consumed from Kafka", &[t]),
            stored: r.counter("ingest_stored_total", "Rows stored durably", &[t]),
            dead_parse: r.counter(
                "ingest_dead_lettered_total",
                dead,
                &[t, ("reason", "parse")],
            ),
            dead_late: r.counter("ingest_dead_lettered_total", dead, &[t, ("reason", "late")]),
            late: r.counter(
                "ingest_late_total",
                "Events too late for their window",
                &[t],
            ),
            firings: r.counter("ingest_rule_firings_total", "Rule firings flagged", &[t]),
            reloads_applied: r.counter(
                "ingest_rule_reloads_total",
                "Rule file reloads",
                &[("result", "applied")],
            ),
            reloads_refused: r.counter(
                "ingest_rule_reloads_total",
                "Rule file reloads",
                &[("result", "refused")],
            ),
            retries: r.counter(
                "ingest_store_retries_total",
                "Retries of store, RESP or dead-letter writes",
                &[t],
            ),
            batch_seconds: r.histogram(
                "ingest_batch_seconds",
                "Batch latency: consumed to stored, flagged and committed",
                &[t],
                LATENCY_BUCKETS,
            ),
            owned: r.gauge(
                "ingest_partitions_owned",
                "Partitions of the topic this worker owns",
                &[t],
            ),
            registry,
            topic: topic.into(),
        }
    }

    /// The lag gauge of a partition.
    pub fn lag(&self, partition: i32) -> Gauge {
        self.registry.gauge(
            "ingest_consumer_lag",
            "High watermark minus position, per partition",
            &[
                ("topic", &self.topic),
                ("partition", &partition.to_string()),
            ],
        )
    }

    /// The committed-offset gauge of a partition.
    pub fn committed(&self, partition: i32) -> Gauge {
        self.registry.gauge(
            "ingest_committed_offset",
            "Last committed offset, per partition",
            &[
                ("topic", &self.topic),
                ("partition", &partition.to_string()),
            ],
        )
    }
}
