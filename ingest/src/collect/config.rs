//! The agent's TOML configuration: `[[pipeline]]` tables, each a source, interceptors, and
//! either one `channel` + `sink` (+ `dead_letter`) or several `[[pipeline.branch]]`es with a
//! `selector`. Parsing is strict (unknown keys are errors) and [`AgentConfig::validate`]
//! names the pipeline and key of every problem. Relative paths are resolved against the
//! configuration file's directory.
//!
//! ```toml
//! [agent]
//! http_addr = "127.0.0.1:9100"   # /metrics; default none
//!
//! [[pipeline]]
//! name = "driving"
//! source = { type = "tail", path = "logs/driving.log", position_file = "state/driving.pos" }
//! interceptors = [{ type = "validate", format = "driving" }]
//! channel = { type = "file", dir = "state/driving-channel", capacity_mb = 512 }
//! sink = { type = "kafka", brokers = "127.0.0.1:9092", topic = "SmartCar-Topic", key = "car_number" }
//! dead_letter = { type = "kafka", brokers = "127.0.0.1:9092", topic = "SmartCar-Topic.dlq" }
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};

/// The whole agent file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Agent-wide settings.
    #[serde(default)]
    pub agent: AgentSection,
    /// The pipelines.
    #[serde(default)]
    pub pipeline: Vec<PipelineConfig>,
}

/// `[agent]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSection {
    /// Address for `/metrics` (e.g. `127.0.0.1:9100`); none by default.
    pub http_addr: Option<String>,
    /// How long a clean stop waits for sinks to drain channels (default `30s`).
    pub drain_timeout: Option<String>,
}

/// One `[[pipeline]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Unique name (metrics label).
    pub name: String,
    /// The source.
    pub source: SourceConfig,
    /// Interceptors, in order.
    #[serde(default)]
    pub interceptors: Vec<InterceptorConfig>,
    /// Fan-out over branches (default replicating).
    pub selector: Option<SelectorConfig>,
    /// Single-branch form: the channel.
    pub channel: Option<ChannelConfig>,
    /// Single-branch form: the sink.
    pub sink: Option<SinkConfig>,
    /// Single-branch form: the dead-letter sink.
    pub dead_letter: Option<SinkConfig>,
    /// Multi-branch form.
    #[serde(default)]
    pub branch: Vec<BranchConfig>,
    /// Lines per source batch and events per sink take (default 2000).
    pub batch_size: Option<usize>,
}

/// One branch: a channel drained by a sink (and a dead-letter sink).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchConfig {
    /// Branch name (selector targets, metrics).
    pub name: String,
    /// Its channel.
    pub channel: ChannelConfig,
    /// Its sink.
    pub sink: SinkConfig,
    /// Its dead-letter sink.
    pub dead_letter: Option<SinkConfig>,
}

/// `source = { type = ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceConfig {
    /// Follow one file.
    Tail {
        /// The file.
        path: PathBuf,
        /// Checkpoint file.
        position_file: PathBuf,
        /// Idle poll interval (default `50ms`).
        poll_interval: Option<String>,
        /// After a rotation, how long the old file must have had no new bytes before it is
        /// closed and the new file read (default `1s`). Longer waits out writers that keep
        /// the old file open after the rename, at the cost of delaying the new file's lines
        /// by as much at every rotation; `0s` still reads the old file to its end once.
        rotation_quiet: Option<String>,
    },
    /// Pick up completed files from a directory.
    Spooldir {
        /// The directory.
        dir: PathBuf,
        /// Suffix for finished files (default `.done`).
        done_suffix: Option<String>,
        /// Regex of file names to ignore.
        ignore_pattern: Option<String>,
        /// Idle scan interval (default `200ms`).
        poll_interval: Option<String>,
    },
}

/// One interceptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InterceptorConfig {
    /// Keep (or with `exclude = true`, drop) lines matching `regex`.
    Filter {
        /// Pattern.
        regex: String,
        /// Drop matches instead.
        #[serde(default)]
        exclude: bool,
    },
    /// Collection time header (default name `timestamp`).
    Timestamp {
        /// Header name.
        header: Option<String>,
    },
    /// Host name header (default name `host`, value from `HOSTNAME`/`/etc/hostname`).
    Host {
        /// Header name.
        header: Option<String>,
        /// Fixed value.
        value: Option<String>,
    },
    /// Regex capture group 1 into a header.
    Extract {
        /// Pattern with one group.
        regex: String,
        /// Header name.
        header: String,
    },
    /// SPEC §1 validation: `driving` or `status`.
    Validate {
        /// The format.
        format: String,
    },
}

