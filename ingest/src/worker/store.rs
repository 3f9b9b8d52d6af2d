//! What the worker needs from the region server, as a trait.
//!
//! The worker is generic over [`Store`] so the commit protocol does not depend on the
//! transport. The production implementation wraps `speedlayer-client` (gRPC, `sync`
//! durability); [`MemoryStore`] is an in-process, non-durable store behind the `mem://`
//! server URL, for demos only (the end-to-end tests use the real region server).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use parking_lot::Mutex;

use super::rows::Row;
use crate::error::{Error, Result};

/// The region-server operations the worker uses.
pub trait Store: Send + Sync + 'static {
    /// Creates `table` with family `family` if it does not exist.
    ///
    /// # Errors
    /// [`Error::Store`] if the server is unreachable or refuses.
    fn ensure_table(&self, table: &str, family: &str) -> impl Future<Output = Result<()>> + Send;

    /// Creates `table` with family `family` whose cells live `ttl` (`None`: forever) if it
    /// does not exist; an existing table keeps its schema. The default is
    /// [`ensure_table`](Self::ensure_table), for stores without TTLs (test wrappers).
    ///
    /// # Errors
    /// [`Error::Store`] if the server is unreachable or refuses.
    fn ensure_table_ttl(
        &self,
        table: &str,
        family: &str,
        ttl: Option<std::time::Duration>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = ttl;
        self.ensure_table(table, family)
    }

    /// Writes `rows` to `table`; resolves only once the server made them durable (`sync`).
    ///
    /// # Errors
    /// [`Error::Store`]; the worker retries the whole batch (puts are idempotent).
    fn put(&self, table: &str, rows: &[Row]) -> impl Future<Output = Result<()>> + Send;

    /// The newest value of column `qualifier` (family `cf1`) of `row`, if any.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn get_cell(
        &self,
        table: &str,
        row: &[u8],
        qualifier: &str,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send;
}

/// Cells of a [`MemoryStore`] table: row key → qualifier → (timestamp, value).
pub type MemTable = BTreeMap<Vec<u8>, BTreeMap<String, (i64, Vec<u8>)>>;

/// An in-memory [`Store`] (not durable), behind the `mem://` server URL: demos only.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<BTreeMap<String, MemTable>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }
}

impl Store for MemoryStore {
    async fn ensure_table(&self, table: &str, _family: &str) -> Result<()> {
        self.tables.lock().entry(table.to_string()).or_default();
        Ok(())
    }

    async fn put(&self, table: &str, rows: &[Row]) -> Result<()> {
        let mut tables = self.tables.lock();
        let Some(t) = tables.get_mut(table) else {
            return Err(Error::Store {
                op: "put",
                message: format!("table `{table}` does not exist"),
            });
        };
        for r in rows {
            let row = t.entry(r.key.clone()).or_default();
            for (q, v) in &r.cells {
                let cell = row
                    .entry((*q).to_string())
                    .or_insert((i64::MIN, Vec::new()));
                if r.timestamp_ms >= cell.0 {
                    *cell = (r.timestamp_ms, v.clone());
                }
            }
        }
        Ok(())
    }

    async fn get_cell(&self, table: &str, row: &[u8], qualifier: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tables
            .lock()
            .get(table)
            .and_then(|t| t.get(row))
            .and_then(|r| r.get(qualifier))
            .map(|(_, v)| v.clone()))
    }
}
