//! Command-line and file configuration of `speedlayer-server`.
//!
//! Each service contributes one flattened clap group ([`RespArgs`] for the Redis-protocol
//! service); [`ServerArgs`] is the top level. A TOML file given with `--config` fills in
//! whatever the flags leave unset: flags always win, then the file, then the built-in
//! defaults. This module only parses and merges; it does not start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser};
use serde::Deserialize;
use speedlayer_cluster::ClusterConfig;
use speedlayer_logging::LogFormat;

use crate::data_dir::{REGIONS_DIR, RESP_DIR};
use crate::error::ServerError;
use crate::region_server::RegionConfig;
use crate::resp::config::{AppendFsync, RespConfig};

/// Top-level flags of the `speedlayer-server` binary.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "speedlayer-server",
    version,
    about = "Speedlayer region server and TTL set service"
)]
pub struct ServerArgs {
    /// Data directory (default `./data`); each service keeps its files in a subdirectory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Run only the Redis-protocol service (for deployments that want it separate).
    #[arg(long)]
    pub only_resp: bool,

    /// TOML configuration file; flags given on the command line win over its values. Every
    /// key, commented: `config/server.toml`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Log lines on stderr: `text` (coloured only when stderr is a terminal) or `json` (one
    /// object per line, for log shippers). Set before the configuration file is read, so it
    /// is a flag (or `SPEEDLAYER_LOG_FORMAT`) only.
    #[arg(
        long,
        value_name = "text|json",
        value_enum,
        default_value_t = LogFormat::Text,
        env = "SPEEDLAYER_LOG_FORMAT"
    )]
    pub log_format: LogFormat,

    /// Options of the Redis-protocol TTL set service.
    #[command(flatten)]
    pub resp: RespArgs,

    /// Options of the region server (gRPC + HTTP).
    #[command(flatten)]
    pub grpc: GrpcArgs,

    /// Options of cluster mode (etcd).
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Declares one group of settings once: from each entry follow its flag (an `Option` field
/// of the clap group `$Args`), its key in the file's table (`$File`, unknown keys refused),
/// its default (read from the service's own default configuration, so it is stated in one
/// place and shown in `--help`), and how its value reaches the service configuration.
/// `apply` merges with the precedence flag > file > default.
macro_rules! settings {
    (
        $(#[$args_doc:meta])* args $Args:ident;
        $(#[$file_doc:meta])* file $File:ident;
        config $Cfg:ty = $defaults:expr;
        $(
            $field:ident : $ty:ty {
                flag: $flag:literal,
                key: $key:literal,
                value: $vname:literal,
                help: $help:literal,
                default: |$g:ident| $get:expr,
                apply: |$c:ident, $v:ident| $set:expr,
                samples: file $file_sample:literal, flag $flag_sample:literal $(,)?
            }
        )*
    ) => {
        $(#[$args_doc])*
        #[derive(Debug, Clone, Default, Args)]
        pub struct $Args {
            $(
                #[arg(
                    long = $flag,
                    value_name = $vname,
                    help = format!("{} (default `{}`)", $help, {
                        let defaults: $Cfg = $defaults;
                        let $g = &defaults;
                        ($get).to_string()
                    })
                )]
                pub $field: Option<$ty>,
            )*
        }

        $(#[$file_doc])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $File {
            $(
                #[doc = concat!("See `--", $flag, "`.")]
                #[serde(rename = $key)]
                pub $field: Option<$ty>,
            )*
        }

        impl $Args {
            /// The file keys of this group, in declaration order.
            pub const KEYS: &'static [&'static str] = &[$($key),*];

            /// Sets every value given by a flag, else by `file`, into `cfg` (which holds
            /// the defaults).
            ///
            /// # Errors
            /// [`ServerError::Config`] for a value out of its range.
            #[allow(unused_variables)]
            pub fn apply(&self, file: &$File, cfg: &mut $Cfg) -> Result<(), ServerError> {
                $(
                    if let Some($v) = self.$field.clone().or_else(|| file.$field.clone()) {
                        let $c = &mut *cfg;
                        $set;
                    }
                )*
                Ok(())
            }

            /// Each key with the value `cfg` holds for it, as `--help` shows defaults.
            #[allow(unused_variables)]
            pub fn describe(cfg: &$Cfg) -> Vec<(&'static str, String)> {
                vec![$(($key, {
                    let $g: &$Cfg = cfg;
                    format!("{}", $get)
                })),*]
            }

            /// For each key: (key, flag, a TOML value for the file, a different flag value),
            /// both unlike the default: what the precedence test feeds in.
            #[cfg(test)]
            fn samples() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
                vec![$(($key, $flag, $file_sample, $flag_sample)),*]
            }
        }
    };
}

