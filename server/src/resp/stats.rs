//! The TTL set service's own counters for Prometheus: commands by name and outcome
//! (`error` when the reply is an error) and one latency histogram of request handling
//! (parsing and execution, network excluded; a pipelined batch gives each request the
//! batch's mean), in a registry of their own that the server's process
//! registry includes. Everything else the metrics show of the service is read from state
//! it already keeps (`view`), so nothing is counted twice.
//!
//! Bounded: one slot per command of the command table (at most [`SLOTS`]), named on first
//! use, plus `unknown`. Cost per command: a table lookup and one atomic; per batch read
//! from a client: two clock reads and one histogram update. Depends on no other module of the service, which all may
//! use it; it does not serve HTTP.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use speedlayer_metrics::{Counter, Histogram, HistogramSnapshot, Registry};

/// How long the member count and memory estimate of the last keyspace walk are reused.
pub const WALK_EVERY: Duration = Duration::from_secs(5);

/// Command slots: more than the command table holds; a command past them counts as
/// `other` (the table test in `view` checks the table fits).
pub const SLOTS: usize = 128;

/// Upper bounds of the command latency buckets, in seconds.
pub const BUCKETS: [f64; 12] = [
    0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.005, 0.025, 0.1,
    1.0,
];

/// The service's own counters, in a registry of their own that the server's includes.
#[derive(Debug)]
pub struct RespStats {
    registry: Arc<Registry>,
    /// `(name, ok, error)` per command-table index, created on first use.
    commands: Vec<OnceLock<(&'static str, Counter, Counter)>>,
    /// Names no command has (and commands past [`SLOTS`]).
    unknown: (Counter, Counter),
    latency: Histogram,
    aof_durable: Mutex<DurableWatch>,
    /// AOF rewrites last seen and the Unix time they were seen to change.
    rewrites_seen: Mutex<(u64, Option<f64>)>,
    /// The last keyspace walk: when, and its (members, memory bytes).
    walk: Mutex<Option<(Instant, (u64, u64))>>,
}

/// When the AOF last became durable, as observed by a reader.
#[derive(Debug, Default)]
struct DurableWatch {
    points: u64,
    size: u64,
    since: Option<Instant>,
}

impl Default for RespStats {
    fn default() -> Self {
        Self::new()
    }
}

const HELP_COMMANDS: &str =
    "RESP commands executed, by command and outcome (error: the reply was an error).";

impl RespStats {
    /// Empty counters (each command's series appear at its first use).
    pub fn new() -> RespStats {
        let registry = Registry::new();
        let unknown = (
            registry.counter(
                "speedlayer_resp_commands_total",
                HELP_COMMANDS,
                &[("command", "unknown"), ("outcome", "ok")],
            ),
            registry.counter(
                "speedlayer_resp_commands_total",
                HELP_COMMANDS,
                &[("command", "unknown"), ("outcome", "error")],
            ),
        );
        let latency = registry.histogram(
            "speedlayer_resp_command_duration_seconds",
            "RESP request handling time: parsing and execution, network excluded (a pipelined batch gives each request the batch's mean).",
            &[],
            &BUCKETS,
        );
        RespStats {
            registry,
            commands: (0..SLOTS).map(|_| OnceLock::new()).collect(),
            unknown,
            latency,
            aof_durable: Mutex::new(DurableWatch::default()),
            walk: Mutex::new(None),
            rewrites_seen: Mutex::new((0, None)),
        }
    }

