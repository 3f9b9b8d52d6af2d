//! Reading a cluster's state from etcd alone, at one revision: what `speedlayer cluster
//! status` prints. Needs no running member.

use etcd_client::{GetOptions, SortOrder, SortTarget};
use serde::Serialize;

use crate::client::{bounded, connect};
use crate::config::ClusterConfig;
use crate::error::{Error, Result};
use crate::info::ServerInfo;
use crate::keys::Keys;

/// The cluster as etcd holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterStatus {
    /// Cluster name.
    pub cluster: String,
    /// etcd revision the status was read at.
    pub revision: i64,
    /// The master's member id, if any member is elected.
    pub master: Option<String>,
    /// Every live member, sorted by id.
    pub servers: Vec<ServerInfo>,
}

impl ClusterStatus {
    /// Reads the members and the master at one etcd revision.
    ///
    /// # Errors
    /// etcd unreachable or timing out; a member value this version cannot read.
    pub async fn read(cfg: &ClusterConfig) -> Result<ClusterStatus> {
        let client = connect(cfg).await?;
        ClusterStatus::read_with(&client, &cfg.name, cfg.call_timeout).await
    }

    /// As [`ClusterStatus::read`], over an existing connection (a server answering
    /// location requests reuses its own instead of connecting each time).
    ///
    /// # Errors
    /// As [`ClusterStatus::read`].
    pub async fn read_with(
        client: &etcd_client::Client,
        name: &str,
        limit: std::time::Duration,
    ) -> Result<ClusterStatus> {
        let mut client = client.clone();
        let keys = Keys::new(name);
        let servers = bounded(
            "read members",
            limit,
            client.get(keys.servers(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let revision = servers.header().map(|h| h.revision()).unwrap_or(0);
        // etcd's election: the candidate with the lowest create revision under the
        // election prefix is the leader.
        let candidates = bounded(
            "read master",
            limit,
            client.get(
                format!("{}/", keys.election()),
                Some(
                    GetOptions::new()
                        .with_prefix()
                        .with_revision(revision)
                        .with_sort(SortTarget::Create, SortOrder::Ascend)
                        .with_limit(1),
                ),
            ),
        )
        .await?;
        let master = match candidates.kvs().first() {
            Some(kv) => Some(text(kv.key(), kv.value())?),
            None => None,
        };
        let mut list = Vec::with_capacity(servers.kvs().len());
        for kv in servers.kvs() {
            let info: ServerInfo =
                serde_json::from_slice(kv.value()).map_err(|e| Error::BadValue {
                    key: String::from_utf8_lossy(kv.key()).into_owned(),
                    reason: e.to_string(),
                })?;
            list.push(info);
        }
        list.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(ClusterStatus {
            cluster: name.to_owned(),
            revision,
            master,
            servers: list,
        })
    }
}

fn text(key: &[u8], value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec()).map_err(|_| Error::BadValue {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "not UTF-8".into(),
    })
}
