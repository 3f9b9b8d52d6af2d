//! Meta in etcd (`server/docs/cluster_design.md` §2): tables, region boundaries and
//! assignment, read at one revision and changed only by compare-and-swap transactions.
//!
//! Who writes what:
//! - creating a table (any member): one transaction that requires the table to be absent
//!   and `next_region_id` unchanged, and writes the table, its regions (offline) and the
//!   new `next_region_id`;
//! - dropping a table (any member): marks it `dropping`; the master closes its regions and
//!   then deletes it with its regions in one transaction;
//! - a region's transitions: the master's (assign, close, lost), compared on the region's
//!   mod revision *and* the master's election key, so a deposed master writes nothing; the
//!   assigned server's reports (opened, failed, closed), compared on the region's mod
//!   revision (the event itself names the epoch).

use std::collections::BTreeMap;

use etcd_client::{Client, Compare, CompareOp, GetOptions, Txn, TxnOp};
use serde::{Deserialize, Serialize};

use crate::client::bounded;
use crate::error::{Error, Result};
use crate::keys::Keys;
use crate::region_state::{Event, RegionMeta, RegionState, hex, unhex};

/// A table in meta.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableMeta {
    /// The table's schema, as the region server encodes it (opaque here).
    pub schema: serde_json::Value,
    /// Enabled, or being dropped.
    pub state: TableState,
}

/// A table's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableState {
    /// Served.
    Enabled,
    /// Being dropped: its regions are closed, then it is deleted.
    Dropping,
}

/// A value with the etcd mod revision it was read at (for compare-and-swap).
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    /// The value.
    pub value: T,
    /// Its key's mod revision.
    pub mod_revision: i64,
}

/// All of meta at one etcd revision.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaView {
    /// The revision read at.
    pub revision: i64,
    /// The next region id to hand out.
    pub next_region_id: u64,
    /// `next_region_id`'s mod revision (0: never written).
    pub next_id_mod_revision: i64,
    /// Tables by name.
    pub tables: BTreeMap<String, Versioned<TableMeta>>,
    /// Regions by table, then id.
    pub regions: BTreeMap<String, BTreeMap<u64, Versioned<RegionMeta>>>,
}

/// The master's right to write: its election key and that key's create revision. Every
/// master transaction compares it, so once the key is gone (lease ended, resigned) nothing
/// the old master sends applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterGuard {
    /// The election key.
    pub key: Vec<u8>,
    /// Its create revision.
    pub create_revision: i64,
}

/// Who writes a transition.
#[derive(Debug, Clone)]
pub enum Writer<'a> {
    /// The master (assign, close, lost).
    Master(&'a MasterGuard),
    /// The region's server (its reports).
    Server,
}

/// Meta of one cluster.
#[derive(Clone)]
pub struct MetaStore {
    client: Client,
    keys: Keys,
    limit: std::time::Duration,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetaStore")
            .field("root", &self.keys.root())
            .finish_non_exhaustive()
    }
}

/// Most attempts of an optimistic transaction that keeps meeting concurrent changes.
const MAX_ATTEMPTS: usize = 32;

impl MetaStore {
    /// Meta of cluster `name` through `client`; every call bounded by `limit`.
    pub fn new(client: Client, name: &str, limit: std::time::Duration) -> MetaStore {
        MetaStore {
            client,
            keys: Keys::new(name),
            limit,
        }
    }

