//! Request metrics of the region server and their Prometheus text rendering, together with
//! the storage engine's own counters (`Db::stats`), for `GET /metrics`.
//!
//! Counters are atomics indexed by a fixed set of RPCs; a latency histogram has fixed
//! buckets, so memory is bounded whatever the traffic. This module does not serve HTTP.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use speedlayer_storage::DbStats;
use speedlayer_storage::region::StoreStats;

/// The RPCs the server counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// Admin.CreateTable
    CreateTable,
    /// Admin.DeleteTable
    DeleteTable,
    /// Admin.ListTables
    ListTables,
    /// Admin.DescribeTable
    DescribeTable,
    /// Admin.Flush
    Flush,
    /// Admin.Compact
    Compact,
    /// Admin.RegionStats
    RegionStats,
    /// Admin.LocateRegion
    LocateRegion,
    /// Data.Mutate
    Mutate,
    /// Data.Get
    Get,
    /// Data.Scan
    Scan,
    /// Data.CheckAndMutate
    CheckAndMutate,
    /// Data.BulkLoad
    BulkLoad,
}

const RPCS: [Rpc; 13] = [
    Rpc::CreateTable,
    Rpc::DeleteTable,
    Rpc::ListTables,
    Rpc::DescribeTable,
    Rpc::Flush,
    Rpc::Compact,
    Rpc::RegionStats,
    Rpc::LocateRegion,
    Rpc::Mutate,
    Rpc::Get,
    Rpc::Scan,
    Rpc::CheckAndMutate,
    Rpc::BulkLoad,
];

