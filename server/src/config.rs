//! Command-line and file configuration of `speedlayer-server`.
//!
//! Each service contributes one flattened clap group ([`RespArgs`] for the Redis-protocol
//! service); [`ServerArgs`] is the top level. A TOML file given with `--config` fills in
//! whatever the flags leave unset: flags always win, then the file, then the built-in
//! defaults. This module only parses and merges; it does not start anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Args, Parser};
use serde::Deserialize;
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
}

/// Flags of the region server: its gRPC and HTTP listeners and engine sizing.
#[derive(Debug, Clone, Default, Args)]
pub struct GrpcArgs {
    /// gRPC listen address of the region server (default `127.0.0.1:16020`).
    #[arg(long, value_name = "ADDR")]
    pub grpc_addr: Option<SocketAddr>,

    /// HTTP listen address for `/metrics`, `/health` and the status page (default
    /// `127.0.0.1:16030`).
    #[arg(long, value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,

    /// Largest gRPC request in bytes (default 64 MiB); larger ones are refused with
    /// OUT_OF_RANGE before decoding.
    #[arg(long, value_name = "BYTES")]
    pub grpc_max_message_bytes: Option<usize>,

    /// A region's memstore is flushed at this size (default 64 MiB).
    #[arg(long, value_name = "BYTES")]
    pub memstore_flush_bytes: Option<usize>,

    /// A region splits at this size (default 1 GiB).
    #[arg(long, value_name = "BYTES")]
    pub region_split_bytes: Option<u64>,

    /// How often regions are checked against the split size, in milliseconds (default 1000).
    #[arg(long, value_name = "MILLIS")]
    pub split_check_millis: Option<u64>,

    /// Shared block cache capacity (default 256 MiB).
    #[arg(long, value_name = "BYTES")]
    pub block_cache_bytes: Option<usize>,
}

/// Flags of the Redis-protocol TTL set service.
#[derive(Debug, Clone, Default, Args)]
pub struct RespArgs {
    /// Listen address of the RESP service (default `127.0.0.1:6380`); `off` disables it.
    #[arg(long, value_name = "ADDR|off")]
    pub resp_addr: Option<String>,

    /// Password required from clients (AUTH / HELLO AUTH). Unset: no password, and
    /// protected mode refuses non-loopback clients.
    #[arg(long, value_name = "PASSWORD")]
    pub requirepass: Option<String>,

    /// When the append-only file is fsynced: `always` (before each reply, slowest, loses
    /// nothing acknowledged), `everysec` (default, loses at most ~1 s on power loss) or `no`.
    #[arg(long, value_name = "always|everysec|no")]
    pub appendfsync: Option<AppendFsync>,

    /// Maximum simultaneous clients (default 10000); one more gets
    /// `-ERR max number of clients reached`.
    #[arg(long, value_name = "N")]
    pub maxclients: Option<usize>,

    /// Protected mode (default `yes`): with no password and a non-loopback bind address,
    /// refuse clients that do not come from loopback.
    #[arg(long, value_name = "yes|no")]
    pub protected_mode: Option<YesNo>,

    /// Rewrite the append-only file when it grows by this percentage over its size after the
    /// last rewrite (default 100; 0 disables automatic rewrites).
    #[arg(long, value_name = "PERCENT")]
    pub auto_aof_rewrite_percentage: Option<u64>,

    /// Do not rewrite automatically below this AOF size in bytes (default 64 MiB).
    #[arg(long, value_name = "BYTES")]
    pub auto_aof_rewrite_min_size: Option<u64>,

    /// Threads of the RESP service's own runtime (default 1: a single event loop, like
    /// Redis; more helps only with `--appendfsync always`).
    #[arg(long, value_name = "N")]
    pub resp_threads: Option<usize>,

    /// Microseconds the RESP event loop spins before it sleeps when idle (default 10; 0
    /// disables). A client's next command arriving within the spin finds the loop awake,
    /// so neither side pays a wake-up; the cost is at most this much CPU per idle moment.
    #[arg(long, value_name = "MICROS")]
    pub resp_busy_poll_us: Option<u64>,
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

/// The TOML configuration file: the same names as the flags, with `_` instead of `-`.
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
}

/// The `[grpc]` table of the configuration file (the region server).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileGrpc {
    /// See `--grpc-addr`.
    pub addr: Option<SocketAddr>,
    /// See `--http-addr`.
    pub http_addr: Option<SocketAddr>,
    /// See `--grpc-max-message-bytes`.
    pub max_message_bytes: Option<usize>,
    /// See `--memstore-flush-bytes`.
    pub memstore_flush_bytes: Option<usize>,
    /// See `--region-split-bytes`.
    pub region_split_bytes: Option<u64>,
    /// See `--split-check-millis`.
    pub split_check_millis: Option<u64>,
    /// See `--block-cache-bytes`.
    pub block_cache_bytes: Option<usize>,
}

