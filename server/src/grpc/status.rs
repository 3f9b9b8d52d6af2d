//! Storage errors to gRPC statuses, with messages a person can act on.
//!
//! The mapping is part of the contract (see the header of `speedlayer.proto`): clients
//! retry `UNAVAILABLE` and `RESOURCE_EXHAUSTED`, refresh their region cache on
//! `NOT_FOUND`, and give up on everything else.

use speedlayer_storage::Error;
use tonic::Status;

/// The status for a storage error.
pub fn to_status(e: Error) -> Status {
    let msg = e.to_string();
    let e_is_no_space = e.is_no_space();
    match e {
        Error::UnknownTable(name) => Status::not_found(format!("table '{name}' does not exist")),
        Error::UnknownFamily { .. } => Status::not_found(msg),
        Error::TableExists(name) => {
            Status::already_exists(format!("table '{name}' already exists"))
        }
        Error::InvalidArgument(_) => Status::invalid_argument(msg),
        Error::TooBusy(_) => Status::resource_exhausted(format!(
            "{msg}; the server is flushing behind the write rate, retry with backoff"
        )),
        Error::Poisoned(_) => Status::unavailable(format!(
            "{msg}; a durability step failed, the server must be restarted"
        )),
        Error::ChecksumMismatch { .. } | Error::Corruption { .. } => Status::data_loss(msg),
        Error::Io { .. } if e_is_no_space => Status::resource_exhausted(format!(
            "{msg}; the disk is full: reads keep working and writes resume by themselves when space returns"
        )),
        Error::Io { .. } => Status::unavailable(format!(
            "{msg}; the write was not applied (an I/O error on the server's disk)"
        )),
        // Only opening a directory fails this way; a serving database never does.
        Error::DirInUse { .. } => Status::failed_precondition(msg),
        // Only tests install fail points; the operation was not applied.
        Error::Injected(_) => Status::aborted(msg),
        // Cluster mode: the client's region cache is stale; NOT_FOUND makes it locate the
        // region again (from meta, on any server) and retry there.
        Error::NotServing(_) => Status::not_found(format!(
            "{msg}; this server does not hold that region now: locate it again"
        )),
        // Cluster mode: another server took the region over after this write was applied
        // here; its outcome is unknown to the client, which retries on the new owner.
        Error::Fenced { .. } => Status::unavailable(msg),
        // A bulk load staged against boundaries a split changed: nothing was adopted; the
        // loader stages the same input again.
        Error::BoundariesChanged { .. } => Status::aborted(msg),
    }
}

/// The status for a blocking task that did not finish (panicked or cancelled).
pub fn join_status(e: tokio::task::JoinError) -> Status {
    Status::internal(format!("storage task failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn codes_follow_the_contract() {
        let cases = [
            (Error::UnknownTable("t".into()), Code::NotFound),
            (
                Error::UnknownFamily {
                    family: "f".into(),
                    table: "t".into(),
                },
                Code::NotFound,
            ),
            (Error::TableExists("t".into()), Code::AlreadyExists),
            (Error::InvalidArgument("x".into()), Code::InvalidArgument),
            (Error::TooBusy("x".into()), Code::ResourceExhausted),
            (Error::Poisoned("x".into()), Code::Unavailable),
            (
                Error::io("wal", std::io::Error::from_raw_os_error(libc::ENOSPC)),
                Code::ResourceExhausted,
            ),
            (
                Error::io("wal", std::io::Error::from_raw_os_error(libc::EIO)),
                Code::Unavailable,
            ),
            (
                Error::DirInUse {
                    dir: "/d".into(),
                    pid: Some(7),
                },
                Code::FailedPrecondition,
            ),
            (Error::NotServing("x".into()), Code::NotFound),
            (
                Error::Fenced {
                    table: "t".into(),
                    region: 1,
                    epoch: 2,
                    found: 3,
                },
                Code::Unavailable,
            ),
            (
                Error::BoundariesChanged {
                    table: "t".into(),
                    reason: "split".into(),
                },
                Code::Aborted,
            ),
        ];
        for (e, code) in cases {
            let s = to_status(e);
            assert_eq!(s.code(), code, "{}", s.message());
            assert!(!s.message().is_empty());
        }
    }
}
