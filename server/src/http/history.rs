//! The console's short in-memory history: one [`Sample`] per second, the last
//! [`HISTORY_LEN`] kept (10 minutes; older samples are dropped), taken by a background task
//! from the request metrics, the storage engine's statistics and the TTL set service.
//! Rates are differences of counters between two samples divided by the time between
//! them; latency quantiles come from the histograms' buckets over the same interval.
//!
//! Memory is bounded by [`HISTORY_LEN`] samples of fixed size plus one map of command
//! rates (at most one entry per RESP command). It reads only; it does not serve HTTP.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use serde::Serialize;
use speedlayer_metrics::HistogramSnapshot;
use speedlayer_storage::DbStats;
use tokio::sync::watch;

use crate::grpc::Backend;
use crate::metrics::Rpc;
use crate::resp::server::Shared;

/// Samples kept: 600 at one per second, ten minutes.
pub const HISTORY_LEN: usize = 600;

/// Time between samples.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// The RPCs that write and read data.
const WRITES: [Rpc; 2] = [Rpc::Mutate, Rpc::CheckAndMutate];
const READS: [Rpc; 2] = [Rpc::Get, Rpc::Scan];

/// One point of the console's charts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sample {
    /// Unix time of the sample, seconds.
    pub t: f64,
    /// Mutate and CheckAndMutate requests per second.
    pub writes_per_s: f64,
    /// Get and Scan requests per second.
    pub reads_per_s: f64,
    /// Cells written per second (all regions).
    pub cells_per_s: f64,
    /// Median latency of data requests in the interval, ms (`null` without requests).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency of data requests in the interval, ms.
    pub p99_ms: Option<f64>,
    /// Bytes in memstores (all regions).
    pub memstore_bytes: u64,
    /// Frozen memstores waiting for the flusher (the flush queue).
    pub flush_queue: u64,
    /// Flushes per second.
    pub flushes_per_s: f64,
    /// Regions waiting for (or in) a background compaction.
    pub compaction_queue: u64,
    /// Compactions per second.
    pub compactions_per_s: f64,
    /// Bytes written by compactions per second.
    pub compaction_bytes_per_s: f64,
    /// Writes refused as too busy (stalled past the limit) per second.
    pub write_stalls_per_s: f64,
    /// WAL fsyncs per second.
    pub wal_syncs_per_s: f64,
    /// Block cache hits / (hits + misses) in the interval (`null` without lookups).
    pub block_cache_hit_ratio: Option<f64>,
    /// RESP commands per second (all commands).
    pub resp_commands_per_s: f64,
    /// RESP keys.
    pub resp_keys: u64,
}

/// Counter values of one moment, to difference against the next.
#[derive(Debug, Clone)]
struct Raw {
    at: Instant,
    writes: u64,
    reads: u64,
    latency: HistogramSnapshot,
    cells: u64,
    flushes: u64,
    compactions: u64,
    compaction_bytes: u64,
    too_busy: u64,
    wal_syncs: u64,
    cache_hits: u64,
    cache_misses: u64,
    resp_commands: BTreeMap<&'static str, u64>,
}

