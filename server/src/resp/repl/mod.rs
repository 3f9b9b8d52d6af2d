//! Replication as a Redis master (`server/docs/replication.md`): the stream every write
//! goes into (fed where the AOF is fed), its bounded backlog, the replicas connected and
//! what they acknowledged. The replica links themselves are in `replica_link`; the
//! commands (REPLCONF, PSYNC, WAIT, ROLE) in `cmd::repl`. This module does no I/O.

pub mod backlog;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use tokio::sync::watch;

use self::backlog::Backlog;
use super::keyspace::encode_command;

/// Redis's default `repl-backlog-size`.
pub const DEFAULT_BACKLOG: usize = 1024 * 1024;

/// A connected replica, as ROLE and INFO show it.
#[derive(Debug, Clone)]
pub struct Replica {
    /// Its address.
    pub addr: SocketAddr,
    /// The port it said it listens on (`REPLCONF listening-port`).
    pub port: u16,
    /// The last offset it acknowledged (`REPLCONF ACK`).
    pub ack: u64,
    /// When it last acknowledged.
    pub last_ack: Instant,
}

/// Redis's hard `client-output-buffer-limit` for replicas: a link that has this much
/// unsent is dropped (the replica resyncs).
pub const LINK_BUFFER_LIMIT: usize = 256 * 1024 * 1024;

/// What a replica link has not sent yet: filled by [`Replication::feed`], in stream order,
/// drained by the link's task.
#[derive(Debug, Default)]
pub struct Link {
    pending: Mutex<Vec<u8>>,
    overflow: std::sync::atomic::AtomicBool,
}

impl Link {
    fn push(&self, bytes: &[u8]) {
        let mut p = self.pending.lock();
        if p.len() + bytes.len() > LINK_BUFFER_LIMIT {
            self.overflow.store(true, Ordering::Relaxed);
            p.clear();
            return;
        }
        p.extend_from_slice(bytes);
    }

    /// Takes what is waiting to be sent.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// Whether the replica fell [`LINK_BUFFER_LIMIT`] behind (the link must close).
    pub fn overflowed(&self) -> bool {
        self.overflow.load(Ordering::Relaxed)
    }
}

/// Our link to a master when we are a replica (`REPLICAOF host port`), as INFO and ROLE
/// show it.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// The master's host.
    pub host: String,
    /// The master's port.
    pub port: u16,
    /// Redis's link states: `connect`, `connecting`, `sync`, `connected`.
    pub state: &'static str,
    /// Why the link is down, if it failed (shown as `master_link_error`).
    pub error: Option<String>,
    /// The master's stream offset we applied.
    pub offset: u64,
    /// When we last heard from the master.
    pub last_io: Instant,
}

/// The master side of replication: one per server.
#[derive(Debug)]
pub struct Replication {
    /// 40 hex digits, made at start.
    pub replid: String,
    backlog: Mutex<Backlog>,
    replicas: Mutex<BTreeMap<u64, (Replica, Arc<Link>)>>,
    /// The stream's end offset, for links waiting for new bytes.
    offset_tx: watch::Sender<u64>,
    /// Bumped at every acknowledgement, for WAIT.
    ack_tx: watch::Sender<u64>,
    /// Full resyncs served (`sync_full`).
    pub sync_full: AtomicU64,
    /// Partial resyncs granted (`sync_partial_ok`).
    pub sync_partial_ok: AtomicU64,
    /// Partial resyncs refused (`sync_partial_err`).
    pub sync_partial_err: AtomicU64,
    /// The master we replicate from (`REPLICAOF`), `None` while we are a master; the
    /// upstream task follows it.
    pub master_of_us: watch::Sender<Option<(String, u16)>>,
    /// The state of our link to that master.
    pub upstream: Mutex<Option<Upstream>>,
    /// As a replica: the master's replid and the offset of its stream our keyspace holds
    /// (kept current by `upstream` before every await, so it always matches the keys);
    /// what a partial resync asks for, and what the shutdown snapshot records.
    pub resume: Mutex<Option<(String, u64)>>,
    /// Whether the stream is kept: from the first replica's sync on, as Redis creates its
    /// backlog (before, writes advance no offset).
    active: std::sync::atomic::AtomicBool,
}

