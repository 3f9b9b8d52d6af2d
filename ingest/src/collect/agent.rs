//! The agent: builds every pipeline of an [`AgentConfig`] and runs it on threads — one per
//! source, one sink runner per branch — with per-component metrics.
//!
//! A clean stop ([`AgentHandle::stop`]) stops the sources (they save their positions), lets
//! the sink runners drain the channels for up to `drain_timeout`, then closes the sinks.
//! What a memory channel still holds after that (or at a crash) is lost — it is not durable,
//! and a spooldir file is marked done once its lines are in the channel — so pipelines that
//! must survive kill -9 use the file channel.
//! Nothing here is async: sources and sinks block on files, channels and delivery reports.
//!
//! A full disk is backpressure, not loss: a channel put that fails with
//! [`Error::NoSpace`] is retried with the same events (the source does not advance) until
//! space returns or the agent stops, and a commit that fails so is retried the same way;
//! both are counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use speedlayer_vfs::SharedFs;

use super::Event;
use super::channel::Channel;
use super::channel::file::{FileChannel, FileChannelOptions, FsyncPolicy};
use super::channel::memory::MemoryChannel;
use super::config::{
    AgentConfig, BranchConfig, ChannelConfig, InterceptorConfig, PipelineConfig, SelectorConfig,
    SinkConfig, SourceConfig, duration,
};
use super::interceptor::{Interceptor, apply_chain};
use super::selector::Selector;
use super::sink::Sink;
use super::sink::bulkload::{BulkLoadSink, BulkLoadSinkOptions};
use super::sink::file_roll::{FileRollOptions, FileRollSink};
use super::sink::kafka::{KafkaSink, KafkaSinkOptions, KeyMode};
use super::sink::logger::LoggerSink;
use super::source::Source;
use super::source::spooldir::{SpoolDirSource, SpoolOptions};
use super::source::tail::{TailOptions, TailSource};
use crate::error::{Error, Result};
use crate::event::Format;
use crate::metrics::{Counter, LATENCY_BUCKETS, Registry};

const DEFAULT_BATCH: usize = 2000;

struct Flags {
    stop_sources: AtomicBool,
    draining: AtomicBool,
    hard_stop: AtomicBool,
}

/// A running agent.
pub struct AgentHandle {
    flags: Arc<Flags>,
    sources: Vec<(String, JoinHandle<Result<()>>)>,
    sinks: Vec<(String, JoinHandle<Result<()>>)>,
    channels: Vec<Arc<dyn Channel>>,
    drain_timeout: Duration,
}

fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn build_interceptor(c: &InterceptorConfig) -> Result<Interceptor> {
    let re = |r: &str| {
        regex::bytes::Regex::new(r).map_err(|e| Error::Config {
            path: "<config>".into(),
            reason: format!("regex {r:?}: {e}"),
        })
    };
    Ok(match c {
        InterceptorConfig::Filter { regex, exclude } => Interceptor::Filter {
            regex: re(regex)?,
            exclude: *exclude,
        },
        InterceptorConfig::Timestamp { header } => Interceptor::Timestamp {
            header: header.clone().unwrap_or_else(|| "timestamp".into()),
        },
        InterceptorConfig::Host { header, value } => Interceptor::Host {
            header: header.clone().unwrap_or_else(|| "host".into()),
            value: value.clone().unwrap_or_else(hostname),
        },
        InterceptorConfig::Extract { regex, header } => Interceptor::Extract {
            regex: re(regex)?,
            header: header.clone(),
        },
        InterceptorConfig::Validate { format } => Interceptor::Validate {
            format: if format == "status" {
                Format::Status
            } else {
                Format::Driving
            },
        },
    })
}

fn build_channel(pipeline: &str, b: &BranchConfig, fs: &SharedFs) -> Result<Arc<dyn Channel>> {
    let name = format!("{pipeline}.{}", b.name);
    Ok(match &b.channel {
        ChannelConfig::Memory { capacity } => Arc::new(MemoryChannel::new(&name, *capacity)),
        ChannelConfig::File {
            dir,
            capacity_mb,
            fsync,
            segment_mb,
        } => {
            let mut o = FileChannelOptions::with_capacity_mb(*capacity_mb);
            o.fs = fs.clone();
            if let Some(s) = segment_mb {
                o.segment_bytes = s.max(&1) * 1024 * 1024;
            }
            o.fsync = match fsync.as_deref() {
                None | Some("put") => FsyncPolicy::EveryPut,
                Some("never") => FsyncPolicy::Never,
                Some(d) => FsyncPolicy::Interval(duration("channel.fsync", d)?),
            };
            Arc::new(FileChannel::open(&name, dir, o)?)
        }
    })
}