    /// Reads all of meta in one range read (one revision).
    ///
    /// # Errors
    /// etcd errors; a value this version cannot read.
    pub async fn load(&self) -> Result<MetaView> {
        let mut c = self.client.clone();
        let resp = bounded(
            "read meta",
            self.limit,
            c.get(self.keys.meta(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let mut view = MetaView {
            revision: resp.header().map(|h| h.revision()).unwrap_or(0),
            ..MetaView::default()
        };
        let (tables, regions) = (self.keys.tables(), self.keys.regions());
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            let bad = |reason: String| Error::BadValue {
                key: key.clone(),
                reason,
            };
            if key == self.keys.next_region_id() {
                let text = std::str::from_utf8(kv.value()).map_err(|e| bad(e.to_string()))?;
                view.next_region_id = text.parse().map_err(|e| bad(format!("{e}")))?;
                view.next_id_mod_revision = kv.mod_revision();
            } else if let Some(name) = key.strip_prefix(&tables) {
                let value: TableMeta =
                    serde_json::from_slice(kv.value()).map_err(|e| bad(e.to_string()))?;
                view.tables.insert(
                    name.to_owned(),
                    Versioned {
                        value,
                        mod_revision: kv.mod_revision(),
                    },
                );
            } else if let Some(rest) = key.strip_prefix(&regions) {
                let (table, id) = rest
                    .rsplit_once('/')
                    .ok_or_else(|| bad("no region id".into()))?;
                let id: u64 = id.parse().map_err(|e| bad(format!("region id: {e}")))?;
                let value: RegionMeta =
                    serde_json::from_slice(kv.value()).map_err(|e| bad(e.to_string()))?;
                view.regions.entry(table.to_owned()).or_default().insert(
                    id,
                    Versioned {
                        value,
                        mod_revision: kv.mod_revision(),
                    },
                );
            } else {
                return Err(bad("not a key of this version's meta".into()));
            }
        }
        Ok(view)
    }

    /// Creates a table whose regions start at `""` and at each split point, all offline;
    /// returns their ids. Any member may call it; concurrent creators of other tables
    /// retry, a concurrent creator of the same table wins once.
    ///
    /// # Errors
    /// [`Error::Config`] for unsorted or empty split points or a bad name;
    /// [`Error::TableExists`]; etcd errors.
    pub async fn create_table(
        &self,
        name: &str,
        schema: serde_json::Value,
        splits: &[Vec<u8>],
    ) -> Result<Vec<u64>> {
        check_table_name(name)?;
        if splits.iter().any(Vec::is_empty) || splits.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::Config(
                "split points must be non-empty and strictly increasing".into(),
            ));
        }
        let table = TableMeta {
            schema,
            state: TableState::Enabled,
        };
        let table_json = to_json(&self.keys.table(name), &table)?;
        let mut c = self.client.clone();
        for _ in 0..MAX_ATTEMPTS {
            let view = self.load().await?;
            if view.tables.contains_key(name) {
                return Err(Error::TableExists(name.to_owned()));
            }
            let first = view.next_region_id.max(1);
            let mut bounds: Vec<&[u8]> = vec![b""];
            bounds.extend(splits.iter().map(Vec::as_slice));
            bounds.push(b"");
            let mut ops = vec![TxnOp::put(self.keys.table(name), table_json.clone(), None)];
            let mut ids = Vec::with_capacity(bounds.len() - 1);
            for (i, w) in bounds.windows(2).enumerate() {
                let id = first + i as u64;
                let meta = RegionMeta::new(w[0], w[1]);
                ops.push(TxnOp::put(
                    self.keys.region(name, id),
                    to_json(&self.keys.region(name, id), &meta)?,
                    None,
                ));
                ids.push(id);
            }
            let next = first + ids.len() as u64;
            ops.push(TxnOp::put(
                self.keys.next_region_id(),
                next.to_string(),
                None,
            ));
            let txn = Txn::new()
                .when(vec![
                    Compare::version(self.keys.table(name), CompareOp::Equal, 0),
                    Compare::mod_revision(
                        self.keys.next_region_id(),
                        CompareOp::Equal,
                        view.next_id_mod_revision,
                    ),
                ])
                .and_then(ops);
            if bounded("create table", self.limit, c.txn(txn))
                .await?
                .succeeded()
            {
                return Ok(ids);
            }
        }
        Err(Error::Contended("create table"))
    }