impl Replication {
    /// A master with a fresh replid and an empty backlog of `backlog` bytes.
    pub fn new(backlog: usize) -> Replication {
        Replication {
            replid: format!(
                "{:032x}{:08x}",
                rand::random::<u128>(),
                rand::random::<u32>()
            ),
            backlog: Mutex::new(Backlog::new(backlog)),
            replicas: Mutex::new(BTreeMap::new()),
            offset_tx: watch::channel(0).0,
            ack_tx: watch::channel(0).0,
            sync_full: AtomicU64::new(0),
            sync_partial_ok: AtomicU64::new(0),
            sync_partial_err: AtomicU64::new(0),
            master_of_us: watch::channel(None).0,
            upstream: Mutex::new(None),
            resume: Mutex::new(None),
            active: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Appends RESP-encoded commands to the stream (the AOF's feed, PING, GETACK).
    pub fn feed(&self, bytes: &[u8]) {
        if bytes.is_empty() || !self.is_active() {
            return;
        }
        let end = {
            // Under the backlog's lock: links and backlog get the same bytes in one order.
            let mut b = self.backlog.lock();
            b.append(bytes);
            for (_, link) in self.replicas.lock().values() {
                link.push(bytes);
            }
            b.end()
        };
        self.offset_tx.send_replace(end);
    }

    /// Appends one command that is not a write (PING, REPLCONF GETACK *), only while a
    /// replica is connected.
    pub fn feed_command(&self, args: &[&[u8]]) {
        if self.replicas.lock().is_empty() {
            return;
        }
        let mut out = Vec::new();
        encode_command(&mut out, args);
        self.feed(&out);
    }

    /// Starts keeping the stream (a replica is about to sync), as Redis creates its backlog.
    pub fn activate(&self) {
        self.active.store(true, Ordering::SeqCst);
    }

    /// Whether the stream is kept (`repl_backlog_active`).
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::SeqCst)
    }

    /// The stream's end offset (`master_repl_offset`).
    pub fn offset(&self) -> u64 {
        self.backlog.lock().end()
    }

    /// Backlog numbers for INFO: first byte offset, bytes kept, capacity.
    pub fn backlog_info(&self) -> (u64, usize, usize) {
        let b = self.backlog.lock();
        // Redis shows 0 before it has a backlog.
        let first = if self.is_active() { b.first() } else { 0 };
        (first, b.len(), b.capacity())
    }

    /// Whether a replica that needs the bytes from `from` on can continue from the backlog.
    pub fn can_continue(&self, from: u64) -> bool {
        let b = self.backlog.lock();
        from >= b.first() && from <= b.end() + 1
    }

    /// A receiver of the stream's end offset.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.offset_tx.subscribe()
    }

    /// A receiver bumped at every acknowledgement.
    pub fn acks(&self) -> watch::Receiver<u64> {
        self.ack_tx.subscribe()
    }

    /// Registers a replica link (client `id`) that needs the stream from offset `from` on:
    /// its buffer starts with what the backlog holds from there, and every later feed
    /// follows. `None` if `from` left the backlog.
    pub fn attach(&self, id: u64, replica: Replica, from: u64) -> Option<Arc<Link>> {
        let b = self.backlog.lock();
        let link = Arc::new(Link::default());
        let mut first = Vec::new();
        b.read_from(from, usize::MAX, &mut first)?;
        link.push(&first);
        self.replicas.lock().insert(id, (replica, link.clone()));
        Some(link)
    }

    /// Forgets a replica link.
    pub fn remove_replica(&self, id: u64) {
        self.replicas.lock().remove(&id);
    }

    /// Records `REPLCONF ACK offset` from replica link `id`.
    pub fn ack(&self, id: u64, offset: u64) {
        if let Some((r, _)) = self.replicas.lock().get_mut(&id) {
            r.ack = r.ack.max(offset);
            r.last_ack = Instant::now();
        }
        self.ack_tx.send_modify(|n| *n += 1);
    }

    /// The replicas, by link id.
    pub fn replicas(&self) -> Vec<Replica> {
        self.replicas
            .lock()
            .values()
            .map(|(r, _)| r.clone())
            .collect()
    }

    /// How many replicas acknowledged every byte up to `offset`.
    pub fn acked(&self, offset: u64) -> usize {
        self.replicas
            .lock()
            .values()
            .filter(|(r, _)| r.ack >= offset)
            .count()
    }

    /// The number of replicas.
    pub fn replica_count(&self) -> usize {
        self.replicas.lock().len()
    }

    /// Whether we are a replica (writes from clients are refused).
    pub fn is_replica(&self) -> bool {
        self.master_of_us.borrow().is_some()
    }

    /// Updates our link's state (and `error`, which `None` clears).
    pub fn set_upstream(&self, state: &'static str, error: Option<String>) {
        if let Some(u) = self.upstream.lock().as_mut() {
            u.state = state;
            u.error = error;
            u.last_io = Instant::now();
        }
    }

    /// Counts a sync served.
    pub fn count(&self, counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
