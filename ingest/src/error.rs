//! The one error type of `speedlayer-ingest`.
//!
//! Every fallible operation of the crate (rule files, the worker's Kafka, store and RESP
//! traffic) reports an [`IngestError`]. It is not used for *bad input records*: those are
//! data, routed to the dead-letter topic with a reason, never errors that stop the worker.

use std::path::PathBuf;

/// Errors of the ingest crate.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// A rule file could not be read from disk.
    #[error("cannot read rule file {path}: {source}")]
    RuleFileIo {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A rule file is not valid TOML or does not have the expected shape.
    #[error("{file}: {message}")]
    RuleSyntax {
        /// The file (or `<memory>`).
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A rule file parsed, but a value is invalid.
    #[error("{file}:{line}: rule `{rule}` field `{field}`: {message}")]
    RuleInvalid {
        /// The file (or `<memory>`).
        file: String,
        /// 1-based line of the offending value.
        line: usize,
        /// The rule's name (or its index when the name is missing).
        rule: String,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// Watching the rule file failed.
    #[error("cannot watch rule file {path}: {message}")]
    RuleWatch {
        /// The file.
        path: PathBuf,
        /// The watcher's message.
        message: String,
    },
    /// Kafka client error (configuration, consume, produce, commit).
    #[error("kafka {op}: {source}")]
    Kafka {
        /// What was being done.
        op: &'static str,
        /// The client's error.
        source: rdkafka::error::KafkaError,
    },
    /// The region server refused or failed a request.
    #[error("store {op}: {message}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The client's message.
        message: String,
    },
    /// The TTL set service (RESP) failed a request.
    #[error("resp {op}: {source}")]
    Resp {
        /// What was being done.
        op: &'static str,
        /// The redis client's error.
        source: redis::RedisError,
    },
    /// The worker's configuration is invalid.
    #[error("worker config: {0}")]
    Config(String),
    /// Any other I/O failure (metrics listener, config file).
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Result alias of the crate.
pub type Result<T, E = IngestError> = std::result::Result<T, E>;
