//! The one error type of the cluster crate.

/// What can go wrong talking to etcd or reading what is stored there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// etcd refused or failed a call, or could not be reached.
    #[error("etcd {what}: {source}")]
    Etcd {
        /// What was being done.
        what: &'static str,
        /// The client's error.
        #[source]
        source: etcd_client::Error,
    },
    /// A call did not finish in time (etcd down or cut off).
    #[error("etcd {what}: no answer within {millis} ms")]
    Timeout {
        /// What was being done.
        what: &'static str,
        /// The limit that passed.
        millis: u128,
    },
    /// A value under the cluster's prefix is not what this version writes.
    #[error("etcd key {key}: {reason}")]
    BadValue {
        /// The key read.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A table of that name exists.
    #[error("table {0:?} already exists")]
    TableExists(String),
    /// No table of that name exists.
    #[error("no table {0:?}")]
    NoSuchTable(String),
    /// No region of that table and id exists.
    #[error("no region {1} of table {0:?}")]
    NoSuchRegion(String, u64),
    /// The region state machine refuses a transition.
    #[error("illegal region transition: {0}")]
    Illegal(String),
    /// An optimistic transaction met a concurrent change on every attempt.
    #[error("{0}: meta kept changing under {MAX} attempts", MAX = 32)]
    Contended(&'static str),
    /// A setting is unusable.
    #[error("cluster configuration: {0}")]
    Config(String),
}

/// Result of the cluster crate.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps an etcd client error with what was being done.
pub(crate) fn etcd(what: &'static str) -> impl FnOnce(etcd_client::Error) -> Error {
    move |source| Error::Etcd { what, source }
}
