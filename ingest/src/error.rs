//! The crate's error type: one enum for everything `speedlayer-ingest` can fail with, plus
//! [`ParseError`] (from `speedlayer-events`), the precise reason a log line is bad input (it
//! travels with the line into the dead-letter sink, so it is a value, not just a failure).
//!
//! This is not where errors are handled: components return these and the agent or the
//! binary decides (retry, dead-letter, exit).

use std::path::PathBuf;

pub use speedlayer_events::ParseError;

/// Everything the collector, the simulator and the Kafka helpers can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A log line is bad input.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// An I/O operation on a named file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done ("open", "read", "fsync" ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The agent configuration is invalid.
    #[error("config {path}: {reason}")]
    Config {
        /// The configuration file (or `<inline>`).
        path: PathBuf,
        /// What is wrong, naming the pipeline and key.
        reason: String,
    },
    /// A spooled file changed while it was being read.
    #[error("spool file {path} changed while being read: {what}")]
    SpoolFileChanged {
        /// The file.
        path: PathBuf,
        /// What changed (size, mtime).
        what: String,
    },
    /// A durable record failed its checksum.
    #[error(
        "checksum mismatch in {path} at offset {offset}: expected {expected:#010x}, got {got:#010x}"
    )]
    ChecksumMismatch {
        /// The segment or checkpoint file.
        path: PathBuf,
        /// Offset of the record.
        offset: u64,
        /// Stored checksum.
        expected: u32,
        /// Computed checksum.
        got: u32,
    },
    /// A durable file has an unknown magic number, version or a malformed record.
    #[error("corrupt {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Offset of the bad record.
        offset: u64,
        /// What is malformed.
        reason: String,
    },
    /// The device holding a file channel is full: the put wrote nothing that will be read
    /// (a partial record was cut off again). The source keeps the batch and retries.
    #[error(
        "channel {channel}: no space left writing {path}: {source}; the batch was not stored, retry once space returns"
    )]
    NoSpace {
        /// Channel name.
        channel: String,
        /// The segment being written.
        path: PathBuf,
        /// The operating system's error (`ENOSPC`, `EDQUOT`).
        source: std::io::Error,
    },
    /// An event cannot be stored in a file channel record (a field overflows its length
    /// prefix, or the record exceeds the format's limit).
    #[error("channel {channel}: event refused: {reason}")]
    EventTooLarge {
        /// Channel name.
        channel: String,
        /// Which field, its size and the limit.
        reason: String,
    },
    /// A bounded channel is full and the caller chose not to wait.
    #[error("channel {channel} is full ({capacity})")]
    ChannelFull {
        /// Channel name.
        channel: String,
        /// Its configured bound, human-readable.
        capacity: String,
    },
    /// The component was shut down.
    #[error("{component} is shut down")]
    Shutdown {
        /// Which component.
        component: String,
    },
    /// Kafka client error (configuration, production, delivery).
    #[error("kafka {context}: {source}")]
    Kafka {
        /// What was being done.
        context: String,
        /// The client error.
        source: rdkafka::error::KafkaError,
    },
    /// A sink could not deliver a batch.
    #[error("sink {sink}: {reason}")]
    Sink {
        /// Sink name.
        sink: String,
        /// Why.
        reason: String,
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
        /// The rule's name (or `#n` when the name itself is invalid).
        rule: String,
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The region server refused or failed a request (the worker backs off and retries).
    #[error("store {op}: {message}")]
    Store {
        /// What was being done.
        op: &'static str,
        /// The client's message.
        message: String,
    },
    /// The TTL set service (RESP) failed a request (the worker backs off and retries).
    #[error("resp {op}: {source}")]
    Resp {
        /// What was being done.
        op: &'static str,
        /// The redis client's error.
        source: redis::RedisError,
    },
}

impl Error {
    /// Shorthand for [`Error::Io`].
    pub fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this is a full device ([`Error::NoSpace`], or an I/O error with `ENOSPC`):
    /// retrying later may succeed.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::NoSpace { .. } => true,
            Error::Io { source, .. } => speedlayer_vfs::is_no_space(source),
            _ => false,
        }
    }

    /// Shorthand for [`Error::Kafka`].
    pub fn kafka(context: impl Into<String>, source: rdkafka::error::KafkaError) -> Self {
        Error::Kafka {
            context: context.into(),
            source,
        }
    }
}

impl From<speedlayer_vfs::Error> for Error {
    fn from(e: speedlayer_vfs::Error) -> Error {
        Error::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
