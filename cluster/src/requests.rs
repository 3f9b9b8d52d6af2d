//! Operators' requests to the master (`speedlayer admin move`, `admin balance`): keys under
//! `requests/` that any member writes and the master consumes, as HBase clients ask the
//! HMaster. A request is advice, not state: the master checks it against meta when it acts,
//! and deletes it once it has acted or once it can never apply.

use etcd_client::{Client, GetOptions};

use crate::client::bounded;
use crate::error::Result;
use crate::keys::Keys;

/// One pending move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveRequest {
    /// Its key (to delete it).
    pub key: String,
    /// Table.
    pub table: String,
    /// Region id.
    pub id: u64,
    /// Target member id.
    pub target: String,
}

/// What operators asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    /// Moves, in key order.
    pub moves: Vec<MoveRequest>,
    /// Whether a balancer run was asked for.
    pub balance: bool,
    /// Keys that are not a request this version understands (deleted by the master, with
    /// a warning, so they cannot pile up).
    pub unreadable: Vec<String>,
}

/// Reads every pending request.
///
/// # Errors
/// etcd errors.
pub async fn read(client: &Client, keys: &Keys, limit: std::time::Duration) -> Result<Requests> {
    let mut c = client.clone();
    let resp = bounded(
        "read requests",
        limit,
        c.get(keys.requests(), Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let mut out = Requests::default();
    let moves = keys.move_requests();
    let balance = keys.balance_request();
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key()).into_owned();
        if key == balance {
            out.balance = true;
            continue;
        }
        let parsed = key.strip_prefix(&moves).and_then(|rest| {
            let (table, id) = rest.rsplit_once('/')?;
            let id = id.parse().ok()?;
            let target = std::str::from_utf8(kv.value()).ok()?.to_owned();
            (!table.is_empty() && !target.is_empty()).then(|| MoveRequest {
                key: key.clone(),
                table: table.to_owned(),
                id,
                target,
            })
        });
        match parsed {
            Some(m) => out.moves.push(m),
            None => out.unreadable.push(key),
        }
    }
    Ok(out)
}

/// Asks the master to move region `id` of `table` to member `target`.
///
/// # Errors
/// etcd errors.
pub async fn request_move(
    client: &Client,
    keys: &Keys,
    limit: std::time::Duration,
    table: &str,
    id: u64,
    target: &str,
) -> Result<()> {
    let mut c = client.clone();
    bounded(
        "request move",
        limit,
        c.put(keys.move_request(table, id), target, None),
    )
    .await?;
    Ok(())
}

/// Asks the master for one balancer run.
///
/// # Errors
/// etcd errors.
pub async fn request_balance(
    client: &Client,
    keys: &Keys,
    limit: std::time::Duration,
) -> Result<()> {
    let mut c = client.clone();
    bounded(
        "request balance",
        limit,
        c.put(keys.balance_request(), "1", None),
    )
    .await?;
    Ok(())
}

/// Whether a request key still exists (the master deletes it once handled).
///
/// # Errors
/// etcd errors.
pub async fn pending(client: &Client, key: &str, limit: std::time::Duration) -> Result<bool> {
    let mut c = client.clone();
    let resp = bounded(
        "read request",
        limit,
        c.get(key, Some(GetOptions::new().with_keys_only())),
    )
    .await?;
    Ok(!resp.kvs().is_empty())
}

/// Deletes a handled request.
///
/// # Errors
/// etcd errors.
pub async fn done(client: &Client, key: &str, limit: std::time::Duration) -> Result<()> {
    let mut c = client.clone();
    bounded("delete request", limit, c.delete(key, None)).await?;
    Ok(())
}