const DEFAULT_RESP_ADDR: &str = "127.0.0.1:6380";

fn default_region() -> RegionConfig {
    RegionConfig::new(PathBuf::new())
}

fn default_resp() -> RespConfig {
    RespConfig::new(SocketAddr::from(([127, 0, 0, 1], 6380)), PathBuf::new())
}

/// `HOST:PORT`, or `none` / empty for no master.
fn parse_replicaof(v: &str) -> Result<Option<(String, u16)>, ServerError> {
    if v.is_empty() || v.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let bad = || out_of_range("replicaof", format!("{v:?} is not HOST:PORT or none"));
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok(Some((host.trim_matches(['[', ']']).to_owned(), port)))
}

fn out_of_range(what: &str, reason: String) -> ServerError {
    ServerError::Config {
        what: what.into(),
        reason,
    }
}

settings! {
    /// Flags of the region server: its gRPC and HTTP listeners and engine sizing.
    args GrpcArgs;
    /// The `[grpc]` table of the configuration file (the region server).
    file FileGrpc;
    config RegionConfig = default_region();

    grpc_addr: SocketAddr {
        flag: "grpc-addr", key: "addr", value: "ADDR",
        help: "gRPC listen address of the region server",
        default: |c| c.grpc_addr,
        apply: |c, v| c.grpc_addr = v,
        samples: file "\"127.0.0.1:7001\"", flag "127.0.0.1:7002",
    }
    http_addr: SocketAddr {
        flag: "http-addr", key: "http_addr", value: "ADDR",
        help: "HTTP listen address for /metrics, /health and the status page",
        default: |c| c.http_addr,
        apply: |c, v| c.http_addr = v,
        samples: file "\"127.0.0.1:7003\"", flag "127.0.0.1:7004",
    }
    grpc_max_message_bytes: usize {
        flag: "grpc-max-message-bytes", key: "max_message_bytes", value: "BYTES",
        help: "Largest gRPC request in bytes; larger ones are refused with OUT_OF_RANGE before decoding",
        default: |c| c.max_message_bytes,
        apply: |c, v| c.max_message_bytes = v,
        samples: file "1000", flag "2000",
    }
    memstore_flush_bytes: usize {
        flag: "memstore-flush-bytes", key: "memstore_flush_bytes", value: "BYTES",
        help: "A region's memstore is flushed at this size",
        default: |c| c.engine.memstore_flush_bytes,
        apply: |c, v| c.engine.memstore_flush_bytes = v,
        samples: file "1000", flag "2000",
    }
    region_split_bytes: u64 {
        flag: "region-split-bytes", key: "region_split_bytes", value: "BYTES",
        help: "A region splits at this size",
        default: |c| c.engine.region_split_bytes,
        apply: |c, v| c.engine.region_split_bytes = v,
        samples: file "1000", flag "2000",
    }
    split_check_millis: u64 {
        flag: "split-check-millis", key: "split_check_millis", value: "MILLIS",
        help: "How often regions are checked against the split size, in milliseconds",
        default: |c| c.split_check_interval.as_millis(),
        apply: |c, v| c.split_check_interval = Duration::from_millis(v.max(1)),
        samples: file "7", flag "9",
    }
    block_cache_bytes: usize {
        flag: "block-cache-bytes", key: "block_cache_bytes", value: "BYTES",
        help: "Shared block cache capacity",
        default: |c| c.engine.block_cache_bytes,
        apply: |c, v| c.engine.block_cache_bytes = v,
        samples: file "1000", flag "2000",
    }
    grpc_tls_cert: String {
        flag: "grpc-tls-cert", key: "tls_cert", value: "PEM|none",
        help: "TLS on the gRPC listener: its certificate chain (PEM); needs --grpc-tls-key. Clients then connect with https:// and the CA that signed it",
        default: |c| path_or_none(&c.tls_cert),
        apply: |c, v| c.tls_cert = (v != "none").then(|| PathBuf::from(v)),
        samples: file "\"/etc/a.pem\"", flag "/etc/b.pem",
    }
    grpc_tls_key: String {
        flag: "grpc-tls-key", key: "tls_key", value: "PEM|none",
        help: "The private key (PEM) of --grpc-tls-cert",
        default: |c| path_or_none(&c.tls_key),
        apply: |c, v| c.tls_key = (v != "none").then(|| PathBuf::from(v)),
        samples: file "\"/etc/a.key\"", flag "/etc/b.key",
    }
    grpc_token_file: String {
        flag: "grpc-token-file", key: "token_file", value: "FILE|none",
        help: "A file holding the bearer token every Admin and Data request must carry (authorization: Bearer <token>); others get UNAUTHENTICATED. Health checks stay open",
        default: |c| path_or_none(&c.token_file),
        apply: |c, v| c.token_file = (v != "none").then(|| PathBuf::from(v)),
        samples: file "\"/etc/token\"", flag "/etc/token2",
    }
}