/// `selector = { type = ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SelectorConfig {
    /// Every event to every branch. (A struct variant, not a unit one: serde lets a unit
    /// variant of a tagged enum ignore unknown keys, and this parser refuses them.)
    Replicating {},
    /// By header value.
    Multiplexing {
        /// Header consulted.
        header: String,
        /// Value → branch names.
        #[serde(default)]
        mapping: BTreeMap<String, Vec<String>>,
        /// Branch names for other values.
        default: Vec<String>,
    },
}

/// `channel = { type = ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ChannelConfig {
    /// Bounded in-memory queue.
    Memory {
        /// Capacity in events.
        capacity: usize,
    },
    /// Durable segment files.
    File {
        /// Directory.
        dir: PathBuf,
        /// Bound on disk in MiB.
        capacity_mb: u64,
        /// `put` (default), `never`, or an interval like `1s`.
        fsync: Option<String>,
        /// Segment size in MiB (default a quarter of the capacity, ≤ 64).
        segment_mb: Option<u64>,
    },
}

/// `sink = { type = ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// Kafka producer.
    Kafka {
        /// Bootstrap servers.
        brokers: String,
        /// Topic.
        topic: String,
        /// `car_number` (default) or `none`.
        key: Option<String>,
        /// Extra librdkafka properties.
        #[serde(default)]
        properties: BTreeMap<String, String>,
    },
    /// stdout. (A struct variant so that unknown keys are refused, as for every type.)
    Logger {},
    /// Rolled files.
    FileRoll {
        /// Directory.
        dir: PathBuf,
        /// Roll size in MiB (default 128).
        roll_size_mb: Option<u64>,
        /// Roll interval (default `1h`).
        roll_interval: Option<String>,
    },
    /// Rolled files, each bulk-loaded into a table once complete, then deleted.
    Bulkload {
        /// Directory of the files (and of `<file>.bad` dead letters).
        dir: PathBuf,
        /// Region server gRPC address, e.g. `http://127.0.0.1:16020`.
        server: String,
        /// Table loaded (e.g. `car_status`).
        table: String,
        /// Line format: `status` (default) or `csv` (needs `columns`).
        format: Option<String>,
        /// For `csv`: what each field is (`:key`, `:ts`, `-`, `FAMILY:QUALIFIER`).
        columns: Option<String>,
        /// Roll size in MiB (default 128).
        roll_size_mb: Option<u64>,
        /// Roll interval (default `1m`): how long a line may wait before it is loaded.
        roll_interval: Option<String>,
        /// The loader's sort budget in MiB (default 256).
        memory_mb: Option<usize>,
    },
}

/// Parses a duration like `50ms`, `1h`, `30s`.
///
/// # Errors
/// [`Error::Config`] naming `what`.
pub fn duration(what: &str, s: &str) -> Result<Duration> {
    humantime::parse_duration(s).map_err(|e| Error::Config {
        path: PathBuf::from("<config>"),
        reason: format!("{what}: {s:?} is not a duration ({e})"),
    })
}