impl Rpc {
    /// The gRPC method name.
    pub fn name(self) -> &'static str {
        match self {
            Rpc::CreateTable => "CreateTable",
            Rpc::DeleteTable => "DeleteTable",
            Rpc::ListTables => "ListTables",
            Rpc::DescribeTable => "DescribeTable",
            Rpc::Flush => "Flush",
            Rpc::Compact => "Compact",
            Rpc::RegionStats => "RegionStats",
            Rpc::LocateRegion => "LocateRegion",
            Rpc::Mutate => "Mutate",
            Rpc::Get => "Get",
            Rpc::Scan => "Scan",
            Rpc::CheckAndMutate => "CheckAndMutate",
            Rpc::BulkLoad => "BulkLoad",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds (Prometheus `le`).
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RpcMetrics {
    ok: AtomicU64,
    errors: AtomicU64,
    /// Cumulative counts per bucket are computed at render time; these are per-bucket.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

/// Counters of the region server. Shared in an `Arc`.
#[derive(Default)]
pub struct Metrics {
    rpcs: [RpcMetrics; RPCS.len()],
    cells_in: AtomicU64,
    rows_out: AtomicU64,
    compactions: AtomicU64,
    splits: AtomicU64,
    split_failures: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, rpc: Rpc, elapsed: Duration, ok: bool) {
        let idx = RPCS.iter().position(|r| *r == rpc).unwrap_or(0);
        let m = &self.rpcs[idx];
        if ok {
            m.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            m.errors.fetch_add(1, Ordering::Relaxed);
        }
        let secs = elapsed.as_secs_f64();
        let bucket = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        m.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        m.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    /// Counts cells received by `Mutate`.
    pub fn add_cells_in(&self, n: u64) {
        self.cells_in.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts rows sent by `Get` and `Scan`.
    pub fn add_rows_out(&self, n: u64) {
        self.rows_out.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a compaction run.
    pub fn add_compaction(&self) {
        self.compactions.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a region split.
    pub fn add_split(&self) {
        self.splits.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a split attempt that failed (the parent stayed in service).
    pub fn add_split_failure(&self) {
        self.split_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Region splits done so far.
    pub fn splits(&self) -> u64 {
        self.splits.load(Ordering::Relaxed)
    }

    /// Requests of one RPC so far: (ok, errors).
    pub fn requests(&self, rpc: Rpc) -> (u64, u64) {
        let idx = RPCS.iter().position(|r| *r == rpc).unwrap_or(0);
        let m = &self.rpcs[idx];
        (
            m.ok.load(Ordering::Relaxed),
            m.errors.load(Ordering::Relaxed),
        )
    }

    /// The Prometheus text exposition of these counters and of the engine's `stats`.
    pub fn render(&self, stats: &DbStats) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let _ = self.render_into(&mut out, stats);
        out
    }

    fn render_into(&self, out: &mut String, stats: &DbStats) -> std::fmt::Result {
        writeln!(
            out,
            "# HELP speedlayer_grpc_requests_total gRPC requests by method and outcome."
        )?;
        writeln!(out, "# TYPE speedlayer_grpc_requests_total counter")?;
        for (rpc, m) in RPCS.iter().zip(&self.rpcs) {
            let name = rpc.name();
            writeln!(
                out,
                "speedlayer_grpc_requests_total{{method=\"{name}\",outcome=\"ok\"}} {}",
                m.ok.load(Ordering::Relaxed)
            )?;
            writeln!(
                out,
                "speedlayer_grpc_requests_total{{method=\"{name}\",outcome=\"error\"}} {}",
                m.errors.load(Ordering::Relaxed)
            )?;
        }
        writeln!(
            out,
            "# HELP speedlayer_grpc_request_duration_seconds gRPC request latency."
        )?;
        writeln!(
            out,
            "# TYPE speedlayer_grpc_request_duration_seconds histogram"
        )?;
        for (rpc, m) in RPCS.iter().zip(&self.rpcs) {
            let name = rpc.name();
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += m.buckets[i].load(Ordering::Relaxed);
                writeln!(
                    out,
                    "speedlayer_grpc_request_duration_seconds_bucket{{method=\"{name}\",le=\"{le}\"}} {cumulative}"
                )?;
            }
            cumulative += m.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            writeln!(
                out,
                "speedlayer_grpc_request_duration_seconds_bucket{{method=\"{name}\",le=\"+Inf\"}} {cumulative}"
            )?;
            let sum = m.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            writeln!(
                out,
                "speedlayer_grpc_request_duration_seconds_sum{{method=\"{name}\"}} {sum}"
            )?;
            writeln!(
                out,
                "speedlayer_grpc_request_duration_seconds_count{{method=\"{name}\"}} {cumulative}"
            )?;
        }
        counter(
            out,
            "speedlayer_cells_received_total",
            "Cells received by Mutate.",
            self.cells_in.load(Ordering::Relaxed),
        )?;
        counter(
            out,
            "speedlayer_rows_returned_total",
            "Rows returned by Get and Scan.",
            self.rows_out.load(Ordering::Relaxed),
        )?;
        counter(
            out,
            "speedlayer_compact_requests_total",
            "Compact RPCs served (the compactions themselves: speedlayer_store_compactions_total).",
            self.compactions.load(Ordering::Relaxed),
        )?;
        counter(
            out,
            "speedlayer_region_splits_total",
            "Region splits done by this server.",
            self.splits.load(Ordering::Relaxed),
        )?;
        counter(
            out,
            "speedlayer_region_split_failures_total",
            "Region split attempts that failed (the parent stayed in service).",
            self.split_failures.load(Ordering::Relaxed),
        )?;
        counter(
            out,
            "speedlayer_block_cache_hits_total",
            "Block cache hits.",
            stats.block_cache_hits,
        )?;
        counter(
            out,
            "speedlayer_block_cache_misses_total",
            "Block cache misses.",
            stats.block_cache_misses,
        )?;
        writeln!(
            out,
            "# HELP speedlayer_block_cache_bytes Bytes held by the block cache."
        )?;
        writeln!(out, "# TYPE speedlayer_block_cache_bytes gauge")?;
        writeln!(
            out,
            "speedlayer_block_cache_bytes {}",
            stats.block_cache_bytes
        )?;
        writeln!(
            out,
            "# HELP speedlayer_compactions_failed_total Background compactions that failed (inputs kept, each logged)."
        )?;
        writeln!(out, "# TYPE speedlayer_compactions_failed_total counter")?;
        writeln!(
            out,
            "speedlayer_compactions_failed_total {}",
            stats.compactions_failed
        )?;

        type Get = fn(&speedlayer_storage::region::RegionStats) -> u64;
        let region_series: [(&str, &str, &str, Get); 10] = [
            (
                "speedlayer_memstore_bytes",
                "gauge",
                "Bytes in the region's memstores.",
                |r| r.memstore_bytes,
            ),
            (
                "speedlayer_flushes_total",
                "counter",
                "Memstore flushes of the region.",
                |r| r.flushes,
            ),
            (
                "speedlayer_wal_syncs_total",
                "counter",
                "WAL fsyncs of the region.",
                |r| r.wal_syncs,
            ),
            (
                "speedlayer_wal_appends_total",
                "counter",
                "WAL appends of the region.",
                |r| r.wal_appends,
            ),
            (
                "speedlayer_cells_written_total",
                "counter",
                "Cells written to the region.",
                |r| r.cells_written,
            ),
            (
                "speedlayer_too_busy_total",
                "counter",
                "Writes refused as too busy.",
                |r| r.too_busy,
            ),
            (
                "speedlayer_flush_failures_total",
                "counter",
                "Memstore flushes that failed (a full disk is retried; other failures poison the region).",
                |r| r.flush_failures,
            ),
            (
                "speedlayer_wal_no_space_failures_total",
                "counter",
                "WAL group writes refused because the disk was full.",
                |r| r.wal_no_space_failures,
            ),
            (
                "speedlayer_wal_torn_tails_truncated_total",
                "counter",
                "Torn WAL tails cut when the region opened (a crash or power cut during a write).",
                |r| r.wal_tails_truncated,
            ),
            (
                "speedlayer_region_poisoned",
                "gauge",
                "1 while the region refuses writes after a failed durability step (restart needed).",
                |r| u64::from(r.poisoned.is_some()),
            ),
        ];
        for (name, kind, help, get) in region_series {
            writeln!(out, "# HELP {name} {help}")?;
            writeln!(out, "# TYPE {name} {kind}")?;
            for t in &stats.tables {
                for r in &t.regions {
                    writeln!(
                        out,
                        "{name}{{table=\"{}\",region=\"{}\"}} {}",
                        escape(&t.name),
                        r.id,
                        get(r)
                    )?;
                }
            }
        }
        per_store(
            out,
            stats,
            "speedlayer_store_files",
            "HFiles per store.",
            "gauge",
            |s| s.files,
        )?;
        per_store(
            out,
            stats,
            "speedlayer_store_file_bytes",
            "HFile bytes per store.",
            "gauge",
            |s| s.file_bytes,
        )?;
        per_store(
            out,
            stats,
            "speedlayer_store_compactions_total",
            "Compactions completed per store (minor, major and whole expired files dropped).",
            "counter",
            |s| s.compaction.runs,
        )?;
        per_store(
            out,
            stats,
            "speedlayer_store_compaction_bytes_written_total",
            "Bytes written by compactions per store.",
            "counter",
            |s| s.compaction.bytes_written,
        )?;
        Ok(())
    }
}

/// One sample per (table, region, family) store, read from the engine's statistics.
fn per_store(
    out: &mut String,
    stats: &DbStats,
    name: &str,
    help: &str,
    kind: &str,
    value: impl Fn(&StoreStats) -> u64,
) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} {kind}")?;
    for t in &stats.tables {
        for r in &t.regions {
            for s in &r.stores {
                writeln!(
                    out,
                    "{name}{{table=\"{}\",region=\"{}\",family=\"{}\"}} {}",
                    escape(&t.name),
                    r.id,
                    escape(&s.family),
                    value(s)
                )?;
            }
        }
    }
    Ok(())
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) -> std::fmt::Result {
    writeln!(out, "# HELP {name} {help}")?;
    writeln!(out, "# TYPE {name} counter")?;
    writeln!(out, "{name} {value}")
}

/// Escapes a Prometheus label value.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative_and_counts_match() {
        let m = Metrics::default();
        m.observe(Rpc::Get, Duration::from_micros(50), true);
        m.observe(Rpc::Get, Duration::from_millis(3), true);
        m.observe(Rpc::Get, Duration::from_secs(10), false);
        let text = m.render(&DbStats::default());
        assert!(text.contains("speedlayer_grpc_requests_total{method=\"Get\",outcome=\"ok\"} 2"));
        assert!(
            text.contains("speedlayer_grpc_requests_total{method=\"Get\",outcome=\"error\"} 1")
        );
        assert!(text.contains(
            "speedlayer_grpc_request_duration_seconds_bucket{method=\"Get\",le=\"0.0001\"} 1"
        ));
        assert!(text.contains(
            "speedlayer_grpc_request_duration_seconds_bucket{method=\"Get\",le=\"0.005\"} 2"
        ));
        assert!(text.contains(
            "speedlayer_grpc_request_duration_seconds_bucket{method=\"Get\",le=\"+Inf\"} 3"
        ));
        assert!(text.contains("speedlayer_grpc_request_duration_seconds_count{method=\"Get\"} 3"));
    }
}
