//! The TTL set sink: each firing becomes `SADD <key> <member>` + `EXPIRE <key> <ttl>` on the
//! RESP service, through the `redis` crate's auto-reconnecting `ConnectionManager`.
//!
//! Both commands are idempotent, so a replayed firing changes nothing but the TTL's start.
//! Not a cache and not a queue: a failed call returns an error and the worker retries the
//! batch before committing.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::{Error, Result};
use crate::rules::Firing;

/// Longest wait to open a connection to the TTL set service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// A connection to the TTL set service.
#[derive(Clone)]
pub struct SetSink {
    conn: ConnectionManager,
}

impl std::fmt::Debug for SetSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SetSink")
    }
}

impl SetSink {
    /// Connects to `addr` (`HOST:PORT` or a `redis://` URL); a pipeline not answered
    /// within `response_timeout` fails (and the connection is re-established).
    ///
    /// # Errors
    /// [`Error::Resp`] if the address is invalid or the service unreachable.
    pub async fn connect(addr: &str, response_timeout: Duration) -> Result<SetSink> {
        let url = if addr.contains("://") {
            addr.to_string()
        } else {
            format!("redis://{addr}")
        };
        let client =
            redis::Client::open(url).map_err(|source| Error::Resp { op: "open", source })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let conn = client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|source| Error::Resp {
                op: "connect",
                source,
            })?;
        Ok(SetSink { conn })
    }

    /// Flags every firing in one pipeline.
    ///
    /// # Errors
    /// [`Error::Resp`] if the pipeline fails (the caller retries all of it).
    pub async fn flag(&mut self, firings: &[Firing]) -> Result<()> {
        if firings.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for f in firings {
            pipe.cmd("SADD").arg(&f.set_key).arg(&f.member).ignore();
            pipe.cmd("EXPIRE")
                .arg(&f.set_key)
                .arg(f.ttl.as_secs().max(1))
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn)
            .await
            .map_err(|source| Error::Resp {
                op: "SADD/EXPIRE",
                source,
            })
    }
}
