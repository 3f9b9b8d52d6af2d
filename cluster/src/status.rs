//! Reading a cluster's state from etcd alone, at one revision: what `speedlayer cluster
//! status` prints (members, master, every region's state and server). Needs no running
//! member.

use etcd_client::{GetOptions, SortOrder, SortTarget};
use serde::Serialize;

use crate::client::{bounded, connect};
use crate::config::ClusterConfig;
use crate::error::{Error, Result};
use crate::info::ServerInfo;
use crate::keys::Keys;
use crate::region_state::{RegionMeta, RegionState};

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
    /// Every region in meta (split parents excluded), by table then id.
    pub regions: Vec<RegionStatus>,
}

/// One region as `cluster status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionStatus {
    /// Table.
    pub table: String,
    /// Region id.
    pub id: u64,
    /// First row key, hex.
    pub start: String,
    /// Row key after the last, hex.
    pub end: String,
    /// Where it is in its life.
    pub state: RegionState,
    /// Its server (opening, open, closing).
    pub server: Option<String>,
    /// Its epoch.
    pub epoch: u64,
    /// Where a move takes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl ClusterStatus {
    /// Regions open on `server`.
    pub fn open_on(&self, server: &str) -> usize {
        self.regions
            .iter()
            .filter(|r| r.state == RegionState::Open && r.server.as_deref() == Some(server))
            .count()
    }
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
        let prefix = keys.regions();
        let metas = bounded(
            "read regions",
            limit,
            client.get(
                prefix.clone(),
                Some(GetOptions::new().with_prefix().with_revision(revision)),
            ),
        )
        .await?;
        let mut regions = Vec::with_capacity(metas.kvs().len());
        for kv in metas.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let bad = |reason: String| Error::BadValue {
                key: key.clone(),
                reason,
            };
            let (table, id) = key
                .strip_prefix(&prefix)
                .and_then(|rest| rest.rsplit_once('/'))
                .ok_or_else(|| bad("not <table>/<id>".into()))?;
            let id: u64 = id
                .parse()
                .map_err(|_| bad("region id is not a number".into()))?;
            let r: RegionMeta =
                serde_json::from_slice(kv.value()).map_err(|e| bad(e.to_string()))?;
            if r.state == RegionState::Split {
                continue;
            }
            regions.push(RegionStatus {
                table: table.to_owned(),
                id,
                start: r.start,
                end: r.end,
                state: r.state,
                server: r.server,
                epoch: r.epoch,
                target: r.target,
            });
        }
        regions.sort_by(|a, b| (&a.table, a.id).cmp(&(&b.table, b.id)));
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
            regions,
        })
    }
}

fn text(key: &[u8], value: &[u8]) -> Result<String> {
    String::from_utf8(value.to_vec()).map_err(|_| Error::BadValue {
        key: String::from_utf8_lossy(key).into_owned(),
        reason: "not UTF-8".into(),
    })
}