fn path_or_none(p: &Option<PathBuf>) -> String {
    p.as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "none".to_owned())
}

settings! {
    /// Flags of the Redis-protocol TTL set service.
    args RespArgs;
    /// The `[resp]` table of the configuration file.
    file FileResp;
    config RespConfig = default_resp();

    resp_addr: String {
        flag: "resp-addr", key: "addr", value: "ADDR|off",
        help: "Listen address of the RESP service; `off` disables it",
        default: |c| DEFAULT_RESP_ADDR,
        // The address decides whether the service exists at all: `ServerArgs::resolve`.
        apply: |c, v| {
            let _ = (c, v);
        },
        samples: file "\"127.0.0.1:7005\"", flag "127.0.0.1:7006",
    }
    requirepass: String {
        flag: "requirepass", key: "requirepass", value: "PASSWORD",
        help: "Password required from clients (AUTH / HELLO AUTH); without one, protected mode refuses non-loopback clients",
        default: |c| c.requirepass.as_deref().unwrap_or("none"),
        apply: |c, v| c.requirepass = Some(v).filter(|p| !p.is_empty()),
        samples: file "\"from-file\"", flag "from-flag",
    }
    appendfsync: AppendFsync {
        flag: "appendfsync", key: "appendfsync", value: "always|everysec|no",
        help: "When the append-only file is fsynced: `always` (before each reply, loses nothing acknowledged), `everysec` (loses at most ~1 s on power loss) or `no`",
        default: |c| c.appendfsync.as_str(),
        apply: |c, v| c.appendfsync = v,
        samples: file "\"always\"", flag "no",
    }
    replicaof: String {
        flag: "replicaof", key: "replicaof", value: "HOST:PORT|none",
        help: "Start as a read-only replica of this master (a redis-server holding only sets, or another of ours; server/docs/replication.md); `none`: a master",
        default: |c| c.replicaof.as_ref().map_or("none".to_owned(), |(h, p)| format!("{h}:{p}")),
        apply: |c, v| c.replicaof = parse_replicaof(&v)?,
        samples: file "\"127.0.0.1:7010\"", flag "127.0.0.1:7011",
    }
    masterauth: String {
        flag: "masterauth", key: "masterauth", value: "PASSWORD",
        help: "Password our link to a master sends with AUTH before replicating (the master's requirepass); empty: none",
        default: |c| c.masterauth.clone().unwrap_or_default(),
        apply: |c, v| c.masterauth = Some(v).filter(|p| !p.is_empty()),
        samples: file "\"from-file\"", flag "from-flag",
    }
    masteruser: String {
        flag: "masteruser", key: "masteruser", value: "USER",
        help: "User our link to a master authenticates as (AUTH user masterauth); empty: AUTH with the password alone",
        default: |c| c.masteruser.clone().unwrap_or_default(),
        apply: |c, v| c.masteruser = Some(v).filter(|p| !p.is_empty()),
        samples: file "\"file-user\"", flag "flag-user",
    }
    replica_priority: u32 {
        flag: "replica-priority", key: "replica_priority", value: "N",
        help: "Sentinel promotes the replica with the lowest priority first, and never one with 0 (INFO's slave_priority)",
        default: |c| c.replica_priority,
        apply: |c, v| c.replica_priority = v,
        samples: file "7", flag "9",
    }
    maxclients: usize {
        flag: "maxclients", key: "maxclients", value: "N",
        help: "Maximum simultaneous clients; one more gets `-ERR max number of clients reached`",
        default: |c| c.maxclients,
        apply: |c, v| c.maxclients = v,
        samples: file "5", flag "9",
    }
    protected_mode: YesNo {
        flag: "protected-mode", key: "protected_mode", value: "yes|no",
        help: "Protected mode: with no password and a non-loopback bind address, refuse clients that do not come from loopback",
        default: |c| if c.protected_mode { "yes" } else { "no" },
        apply: |c, v| c.protected_mode = v == YesNo::Yes,
        samples: file "\"no\"", flag "yes",
    }
    auto_aof_rewrite_percentage: u64 {
        flag: "auto-aof-rewrite-percentage", key: "auto_aof_rewrite_percentage", value: "PERCENT",
        help: "Rewrite the append-only file when it grows by this percentage over its size after the last rewrite (0 disables automatic rewrites)",
        default: |c| c.auto_aof_rewrite_percentage,
        apply: |c, v| c.auto_aof_rewrite_percentage = v,
        samples: file "50", flag "70",
    }
    auto_aof_rewrite_min_size: u64 {
        flag: "auto-aof-rewrite-min-size", key: "auto_aof_rewrite_min_size", value: "BYTES",
        help: "Do not rewrite automatically below this AOF size in bytes",
        default: |c| c.auto_aof_rewrite_min_size,
        apply: |c, v| c.auto_aof_rewrite_min_size = v,
        samples: file "1000", flag "2000",
    }
    resp_threads: usize {
        flag: "resp-threads", key: "threads", value: "N",
        help: "Threads of the RESP service's own runtime (1: a single event loop, like Redis; more helps only with `--appendfsync always`)",
        default: |c| c.threads,
        apply: |c, v| {
            if v == 0 {
                return Err(out_of_range("resp threads", "must be at least 1".into()));
            }
            c.threads = v
        },
        samples: file "2", flag "3",
    }
    resp_busy_poll_us: u64 {
        flag: "resp-busy-poll-us", key: "busy_poll_us", value: "MICROS",
        help: "Microseconds the RESP event loop spins before it sleeps when idle (0 disables): a command arriving within the spin finds the loop awake, at the cost of at most this much CPU per idle moment",
        default: |c| c.busy_poll.as_micros(),
        apply: |c, v| {
            if v > MAX_BUSY_POLL_US {
                return Err(out_of_range(
                    "resp busy poll",
                    format!("{v} µs is more than the limit of {MAX_BUSY_POLL_US} µs"),
                ));
            }
            c.busy_poll = Duration::from_micros(v)
        },
        samples: file "25", flag "3",
    }
}

