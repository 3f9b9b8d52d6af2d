//! The Kafka sink: an idempotent, asynchronous, batched producer; `deliver` returns after
//! every record of the batch has a delivery report. Key = the car number (field 2 of the
//! line) so one car's events stay ordered in one partition, or no key. Event headers become
//! Kafka headers; a dead letter carries its reason in the header `reason`.

use std::time::Duration;

use super::Sink;
use crate::collect::Event;
use crate::error::Result;
use crate::event::car_number_of;
use crate::kafka::{BatchProducer, OutRecord, producer_config};

/// How the record key is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyMode {
    /// Field 2 of the CSV line (falls back to no key if the line has no comma).
    CarNumber,
    /// No key (round-robin / sticky partitioning).
    None,
}

/// Kafka sink options.
#[derive(Debug, Clone)]
pub struct KafkaSinkOptions {
    /// `host:port[,host:port]`.
    pub brokers: String,
    /// Topic.
    pub topic: String,
    /// Key choice.
    pub key: KeyMode,
    /// How long a batch may wait for its delivery reports.
    pub delivery_timeout: Duration,
    /// Extra librdkafka properties (e.g. `compression.type`).
    pub properties: Vec<(String, String)>,
}

/// The Kafka sink.
pub struct KafkaSink {
    name: String,
    producer: BatchProducer,
    opts: KafkaSinkOptions,
}

impl KafkaSink {
    /// Creates the producer.
    ///
    /// # Errors
    /// [`Error::Kafka`](crate::Error::Kafka) if librdkafka refuses the configuration.
    pub fn new(name: &str, opts: KafkaSinkOptions) -> Result<Self> {
        let mut cfg = producer_config(&opts.brokers);
        for (k, v) in &opts.properties {
            cfg.set(k, v);
        }
        Ok(KafkaSink {
            name: name.to_owned(),
            producer: BatchProducer::new(&cfg, &opts.topic, name)?,
            opts,
        })
    }
}

impl Sink for KafkaSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&mut self, events: &[&Event]) -> Result<()> {
        let with_reason: Vec<Option<Vec<(String, String)>>> = events
            .iter()
            .map(|e| {
                e.dead_letter.as_ref().map(|r| {
                    let mut h = e.headers.clone();
                    h.push(("reason".to_owned(), r.clone()));
                    h
                })
            })
            .collect();
        let key = self.opts.key;
        let records = events.iter().zip(&with_reason).map(|(e, h)| OutRecord {
            key: match key {
                KeyMode::CarNumber => car_number_of(&e.body),
                KeyMode::None => None,
            },
            payload: &e.body,
            headers: h.as_deref().unwrap_or(&e.headers),
        });
        self.producer
            .send_and_wait(records, self.opts.delivery_timeout)
    }

    fn close(&mut self) -> Result<()> {
        self.producer.flush(Duration::from_secs(10))
    }
}
