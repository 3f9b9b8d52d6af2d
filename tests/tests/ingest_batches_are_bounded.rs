//! The worker writes `driving` in batches bounded by event count and by payload bytes:
//! with a backlog in the topic, no put carries more than `batch_max_events` rows, nor
//! more than `batch_max_bytes` of records (plus the one record that crossed the bound),
//! and every event is still stored once. The real region server stores the rows; a thin
//! wrapper of the real store records the size of each put.

#[path = "ingest_support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use speedlayer_ingest::worker::rows::Row;
use speedlayer_ingest::worker::{GrpcStore, Store};
use support::*;

/// The real store, recording the number of rows of every put to `driving`.
#[derive(Clone)]
struct Recording {
    inner: Arc<GrpcStore>,
    puts: Arc<Mutex<Vec<usize>>>,
}

impl Store for Recording {
    async fn ensure_table(&self, table: &str, family: &str) -> speedlayer_ingest::Result<()> {
        self.inner.ensure_table(table, family).await
    }

    async fn put(&self, table: &str, rows: &[Row]) -> speedlayer_ingest::Result<()> {
        self.inner.put(table, rows).await?;
        if table == "driving" {
            self.puts.lock().unwrap().push(rows.len());
        }
        Ok(())
    }

    async fn get_cell(
        &self,
        table: &str,
        row: &[u8],
        qualifier: &str,
    ) -> speedlayer_ingest::Result<Option<Vec<u8>>> {
        self.inner.get_cell(table, row, qualifier).await
    }
}

/// Runs a worker with `max_events` / `max_bytes` over a pre-filled topic of `lines`;
/// returns the rows of every `driving` put.
async fn puts_with(max_events: usize, max_bytes: usize, lines: &[Line]) -> Vec<usize> {
    let env = Env::start(80);
    produce(&env.tansu.brokers(), &records(lines)).await;
    let mut cfg = env.config();
    cfg.batch_max_events = max_events;
    cfg.batch_max_bytes = max_bytes;
    let store = Recording {
        inner: Arc::new(GrpcStore::connect(&cfg.server).await.unwrap()),
        puts: Arc::default(),
    };
    let puts = store.puts.clone();
    let w = env.worker_on(cfg, store).await;
    let all = expected_keys(lines);
    env.wait_for("every row", Duration::from_secs(60), || {
        env.driving_keys() == all
    })
    .await;
    w.stop().await;
    let p = puts.lock().unwrap().clone();
    assert_eq!(p.iter().sum::<usize>(), lines.len(), "each event put once");
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_never_exceed_the_event_bound() {
    let lines = driving_lines(20, 0, 60, 71);
    let puts = puts_with(37, 64 << 20, &lines).await;
    assert!(puts.iter().all(|&n| n <= 37), "{puts:?}");
    assert!(puts.contains(&37), "the backlog filled batches: {puts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_never_exceed_the_byte_bound() {
    let lines = driving_lines(20, 0, 60, 72);
    let max_bytes: usize = 2_000;
    let shortest = lines.iter().map(|l| l.text.len()).min().unwrap();
    // A batch stops once its payload reaches the bound: at most the records that fit
    // below it, plus the one that crossed it.
    let most = max_bytes.div_ceil(shortest);
    let puts = puts_with(100_000, max_bytes, &lines).await;
    assert!(puts.iter().all(|&n| n <= most), "at most {most}: {puts:?}");
    assert!(
        puts.iter().filter(|&&n| n >= most / 2).count() > 1,
        "the backlog filled batches: {puts:?}"
    );
}
