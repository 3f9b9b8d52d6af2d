//! The worker's settings: command-line flags, an optional TOML file, and defaults.
//!
//! Flags (relied on by scripts and the acceptance suite):
//! `speedlayer-ingest worker --brokers HOST:PORT --topic T --group G --server URL
//! --resp HOST:PORT --rules FILE --http-addr ADDR`. `--config FILE` reads the same keys
//! from TOML (`brokers = "..."`, `http_addr = "..."`...); a flag overrides the file.
//! `config/worker.toml` documents every key and its default.
//!
//! **Topics.** One worker serves one or more topics ([`TopicConfig`]): each has its
//! parser (`driving` or `status`), its table, its dead-letter topic and whether the rule
//! engine sees its events (rules act on driving events only). Without a `topics` list the
//! issue-6 form applies: the single driving topic of `topic`/`dlq_topic` into `driving`,
//! with rules. With one, `topic` and `dlq_topic` (flag or file) are refused, so no setting
//! is silently ignored.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// How a topic's records are parsed, and so which rows they become.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Parser {
    /// SPEC §1 driving events: `driving`-style rows, the rule engine may observe them.
    Driving,
    /// SPEC §1 car status events: `car_status` rows (`speedlayer-events`' `status_row`).
    Status,
}

impl Parser {
    /// The default table of the parser's rows.
    pub fn default_table(self) -> &'static str {
        match self {
            Parser::Driving => super::rows::DRIVING_TABLE,
            Parser::Status => speedlayer_events::status_row::STATUS_TABLE,
        }
    }
}

/// One consumed topic: where its records go and what sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicConfig {
    /// The Kafka topic.
    pub name: String,
    /// Its record format.
    pub parser: Parser,
    /// The table its rows are stored in (created with family `cf1` if missing).
    pub table: String,
    /// Its dead-letter topic (default `<name>.dlq`).
    pub dlq_topic: String,
    /// Whether the rule engine observes its events (only for `driving`).
    pub rules: bool,
    /// The family TTL the table is created with when the worker creates it; `None`:
    /// cells are kept forever. An existing table keeps its own schema.
    pub ttl: Option<Duration>,
}

impl TopicConfig {
    /// The issue-6 driving topic: `driving` table, `<name>.dlq`, rules on, no TTL.
    pub fn driving(name: &str) -> TopicConfig {
        TopicConfig {
            name: name.into(),
            parser: Parser::Driving,
            table: Parser::Driving.default_table().into(),
            dlq_topic: format!("{name}.dlq"),
            rules: true,
            ttl: None,
        }
    }

    /// A status topic: `car_status` table, `<name>.dlq`, no rules, family TTL `ttl`.
    pub fn status(name: &str, ttl: Option<Duration>) -> TopicConfig {
        TopicConfig {
            name: name.into(),
            parser: Parser::Status,
            table: Parser::Status.default_table().into(),
            dlq_topic: format!("{name}.dlq"),
            rules: false,
            ttl,
        }
    }
}

/// One entry of the file's `topics` list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileTopic {
    name: String,
    parser: Parser,
    table: Option<String>,
    dlq_topic: Option<String>,
    rules: Option<bool>,
    ttl: Option<String>,
}

impl FileTopic {
    fn resolve(self) -> Result<TopicConfig> {
        let bad = |reason: String| Error::Config {
            path: "<worker config>".into(),
            reason: format!("topics: `{}`: {reason}", self.name),
        };
        if self.name.is_empty() {
            return Err(bad("`name` is empty".into()));
        }
        let rules = self.rules.unwrap_or(self.parser == Parser::Driving);
        if rules && self.parser != Parser::Driving {
            return Err(bad(
                "`rules = true` needs `parser = \"driving\"` (the rules act on driving events)"
                    .into(),
            ));
        }
        let ttl = match self.ttl.as_deref() {
            None | Some("") => None,
            Some(v) => Some(duration("ttl", v)?),
        };
        Ok(TopicConfig {
            table: self
                .table
                .clone()
                .unwrap_or_else(|| self.parser.default_table().into()),
            dlq_topic: self
                .dlq_topic
                .clone()
                .unwrap_or_else(|| format!("{}.dlq", self.name)),
            name: self.name,
            parser: self.parser,
            rules,
            ttl,
        })
    }
}

