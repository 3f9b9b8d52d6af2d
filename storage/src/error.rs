//! The storage crate's one error type. Every variant carries what a person needs to act:
//! which file, which offset, which limit.

use std::path::PathBuf;

/// Result alias for the storage crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the storage engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system I/O error on a named file.
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A checksum did not match: the bytes at `offset` of `file` are not what was written.
    #[error(
        "checksum mismatch in {file} at offset {offset}: expected {expected:#010x}, got {got:#010x}"
    )]
    ChecksumMismatch {
        file: PathBuf,
        offset: u64,
        expected: u32,
        got: u32,
    },

    /// A structure on disk is malformed (bad magic, impossible length, unknown version).
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corruption {
        file: PathBuf,
        offset: u64,
        reason: String,
    },

    /// The caller passed something the engine refuses (empty row, oversize value, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// A table that the database does not have.
    #[error("unknown table '{0}'")]
    UnknownTable(String),

    /// `create_table` of a name that already exists.
    #[error("table '{0}' already exists")]
    TableExists(String),

    /// A family that the table does not have.
    #[error("unknown column family '{family}' in table '{table}'")]
    UnknownFamily {
        /// The family as asked for (lossy UTF-8).
        family: String,
        /// The table asked (empty only where the reader does not know it).
        table: String,
    },

    /// Writes are refused because flushes or compactions are behind; retry later.
    #[error("too busy: {0}")]
    TooBusy(String),

    /// An fsync (or another durability step) failed earlier; the store refuses writes.
    #[error("store is poisoned and refuses writes: {0}")]
    Poisoned(String),

    /// A fault a test asked for (a compaction fail point) stopped the operation. Never
    /// raised unless a test installed the fail point.
    #[error("stopped at an injected fault: {0}")]
    Injected(String),

    /// Cluster mode: this server does not hold the region of the row or table asked for
    /// (it moved, split, or was never assigned here); the client locates it again.
    #[error("not serving: {0}")]
    NotServing(String),

    /// Cluster mode: the region's `FENCE` names a newer epoch than the one this server
    /// opened it for: another server owns it now, and this write is not acknowledged.
    #[error(
        "region {region} of table '{table}' was taken over (fence epoch {found}, ours {epoch}); \
         the write is not acknowledged"
    )]
    Fenced {
        /// Table.
        table: String,
        /// Region id.
        region: u64,
        /// The epoch this server opened the region for.
        epoch: u64,
        /// What `FENCE` holds now (0: unreadable).
        found: u64,
    },

    /// A bulk load staged against region boundaries that changed before its commit (a
    /// split, or the table re-created): nothing was adopted; stage the input again.
    #[error(
        "bulk load of table '{table}' refused: region boundaries changed ({reason}); stage it again"
    )]
    BoundariesChanged {
        /// The table loaded.
        table: String,
        /// Which part no longer fits which region.
        reason: String,
    },

    /// Another open file holds the directory's lock (`<dir>/LOCK`, see `db::lock`): the
    /// directory belongs to another process, which wrote its PID there if `pid` is set.
    /// Nothing in the directory was changed.
    #[error(
        "data directory {dir} is in use by another process ({}); it holds {dir}/LOCK",
        holder(*.pid)
    )]
    DirInUse { dir: PathBuf, pid: Option<u32> },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("pid {pid}"),
        None => "pid not recorded".to_owned(),
    }
}

impl From<speedlayer_vfs::Error> for Error {
    fn from(e: speedlayer_vfs::Error) -> Error {
        Error::Io {
            path: e.path,
            source: e.source,
        }
    }
}

impl Error {
    /// Whether this is an I/O error because the device (or a quota) is full: the write
    /// can succeed later, when space returns.
    pub fn is_no_space(&self) -> bool {
        match self {
            Error::Io { source, .. } => speedlayer_vfs::is_no_space(source),
            _ => false,
        }
    }

    /// Wraps an `io::Error` with the path it happened on.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