/// The history and the previous sample's counters.
#[derive(Debug, Default)]
pub struct History {
    samples: VecDeque<Sample>,
    prev: Option<Raw>,
    /// RESP commands per second by command, over the last interval.
    resp_rates: BTreeMap<&'static str, f64>,
    /// Per region hosted: flush and compaction counts last seen, and when they moved.
    regions: BTreeMap<(String, u64), RegionSeen>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RegionSeen {
    flushes: u64,
    compactions: u64,
    flush_at: Option<f64>,
    compaction_at: Option<f64>,
}

/// What the console's chart endpoint returns.
#[derive(Debug, Serialize)]
pub struct HistoryView {
    /// Seconds between samples.
    pub interval_s: u64,
    /// Samples kept at most.
    pub capacity: usize,
    /// Oldest first.
    pub samples: Vec<Sample>,
    /// RESP commands per second by command, over the last interval.
    pub resp_commands_per_s: BTreeMap<&'static str, f64>,
}

fn merged(snaps: impl Iterator<Item = HistogramSnapshot>) -> HistogramSnapshot {
    let mut out = HistogramSnapshot::default();
    for s in snaps {
        if out.cumulative.is_empty() {
            out = s;
            continue;
        }
        for (o, (_, c)) in out.cumulative.iter_mut().zip(&s.cumulative) {
            o.1 += c;
        }
        out.sum += s.sum;
    }
    out
}

fn raw(backend: &Backend, stats: &DbStats, resp: Option<&Shared>) -> Raw {
    let m = &backend.metrics;
    let sum = |rpcs: &[Rpc]| -> u64 {
        rpcs.iter()
            .map(|r| {
                let (ok, err) = m.requests(*r);
                ok + err
            })
            .sum()
    };
    let regions = || stats.tables.iter().flat_map(|t| &t.regions);
    let stores = || regions().flat_map(|r| &r.stores);
    Raw {
        at: Instant::now(),
        writes: sum(&WRITES),
        reads: sum(&READS),
        latency: merged(WRITES.iter().chain(&READS).map(|r| m.latency(*r))),
        cells: regions().map(|r| r.cells_written).sum(),
        flushes: regions().map(|r| r.flushes).sum(),
        compactions: stores().map(|s| s.compaction.runs).sum(),
        compaction_bytes: stores().map(|s| s.compaction.bytes_written).sum(),
        too_busy: regions().map(|r| r.too_busy).sum(),
        wal_syncs: regions().map(|r| r.wal_syncs).sum(),
        cache_hits: stats.block_cache_hits,
        cache_misses: stats.block_cache_misses,
        resp_commands: resp
            .map(|s| {
                s.metrics
                    .command_counts()
                    .into_iter()
                    .map(|(n, ok, err)| (n, ok + err))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

impl History {
    /// Notes, per region, when its flush and compaction counts moved (to the sample's
    /// second; a region first seen has no time, as the moves before start are unknown).
    fn track_regions(&mut self, stats: &DbStats, t: f64) {
        let mut next = BTreeMap::new();
        for table in &stats.tables {
            for r in &table.regions {
                let key = (table.name.clone(), r.id);
                let compactions = r.stores.iter().map(|s| s.compaction.runs).sum();
                let seen = match self.regions.get(&key) {
                    None => RegionSeen {
                        flushes: r.flushes,
                        compactions,
                        flush_at: None,
                        compaction_at: None,
                    },
                    Some(old) => RegionSeen {
                        flushes: r.flushes,
                        compactions,
                        flush_at: if r.flushes != old.flushes {
                            Some(t)
                        } else {
                            old.flush_at
                        },
                        compaction_at: if compactions != old.compactions {
                            Some(t)
                        } else {
                            old.compaction_at
                        },
                    },
                };
                next.insert(key, seen);
            }
        }
        // Regions no longer hosted are forgotten: the map never outgrows what is hosted.
        self.regions = next;
    }

    /// When each region's flush and compaction counts were last seen moving.
    pub fn last_seen(&self) -> super::api::LastSeen {
        self.regions
            .iter()
            .map(|(k, v)| (k.clone(), (v.flush_at, v.compaction_at)))
            .collect()
    }

    /// Adds the sample of `now` (the first call only records counters).
    fn push(&mut self, now: Raw, stats: &DbStats, resp_keys: u64) {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        self.track_regions(stats, wall);
        let Some(prev) = self.prev.replace(now.clone()) else {
            return;
        };
        let secs = now.at.duration_since(prev.at).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
        let lookups = now.cache_hits + now.cache_misses - prev.cache_hits - prev.cache_misses;
        let regions = || stats.tables.iter().flat_map(|t| &t.regions);
        self.resp_rates = now
            .resp_commands
            .iter()
            .map(|(n, c)| {
                (
                    *n,
                    rate(*c, prev.resp_commands.get(n).copied().unwrap_or(0)),
                )
            })
            .collect();
        let sample = Sample {
            t: wall,
            writes_per_s: rate(now.writes, prev.writes),
            reads_per_s: rate(now.reads, prev.reads),
            cells_per_s: rate(now.cells, prev.cells),
            p50_ms: now
                .latency
                .quantile_since(Some(&prev.latency), 0.5)
                .map(|s| s * 1e3),
            p99_ms: now
                .latency
                .quantile_since(Some(&prev.latency), 0.99)
                .map(|s| s * 1e3),
            memstore_bytes: regions().map(|r| r.memstore_bytes).sum(),
            flush_queue: regions().map(|r| r.frozen_memstores).sum(),
            flushes_per_s: rate(now.flushes, prev.flushes),
            compaction_queue: stats.compactions_queued,
            compactions_per_s: rate(now.compactions, prev.compactions),
            compaction_bytes_per_s: rate(now.compaction_bytes, prev.compaction_bytes),
            write_stalls_per_s: rate(now.too_busy, prev.too_busy),
            wal_syncs_per_s: rate(now.wal_syncs, prev.wal_syncs),
            block_cache_hit_ratio: (lookups > 0)
                .then(|| now.cache_hits.saturating_sub(prev.cache_hits) as f64 / lookups as f64),
            resp_commands_per_s: self.resp_rates.values().fold(0.0, |a, b| a + b),
            resp_keys,
        };
        if self.samples.len() == HISTORY_LEN {
            self.samples.pop_front();
        }
        self.samples.push_back(sample);
    }

    /// The samples kept, oldest first.
    pub fn view(&self) -> HistoryView {
        HistoryView {
            interval_s: SAMPLE_EVERY.as_secs(),
            capacity: HISTORY_LEN,
            samples: self.samples.iter().cloned().collect(),
            resp_commands_per_s: self.resp_rates.clone(),
        }
    }
}

/// Samples every [`SAMPLE_EVERY`] into `history` until `stopping` turns true.
pub async fn run(
    backend: Backend,
    resp: Option<Arc<Shared>>,
    history: Arc<Mutex<History>>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopping.wait_for(|s| *s) => return,
        }
        let b = backend.clone();
        let r = resp.clone();
        let taken = tokio::task::spawn_blocking(move || {
            let stats = b.db.stats();
            let keys = r.as_deref().map_or(0, |s| s.ks.lock().len() as u64);
            let raw = raw(&b, &stats, r.as_deref());
            (raw, stats, keys)
        })
        .await;
        match taken {
            Ok((raw, stats, keys)) => history.lock().push(raw, &stats, keys),
            Err(e) => tracing::warn!(error = %e, "console sample failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_rates_are_differences() {
        let mut h = History::default();
        let stats = DbStats::default();
        let base = Raw {
            at: Instant::now(),
            writes: 0,
            reads: 0,
            latency: HistogramSnapshot::default(),
            cells: 0,
            flushes: 0,
            compactions: 0,
            compaction_bytes: 0,
            too_busy: 0,
            wal_syncs: 0,
            cache_hits: 0,
            cache_misses: 0,
            resp_commands: BTreeMap::new(),
        };
        h.push(base.clone(), &stats, 0);
        assert!(h.view().samples.is_empty(), "the first call only records");
        for i in 1..=(HISTORY_LEN as u64 + 5) {
            let mut r = base.clone();
            r.at = base.at + Duration::from_secs(i);
            r.writes = 10 * i;
            r.cache_hits = 3 * i;
            r.cache_misses = i;
            h.push(r, &stats, 0);
        }
        let v = h.view();
        assert_eq!(v.samples.len(), HISTORY_LEN);
        let last = v.samples.last().unwrap();
        assert!((last.writes_per_s - 10.0).abs() < 1e-9, "{last:?}");
        assert_eq!(last.block_cache_hit_ratio, Some(0.75));
        assert_eq!(last.p50_ms, None, "no latency observations");
    }
}