fn build_sink(name: &str, c: &SinkConfig, fs: &SharedFs) -> Result<Box<dyn Sink>> {
    Ok(match c {
        SinkConfig::Kafka {
            brokers,
            topic,
            key,
            properties,
        } => Box::new(KafkaSink::new(
            name,
            KafkaSinkOptions {
                brokers: brokers.clone(),
                topic: topic.clone(),
                key: if key.as_deref() == Some("none") {
                    KeyMode::None
                } else {
                    KeyMode::CarNumber
                },
                delivery_timeout: Duration::from_secs(60),
                properties: properties
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            },
        )?),
        SinkConfig::Logger {} => Box::new(LoggerSink::new(name)),
        SinkConfig::FileRoll {
            dir,
            roll_size_mb,
            roll_interval,
        } => Box::new(FileRollSink::new(
            name,
            FileRollOptions {
                dir: dir.clone(),
                roll_size: roll_size_mb.unwrap_or(128).max(1) * 1024 * 1024,
                roll_interval: duration(
                    "sink.roll_interval",
                    roll_interval.as_deref().unwrap_or("1h"),
                )?,
                fs: fs.clone(),
            },
        )?),
        SinkConfig::Bulkload {
            dir,
            server,
            table,
            format,
            columns,
            roll_size_mb,
            roll_interval,
            memory_mb,
        } => {
            use speedlayer_client::bulk::{CsvMapping, LineFormat, LoadOptions};
            let bad = |reason: String| Error::Config {
                path: std::path::PathBuf::from("<config>"),
                reason,
            };
            let format = match (format.as_deref().unwrap_or("status"), columns) {
                ("status", None) => LineFormat::Status,
                ("csv", Some(c)) => LineFormat::Csv(
                    CsvMapping::parse(c, b',').map_err(|e| bad(format!("sink.columns: {e}")))?,
                ),
                (f, c) => {
                    return Err(bad(format!(
                        "sink.format {f:?} with columns {c:?}: use \"status\", or \"csv\" with columns"
                    )));
                }
            };
            let mut load = LoadOptions::new(format);
            load.memory_budget = memory_mb.unwrap_or(256).max(1) << 20;
            load.spill_dir = dir.join(".spill");
            Box::new(BulkLoadSink::new(
                name,
                BulkLoadSinkOptions {
                    roll: FileRollOptions {
                        dir: dir.clone(),
                        roll_size: roll_size_mb.unwrap_or(128).max(1) * 1024 * 1024,
                        roll_interval: duration(
                            "sink.roll_interval",
                            roll_interval.as_deref().unwrap_or("1m"),
                        )?,
                        fs: fs.clone(),
                    },
                    server: server.clone(),
                    table: table.clone(),
                    load,
                },
            )?)
        }
    })
}

fn build_source(
    p: &PipelineConfig,
    reg: &Registry,
    batch: usize,
    fs: &SharedFs,
) -> Result<Box<dyn Source>> {
    let l = [("pipeline", p.name.as_str())];
    Ok(match &p.source {
        SourceConfig::Tail {
            path,
            position_file,
            poll_interval,
            rotation_quiet,
        } => {
            if let Some(d) = position_file.parent().filter(|d| !d.as_os_str().is_empty()) {
                speedlayer_vfs::durable::create_dir_synced(&**fs, d)?;
            }
            Box::new(TailSource::new(
                TailOptions {
                    path: path.clone(),
                    position_file: position_file.clone(),
                    batch_lines: batch,
                    poll_interval: duration(
                        "source.poll_interval",
                        poll_interval.as_deref().unwrap_or("50ms"),
                    )?,
                    rotation_quiet: duration(
                        "source.rotation_quiet",
                        rotation_quiet.as_deref().unwrap_or("1s"),
                    )?,
                    fs: fs.clone(),
                },
                reg.gauge(
                    "speedlayer_collect_source_lag_bytes",
                    "Bytes between the tail position and the end of the file.",
                    &l,
                ),
            ))
        }
        SourceConfig::Spooldir {
            dir,
            done_suffix,
            ignore_pattern,
            poll_interval,
        } => Box::new(SpoolDirSource::new(
            SpoolOptions {
                dir: dir.clone(),
                done_suffix: done_suffix.clone().unwrap_or_else(|| ".done".into()),
                ignore_pattern: ignore_pattern
                    .as_deref()
                    .map(regex::Regex::new)
                    .transpose()
                    .map_err(|e| Error::Config {
                        path: "<config>".into(),
                        reason: format!("pipeline {}: ignore_pattern: {e}", p.name),
                    })?,
                batch_lines: batch,
                poll_interval: duration(
                    "source.poll_interval",
                    poll_interval.as_deref().unwrap_or("200ms"),
                )?,
                fs: fs.clone(),
            },
            reg.counter(
                "speedlayer_collect_spool_refused_total",
                "Spool files refused (changed while read).",
                &l,
            ),
            reg.counter(
                "speedlayer_collect_spool_files_done_total",
                "Spool files fully sent and marked done.",
                &l,
            ),
        )),
    })
}

