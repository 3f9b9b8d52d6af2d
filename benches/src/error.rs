//! The benches crate's one error type: bad flags, unsupported workloads, I/O on the
//! benchmark directory, and storage errors surfaced while a workload runs.
//!
//! It is not a place for measurement results: a slow run is a figure, not an error.

use std::path::PathBuf;

/// Result alias for the benches crate.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Everything a benchmark driver can fail with.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag value that does not parse or is out of range.
    #[error("invalid value '{value}' for --{flag}: {reason}")]
    InvalidFlag {
        flag: String,
        value: String,
        reason: String,
    },

    /// A db_bench feature this driver deliberately does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// An I/O error on a named path (the database directory, /proc/self/status).
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A benchmark thread panicked (a bug in the driver or the engine).
    #[error("a {0} thread panicked")]
    ThreadPanicked(&'static str),

    /// The storage engine refused or failed an operation.
    #[error("storage engine error during {during}: {source}")]
    Storage {
        during: String,
        #[source]
        source: speedlayer_storage::Error,
    },
}

impl BenchError {
    /// Wraps an `io::Error` with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> BenchError {
        BenchError::Io {
            path: path.into(),
            source,
        }
    }

    /// Wraps a storage error with the operation that was running.
    pub fn storage(during: impl Into<String>, source: speedlayer_storage::Error) -> BenchError {
        BenchError::Storage {
            during: during.into(),
            source,
        }
    }
}