settings! {
    /// Flags of cluster mode: with `--etcd`, the server joins the cluster that etcd
    /// coordinates (`server/docs/cluster_design.md`); without it, it runs alone.
    args ClusterArgs;
    /// The `[cluster]` table of the configuration file.
    file FileCluster;
    config ClusterConfig = ClusterConfig::new(Vec::new());

    etcd: String {
        flag: "etcd", key: "etcd", value: "URL[,URL...]",
        help: "etcd client URLs (http:// or https://): join the cluster they coordinate; `none` runs alone",
        default: |c| if c.endpoints.is_empty() { "none".to_owned() } else { c.endpoints.join(",") },
        apply: |c, v| {
            c.endpoints = if v == "none" { Vec::new() } else { ClusterConfig::parse_endpoints(&v) }
        },
        samples: file "\"http://127.0.0.1:1\"", flag "http://127.0.0.1:2",
    }
    cluster: String {
        flag: "cluster", key: "name", value: "NAME",
        help: "Cluster name: the etcd key prefix `/speedlayer/NAME/`, so clusters can share an etcd",
        default: |c| c.name,
        apply: |c, v| c.name = v,
        samples: file "\"east\"", flag "west",
    }
    advertise_host: String {
        flag: "advertise-host", key: "advertise_host", value: "HOST",
        help: "Host name or address that other members and clients reach this server at, published in etcd with the listeners' ports",
        default: |c| c.advertise_host,
        apply: |c, v| c.advertise_host = v,
        samples: file "\"10.0.0.1\"", flag "10.0.0.2",
    }
    lease_ttl_secs: u64 {
        flag: "lease-ttl-secs", key: "lease_ttl_secs", value: "SECS",
        help: "TTL of this member's etcd lease, 2 to 3600: a dead server's regions move after at most this long, and a server cut off from etcd stops serving after two thirds of it",
        default: |c| c.lease_ttl.as_secs(),
        apply: |c, v| {
            if !(2..=3600).contains(&v) {
                return Err(out_of_range("lease TTL", format!("{v} s is not between 2 and 3600")));
            }
            c.lease_ttl = Duration::from_secs(v)
        },
        samples: file "3", flag "4",
    }
    storage_root: String {
        flag: "storage-root", key: "storage_root", value: "DIR",
        help: "Cluster mode: the directory every server of the cluster shares (one machine: any common directory; several: a shared POSIX file system); each region lives under DIR/<table>/<region>/",
        default: |c| c.storage_root.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".to_owned()),
        apply: |c, v| c.storage_root = (v != "none").then(|| PathBuf::from(v)),
        samples: file "\"/srv/a\"", flag "/srv/b",
    }
    etcd_ca: String {
        flag: "etcd-ca", key: "etcd_ca", value: "PEM|none",
        help: "The CA certificate that signed etcd's, for https:// etcd endpoints",
        default: |c| c.etcd_ca.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".to_owned()),
        apply: |c, v| c.etcd_ca = (v != "none").then(|| PathBuf::from(v)),
        samples: file "\"/etc/etcd-ca.pem\"", flag "/etc/etcd-ca2.pem",
    }
    balance: String {
        flag: "balance", key: "balance", value: "auto|manual",
        help: "While master: `auto` moves regions whenever the servers' region counts differ by more than one (a server joined or left); `manual` only on `speedlayer admin balance`",
        default: |c| if c.auto_balance { "auto".to_owned() } else { "manual".to_owned() },
        apply: |c, v| {
            c.auto_balance = match v.as_str() {
                "auto" => true,
                "manual" => false,
                other => return Err(out_of_range("balance", format!("{other:?} is neither auto nor manual"))),
            }
        },
        samples: file "\"manual\"", flag "auto",
    }
    balance_min_mb: u64 {
        flag: "balance-min-mb", key: "balance_min_mb", value: "MIB",
        help: "While balancing, also move regions by size when counts are even: only when one server holds more than twice the bytes of another and at least this many MiB more (region sizes are read from the storage root at most every 30 s)",
        default: |c| c.balance_min_bytes >> 20,
        apply: |c, v| {
            if !(1..=1 << 30).contains(&v) {
                return Err(out_of_range("balance_min_mb", format!("{v} MiB is not between 1 and 2^30")));
            }
            c.balance_min_bytes = v << 20
        },
        samples: file "512", flag "64",
    }
}