    /// Marks a table `dropping`: the master closes its regions, then deletes it.
    ///
    /// # Errors
    /// [`Error::NoSuchTable`]; etcd errors.
    pub async fn drop_table(&self, name: &str) -> Result<()> {
        let mut c = self.client.clone();
        for _ in 0..MAX_ATTEMPTS {
            let view = self.load().await?;
            let Some(t) = view.tables.get(name) else {
                return Err(Error::NoSuchTable(name.to_owned()));
            };
            if t.value.state == TableState::Dropping {
                return Ok(());
            }
            let mut next = t.value.clone();
            next.state = TableState::Dropping;
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(
                    self.keys.table(name),
                    CompareOp::Equal,
                    t.mod_revision,
                )])
                .and_then(vec![TxnOp::put(
                    self.keys.table(name),
                    to_json(&self.keys.table(name), &next)?,
                    None,
                )]);
            if bounded("drop table", self.limit, c.txn(txn))
                .await?
                .succeeded()
            {
                return Ok(());
            }
        }
        Err(Error::Contended("drop table"))
    }

    /// Deletes a `dropping` table whose regions are all offline, with its regions, in one
    /// master transaction. `Ok(false)`: meta changed meanwhile (read again).
    ///
    /// # Errors
    /// etcd errors.
    pub async fn purge_table(
        &self,
        view: &MetaView,
        name: &str,
        guard: &MasterGuard,
    ) -> Result<bool> {
        let Some(t) = view.tables.get(name) else {
            return Ok(true);
        };
        let mut cmp = vec![
            master_compare(guard),
            Compare::mod_revision(self.keys.table(name), CompareOp::Equal, t.mod_revision),
        ];
        for (id, r) in view.regions.get(name).into_iter().flatten() {
            if !matches!(r.value.state, RegionState::Offline | RegionState::Split) {
                return Ok(false);
            }
            cmp.push(Compare::mod_revision(
                self.keys.region(name, *id),
                CompareOp::Equal,
                r.mod_revision,
            ));
        }
        let txn = Txn::new().when(cmp).and_then(vec![
            TxnOp::delete(self.keys.table(name), None),
            TxnOp::delete(
                self.keys.regions_of(name),
                Some(etcd_client::DeleteOptions::new().with_prefix()),
            ),
        ]);
        let mut c = self.client.clone();
        Ok(bounded("purge table", self.limit, c.txn(txn))
            .await?
            .succeeded())
    }

    /// Reserves `n` region ids (for a split's daughters): they are never handed out again,
    /// used or not. Returns the first.
    ///
    /// # Errors
    /// etcd errors; [`Error::Contended`] after many concurrent changes.
    pub async fn reserve_region_ids(&self, n: u64) -> Result<u64> {
        let mut c = self.client.clone();
        for _ in 0..MAX_ATTEMPTS {
            let view = self.load().await?;
            let first = view.next_region_id.max(1);
            let txn = Txn::new()
                .when(vec![Compare::mod_revision(
                    self.keys.next_region_id(),
                    CompareOp::Equal,
                    view.next_id_mod_revision,
                )])
                .and_then(vec![TxnOp::put(
                    self.keys.next_region_id(),
                    (first + n).to_string(),
                    None,
                )]);
            if bounded("reserve region ids", self.limit, c.txn(txn))
                .await?
                .succeeded()
            {
                return Ok(first);
            }
        }
        Err(Error::Contended("reserve region ids"))
    }

    /// Commits a split the region's server prepared (daughters built under the storage
    /// root): in one transaction, the parent becomes `split` and the daughters `ids` appear
    /// `opening` on `server`, if the parent is still as `view` read it (open on `server`
    /// at `epoch`). `Ok(false)`: it changed (moved, lost); the caller aborts.
    ///
    /// # Errors
    /// [`Error::Illegal`] when the view's parent cannot split so; etcd errors.
    #[allow(clippy::too_many_arguments)]
    pub async fn split(
        &self,
        view: &MetaView,
        table: &str,
        id: u64,
        server: &str,
        epoch: u64,
        key: &[u8],
        ids: [u64; 2],
    ) -> Result<bool> {
        let Some(current) = view.regions.get(table).and_then(|r| r.get(&id)) else {
            return Err(Error::NoSuchRegion(table.to_owned(), id));
        };
        let (parent, daughters) = current
            .value
            .split(id, server, epoch, key, ids)
            .map_err(|e| Error::Illegal(e.to_string()))?;
        let pkey = self.keys.region(table, id);
        let mut cmp = vec![Compare::mod_revision(
            pkey.clone(),
            CompareOp::Equal,
            current.mod_revision,
        )];
        let mut ops = vec![TxnOp::put(pkey.clone(), to_json(&pkey, &parent)?, None)];
        for (d, did) in daughters.into_iter().zip(ids) {
            let dkey = self.keys.region(table, did);
            cmp.push(Compare::version(dkey.clone(), CompareOp::Equal, 0));
            ops.push(TxnOp::put(dkey.clone(), to_json(&dkey, &d)?, None));
        }
        let txn = Txn::new().when(cmp).and_then(ops);
        let mut c = self.client.clone();
        Ok(bounded("commit split", self.limit, c.txn(txn))
            .await?
            .succeeded())
    }

    /// Applies `event` to a region as read in `view`, if nothing changed it since and, for
    /// the master, the master still holds its election key. `Ok(None)`: the compare failed
    /// (read again); `Ok(Some(entry))`: written.
    ///
    /// # Errors
    /// [`Error::Illegal`] for a transition the state machine refuses; etcd errors.
    pub async fn transition(
        &self,
        view: &MetaView,
        table: &str,
        id: u64,
        event: &Event,
        writer: Writer<'_>,
    ) -> Result<Option<RegionMeta>> {
        let Some(current) = view.regions.get(table).and_then(|r| r.get(&id)) else {
            return Err(Error::NoSuchRegion(table.to_owned(), id));
        };
        let next = current
            .value
            .apply(event)
            .map_err(|e| Error::Illegal(e.to_string()))?;
        let key = self.keys.region(table, id);
        let mut cmp = vec![Compare::mod_revision(
            key.clone(),
            CompareOp::Equal,
            current.mod_revision,
        )];
        if let Writer::Master(guard) = writer {
            cmp.push(master_compare(guard));
        }
        let txn = Txn::new().when(cmp).and_then(vec![TxnOp::put(
            key.clone(),
            to_json(&key, &next)?,
            None,
        )]);
        let mut c = self.client.clone();
        let ok = bounded("region transition", self.limit, c.txn(txn))
            .await?
            .succeeded();
        Ok(ok.then_some(next))
    }
}