/// The `worker` subcommand's flags; every one may instead come from `--config`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct WorkerArgs {
    /// Kafka bootstrap servers, `HOST:PORT[,HOST:PORT]`, e.g. `127.0.0.1:9092`.
    #[arg(long)]
    pub brokers: Option<String>,
    /// Driving topic (default `SmartCar-Topic`): the single-topic form; several topics,
    /// each with its parser and table, are a `topics` list in `--config`.
    #[arg(long)]
    pub topic: Option<String>,
    /// Consumer group (default `speedlayer-ingest`).
    #[arg(long)]
    pub group: Option<String>,
    /// Region server URL, e.g. `http://127.0.0.1:16020` (the server's default gRPC port);
    /// `mem://NAME` keeps rows in memory (demos only, nothing durable).
    #[arg(long)]
    pub server: Option<String>,
    /// TTL set service (RESP) address, `HOST:PORT`, e.g. `127.0.0.1:6380` (the server's
    /// default RESP port).
    #[arg(long)]
    pub resp: Option<String>,
    /// CA certificate (PEM) of the region server's TLS, for an `https://` `--server`.
    #[arg(long)]
    pub server_tls_ca: Option<PathBuf>,
    /// File holding the region server's bearer token (`--grpc-token-file` on the server).
    #[arg(long)]
    pub server_token_file: Option<PathBuf>,
    /// Rule file (watched and reloaded; default `config/rules.toml`).
    #[arg(long)]
    pub rules: Option<PathBuf>,
    /// Address of the `/metrics` endpoint (default `127.0.0.1:0`).
    #[arg(long)]
    pub http_addr: Option<String>,
    /// Dead-letter topic (default `<topic>.dlq`).
    #[arg(long)]
    pub dlq_topic: Option<String>,
    /// Processing time after which a silent partition is idle, e.g. `10s`.
    #[arg(long)]
    pub idle_flush: Option<String>,
    /// TOML file with the same keys as the flags, plus tuning keys (every key, commented:
    /// `config/worker.toml`).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    brokers: Option<String>,
    topic: Option<String>,
    group: Option<String>,
    server: Option<String>,
    resp: Option<String>,
    server_tls_ca: Option<PathBuf>,
    server_token_file: Option<PathBuf>,
    rules: Option<PathBuf>,
    http_addr: Option<String>,
    dlq_topic: Option<String>,
    idle_flush: Option<String>,
    topics: Option<Vec<FileTopic>>,
    batch_max_events: Option<usize>,
    batch_max_bytes: Option<usize>,
    batch_linger: Option<String>,
    commit_interval: Option<String>,
    backoff_max: Option<String>,
    resp_timeout: Option<String>,
}

/// The resolved worker configuration.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Kafka bootstrap servers.
    pub brokers: String,
    /// The topics consumed, each with its parser, table, dead-letter topic and rules
    /// (default: the one driving topic `SmartCar-Topic`).
    pub topics: Vec<TopicConfig>,
    /// Consumer group.
    pub group: String,
    /// Region server URL.
    pub server: String,
    /// RESP address.
    pub resp: String,
    /// CA certificate of the region server's TLS.
    pub server_tls_ca: Option<PathBuf>,
    /// File holding the region server's bearer token.
    pub server_token_file: Option<PathBuf>,
    /// Rule file.
    pub rules: PathBuf,
    /// `/metrics` address.
    pub http_addr: String,
    /// Idle timeout of partitions (default 10 s).
    pub idle_flush: Duration,
    /// Batch bound by events (default 5000): a store put never carries more.
    pub batch_max_events: usize,
    /// Batch bound by bytes of payload (default 4 MiB).
    pub batch_max_bytes: usize,
    /// Longest wait for a batch's first record (default 50 ms); after it, a batch takes
    /// only the records already received, up to the event and byte bounds.
    pub batch_linger: Duration,
    /// Shortest time between two offset commits (default 250 ms; each commit first stores
    /// the rule checkpoint with `sync`). Bounds the extra replay after a crash, not the
    /// latency of results: rows and sets are written every batch.
    pub commit_interval: Duration,
    /// Cap of the exponential backoff while the store or RESP is down (default 5 s).
    pub backoff_max: Duration,
    /// Longest wait for the TTL set service to answer one pipeline of firings (default
    /// 5 s; the `redis` crate's own default of 500 ms is shorter than an `appendfsync
    /// always` server can take under load). A timeout is a failure the worker retries.
    pub resp_timeout: Duration,
    /// How often the rule file is checked (1 s).
    pub rules_poll: Duration,
}

