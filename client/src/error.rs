//! The client crate's one error type: transport failures, server statuses (kept whole so
//! callers can branch on the gRPC code), and local validation of CLI input.

use tonic::Code;

/// Everything the client and the CLI can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server address is not a valid URI.
    #[error("invalid server address '{addr}': {reason}")]
    BadAddress { addr: String, reason: String },

    /// Could not connect to the server.
    #[error("{}", connect_message(addr, source))]
    Connect {
        /// `host:port` that was tried.
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },

    /// The server answered with an error status. It displays as the server's message
    /// (written for people, e.g. "table 'driving' already exists"); the RPC name and the
    /// code are for programs, not for the message.
    #[error("{}", status_message(*.code, message))]
    Status {
        /// The RPC that failed, e.g. "Mutate".
        op: &'static str,
        /// The gRPC status code.
        code: Code,
        /// The server's message.
        message: String,
    },

    /// Reading the cluster from etcd failed.
    #[error("{0}")]
    Cluster(#[from] speedlayer_cluster::Error),

    /// A filter expression did not parse.
    #[error("bad filter expression at byte {offset}: {reason}")]
    BadFilter { offset: usize, reason: String },

    /// A column family specification (`NAME[:versions=N]...`) did not parse.
    #[error("bad family spec '{spec}': {reason}")]
    BadFamilySpec { spec: String, reason: String },

    /// A `FAMILY:QUALIFIER` column did not parse.
    #[error("bad column '{0}': expected FAMILY:QUALIFIER")]
    BadColumn(String),

    /// Any other bad command-line argument.
    #[error("bad argument: {0}")]
    BadArgument(String),

    /// A CLI step that did not happen (a drop not confirmed, output that could not be
    /// written); the message is complete as it stands.
    #[error("{0}")]
    NotDone(String),

    /// The server answered with something the contract does not allow.
    #[error("protocol error: {0}")]
    Protocol(String),

    /// The batching writer stopped after an earlier failure; the batch it names was not
    /// written (nor anything queued after it).
    #[error("batching writer failed and stopped: {0}")]
    WriterFailed(String),

    /// The batching writer's background task is gone (it was closed or panicked).
    #[error("batching writer is closed")]
    WriterClosed,
}

impl ClientError {
    /// The gRPC status code, when the error came from the server.
    pub fn code(&self) -> Option<Code> {
        match self {
            ClientError::Status { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub(crate) fn status(op: &'static str, status: tonic::Status) -> ClientError {
        ClientError::Status {
            op,
            code: status.code(),
            message: status.message().to_string(),
        }
    }
}

fn status_message(code: Code, message: &str) -> String {
    if message.is_empty() {
        format!("the server refused the request ({})", code_name(code))
    } else {
        message.to_string()
    }
}

/// The gRPC name of a status code, e.g. `NOT_FOUND`.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// What went wrong connecting, in the words of the operating system's error rather than
/// the transport's ("transport error" says nothing).
fn connect_message(addr: &str, err: &tonic::transport::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    let mut innermost = err.to_string();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind as K;
            let what = match io.kind() {
                K::ConnectionRefused => "connection refused",
                K::TimedOut => "connection timed out",
                K::ConnectionReset => "connection reset",
                K::AddrNotAvailable => "address not available",
                K::HostUnreachable => "host unreachable",
                K::NetworkUnreachable => "network unreachable",
                _ => {
                    innermost = io.to_string();
                    source = e.source();
                    continue;
                }
            };
            return format!("{what} at {addr}: is speedlayer-server running?");
        }
        innermost = e.to_string();
        source = e.source();
    }
    if innermost.contains("timed out") {
        return format!("connection timed out at {addr}: is speedlayer-server running?");
    }
    format!("cannot connect to {addr}: {innermost}")
}