/// Upper bound of `--resp-busy-poll-us`: spinning longer than a millisecond only burns CPU.
const MAX_BUSY_POLL_US: u64 = 1000;

/// A `yes`/`no` flag value, as Redis spells booleans in its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum YesNo {
    /// Enabled.
    Yes,
    /// Disabled.
    No,
}

/// The TOML configuration file: top-level keys, then one table per service whose keys are
/// declared with their flags (above).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// See `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// See `--only-resp`.
    pub only_resp: Option<bool>,
    /// The `[resp]` table.
    #[serde(default)]
    pub resp: FileResp,
    /// The `[grpc]` table.
    #[serde(default)]
    pub grpc: FileGrpc,
    /// The `[cluster]` table.
    #[serde(default)]
    pub cluster: FileCluster,
}

/// The merged settings of the whole binary.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Root data directory.
    pub data_dir: PathBuf,
    /// Only the RESP service runs.
    pub only_resp: bool,
    /// The RESP service, `None` when disabled with `--resp-addr off`.
    pub resp: Option<RespConfig>,
    /// The region server, `None` with `--only-resp`.
    pub region: Option<RegionConfig>,
    /// Cluster mode's settings; the server runs alone when they name no etcd endpoint.
    pub cluster: ClusterConfig,
}

impl Settings {
    /// Refuses settings that parse but cannot start a server: cluster mode without a
    /// shared storage root.
    ///
    /// # Errors
    /// [`ServerError::Config`].
    pub fn check_startable(&self) -> Result<(), ServerError> {
        if self.cluster_mode().is_some() && self.cluster.storage_root.is_none() {
            return Err(out_of_range(
                "cluster mode",
                "--etcd needs --storage-root DIR, the directory every server shares".into(),
            ));
        }
        if let Some(r) = &self.region
            && r.tls_cert.is_some() != r.tls_key.is_some()
        {
            return Err(out_of_range(
                "gRPC TLS",
                "--grpc-tls-cert and --grpc-tls-key go together".into(),
            ));
        }
        Ok(())
    }

