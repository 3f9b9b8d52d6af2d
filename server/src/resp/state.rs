//! The state one RESP server shares between its connections and background tasks: the
//! keyspace, the AOF, the settings, INFO counters, the connected clients, and the
//! per-connection state commands see ([`Client`]).
//!
//! It knows nothing of sockets or tasks: `server` accepts connections, `tasks` runs the
//! background loops, `connection` and `cmd` serve clients; all of them depend on this
//! module, and it depends only on the keyspace and the persistence modules.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

use super::aof::{Aof, FlushMode};
use super::config::RespConfig;
use super::keyspace::Keyspace;
use super::keyspace_lock::KeyspaceLock;
use super::reply::Out;
use crate::error::ServerError;

/// Server-wide counters for INFO.
#[derive(Debug, Default)]
pub struct Stats {
    /// Connections accepted.
    pub total_connections_received: AtomicU64,
    /// Commands executed.
    pub total_commands_processed: AtomicU64,
    /// Connections refused (maxclients, protected mode).
    pub rejected_connections: AtomicU64,
    /// Bytes read from clients.
    pub total_net_input_bytes: AtomicU64,
    /// Bytes written to clients.
    pub total_net_output_bytes: AtomicU64,
    /// Bytes held by all clients' transaction queues (MULTI), counted in INFO memory.
    pub multi_queued_bytes: AtomicU64,
}

impl Stats {
    /// Counts bytes read.
    pub fn add_input(&self, n: usize) {
        self.total_net_input_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
    }
    /// Counts bytes written.
    pub fn add_output(&self, n: usize) {
        self.total_net_output_bytes
            .fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// What CLIENT LIST shows about a connection.
#[derive(Debug, Clone)]
pub struct ClientMeta {
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// CLIENT SETNAME.
    pub name: String,
    /// CLIENT SETINFO LIB-NAME.
    pub lib_name: String,
    /// CLIENT SETINFO LIB-VER.
    pub lib_ver: String,
    /// Accepted at.
    pub created: Instant,
    /// Protocol version.
    pub resp: i64,
    /// Last command name.
    pub last_cmd: String,
    /// Commands queued in its transaction, or -1 outside MULTI (CLIENT LIST's `multi=`;
    /// a client in MULTI also shows the `x` flag).
    pub multi: i64,
    /// Redis's client type: `normal`, `pubsub` while it subscribes to anything, or
    /// `slave` once PSYNC/SYNC made it a replica link.
    pub kind: &'static str,
    /// Channels it subscribes to (CLIENT LIST `sub=`).
    pub sub: usize,
    /// Patterns it subscribes to (CLIENT LIST `psub=`).
    pub psub: usize,
    /// Woken by CLIENT KILL: the connection closes.
    pub kill: std::sync::Arc<tokio::sync::Notify>,
}

/// State shared by all connections of one RESP server.
#[derive(Debug)]
pub struct Shared {
    /// The data.
    pub ks: KeyspaceLock,
    /// The settings.
    pub config: RespConfig,
    /// Counters.
    pub stats: Stats,
    /// Connected clients by id.
    pub clients: Mutex<BTreeMap<u64, ClientMeta>>,
    /// The append-only file, once loaded.
    pub aof: Option<Aof>,
    /// Replication as a master: the stream, its backlog and the replicas.
    pub repl: std::sync::Arc<super::repl::Replication>,
    /// Start time (uptime).
    pub started: Instant,
    /// SAVE and BGSAVE: when the last one succeeded, whether one runs.
    pub saves: std::sync::Arc<SaveState>,
    /// Random run id (INFO server).
    pub run_id: String,
    /// The bound address.
    pub local_addr: SocketAddr,
    /// Prometheus counters of commands (`stats`; the rest is read by `view`).
    pub metrics: super::stats::RespStats,
    /// Pub/sub channels, patterns and their subscribers.
    pub pubsub: super::pubsub::PubSub,
    /// The settings CONFIG SET changes.
    pub runtime: Mutex<RuntimeSettings>,
    next_id: AtomicU64,
    /// Woken when the last connection leaves (shutdown waits on it).
    pub(super) clients_gone: tokio::sync::Notify,
}

impl Shared {
    /// The state of a server about to serve `ks` on `local_addr`.
    pub fn new(
        ks: Keyspace,
        config: RespConfig,
        aof: Option<Aof>,
        repl: std::sync::Arc<super::repl::Replication>,
        local_addr: SocketAddr,
    ) -> Shared {
        let runtime = RuntimeSettings {
            masterauth: config.masterauth.clone(),
            masteruser: config.masteruser.clone(),
            replica_priority: config.replica_priority,
        };
        Shared {
            ks: KeyspaceLock::new(ks),
            config,
            stats: Stats::default(),
            clients: Mutex::new(BTreeMap::new()),
            aof,
            repl,
            started: Instant::now(),
            saves: std::sync::Arc::new(SaveState {
                last_save: std::sync::atomic::AtomicI64::new(unix_seconds()),
                ..SaveState::default()
            }),
            run_id: format!("{:040x}", rand::random::<u128>()),
            local_addr,
            metrics: super::stats::RespStats::new(),
            pubsub: super::pubsub::PubSub::default(),
            runtime: Mutex::new(runtime),
            next_id: AtomicU64::new(1),
            clients_gone: tokio::sync::Notify::new(),
        }
    }

    /// Assigns an id to a new connection and registers it for CLIENT LIST.
    pub fn register_client(&self, addr: SocketAddr, laddr: SocketAddr) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.clients.lock().insert(
            id,
            ClientMeta {
                addr,
                laddr,
                name: String::new(),
                lib_name: String::new(),
                lib_ver: String::new(),
                created: Instant::now(),
                resp: 2,
                last_cmd: "NULL".to_owned(),
                multi: -1,
                kind: "normal",
                sub: 0,
                psub: 0,
                kill: std::sync::Arc::new(tokio::sync::Notify::new()),
            },
        );
        id
    }

    /// Forgets a closed connection.
    pub fn unregister_client(&self, id: u64) {
        let mut clients = self.clients.lock();
        clients.remove(&id);
        if clients.is_empty() {
            self.clients_gone.notify_waiters();
        }
    }

    /// Number of connected clients.
    pub fn client_count(&self) -> usize {
        self.clients.lock().len()
    }

    /// The errno of the AOF write or fsync that is failing: while there is one, write
    /// commands are refused with `-MISCONF` (until the writer task's retry succeeds).
    pub fn aof_write_error(&self) -> Option<i32> {
        self.aof.as_ref().and_then(|a| a.write_error())
    }

    /// Writes the commands recorded in the keyspace to the AOF, fsyncing as `mode` says.
    ///
    /// # Errors
    /// The I/O error; the server then refuses write commands (`-MISCONF`) until a retry
    /// succeeds.
    pub fn flush_aof(&self, mode: FlushMode) -> Result<(), ServerError> {
        match &self.aof {
            Some(aof) => aof.flush(&self.ks, mode),
            None => Ok(()),
        }
    }
}

/// The settings CONFIG SET can change while serving (CONFIG REWRITE persists them).
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Password our link to a master authenticates with (`masterauth`).
    pub masterauth: Option<String>,
    /// User name our link to a master authenticates as (`masteruser`; needs
    /// `masterauth`).
    pub masteruser: Option<String>,
    /// `replica-priority` (INFO's `slave_priority`): Sentinel promotes lower numbers
    /// first, and never a replica with 0.
    pub replica_priority: u32,
}