/// Starts every pipeline of `cfg`, registering metrics in `reg`, on the real file system.
///
/// # Errors
/// Building a channel, sink or source failed (bad path, Kafka config); nothing is left
/// running in that case.
pub fn start(cfg: &AgentConfig, reg: &Arc<Registry>) -> Result<AgentHandle> {
    start_with_fs(cfg, reg, speedlayer_vfs::real())
}

/// [`start`] with every durable file (file channels, tail positions, spooldir done-renames,
/// file_roll output) going through `fs`: tests pass a fault-injecting one.
///
/// # Errors
/// As [`start`].
pub fn start_with_fs(cfg: &AgentConfig, reg: &Arc<Registry>, fs: SharedFs) -> Result<AgentHandle> {
    let flags = Arc::new(Flags {
        stop_sources: AtomicBool::new(false),
        draining: AtomicBool::new(false),
        hard_stop: AtomicBool::new(false),
    });
    let drain_timeout = duration(
        "agent.drain_timeout",
        cfg.agent.drain_timeout.as_deref().unwrap_or("30s"),
    )?;
    let mut handle = AgentHandle {
        flags: flags.clone(),
        sources: Vec::new(),
        sinks: Vec::new(),
        channels: Vec::new(),
        drain_timeout,
    };
    // Build everything first so a config error starts nothing.
    let mut built = Vec::new();
    for p in &cfg.pipeline {
        let batch = p.batch_size.unwrap_or(DEFAULT_BATCH).max(1);
        let branches = AgentConfig::branches(p);
        let chain = p
            .interceptors
            .iter()
            .map(build_interceptor)
            .collect::<Result<Vec<_>>>()?;
        let selector = match &p.selector {
            None | Some(SelectorConfig::Replicating {}) => Selector::Replicating {
                branches: branches.len(),
            },
            Some(SelectorConfig::Multiplexing {
                header,
                mapping,
                default,
            }) => {
                let idx = |names: &Vec<String>| {
                    names
                        .iter()
                        .filter_map(|n| branches.iter().position(|b| &b.name == n))
                        .collect::<Vec<_>>()
                };
                Selector::Multiplexing {
                    header: header.clone(),
                    mapping: mapping.iter().map(|(k, v)| (k.clone(), idx(v))).collect(),
                    default: idx(default),
                    branches: branches.len(),
                }
            }
        };
        let mut chans = Vec::new();
        let mut sinks = Vec::new();
        for b in &branches {
            chans.push(build_channel(&p.name, b, &fs)?);
            let sink = build_sink(&format!("{}.{}", p.name, b.name), &b.sink, &fs)?;
            let dlq = b
                .dead_letter
                .as_ref()
                .map(|d| build_sink(&format!("{}.{}.dead_letter", p.name, b.name), d, &fs))
                .transpose()?;
            sinks.push((b.name.clone(), sink, dlq));
        }
        let source = build_source(p, reg, batch, &fs)?;
        built.push((p.name.clone(), batch, chain, selector, chans, sinks, source));
    }
    for (name, batch, chain, selector, chans, sinks, mut source) in built {
        for ((bname, sink, dlq), chan) in sinks.into_iter().zip(&chans) {
            handle.channels.push(chan.clone());
            let (chan, flags, reg) = (chan.clone(), flags.clone(), reg.clone());
            let pname = name.clone();
            let label = format!("{name}.{bname}");
            let t = std::thread::Builder::new()
                .name(format!("sink-{label}"))
                .spawn(move || run_sink(&pname, &bname, chan, sink, dlq, batch, &flags, &reg))
                .map_err(|e| Error::io("spawn", "sink thread", e))?;
            handle.sinks.push((label, t));
        }
        let l = [("pipeline", name.as_str())];
        let events_in = reg.counter(
            "speedlayer_collect_events_in_total",
            "Lines read by the source.",
            &l,
        );
        let filtered = reg.counter(
            "speedlayer_collect_filtered_total",
            "Lines dropped by filter interceptors.",
            &l,
        );
        let dead = reg.counter(
            "speedlayer_collect_dead_letters_total",
            "Lines marked bad by the validator (sent to the dead-letter sink).",
            &l,
        );
        let no_space = reg.counter(
            "speedlayer_collect_channel_put_no_space_total",
            "Channel puts refused for lack of disk space (retried with the same events).",
            &l,
        );
        let fills: Vec<_> = chans
            .iter()
            .map(|c| {
                reg.gauge(
                    "speedlayer_collect_channel_events",
                    "Events in the channel (including an outstanding take).",
                    &[("pipeline", name.as_str()), ("channel", c.name())],
                )
            })
            .collect();
        let flags2 = flags.clone();
        let t = std::thread::Builder::new()
            .name(format!("source-{name}"))
            .spawn(move || {
                let mut emit = |lines: Vec<Vec<u8>>| -> Result<()> {
                    events_in.add(lines.len() as u64);
                    let now = chrono::Utc::now().timestamp_millis();
                    let events: Vec<Event> = lines.into_iter().map(Event::new).collect();
                    let (kept, dropped) = apply_chain(&chain, events, now);
                    filtered.add(dropped as u64);
                    dead.add(kept.iter().filter(|e| e.dead_letter.is_some()).count() as u64);
                    for (i, evs) in selector.route(kept).into_iter().enumerate() {
                        if !evs.is_empty() {
                            put_retrying(&*chans[i], evs, &flags2, &no_space)?;
                            fills[i].set(chans[i].len() as i64);
                        }
                    }
                    Ok(())
                };
                source.run(&mut emit, &flags2.stop_sources)
            })
            .map_err(|e| Error::io("spawn", "source thread", e))?;
        handle.sources.push((name, t));
    }
    Ok(handle)
}