impl AgentConfig {
    /// Reads, parses, resolves relative paths against the file's directory, and validates.
    ///
    /// # Errors
    /// [`Error::Io`] if unreadable, [`Error::Config`] with the problem.
    pub fn load(path: &Path) -> Result<AgentConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = Self::parse(&text).map_err(|e| match e {
            Error::Config { reason, .. } => Error::Config {
                path: path.to_owned(),
                reason,
            },
            other => other,
        })?;
        cfg.resolve(base);
        Ok(cfg)
    }

    /// Parses and validates TOML text (paths left as written).
    ///
    /// # Errors
    /// [`Error::Config`] with the problem.
    pub fn parse(text: &str) -> Result<AgentConfig> {
        let cfg: AgentConfig = toml::from_str(text).map_err(|e| Error::Config {
            path: PathBuf::from("<inline>"),
            reason: e.to_string(),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        for p in &mut self.pipeline {
            match &mut p.source {
                SourceConfig::Tail {
                    path,
                    position_file,
                    ..
                } => {
                    fix(path);
                    fix(position_file);
                }
                SourceConfig::Spooldir { dir, .. } => fix(dir),
            }
            let chans = p
                .channel
                .iter_mut()
                .chain(p.branch.iter_mut().map(|b| &mut b.channel));
            for c in chans {
                if let ChannelConfig::File { dir, .. } = c {
                    fix(dir);
                }
            }
            let sinks = p.sink.iter_mut().chain(p.dead_letter.iter_mut()).chain(
                p.branch
                    .iter_mut()
                    .flat_map(|b| std::iter::once(&mut b.sink).chain(b.dead_letter.iter_mut())),
            );
            for s in sinks {
                if let SinkConfig::FileRoll { dir, .. } | SinkConfig::Bulkload { dir, .. } = s {
                    fix(dir);
                }
            }
        }
    }

    /// The branches of pipeline `p` in the multi-branch form (the single form becomes one
    /// branch named `main`).
    pub fn branches(p: &PipelineConfig) -> Vec<BranchConfig> {
        match (&p.channel, &p.sink) {
            (Some(c), Some(s)) => vec![BranchConfig {
                name: "main".into(),
                channel: c.clone(),
                sink: s.clone(),
                dead_letter: p.dead_letter.clone(),
            }],
            _ => p.branch.clone(),
        }
    }

    /// Checks what serde cannot: names, forms, values, cross references.
    ///
    /// # Errors
    /// [`Error::Config`] naming the pipeline and key.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::Config {
                path: PathBuf::from("<inline>"),
                reason,
            })
        };
        if self.pipeline.is_empty() {
            return bad("no [[pipeline]] defined".into());
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.pipeline {
            let n = &p.name;
            if n.is_empty() || !names.insert(n.clone()) {
                return bad(format!("pipeline name {n:?} is empty or used twice"));
            }
            if let SourceConfig::Tail {
                poll_interval,
                rotation_quiet,
                ..
            } = &p.source
            {
                for (key, v) in [
                    ("poll_interval", poll_interval),
                    ("rotation_quiet", rotation_quiet),
                ] {
                    if let Some(v) = v {
                        duration(&format!("pipeline {n}: source.{key}"), v)?;
                    }
                }
            }
            let single = p.channel.is_some() || p.sink.is_some() || p.dead_letter.is_some();
            match (single, p.branch.is_empty()) {
                (true, false) => {
                    return bad(format!(
                        "pipeline {n}: use either channel/sink/dead_letter or [[pipeline.branch]], not both"
                    ));
                }
                (false, true) => return bad(format!("pipeline {n}: no channel and sink")),
                (true, true) if p.channel.is_none() || p.sink.is_none() => {
                    return bad(format!("pipeline {n}: both channel and sink are required"));
                }
                _ => {}
            }
            let branches = Self::branches(p);
            let validates = p
                .interceptors
                .iter()
                .any(|i| matches!(i, InterceptorConfig::Validate { .. }));
            for b in &branches {
                if validates && b.dead_letter.is_none() {
                    return bad(format!(
                        "pipeline {n}, branch {}: a validate interceptor needs a dead_letter sink (bad lines are never dropped)",
                        b.name
                    ));
                }
                match &b.channel {
                    ChannelConfig::Memory { capacity: 0 } => {
                        return bad(format!("pipeline {n}: channel.capacity must be > 0"));
                    }
                    ChannelConfig::File {
                        capacity_mb, fsync, ..
                    } => {
                        if *capacity_mb == 0 {
                            return bad(format!("pipeline {n}: channel.capacity_mb must be > 0"));
                        }
                        if let Some(f) = fsync
                            && f != "put"
                            && f != "never"
                        {
                            duration(&format!("pipeline {n}: channel.fsync"), f)?;
                        }
                    }
                    ChannelConfig::Memory { .. } => {}
                }
                for s in std::iter::once(&b.sink).chain(b.dead_letter.iter()) {
                    match s {
                        SinkConfig::Kafka { key: Some(k), .. }
                            if k != "car_number" && k != "none" =>
                        {
                            return bad(format!(
                                "pipeline {n}: sink.key must be \"car_number\" or \"none\", got {k:?}"
                            ));
                        }
                        SinkConfig::FileRoll {
                            roll_interval: Some(r),
                            ..
                        } => {
                            duration(&format!("pipeline {n}: sink.roll_interval"), r)?;
                        }
                        _ => {}
                    }
                }
            }
            for i in &p.interceptors {
                match i {
                    InterceptorConfig::Filter { regex, .. }
                    | InterceptorConfig::Extract { regex, .. } => {
                        if let Err(e) = regex::bytes::Regex::new(regex) {
                            return bad(format!("pipeline {n}: interceptor regex {regex:?}: {e}"));
                        }
                    }
                    InterceptorConfig::Validate { format }
                        if format != "driving" && format != "status" =>
                    {
                        return bad(format!(
                            "pipeline {n}: validate.format must be \"driving\" or \"status\", got {format:?}"
                        ));
                    }
                    _ => {}
                }
            }
            if let Some(SelectorConfig::Multiplexing {
                mapping, default, ..
            }) = &p.selector
            {
                if default.is_empty() {
                    return bad(format!("pipeline {n}: selector.default must name a branch"));
                }
                for t in mapping.values().flatten().chain(default) {
                    if !branches.iter().any(|b| &b.name == t) {
                        return bad(format!("pipeline {n}: selector names unknown branch {t:?}"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[[pipeline]]
name = "driving"
source = { type = "tail", path = "logs/driving.log", position_file = "state/driving.pos" }
interceptors = [{ type = "validate", format = "driving" }]
channel = { type = "file", dir = "state/driving-channel", capacity_mb = 512 }
sink = { type = "kafka", brokers = "127.0.0.1:9092", topic = "SmartCar-Topic", key = "car_number" }
dead_letter = { type = "kafka", brokers = "127.0.0.1:9092", topic = "SmartCar-Topic.dlq" }

[[pipeline]]
name = "status"
source = { type = "spooldir", dir = "spool/status", done_suffix = ".done" }
channel = { type = "memory", capacity = 10000 }
sink = { type = "file_roll", dir = "archive/status", roll_size_mb = 128, roll_interval = "1h" }
"#;

    #[test]
    fn parses_the_issue_example() {
        let c = AgentConfig::parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.pipeline.len(), 2);
        assert!(matches!(c.pipeline[0].source, SourceConfig::Tail { .. }));
        assert_eq!(AgentConfig::branches(&c.pipeline[1])[0].name, "main");
    }

    #[test]
    fn refuses_with_precise_messages() {
        let no_dlq = ISSUE_EXAMPLE.replace(
            "dead_letter = { type = \"kafka\", brokers = \"127.0.0.1:9092\", topic = \"SmartCar-Topic.dlq\" }",
            "",
        );
        let e = AgentConfig::parse(&no_dlq).unwrap_err().to_string();
        assert!(
            e.contains("pipeline driving, branch main: a validate interceptor needs a dead_letter"),
            "{e}"
        );
        let typo = ISSUE_EXAMPLE.replace("capacity_mb", "capacity_gb");
        let e = AgentConfig::parse(&typo).unwrap_err().to_string();
        assert!(e.contains("capacity_gb"), "{e}");
        let bad_fmt = ISSUE_EXAMPLE.replace("format = \"driving\"", "format = \"xml\"");
        assert!(
            AgentConfig::parse(&bad_fmt)
                .unwrap_err()
                .to_string()
                .contains("validate.format")
        );
        let bad_quiet = ISSUE_EXAMPLE.replace(
            "position_file = \"state/driving.pos\"",
            "position_file = \"state/driving.pos\", rotation_quiet = \"a while\"",
        );
        let e = AgentConfig::parse(&bad_quiet).unwrap_err().to_string();
        assert!(e.contains("pipeline driving: source.rotation_quiet"), "{e}");
        let bad_dur = ISSUE_EXAMPLE.replace("\"1h\"", "\"soon\"");
        assert!(
            AgentConfig::parse(&bad_dur)
                .unwrap_err()
                .to_string()
                .contains("roll_interval")
        );
    }

    #[test]
    fn branches_and_selector_references() {
        let t = r#"
[[pipeline]]
name = "p"
source = { type = "spooldir", dir = "s" }
interceptors = [{ type = "extract", regex = "^[0-9]{14},([A-Z])", header = "class" }]
selector = { type = "multiplexing", header = "class", mapping = { V = ["a"] }, default = ["b"] }
[[pipeline.branch]]
name = "a"
channel = { type = "memory", capacity = 10 }
sink = { type = "logger" }
[[pipeline.branch]]
name = "b"
channel = { type = "memory", capacity = 10 }
sink = { type = "logger" }
"#;
        assert_eq!(
            AgentConfig::branches(&AgentConfig::parse(t).unwrap().pipeline[0]).len(),
            2
        );
        let e = AgentConfig::parse(&t.replace("[\"b\"]", "[\"zz\"]")).unwrap_err();
        assert!(e.to_string().contains("unknown branch \"zz\""));
    }

    #[test]
    fn types_without_keys_still_refuse_unknown_keys() {
        let base = "[[pipeline]]\nname = \"p\"\nsource = { type = \"spooldir\", dir = \"s\" }\n";
        let ok = format!(
            "{base}selector = {{ type = \"replicating\" }}\n[[pipeline.branch]]\nname = \"a\"\n\
             channel = {{ type = \"memory\", capacity = 10 }}\nsink = {{ type = \"logger\" }}\n"
        );
        AgentConfig::parse(&ok).unwrap();
        for typo in [
            ok.replace("\"replicating\"", "\"replicating\", mode = \"all\""),
            ok.replace("\"logger\"", "\"logger\", path = \"x\""),
        ] {
            let e = AgentConfig::parse(&typo).unwrap_err().to_string();
            assert!(e.contains("unknown field"), "{e}");
        }
    }
}
