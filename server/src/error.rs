//! The error type of the `speedlayer-server` crate.
//!
//! One enum for the whole crate; each variant carries the data needed to act on it. RESP
//! command errors are not here: they are Redis error replies (`-ERR ...`) sent to the
//! client, not failures of the server.

use std::path::PathBuf;

/// Everything that can fail inside `speedlayer-server`.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A configuration value or file is invalid.
    #[error("invalid {what}: {reason}")]
    Config {
        /// What was being configured.
        what: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An I/O operation on a file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        op: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Binding a listener failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address that could not be bound.
        addr: std::net::SocketAddr,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The append-only file is damaged before its last command: refusing to start.
    #[error(
        "append-only file {path} is corrupted at byte {offset} of {len}: {reason}; \
         it is not a torn tail, so it was not repaired (inspect or restore it)"
    )]
    AofCorrupted {
        /// The file.
        path: PathBuf,
        /// Byte offset where parsing failed.
        offset: u64,
        /// File length.
        len: u64,
        /// What was wrong.
        reason: String,
    },
    /// The snapshot file is damaged: refusing to start.
    #[error("snapshot {path} is corrupted: {reason}")]
    SnapshotCorrupted {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A Redis RDB file is damaged (see `server/docs/rdb.md`): nothing of it was loaded.
    #[error("RDB {path} is corrupted at byte {offset}: {reason}")]
    RdbCorrupted {
        /// The file.
        path: PathBuf,
        /// Byte offset where decoding failed.
        offset: u64,
        /// What was wrong.
        reason: String,
    },
    /// A Redis RDB file holds something the sets-only service cannot hold (another value
    /// type, a module, functions, a database other than 0): nothing of it was loaded.
    #[error(
        "RDB {path} holds {what} at byte {offset} (key {key:?}); only sets in database 0 can be loaded"
    )]
    RdbUnsupported {
        /// The file.
        path: PathBuf,
        /// Byte offset of the refused item.
        offset: u64,
        /// The key it belongs to (lossy UTF-8; empty when it is not a key's value).
        key: String,
        /// What it is (`a string`, `a hash`, `module data`, ...).
        what: String,
    },
    /// The data directory's lock could not be taken: another process owns the directory
    /// (`speedlayer_storage::Error::DirInUse`, naming its PID) or `LOCK` cannot be opened.
    /// Nothing under the directory was read or changed.
    #[error("cannot take the data directory: {0}")]
    DataDirLock(#[source] speedlayer_storage::Error),
    /// A web console request asked for something malformed or not served here (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
    /// The storage engine failed (opening the data directory, closing on shutdown).
    #[error("storage: {0}")]
    Storage(#[from] speedlayer_storage::Error),
    /// The gRPC transport failed (serving, or building reflection from the descriptor).
    #[error("gRPC {what}: {reason}")]
    Grpc {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// Cluster mode: etcd could not be joined, or a cluster setting is unusable.
    #[error("cluster: {0}")]
    Cluster(#[from] speedlayer_cluster::Error),
    /// A background task of the server panicked or was cancelled.
    #[error("server task {what} failed: {reason}")]
    Task {
        /// Which task.
        what: &'static str,
        /// The join error.
        reason: String,
    },
}

impl From<speedlayer_vfs::Error> for ServerError {
    fn from(e: speedlayer_vfs::Error) -> Self {
        ServerError::Io {
            op: e.op,
            path: e.path,
            source: e.source,
        }
    }
}
