//! The Rust client of the region server, and the `speedlayer` CLI's logic.
//!
//! - [`Client`]: async, one channel reused, region cache, retries with capped backoff.
//! - [`BatchWriter`]: batches rows by count, bytes or time over a bounded queue.
//! - [`parse_filter`]: the filter-expression language of the CLI.
//! - [`bulk`]: the bulk loader (parse, external sort, stream to `BulkLoad`).
//! - [`cli`]: the `speedlayer` command line (the binary is a thin wrapper).
//!
//! It knows the `proto` crate and the SPEC §1 records (`speedlayer-events`); it never
//! links the storage engine.
//!
//! ```no_run
//! # async fn demo() -> Result<(), speedlayer_client::ClientError> {
//! use speedlayer_client::{Client, proto};
//! let client = Client::connect("http://127.0.0.1:16020").await?;
//! let put = speedlayer_client::put_row(b"V0042-20261122143015", &[("cf1", "speed", b"87")]);
//! client.mutate("driving", vec![put], proto::Durability::Sync).await?;
//! # Ok(()) }
//! ```

pub mod bulk;
pub mod cli;
pub mod client;
pub mod error;
pub mod filter_expr;
pub mod region_cache;
pub mod retry;
pub mod writer;

pub use client::{Client, ClientOptions, ScanStream};
pub use error::ClientError;
pub use filter_expr::parse_filter;
pub use retry::RetryPolicy;
pub use speedlayer_proto as proto;
pub use writer::{BatchWriter, WriterConfig, WriterStats};

use bytes::Bytes;

/// A row mutation putting `(family, qualifier, value)` cells at the server's time.
pub fn put_row(row: &[u8], cells: &[(&str, &str, &[u8])]) -> proto::RowMutation {
    proto::RowMutation {
        row: Bytes::copy_from_slice(row),
        ops: cells
            .iter()
            .map(|(f, q, v)| proto::MutationOp {
                op: Some(proto::mutation_op::Op::Put(proto::Put {
                    family: Bytes::copy_from_slice(f.as_bytes()),
                    qualifier: Bytes::copy_from_slice(q.as_bytes()),
                    timestamp: None,
                    value: Bytes::copy_from_slice(v),
                })),
            })
            .collect(),
    }
}
