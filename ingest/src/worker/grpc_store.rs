//! The production [`Store`]: the region server over gRPC through `speedlayer-client`.
//!
//! Puts carry the row's timestamp on every cell (the event time, so replays overwrite
//! themselves) and `DURABILITY_SYNC`: the call resolves only once the server's WAL is
//! fsynced. Creating a table that already exists is success (its schema, TTL included,
//! is left as it is). Retrying is the worker's
//! business (it pauses consumption); the client's own short retries still apply.

use bytes::Bytes;
use speedlayer_client::proto::{self, Durability, FamilySchema, TableSchema};
use speedlayer_client::{Client, ClientError};
use tonic::Code;

use super::rows::Row;
use super::store::Store;
use crate::error::{Error, Result};

/// A [`Store`] backed by a region server.
#[derive(Clone)]
pub struct GrpcStore {
    client: Client,
}

impl std::fmt::Debug for GrpcStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrpcStore({})", self.client.addr())
    }
}

fn store_err(op: &'static str, e: ClientError) -> Error {
    Error::Store {
        op,
        message: e.to_string(),
    }
}

impl GrpcStore {
    /// Connects to the region server at `url` (e.g. `http://127.0.0.1:16020`).
    ///
    /// # Errors
    /// [`Error::Store`] if the URL is invalid or the server unreachable.
    pub async fn connect(url: &str) -> Result<GrpcStore> {
        GrpcStore::connect_with(url, speedlayer_client::ClientOptions::default()).await
    }

    /// Connects with options (TLS CA, bearer token).
    ///
    /// # Errors
    /// As [`GrpcStore::connect`].
    pub async fn connect_with(
        url: &str,
        opts: speedlayer_client::ClientOptions,
    ) -> Result<GrpcStore> {
        let client = Client::connect_with(url, opts)
            .await
            .map_err(|e| store_err("connect", e))?;
        Ok(GrpcStore { client })
    }
}

fn mutation(r: &Row, family: &Bytes) -> proto::RowMutation {
    let ts = u64::try_from(r.timestamp_ms).unwrap_or(0);
    proto::RowMutation {
        row: Bytes::copy_from_slice(&r.key),
        ops: r
            .cells
            .iter()
            .map(|(q, v)| proto::MutationOp {
                op: Some(proto::mutation_op::Op::Put(proto::Put {
                    family: family.clone(),
                    qualifier: Bytes::from_static(q.as_bytes()),
                    timestamp: Some(ts),
                    value: Bytes::copy_from_slice(v),
                })),
            })
            .collect(),
    }
}

impl Store for GrpcStore {
    async fn ensure_table(&self, table: &str, family: &str) -> Result<()> {
        self.ensure_table_ttl(table, family, None).await
    }

    async fn ensure_table_ttl(
        &self,
        table: &str,
        family: &str,
        ttl: Option<std::time::Duration>,
    ) -> Result<()> {
        let schema = TableSchema {
            name: table.to_string(),
            families: vec![FamilySchema {
                name: family.to_string(),
                ttl_ms: ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
                ..FamilySchema::default()
            }],
        };
        match self.client.create_table(schema).await {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some(Code::AlreadyExists) => Ok(()),
            Err(e) => Err(store_err("create table", e)),
        }
    }

    async fn put(&self, table: &str, rows: &[Row]) -> Result<()> {
        let family = Bytes::from_static(super::rows::FAMILY.as_bytes());
        let mutations = rows.iter().map(|r| mutation(r, &family)).collect();
        self.client
            .mutate(table, mutations, Durability::Sync)
            .await
            .map(|_| ())
            .map_err(|e| store_err("put", e))
    }

    async fn get_cell(&self, table: &str, row: &[u8], qualifier: &str) -> Result<Option<Vec<u8>>> {
        let req = proto::GetRequest {
            table: table.to_string(),
            row: Bytes::copy_from_slice(row),
            ..proto::GetRequest::default()
        };
        let found = self
            .client
            .get(req)
            .await
            .map_err(|e| store_err("get", e))?;
        Ok(found.and_then(|r| {
            r.cells
                .into_iter()
                .find(|c| c.qualifier.as_ref() == qualifier.as_bytes())
                .map(|c| c.value.to_vec())
        }))
    }
}