impl RuntimeSettings {
    /// Redis's default `replica-priority`.
    pub const DEFAULT_PRIORITY: u32 = 100;
}

/// Per-connection state visible to commands.
#[derive(Debug)]
pub struct Client {
    /// Unique id (CLIENT ID).
    pub id: u64,
    /// Peer address.
    pub addr: SocketAddr,
    /// Local address.
    pub laddr: SocketAddr,
    /// True when no password is needed or AUTH succeeded.
    pub authed: bool,
    /// Reply buffer and protocol version.
    pub out: Out,
    /// Set by QUIT or a fatal error: close after flushing.
    pub close: bool,
    /// When the connection was accepted.
    pub created: Instant,
    /// The transaction being queued, between MULTI and EXEC/DISCARD.
    pub tx: Option<Transaction>,
    /// The keys this client WATCHes (the keyspace's `watches` holds the other direction).
    pub watched: Vec<Bytes>,
    /// Set by PSYNC/SYNC: the connection becomes a replica link from this point.
    pub replica: Option<ReplicaStart>,
    /// `REPLCONF listening-port`.
    pub repl_port: u16,
    /// Set by WAIT: (replicas, timeout ms) the connection waits for before going on.
    pub wait: Option<(i64, u64)>,
    /// The replication offset after this client's last write (WAIT waits for it).
    pub woff: u64,
    /// True while EXEC runs this client's queue (WAIT then answers at once, as Redis).
    pub in_exec: bool,
    /// The link to our master (`upstream`): its writes are applied on a replica.
    pub master_link: bool,
    /// Pub/sub subscriptions (RESP2 connections with any are restricted to the pub/sub
    /// commands, PING, QUIT and RESET).
    pub subs: super::pubsub::Subscriptions,
}

/// Where a replica link starts streaming (the next byte the replica needs).
#[derive(Debug, Clone, Copy)]
pub struct ReplicaStart {
    /// Stream offset of the first byte to send.
    pub from: u64,
}

/// A transaction being queued (between MULTI and EXEC or DISCARD).
#[derive(Debug, Default)]
pub struct Transaction {
    /// The queued requests, each already checked (name, arity, authentication).
    pub queued: Vec<Vec<Bytes>>,
    /// What the queue holds: argument bytes plus [`Transaction::ARG_OVERHEAD`] per argument.
    pub bytes: usize,
    /// A request failed to queue: EXEC replies `-EXECABORT` and runs nothing.
    pub failed: bool,
    /// Some queued command is a write (EXEC then flushes the AOF before replying).
    pub writes: bool,
}

impl Transaction {
    /// Bytes counted per queued argument besides its contents (the `Bytes` handle).
    pub const ARG_OVERHEAD: usize = std::mem::size_of::<Bytes>();
}

impl Client {
    /// Protocol version in use (2 or 3).
    pub fn proto(&self) -> i64 {
        if self.out.resp3 { 3 } else { 2 }
    }
}

/// What SAVE and BGSAVE share with the thread that writes a background save.
#[derive(Debug, Default)]
pub struct SaveState {
    /// Unix seconds of the last successful save (the start time until then), LASTSAVE.
    pub last_save: std::sync::atomic::AtomicI64,
    /// A BGSAVE is writing (`rdb_bgsave_in_progress`); at most one at a time.
    pub running: std::sync::atomic::AtomicBool,
    /// The last BGSAVE failed (`rdb_last_bgsave_status:err`).
    pub last_failed: std::sync::atomic::AtomicBool,
    /// BGSAVE inside EXEC: started by the writer task once the transaction is over.
    pub scheduled: std::sync::atomic::AtomicBool,
}

/// The wall clock in Unix seconds.
pub fn unix_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