fn master_compare(guard: &MasterGuard) -> Compare {
    Compare::create_revision(guard.key.clone(), CompareOp::Equal, guard.create_revision)
}

fn to_json<T: Serialize>(key: &str, value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::BadValue {
        key: key.to_owned(),
        reason: e.to_string(),
    })
}

fn check_table_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') {
        return Err(Error::Config(format!(
            "table name {name:?} must be non-empty and hold no '/'"
        )));
    }
    Ok(())
}

/// The invariants of design §2 that one view can show (1–3); each violation as a sentence.
pub fn check(view: &MetaView) -> Vec<String> {
    let mut out = Vec::new();
    for (table, regions) in &view.regions {
        if !view.tables.contains_key(table) {
            out.push(format!("regions of {table:?} but no such table"));
        }
        for (id, r) in regions {
            if *id >= view.next_region_id {
                out.push(format!(
                    "{table}/{id}: id not below next_region_id {}",
                    view.next_region_id
                ));
            }
            let assigned = matches!(
                r.value.state,
                RegionState::Opening | RegionState::Open | RegionState::Closing
            );
            if assigned != r.value.server.is_some() {
                out.push(format!(
                    "{table}/{id}: {:?} with server {:?}",
                    r.value.state, r.value.server
                ));
            }
        }
    }
    for (table, t) in &view.tables {
        if t.value.state != TableState::Enabled {
            continue;
        }
        let mut live: Vec<(Vec<u8>, Option<Vec<u8>>, u64)> = Vec::new();
        for (id, r) in view.regions.get(table).into_iter().flatten() {
            if r.value.state == RegionState::Split {
                continue;
            }
            match (unhex(&r.value.start), unhex(&r.value.end)) {
                (Some(s), Some(e)) => live.push((s, (!e.is_empty()).then_some(e), *id)),
                _ => out.push(format!("{table}/{id}: boundary is not hex")),
            }
        }
        live.sort();
        let mut expect: Option<Vec<u8>> = Some(Vec::new());
        for (start, end, id) in &live {
            if expect.as_ref() != Some(start) {
                out.push(format!(
                    "{table}/{id}: starts at {} where {} was expected",
                    hex(start),
                    expect
                        .as_deref()
                        .map(hex)
                        .unwrap_or_else(|| "nothing".into())
                ));
            }
            if end.as_ref().is_some_and(|e| e <= start) {
                out.push(format!("{table}/{id}: ends before it starts"));
            }
            expect = end.clone();
        }
        if live.is_empty() {
            out.push(format!("{table}: no regions"));
        } else if expect.is_some() {
            out.push(format!("{table}: the last region does not reach the end"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    type Bounds<'a> = (&'a [u8], &'a [u8], RegionState, Option<&'a str>);

    fn view(bounds: &[Bounds<'_>]) -> MetaView {
        let mut v = MetaView {
            next_region_id: 10,
            ..MetaView::default()
        };
        v.tables.insert(
            "t".into(),
            Versioned {
                value: TableMeta {
                    schema: serde_json::Value::Null,
                    state: TableState::Enabled,
                },
                mod_revision: 1,
            },
        );
        for (i, (s, e, st, server)) in bounds.iter().enumerate() {
            let mut r = RegionMeta::new(s, e);
            r.state = *st;
            r.server = server.map(str::to_owned);
            v.regions.entry("t".into()).or_default().insert(
                i as u64 + 1,
                Versioned {
                    value: r,
                    mod_revision: 1,
                },
            );
        }
        v
    }

    #[test]
    fn check_finds_each_broken_invariant() {
        use RegionState::*;
        let good = view(&[
            (b"", b"m", Open, Some("a")),
            (b"m", b"", Offline, None),
            (b"", b"", Split, None),
        ]);
        assert_eq!(check(&good), Vec::<String>::new());
        let hole = view(&[(b"", b"f", Offline, None), (b"m", b"", Offline, None)]);
        assert!(
            check(&hole)[0].contains("where 66 was expected"),
            "{:?}",
            check(&hole)
        );
        let short = view(&[(b"", b"m", Offline, None)]);
        assert!(check(&short)[0].contains("does not reach the end"));
        let unowned = view(&[(b"", b"", Open, None)]);
        assert!(check(&unowned)[0].contains("Open with server None"));
        let mut high = view(&[(b"", b"", Offline, None)]);
        high.next_region_id = 1;
        assert!(check(&high)[0].contains("not below next_region_id"));
        let mut orphan = good.clone();
        orphan.tables.clear();
        assert!(check(&orphan).iter().any(|v| v.contains("no such table")));
    }
}