/// Puts `events` into `chan`, waiting out a full disk: an [`Error::NoSpace`] is counted
/// and the same events are put again after a backoff, until they are stored or the agent
/// stops (then the error is returned and the source does not advance).
fn put_retrying(
    chan: &dyn Channel,
    events: Vec<Event>,
    flags: &Flags,
    no_space: &Counter,
) -> Result<()> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match chan.put(events.clone()) {
            Err(e) if e.is_no_space() && !flags.stop_sources.load(Ordering::Relaxed) => {
                no_space.inc();
                tracing::warn!(channel = chan.name(), error = %e, retry_in = ?backoff, "disk full; holding the batch");
                std::thread::sleep(backoff); // waiting for disk space: no event to wait on
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

/// Commits the outstanding take of `chan`, retrying while the disk is full (the events are
/// delivered; only the checkpoint is missing).
fn commit_retrying(chan: &dyn Channel, flags: &Flags, no_space: &Counter) -> Result<()> {
    let mut backoff = Duration::from_millis(50);
    loop {
        match chan.commit() {
            Err(e) if e.is_no_space() && !flags.hard_stop.load(Ordering::Relaxed) => {
                no_space.inc();
                tracing::warn!(channel = chan.name(), error = %e, retry_in = ?backoff, "disk full; commit retried");
                std::thread::sleep(backoff); // waiting for disk space: no event to wait on
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            r => return r,
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run_sink(
    pipeline: &str,
    branch: &str,
    chan: Arc<dyn Channel>,
    mut sink: Box<dyn Sink>,
    mut dlq: Option<Box<dyn Sink>>,
    batch: usize,
    flags: &Flags,
    reg: &Registry,
) -> Result<()> {
    let l = [("pipeline", pipeline), ("branch", branch)];
    let out = reg.counter(
        "speedlayer_collect_events_out_total",
        "Events delivered by the sink (committed).",
        &l,
    );
    let dl_out = reg.counter(
        "speedlayer_collect_dead_letters_out_total",
        "Dead letters delivered to the dead-letter sink.",
        &l,
    );
    let errors = reg.counter(
        "speedlayer_collect_sink_errors_total",
        "Failed sink deliveries (rolled back and retried).",
        &l,
    );
    let fill = reg.gauge(
        "speedlayer_collect_channel_events",
        "Events in the channel (including an outstanding take).",
        &[("pipeline", pipeline), ("channel", chan.name())],
    );
    let lat = reg.histogram(
        "speedlayer_collect_sink_batch_seconds",
        "Time to deliver one batch.",
        &l,
        LATENCY_BUCKETS,
    );
    let commit_no_space = reg.counter(
        "speedlayer_collect_channel_commit_no_space_total",
        "Channel commits refused for lack of disk space (retried).",
        &l,
    );
    let mut backoff = Duration::from_millis(100);
    loop {
        if flags.hard_stop.load(Ordering::Relaxed) {
            break;
        }
        let events = chan.take(batch, Duration::from_millis(100))?;
        if events.is_empty() {
            if flags.draining.load(Ordering::Relaxed) {
                break;
            }
            // Idle: time-based rolls still happen. Every event taken so far is delivered
            // (file_roll: synced in its in-progress file, published at the latest on the
            // next start), so a failure here loses nothing and is only reported.
            for s in std::iter::once(&mut sink).chain(dlq.as_mut()) {
                if let Err(e) = s.tick() {
                    tracing::warn!(sink = s.name(), error = %e, "idle tick failed");
                    errors.inc();
                }
            }
            continue;
        }
        let t0 = Instant::now();
        let (bad, good): (Vec<&Event>, Vec<&Event>) =
            events.iter().partition(|e| e.dead_letter.is_some());
        let mut r = if good.is_empty() {
            Ok(())
        } else {
            sink.deliver(&good)
        };
        if r.is_ok() && !bad.is_empty() {
            r = match dlq.as_mut() {
                Some(d) => d.deliver(&bad),
                None => Err(Error::Sink {
                    sink: sink.name().to_owned(),
                    reason: format!(
                        "{} dead letters but no dead_letter sink configured",
                        bad.len()
                    ),
                }),
            };
        }
        match r {
            Ok(()) => {
                let (ng, nb) = (good.len() as u64, bad.len() as u64);
                commit_retrying(&*chan, flags, &commit_no_space)?;
                out.add(ng);
                dl_out.add(nb);
                fill.set(chan.len() as i64);
                lat.observe(t0.elapsed().as_secs_f64());
                backoff = Duration::from_millis(100);
            }
            Err(e) => {
                tracing::warn!(sink = sink.name(), error = %e, retry_in = ?backoff, "delivery failed; rolling back");
                errors.inc();
                chan.rollback(events)?;
                std::thread::sleep(backoff); // retry backoff
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    sink.close()?;
    if let Some(d) = dlq.as_mut() {
        d.close()?;
    }
    Ok(())
}

impl AgentHandle {
    /// The first thread that ended with an error, if any (a healthy agent's threads run
    /// until stopped).
    pub fn failed(&self) -> Option<String> {
        self.sources
            .iter()
            .chain(&self.sinks)
            .find(|(_, t)| t.is_finished())
            .map(|(n, _)| n.clone())
    }

    /// Events in all channels.
    pub fn channel_events(&self) -> usize {
        self.channels.iter().map(|c| c.len()).sum()
    }

    /// Stops sources, drains channels for up to the drain timeout, closes sinks.
    ///
    /// # Errors
    /// The first error any thread ended with.
    pub fn stop(self) -> Result<()> {
        self.flags.stop_sources.store(true, Ordering::SeqCst);
        let mut first: Option<Error> = None;
        let mut note = |name: &str, r: std::thread::Result<Result<()>>| match r {
            Ok(Ok(())) => {}
            Ok(Err(Error::Shutdown { .. })) => {}
            Ok(Err(e)) => {
                tracing::error!(component = name, error = %e, "component failed");
                first.get_or_insert(e);
            }
            Err(_) => {
                first.get_or_insert(Error::Shutdown {
                    component: format!("{name} (panicked)"),
                });
            }
        };
        for (n, t) in self.sources {
            note(&n, t.join());
        }
        self.flags.draining.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + self.drain_timeout;
        while self.sinks.iter().any(|(_, t)| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20)); // polling thread completion
        }
        self.flags.hard_stop.store(true, Ordering::SeqCst);
        for c in &self.channels {
            c.close();
        }
        for (n, t) in self.sinks {
            note(&n, t.join());
        }
        first.map_or(Ok(()), Err)
    }
}
