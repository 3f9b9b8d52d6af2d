//! Resolved settings of the Redis-protocol service (after flags, file and defaults).
//!
//! This is plain data handed to [`crate::resp::server::RespServer`]; parsing flags lives in
//! `crate::config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::Deserialize;
use speedlayer_vfs::SharedFs;

/// When the append-only file is fsynced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum AppendFsync {
    /// fsync before every reply that follows a write: nothing acknowledged is ever lost.
    Always,
    /// write continuously, fsync once a second (the default, as in Redis).
    Everysec,
    /// write continuously, let the OS decide when to flush.
    No,
}

impl AppendFsync {
    /// The Redis spelling (`always`, `everysec`, `no`).
    pub fn as_str(self) -> &'static str {
        match self {
            AppendFsync::Always => "always",
            AppendFsync::Everysec => "everysec",
            AppendFsync::No => "no",
        }
    }
}

impl FromStr for AppendFsync {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "always" => Ok(AppendFsync::Always),
            "everysec" => Ok(AppendFsync::Everysec),
            "no" => Ok(AppendFsync::No),
            other => Err(format!("unknown appendfsync policy {other:?}")),
        }
    }
}

/// Protocol and buffer bounds. Defaults are Redis 7's.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted bulk string (`proto-max-bulk-len`, default 512 MiB).
    pub proto_max_bulk_len: usize,
    /// Largest accepted multibulk (array) length (default `i32::MAX`, as Redis 7: requests
    /// are bounded by [`Limits::query_buffer_limit`] instead).
    pub max_multibulk_len: usize,
    /// Longest inline command line and longest length header (default 64 KiB).
    pub inline_max: usize,
    /// Per-client query buffer bound (`client-query-buffer-limit`, default 1 GiB).
    pub query_buffer_limit: usize,
    /// Per-client output buffer bound: a client whose pending replies exceed it is
    /// disconnected (default 256 MiB).
    pub output_buffer_limit: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            proto_max_bulk_len: 512 * 1024 * 1024,
            max_multibulk_len: i32::MAX as usize,
            inline_max: 64 * 1024,
            query_buffer_limit: 1024 * 1024 * 1024,
            output_buffer_limit: 256 * 1024 * 1024,
        }
    }
}

/// Everything the RESP service needs to run.
#[derive(Debug, Clone)]
pub struct RespConfig {
    /// Listen address (`127.0.0.1:0` picks a free port).
    pub addr: SocketAddr,
    /// Directory of `appendonly.aof` and `dump.snap`.
    pub dir: PathBuf,
    /// Password (`requirepass`); `None` means no authentication.
    pub requirepass: Option<String>,
    /// AOF fsync policy (default everysec).
    pub appendfsync: AppendFsync,
    /// Maximum simultaneous clients (default 10000).
    pub maxclients: usize,
    /// Protected mode (default on).
    pub protected_mode: bool,
    /// AOF growth percentage that triggers a rewrite (default 100; 0 disables).
    pub auto_aof_rewrite_percentage: u64,
    /// Minimum AOF size for an automatic rewrite (default 64 MiB).
    pub auto_aof_rewrite_min_size: u64,
    /// Active expiry cycles per second (Redis `hz`, default 10).
    pub hz: u32,
    /// Threads of the service's own runtime when started by the binary (default 1: one
    /// event loop, like Redis; see [`super::runtime`]).
    pub threads: usize,
    /// How long the event loop spins before it sleeps when it has nothing to do (default
    /// 10 µs; zero disables; see [`super::runtime`]).
    pub busy_poll: std::time::Duration,
    /// Protocol bounds.
    pub limits: Limits,
    /// Start as a replica of this master (`replicaof`, default none: a master).
    pub replicaof: Option<(String, u16)>,
    /// Password for our link to a master (`masterauth`, default none).
    pub masterauth: Option<String>,
    /// User for our link to a master (`masteruser`, default none: `AUTH <password>`).
    pub masteruser: Option<String>,
    /// `replica-priority` reported to Sentinel (default 100; 0: never promoted).
    pub replica_priority: u32,
    /// The TOML file the server was started with (`--config`): what CONFIG REWRITE
    /// rewrites; `None` refuses it, as Redis without a config file.
    pub config_file: Option<PathBuf>,
    /// The file system the AOF and the snapshot are written through (default the real
    /// one; tests pass a fault-injecting one to cut power or fill the disk).
    pub fs: SharedFs,
}

impl RespConfig {
    /// Defaults for a listener on `addr` persisting into `dir`.
    pub fn new(addr: SocketAddr, dir: PathBuf) -> Self {
        RespConfig {
            addr,
            dir,
            requirepass: None,
            appendfsync: AppendFsync::Everysec,
            maxclients: 10_000,
            protected_mode: true,
            auto_aof_rewrite_percentage: 100,
            auto_aof_rewrite_min_size: 64 * 1024 * 1024,
            hz: 10,
            threads: 1,
            busy_poll: std::time::Duration::from_micros(10),
            limits: Limits::default(),
            replicaof: None,
            masterauth: None,
            masteruser: None,
            replica_priority: 100,
            config_file: None,
            fs: speedlayer_vfs::real(),
        }
    }
}