    /// The registry holding the command series (include it in the process's).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Counts one executed request: `command` is `(command-table index, name)`, `None`
    /// for a name no command has; `error` if its reply was an error.
    pub fn command(&self, command: Option<(usize, &'static str)>, error: bool) {
        let (ok, err) = match command.and_then(|(i, name)| Some((self.commands.get(i)?, name))) {
            Some((slot, name)) => {
                let (_, ok, err) = slot.get_or_init(|| {
                    let c = |outcome| {
                        self.registry.counter(
                            "speedlayer_resp_commands_total",
                            HELP_COMMANDS,
                            &[("command", name), ("outcome", outcome)],
                        )
                    };
                    (name, c("ok"), c("error"))
                });
                (ok, err)
            }
            None => (&self.unknown.0, &self.unknown.1),
        };
        if error { err.inc() } else { ok.inc() }
    }

    /// Records the time of a batch of `n` requests read together (one pipelined read):
    /// each request counts the batch's mean, so a batch costs two clock reads and one
    /// histogram update however long it is (at `-P 1` every request is timed alone).
    pub fn batch(&self, n: u64, elapsed: Duration) {
        if n > 0 {
            self.latency
                .observe_many(elapsed.as_secs_f64() / n as f64, n);
        }
    }

    /// Commands so far, by name: `(name, ok, errors)`, only those used.
    pub fn command_counts(&self) -> Vec<(&'static str, u64, u64)> {
        self.commands
            .iter()
            .filter_map(|slot| slot.get().map(|(n, ok, err)| (*n, ok.get(), err.get())))
            .chain(std::iter::once((
                "unknown",
                self.unknown.0.get(),
                self.unknown.1.get(),
            )))
            .filter(|(_, ok, err)| ok + err > 0)
            .collect()
    }

    /// The command latency histogram now.
    pub fn latency(&self) -> HistogramSnapshot {
        self.latency.snapshot()
    }

    /// `walk()`'s result, recomputed only when the last one is older than [`WALK_EVERY`]:
    /// walking every member under the keyspace lock stalls commands for its duration.
    pub fn walked(&self, walk: impl FnOnce() -> (u64, u64)) -> (u64, u64) {
        let mut last = self.walk.lock();
        match *last {
            Some((at, v)) if at.elapsed() < WALK_EVERY => v,
            _ => {
                let v = walk();
                *last = Some((Instant::now(), v));
                v
            }
        }
    }

    /// When the AOF's rewrite count was last seen to change (Unix seconds; `None` if no
    /// rewrite since start), observed at each reading: accurate to the reading interval.
    pub fn last_rewrite_seen(&self, rewrites: u64) -> Option<f64> {
        let mut seen = self.rewrites_seen.lock();
        if rewrites != seen.0 {
            *seen = (
                rewrites,
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .ok()
                    .map(|d| d.as_secs_f64()),
            );
        }
        seen.1
    }

    /// The AOF fsync lag given the AOF's durable points and size now: seconds since the
    /// durable points last moved, while the file has grown since (0: all durable).
    pub fn fsync_lag(&self, durable_points: u64, size: u64) -> f64 {
        let mut w = self.aof_durable.lock();
        let now = Instant::now();
        if w.since.is_none() || durable_points != w.points {
            w.points = durable_points;
            w.size = size;
            w.since = Some(now);
        }
        if size > w.size {
            w.since.map_or(0.0, |t| now.duration_since(t).as_secs_f64())
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_counted_by_table_name_and_outcome() {
        let s = RespStats::new();
        s.command(Some((3, "sadd")), false);
        s.command(Some((3, "sadd")), false);
        s.command(Some((5, "smembers")), true);
        s.command(None, true);
        s.command(Some((SLOTS, "past")), true);
        s.batch(4, Duration::from_micros(12));
        s.batch(1, Duration::from_micros(300));
        let counts = s.command_counts();
        assert!(counts.contains(&("sadd", 2, 0)), "{counts:?}");
        assert!(counts.contains(&("smembers", 0, 1)), "{counts:?}");
        assert!(counts.contains(&("unknown", 0, 2)), "{counts:?}");
        let text = s.registry().render();
        assert!(
            text.contains("speedlayer_resp_commands_total{command=\"sadd\",outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("speedlayer_resp_command_duration_seconds_count 5\n"),
            "{text}"
        );
        assert!(
            text.contains("speedlayer_resp_command_duration_seconds_bucket{le=\"5e-06\"} 4\n"),
            "four requests of 3 us each: {text}"
        );
    }
}