/// The `[resp]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileResp {
    /// See `--resp-addr`.
    pub addr: Option<String>,
    /// See `--requirepass`.
    pub requirepass: Option<String>,
    /// See `--appendfsync`.
    pub appendfsync: Option<AppendFsync>,
    /// See `--maxclients`.
    pub maxclients: Option<usize>,
    /// See `--protected-mode`.
    pub protected_mode: Option<YesNo>,
    /// See `--auto-aof-rewrite-percentage`.
    pub auto_aof_rewrite_percentage: Option<u64>,
    /// See `--auto-aof-rewrite-min-size`.
    pub auto_aof_rewrite_min_size: Option<u64>,
    /// See `--resp-threads`.
    pub threads: Option<usize>,
    /// See `--resp-busy-poll-us`.
    pub busy_poll_us: Option<u64>,
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
            let (a, f) = (&self.grpc, &file.grpc);
            let mut cfg = RegionConfig::new(data_dir.join(REGIONS_DIR));
            if let Some(v) = a.grpc_addr.or(f.addr) {
                cfg.grpc_addr = v;
            }
            if let Some(v) = a.http_addr.or(f.http_addr) {
                cfg.http_addr = v;
            }
            if let Some(v) = a.grpc_max_message_bytes.or(f.max_message_bytes) {
                cfg.max_message_bytes = v;
            }
            if let Some(v) = a.memstore_flush_bytes.or(f.memstore_flush_bytes) {
                cfg.engine.memstore_flush_bytes = v;
            }
            if let Some(v) = a.region_split_bytes.or(f.region_split_bytes) {
                cfg.engine.region_split_bytes = v;
            }
            if let Some(v) = a.split_check_millis.or(f.split_check_millis) {
                cfg.split_check_interval = std::time::Duration::from_millis(v.max(1));
            }
            if let Some(v) = a.block_cache_bytes.or(f.block_cache_bytes) {
                cfg.engine.block_cache_bytes = v;
            }
            Some(cfg)
        };
        let f = file.resp;
        let a = &self.resp;
        let addr_text = a
            .resp_addr
            .clone()
            .or(f.addr)
            .unwrap_or_else(|| "127.0.0.1:6380".to_owned());
        let resp = if addr_text.eq_ignore_ascii_case("off") {
            None
        } else {
            let addr: SocketAddr = addr_text.parse().map_err(|e| ServerError::Config {
                what: format!("resp address {addr_text:?}"),
                reason: format!("{e}"),
            })?;
            let mut cfg = RespConfig::new(addr, data_dir.join(RESP_DIR));
            cfg.requirepass = a
                .requirepass
                .clone()
                .or(f.requirepass)
                .filter(|p| !p.is_empty());
            if let Some(v) = a.appendfsync.or(f.appendfsync) {
                cfg.appendfsync = v;
            }
            if let Some(v) = a.maxclients.or(f.maxclients) {
                cfg.maxclients = v;
            }
            if let Some(v) = a.protected_mode.or(f.protected_mode) {
                cfg.protected_mode = v == YesNo::Yes;
            }
            if let Some(v) = a
                .auto_aof_rewrite_percentage
                .or(f.auto_aof_rewrite_percentage)
            {
                cfg.auto_aof_rewrite_percentage = v;
            }
            if let Some(v) = a.auto_aof_rewrite_min_size.or(f.auto_aof_rewrite_min_size) {
                cfg.auto_aof_rewrite_min_size = v;
            }
            if let Some(v) = a.resp_threads.or(f.threads) {
                if v == 0 {
                    return Err(ServerError::Config {
                        what: "resp threads".into(),
                        reason: "must be at least 1".into(),
                    });
                }
                cfg.threads = v;
            }
            if let Some(v) = a.resp_busy_poll_us.or(f.busy_poll_us) {
                if v > MAX_BUSY_POLL_US {
                    return Err(ServerError::Config {
                        what: "resp busy poll".into(),
                        reason: format!("{v} µs is more than the limit of {MAX_BUSY_POLL_US} µs"),
                    });
                }
                cfg.busy_poll = std::time::Duration::from_micros(v);
            }
            Some(cfg)
        };
        Ok(Settings {
            data_dir,
            only_resp,
            resp,
            region,
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