    /// The cluster to join, if any.
    pub fn cluster_mode(&self) -> Option<&ClusterConfig> {
        (!self.cluster.endpoints.is_empty()).then_some(&self.cluster)
    }
}

impl ServerArgs {
    /// Merges flags, the optional TOML file and defaults into [`Settings`].
    ///
    /// # Errors
    /// [`ServerError::Config`] when the file cannot be read or parsed, or a value is invalid.
    pub fn resolve(&self) -> Result<Settings, ServerError> {
        let file = match &self.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = self
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let only_resp = self.only_resp || file.only_resp.unwrap_or(false);
        let region = if only_resp {
            None
        } else {
            let mut cfg = RegionConfig::new(data_dir.join(REGIONS_DIR));
            self.grpc.apply(&file.grpc, &mut cfg)?;
            Some(cfg)
        };
        let addr_text = self
            .resp
            .resp_addr
            .clone()
            .or_else(|| file.resp.resp_addr.clone())
            .unwrap_or_else(|| DEFAULT_RESP_ADDR.to_owned());
        let resp = if addr_text.eq_ignore_ascii_case("off") {
            None
        } else {
            let addr: SocketAddr = addr_text.parse().map_err(|e| ServerError::Config {
                what: format!("resp address {addr_text:?}"),
                reason: format!("{e}"),
            })?;
            let mut cfg = RespConfig::new(addr, data_dir.join(RESP_DIR));
            self.resp.apply(&file.resp, &mut cfg)?;
            cfg.config_file = self.config.clone();
            Some(cfg)
        };
        let mut cluster = ClusterConfig::new(Vec::new());
        self.cluster.apply(&file.cluster, &mut cluster)?;
        if !cluster.endpoints.is_empty() {
            if only_resp {
                return Err(out_of_range(
                    "cluster mode",
                    "--etcd needs the region server; it cannot be combined with --only-resp".into(),
                ));
            }
            cluster
                .validate()
                .map_err(|e| out_of_range("cluster settings", e.to_string()))?;
        }
        Ok(Settings {
            data_dir,
            only_resp,
            resp,
            region,
            cluster,
        })
    }
}