fn duration(field: &str, v: &str) -> Result<Duration> {
    humantime::parse_duration(v).map_err(|e| Error::Config {
        path: "<worker config>".into(),
        reason: format!("`{field}`: `{v}` is not a duration ({e})"),
    })
}

impl WorkerConfig {
    /// Defaults for everything but the addresses.
    pub fn new(brokers: &str, server: &str, resp: &str, rules: &Path) -> WorkerConfig {
        WorkerConfig {
            brokers: brokers.into(),
            topics: vec![TopicConfig::driving("SmartCar-Topic")],
            group: "speedlayer-ingest".into(),
            server: server.into(),
            resp: resp.into(),
            server_tls_ca: None,
            server_token_file: None,
            rules: rules.into(),
            http_addr: "127.0.0.1:0".into(),
            idle_flush: Duration::from_secs(10),
            batch_max_events: 5000,
            batch_max_bytes: 4 << 20,
            batch_linger: Duration::from_millis(50),
            commit_interval: Duration::from_millis(250),
            backoff_max: Duration::from_secs(5),
            resp_timeout: Duration::from_secs(5),
            rules_poll: Duration::from_secs(1),
        }
    }

    /// Resolves flags over the `--config` file over defaults.
    ///
    /// # Errors
    /// [`Error::Config`] if the file is unreadable or invalid, or a required setting
    /// (`brokers`, `server`, `resp`) is missing.
    pub fn resolve(args: &WorkerArgs) -> Result<WorkerConfig> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| Error::io("read worker config", path, e))?;
                toml::from_str::<FileConfig>(&text).map_err(|e| Error::Config {
                    path: path.clone(),
                    reason: e.to_string(),
                })?
            }
            None => FileConfig::default(),
        };
        let cfg_path = args.config.clone().unwrap_or_else(|| "<flags>".into());
        let required = |flag: &Option<String>, file: &Option<String>, name: &str| {
            flag.clone()
                .or_else(|| file.clone())
                .ok_or_else(|| Error::Config {
                    path: cfg_path.clone(),
                    reason: format!("--{name} is required (flag or `{name}` in --config)"),
                })
        };
        let brokers = required(&args.brokers, &file.brokers, "brokers")?;
        let server = required(&args.server, &file.server, "server")?;
        let resp = required(&args.resp, &file.resp, "resp")?;
        let rules = args
            .rules
            .clone()
            .or(file.rules)
            .unwrap_or_else(|| "config/rules.toml".into());
        let mut c = WorkerConfig::new(&brokers, &server, &resp, &rules);
        let single_topic = args.topic.is_some()
            || file.topic.is_some()
            || args.dlq_topic.is_some()
            || file.dlq_topic.is_some();
        match file.topics {
            Some(list) if !list.is_empty() => {
                if single_topic {
                    return Err(Error::Config {
                        path: cfg_path.clone(),
                        reason: "`topic`/`dlq_topic` describe the single-topic form; with a \
                                 `topics` list give each entry its `name` and `dlq_topic`"
                            .into(),
                    });
                }
                c.topics = list
                    .into_iter()
                    .map(FileTopic::resolve)
                    .collect::<Result<_>>()?;
                let mut names: Vec<&str> = c.topics.iter().map(|t| t.name.as_str()).collect();
                names.sort_unstable();
                if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                    return Err(Error::Config {
                        path: cfg_path.clone(),
                        reason: format!("topics: `{}` is listed twice", w[0]),
                    });
                }
            }
            _ => {
                let name = args
                    .topic
                    .clone()
                    .or(file.topic)
                    .unwrap_or_else(|| "SmartCar-Topic".into());
                let mut t = TopicConfig::driving(&name);
                if let Some(d) = args.dlq_topic.clone().or(file.dlq_topic) {
                    t.dlq_topic = d;
                }
                c.topics = vec![t];
            }
        }
        let set = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        c.server_tls_ca = set(args.server_tls_ca.clone().or(file.server_tls_ca));
        c.server_token_file = set(args.server_token_file.clone().or(file.server_token_file));
        if let Some(g) = args.group.clone().or(file.group) {
            c.group = g;
        }
        if let Some(a) = args.http_addr.clone().or(file.http_addr) {
            c.http_addr = a;
        }
        if let Some(v) = args.idle_flush.clone().or(file.idle_flush) {
            c.idle_flush = duration("idle_flush", &v)?;
        }
        if let Some(v) = file.batch_linger {
            c.batch_linger = duration("batch_linger", &v)?;
        }
        if let Some(v) = file.commit_interval {
            c.commit_interval = duration("commit_interval", &v)?;
        }
        if let Some(v) = file.backoff_max {
            c.backoff_max = duration("backoff_max", &v)?;
        }
        if let Some(v) = file.resp_timeout {
            c.resp_timeout = duration("resp_timeout", &v)?;
        }
        if let Some(n) = file.batch_max_events {
            c.batch_max_events = n.max(1);
        }
        if let Some(n) = file.batch_max_bytes {
            c.batch_max_bytes = n.max(1);
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            "brokers = \"127.0.0.1:1\"\nserver = \"http://s\"\nresp = \"127.0.0.1:2\"\n\
             topic = \"T\"\nbatch_linger = \"20ms\"\nresp_timeout = \"2s\"\n",
        )
        .unwrap();
        let args = WorkerArgs {
            brokers: Some("127.0.0.1:9".into()),
            config: Some(path),
            ..WorkerArgs::default()
        };
        let c = WorkerConfig::resolve(&args).unwrap();
        assert_eq!(c.brokers, "127.0.0.1:9");
        assert_eq!(c.topics, vec![TopicConfig::driving("T")]);
        assert_eq!(c.topics[0].dlq_topic, "T.dlq");
        assert_eq!(c.group, "speedlayer-ingest");
        assert_eq!(c.batch_linger, Duration::from_millis(20));
        assert_eq!(c.resp_timeout, Duration::from_secs(2));
        assert_eq!(c.backoff_max, Duration::from_secs(5), "default");
        let e = WorkerConfig::resolve(&WorkerArgs::default()).unwrap_err();
        assert!(e.to_string().contains("--brokers is required"), "{e}");
    }

    fn load(text: &str) -> Result<WorkerConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("worker.toml");
        std::fs::write(
            &path,
            format!("brokers = \"b:1\"\nserver = \"http://s\"\nresp = \"r:2\"\n{text}"),
        )
        .unwrap();
        WorkerConfig::resolve(&WorkerArgs {
            config: Some(path),
            ..WorkerArgs::default()
        })
    }

    #[test]
    fn a_topics_list_maps_each_topic_to_its_parser_table_dlq_and_rules() {
        let c = load(
            "topics = [\n\
             { name = \"D\", parser = \"driving\" },\n\
             { name = \"S\", parser = \"status\", ttl = \"30days\", dlq_topic = \"S-bad\" },\n\
             { name = \"D2\", parser = \"driving\", table = \"driving2\", rules = false },\n]\n",
        )
        .unwrap();
        assert_eq!(
            c.topics,
            vec![
                TopicConfig::driving("D"),
                TopicConfig {
                    dlq_topic: "S-bad".into(),
                    ..TopicConfig::status("S", Some(Duration::from_secs(30 * 86_400)))
                },
                TopicConfig {
                    table: "driving2".into(),
                    rules: false,
                    ..TopicConfig::driving("D2")
                },
            ]
        );
        assert_eq!(c.topics[1].table, "car_status");
        // An empty list is the single-topic form.
        let c = load("topics = []\ntopic = \"X\"\n").unwrap();
        assert_eq!(c.topics, vec![TopicConfig::driving("X")]);
    }

    #[test]
    fn contradictory_topic_settings_are_refused_with_the_reason() {
        let cases = [
            (
                "topic = \"T\"\ntopics = [{ name = \"S\", parser = \"status\" }]\n",
                "single-topic form",
            ),
            (
                "topics = [{ name = \"S\", parser = \"status\", rules = true }]\n",
                "rules act on driving events",
            ),
            (
                "topics = [{ name = \"S\", parser = \"status\" }, { name = \"S\", parser = \"driving\" }]\n",
                "listed twice",
            ),
            (
                "topics = [{ name = \"S\", parser = \"csv\" }]\n",
                "unknown variant",
            ),
            (
                "topics = [{ name = \"S\", parser = \"status\", ttl = \"soon\" }]\n",
                "not a duration",
            ),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
