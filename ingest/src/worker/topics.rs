//! One worker, several topics: a [`TopicLoop`] per configured topic
//! ([`WorkerConfig::topics`]), all in one process, sharing the store connection and the
//! TTL set sink.
//!
//! Each loop has its own consumer in the worker's group (subscribed to its one topic), its
//! own dead-letter producer, commit tracker and, for a topic with rules, rule engine; so
//! offsets are committed per topic and partition only after that topic's rows are
//! durable, exactly as for a single topic. The loops run concurrently: one topic's slow
//! sink or outage pauses that topic only, and their `sync` puts share the server's group
//! commit.

use std::sync::Arc;

use tokio::sync::watch;

use super::config::WorkerConfig;
use super::run::TopicLoop;
use super::sets::SetSink;
use super::store::Store;
use crate::error::Result;
use crate::metrics::Registry;

/// The ingest worker: one consume loop per topic.
pub struct Worker<S: Store> {
    loops: Vec<TopicLoop<S>>,
}

impl<S: Store> Worker<S> {
    /// Connects everything (tables are created when the loops start).
    ///
    /// # Errors
    /// An invalid rule file, an unusable Kafka configuration, or the RESP service being
    /// unreachable at start. The store being down at start is retried, not an error.
    pub async fn connect(cfg: WorkerConfig, store: S, registry: Arc<Registry>) -> Result<Self> {
        let store = Arc::new(store);
        let sets = SetSink::connect(&cfg.resp, cfg.resp_timeout).await?;
        let mut loops = Vec::with_capacity(cfg.topics.len());
        for topic in &cfg.topics {
            loops.push(
                TopicLoop::connect(
                    &cfg,
                    topic.clone(),
                    Arc::clone(&store),
                    sets.clone(),
                    Arc::clone(&registry),
                )
                .await?,
            );
        }
        Ok(Worker { loops })
    }

    /// Runs every topic's loop until `shutdown` turns true; each then commits what is
    /// safe. A loop that fails ends the worker (the others are dropped, committing
    /// nothing more than they had: the next start replays from there).
    ///
    /// # Errors
    /// [`crate::Error::Kafka`] if a topic cannot be subscribed.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> Result<()> {
        futures::future::try_join_all(self.loops.into_iter().map(|l| l.run(shutdown.clone())))
            .await
            .map(|_| ())
    }
}
