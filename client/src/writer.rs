//! The batching writer: rows are queued and sent as one `Mutate` when the batch reaches a
//! row count, a byte size, or an age — whichever comes first.
//!
//! The queue is bounded: `write` waits when it is full (back-pressure, never a drop).
//! Errors are never swallowed: the first failed batch stops the writer, every later
//! `write`, `flush` or `close` returns [`ClientError::WriterFailed`] naming the failure,
//! and rows queued behind the failed batch are not written. A successful `flush` means
//! every row written before it has the writer's durability on the server.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prost::Message;
use speedlayer_proto::{Durability, RowMutation};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::client::Client;
use crate::error::ClientError;

/// When a batch is sent, and how much may wait in the queue.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Send when this many rows are batched; default 1,000.
    pub max_rows: usize,
    /// Send when the batch's encoded size reaches this; default 4 MiB.
    pub max_bytes: usize,
    /// Send when the oldest batched row has waited this long; default 20 ms.
    pub max_delay: Duration,
    /// Rows the queue holds before `write` waits; default 10,000.
    pub queue_rows: usize,
    /// Durability of every batch; default `Sync`.
    pub durability: Durability,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_rows: 1_000,
            max_bytes: 4 * 1024 * 1024,
            max_delay: Duration::from_millis(20),
            queue_rows: 10_000,
            durability: Durability::Sync,
        }
    }
}

enum Command {
    Row(RowMutation),
    Flush(oneshot::Sender<Result<(), ClientError>>),
}

/// Counters of a writer, for logs and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches sent successfully.
    pub batches: u64,
    /// Rows written successfully.
    pub rows: u64,
    /// Cells the server reported written.
    pub cells: u64,
}

#[derive(Default)]
struct Shared {
    failure: Option<String>,
    stats: WriterStats,
}

/// A batching writer for one table. Create with [`BatchWriter::new`].
pub struct BatchWriter {
    tx: mpsc::Sender<Command>,
    shared: Arc<Mutex<Shared>>,
    task: JoinHandle<()>,
}

impl BatchWriter {
    /// Starts a writer for `table` on a background task of the current tokio runtime.
    pub fn new(client: Client, table: &str, config: WriterConfig) -> BatchWriter {
        let (tx, rx) = mpsc::channel(config.queue_rows.max(1));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let task = tokio::spawn(run(client, table.to_string(), config, rx, shared.clone()));
        BatchWriter { tx, shared, task }
    }

    fn failed(&self) -> Option<ClientError> {
        self.shared
            .lock()
            .failure
            .clone()
            .map(ClientError::WriterFailed)
    }

    /// Queues one row; waits while the queue is full.
    ///
    /// # Errors
    /// [`ClientError::WriterFailed`] after an earlier batch failed.
    pub async fn write(&self, mutation: RowMutation) -> Result<(), ClientError> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        self.tx
            .send(Command::Row(mutation))
            .await
            .map_err(|_| self.failed().unwrap_or(ClientError::WriterClosed))
    }

    /// Sends whatever is batched and waits until every row written before is durable.
    ///
    /// # Errors
    /// [`ClientError::WriterFailed`] if this or an earlier batch failed.
    pub async fn flush(&self) -> Result<(), ClientError> {
        let (done_tx, done_rx) = oneshot::channel();
        self.tx
            .send(Command::Flush(done_tx))
            .await
            .map_err(|_| self.failed().unwrap_or(ClientError::WriterClosed))?;
        done_rx
            .await
            .map_err(|_| self.failed().unwrap_or(ClientError::WriterClosed))?
    }

    /// Counters so far.
    pub fn stats(&self) -> WriterStats {
        self.shared.lock().stats
    }

    /// Flushes and stops the writer.
    ///
    /// # Errors
    /// As [`BatchWriter::flush`].
    pub async fn close(self) -> Result<(), ClientError> {
        let result = self.flush().await;
        drop(self.tx);
        // The task ends once the channel is closed and drained.
        let _ = self.task.await;
        result
    }
}

async fn run(
    client: Client,
    table: String,
    config: WriterConfig,
    mut rx: mpsc::Receiver<Command>,
    shared: Arc<Mutex<Shared>>,
) {
    let mut batch: Vec<RowMutation> = Vec::new();
    let mut batch_bytes = 0usize;
    let mut deadline: Option<Instant> = None;
    loop {
        let cmd = match deadline {
            Some(at) => tokio::select! {
                cmd = rx.recv() => cmd,
                () = tokio::time::sleep_until(at) => {
                    if send(&client, &table, &config, &mut batch, &shared).await.is_err() {
                        break;
                    }
                    batch_bytes = 0;
                    deadline = None;
                    continue;
                }
            },
            None => rx.recv().await,
        };
        match cmd {
            None => {
                let _ = send(&client, &table, &config, &mut batch, &shared).await;
                return;
            }
            Some(Command::Row(m)) => {
                batch_bytes += m.encoded_len();
                batch.push(m);
                if deadline.is_none() {
                    deadline = Some(Instant::now() + config.max_delay);
                }
                if batch.len() >= config.max_rows || batch_bytes >= config.max_bytes {
                    if send(&client, &table, &config, &mut batch, &shared)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    batch_bytes = 0;
                    deadline = None;
                }
            }
            Some(Command::Flush(done)) => {
                let result = send(&client, &table, &config, &mut batch, &shared).await;
                batch_bytes = 0;
                deadline = None;
                let failed = result.is_err();
                let _ = done.send(result);
                if failed {
                    break;
                }
            }
        }
    }
    // Failed: answer pending flushes with the failure, refuse everything queued.
    rx.close();
    let reason = shared.lock().failure.clone().unwrap_or_default();
    while let Some(cmd) = rx.recv().await {
        if let Command::Flush(done) = cmd {
            let _ = done.send(Err(ClientError::WriterFailed(reason.clone())));
        }
    }
}

async fn send(
    client: &Client,
    table: &str,
    config: &WriterConfig,
    batch: &mut Vec<RowMutation>,
    shared: &Mutex<Shared>,
) -> Result<(), ClientError> {
    if let Some(reason) = shared.lock().failure.clone() {
        return Err(ClientError::WriterFailed(reason));
    }
    if batch.is_empty() {
        return Ok(());
    }
    let rows = std::mem::take(batch);
    let count = rows.len() as u64;
    match client.mutate(table, rows, config.durability).await {
        Ok(cells) => {
            let mut s = shared.lock();
            s.stats.batches += 1;
            s.stats.rows += count;
            s.stats.cells += cells;
            Ok(())
        }
        Err(e) => {
            let reason = format!("batch of {count} rows to '{table}': {e}");
            tracing::error!(%reason, "batching writer stopped");
            shared.lock().failure = Some(reason.clone());
            Err(ClientError::WriterFailed(reason))
        }
    }
}