fn load_file(path: &Path) -> Result<FileConfig, ServerError> {
    let text = std::fs::read_to_string(path).map_err(|e| ServerError::Config {
        what: format!("config file {}", path.display()),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ServerError::Config {
        what: format!("config file {}", path.display()),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every declared setting, through the real parser and loader: the default when
    /// neither is given, the file's value over the default, the flag's over the file's.
    #[test]
    fn every_setting_takes_flag_over_file_over_default() {
        let dir = tempfile::tempdir().unwrap();
        let resolve = |args: &[String]| {
            let mut all = vec!["speedlayer-server".to_string()];
            all.extend_from_slice(args);
            ServerArgs::try_parse_from(all).unwrap().resolve().unwrap()
        };
        let groups: [(&str, Vec<_>); 3] = [
            ("grpc", GrpcArgs::samples()),
            ("resp", RespArgs::samples()),
            ("cluster", ClusterArgs::samples()),
        ];
        let mut checked = 0;
        for (table, samples) in groups {
            for (key, flag, file_value, flag_value) in samples {
                let path = dir.path().join(format!("{table}-{key}.toml"));
                std::fs::write(&path, format!("[{table}]\n{key} = {file_value}\n")).unwrap();
                let config = ["--config".to_string(), path.display().to_string()];
                let flag = [format!("--{flag}"), flag_value.to_string()];
                let value = |s: &Settings| -> String {
                    let described = match table {
                        "grpc" => GrpcArgs::describe(s.region.as_ref().unwrap()),
                        "cluster" => ClusterArgs::describe(&s.cluster),
                        _ => match &s.resp {
                            Some(r) => RespArgs::describe(r),
                            None => return "off".into(),
                        },
                    };
                    let (_, v) = described.into_iter().find(|(k, _)| *k == key).unwrap();
                    if key == "addr" && table == "resp" {
                        return s.resp.as_ref().unwrap().addr.to_string();
                    }
                    v
                };
                let default = value(&resolve(&[]));
                let from_file = value(&resolve(&config));
                let from_flag = value(&resolve(&flag));
                let both = value(&resolve(&[config.clone(), flag.clone()].concat()));
                assert_ne!(
                    from_file, default,
                    "[{table}] {key}: the file's value is not used"
                );
                assert_ne!(from_flag, from_file, "[{table}] {key}: samples must differ");
                assert_eq!(
                    both, from_flag,
                    "[{table}] {key}: the flag does not win over the file"
                );
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            GrpcArgs::KEYS.len() + RespArgs::KEYS.len() + ClusterArgs::KEYS.len()
        );
    }

    /// `--help` states each default, read from the service's own default configuration.
    #[test]
    fn help_states_the_defaults_of_the_services() {
        use clap::CommandFactory;
        let help = ServerArgs::command().render_long_help().to_string();
        for line in [
            "(default `127.0.0.1:16020`)",
            "(default `127.0.0.1:6380`)",
            "(default `everysec`)",
            "(default `10000`)",
            "(default `none`)",
            "(default `6`)",
        ] {
            assert!(help.contains(line), "{line} missing from:\n{help}");
        }
    }

    #[test]
    fn grpc_flags_win_over_the_grpc_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "[grpc]\naddr = \"127.0.0.1:7001\"\nhttp_addr = \"127.0.0.1:7002\"\nregion_split_bytes = 1000\n",
        )
        .unwrap();
        let args = ServerArgs::parse_from([
            "speedlayer-server",
            "--config",
            path.to_str().unwrap(),
            "--grpc-addr",
            "127.0.0.1:0",
        ]);
        let g = args.resolve().unwrap().region.unwrap();
        assert_eq!(g.grpc_addr.port(), 0);
        assert_eq!(g.http_addr.port(), 7002);
        assert_eq!(g.engine.region_split_bytes, 1000);
        let only = ServerArgs::parse_from(["speedlayer-server", "--only-resp"]);
        assert!(only.resolve().unwrap().region.is_none());
    }

    #[test]
    fn flags_win_over_file_and_off_disables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "data_dir = \"/tmp/x\"\n[resp]\naddr = \"127.0.0.1:7000\"\nmaxclients = 5\nappendfsync = \"always\"\n",
        )
        .unwrap();
        let args = ServerArgs::parse_from([
            "speedlayer-server",
            "--config",
            path.to_str().unwrap(),
            "--maxclients",
            "9",
        ]);
        let s = args.resolve().unwrap();
        let r = s.resp.unwrap();
        assert_eq!(r.addr.port(), 7000);
        assert_eq!(r.maxclients, 9);
        assert_eq!(r.appendfsync, AppendFsync::Always);
        assert_eq!(r.dir, PathBuf::from("/tmp/x/resp"));

        let g = s.region.unwrap();
        assert_eq!(g.dir, PathBuf::from("/tmp/x/regions"));
        assert_eq!(g.grpc_addr.port(), 16020);

        let off = ServerArgs::parse_from(["speedlayer-server", "--resp-addr", "off"]);
        assert!(off.resolve().unwrap().resp.is_none());
    }

    #[test]
    fn busy_poll_defaults_to_10us_and_is_bounded() {
        let r = |args: &[&str]| {
            let mut all = vec!["speedlayer-server"];
            all.extend_from_slice(args);
            ServerArgs::parse_from(all).resolve()
        };
        let busy = |args: &[&str]| r(args).unwrap().resp.unwrap().busy_poll;
        assert_eq!(busy(&[]), std::time::Duration::from_micros(10));
        assert_eq!(
            busy(&["--resp-busy-poll-us", "0"]),
            std::time::Duration::ZERO
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[resp]\nbusy_poll_us = 25\n").unwrap();
        let file = path.to_str().unwrap();
        assert_eq!(
            busy(&["--config", file]),
            std::time::Duration::from_micros(25)
        );
        assert_eq!(
            busy(&["--config", file, "--resp-busy-poll-us", "3"]),
            std::time::Duration::from_micros(3)
        );
        let err = r(&["--resp-busy-poll-us", "5000"]).unwrap_err().to_string();
        assert!(err.contains("limit of 1000"), "{err}");
    }
}
