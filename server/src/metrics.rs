//! Request metrics of the region server, registered in the process's Prometheus registry
//! (`speedlayer-metrics`, on `prometheus-client`), and the export of the storage engine's
//! own counters (`Db::stats`) into it just before each `/metrics` rendering.
//!
//! Counters and the latency histograms are indexed by a fixed set of RPCs, so memory is
//! bounded whatever the traffic; per-region series follow the regions this server hosts.
//! This module does not serve HTTP.

use std::sync::Arc;
use std::time::Duration;

use speedlayer_metrics::{Counter, Histogram, HistogramSnapshot, Registry, Snapshot};
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
pub const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Debug, Clone)]
struct RpcMetrics {
    ok: Counter,
    errors: Counter,
    latency: Histogram,
}

/// Counters of the region server. Shared in an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    rpcs: Vec<RpcMetrics>,
    cells_in: Counter,
    rows_out: Counter,
    compactions: Counter,
    splits: Counter,
    split_failures: Counter,
}

impl Default for Metrics {
    /// Metrics in a registry of their own (tests; the server passes its process registry).
    fn default() -> Self {
        Metrics::new(Registry::new())
    }
}

impl Metrics {
    /// Registers the server's series in `registry`.
    pub fn new(registry: Arc<Registry>) -> Metrics {
        let rpcs = RPCS
            .iter()
            .map(|rpc| {
                let name = rpc.name();
                let count = |outcome| {
                    registry.counter(
                        "speedlayer_grpc_requests_total",
                        "gRPC requests by method and outcome.",
                        &[("method", name), ("outcome", outcome)],
                    )
                };
                RpcMetrics {
                    ok: count("ok"),
                    errors: count("error"),
                    latency: registry.histogram(
                        "speedlayer_grpc_request_duration_seconds",
                        "gRPC request latency.",
                        &[("method", name)],
                        &BUCKETS,
                    ),
                }
            })
            .collect();
        let counter = |name: &str, help: &str| registry.counter(name, help, &[]);
        Metrics {
            cells_in: counter(
                "speedlayer_cells_received_total",
                "Cells received by Mutate.",
            ),
            rows_out: counter(
                "speedlayer_rows_returned_total",
                "Rows returned by Get and Scan.",
            ),
            compactions: counter(
                "speedlayer_compact_requests_total",
                "Compact RPCs served (the compactions themselves: speedlayer_store_compactions_total).",
            ),
            splits: counter(
                "speedlayer_region_splits_total",
                "Region splits done by this server.",
            ),
            split_failures: counter(
                "speedlayer_region_split_failures_total",
                "Region split attempts that failed (the parent stayed in service).",
            ),
            rpcs,
            registry,
        }
    }

    /// The registry these metrics live in.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    fn rpc(&self, rpc: Rpc) -> &RpcMetrics {
        let idx = RPCS.iter().position(|r| *r == rpc).unwrap_or(0);
        &self.rpcs[idx]
    }

    /// Records one finished request.
    pub fn observe(&self, rpc: Rpc, elapsed: Duration, ok: bool) {
        let m = self.rpc(rpc);
        if ok {
            m.ok.inc();
        } else {
            m.errors.inc();
        }
        m.latency.observe(elapsed.as_secs_f64());
    }

    /// Counts cells received by `Mutate`.
    pub fn add_cells_in(&self, n: u64) {
        self.cells_in.add(n);
    }

    /// Counts rows sent by `Get` and `Scan`.
    pub fn add_rows_out(&self, n: u64) {
        self.rows_out.add(n);
    }

    /// Counts a compaction run.
    pub fn add_compaction(&self) {
        self.compactions.inc();
    }

    /// Counts a region split.
    pub fn add_split(&self) {
        self.splits.inc();
    }

    /// Counts a split attempt that failed (the parent stayed in service).
    pub fn add_split_failure(&self) {
        self.split_failures.inc();
    }

    /// Region splits done so far.
    pub fn splits(&self) -> u64 {
        self.splits.get()
    }

    /// Requests of one RPC so far: (ok, errors).
    pub fn requests(&self, rpc: Rpc) -> (u64, u64) {
        let m = self.rpc(rpc);
        (m.ok.get(), m.errors.get())
    }

    /// The latency histogram of one RPC, as it is now.
    pub fn latency(&self, rpc: Rpc) -> HistogramSnapshot {
        self.rpc(rpc).latency.snapshot()
    }

    /// Rows returned and cells received so far.
    pub fn rows_and_cells(&self) -> (u64, u64) {
        (self.rows_out.get(), self.cells_in.get())
    }

    /// The Prometheus text exposition of the registry, with the engine's `stats` copied in.
    pub fn render(&self, stats: &DbStats) -> String {
        let stats = Arc::new(stats.clone());
        let r = Registry::new();
        r.include(self.registry.clone());
        let extra = Registry::new();
        extra.on_render(Arc::new(move |s: &mut Snapshot<'_>| export_db(s, &stats)));
        r.include(extra);
        r.render()
    }
}

/// Copies the engine's statistics into snapshot families (called before each rendering).
pub fn export_db(out: &mut Snapshot<'_>, stats: &DbStats) {
    out.counter(
        "speedlayer_block_cache_hits_total",
        "Block cache hits.",
        &[],
        stats.block_cache_hits,
    );
    out.counter(
        "speedlayer_block_cache_misses_total",
        "Block cache misses.",
        &[],
        stats.block_cache_misses,
    );
    out.gauge(
        "speedlayer_block_cache_bytes",
        "Bytes held by the block cache.",
        &[],
        stats.block_cache_bytes as i64,
    );
    out.counter(
        "speedlayer_compactions_failed_total",
        "Background compactions that failed (inputs kept, each logged).",
        &[],
        stats.compactions_failed,
    );
    out.gauge(
        "speedlayer_compaction_queue",
        "Regions waiting for (or in) a background compaction.",
        &[],
        stats.compactions_queued as i64,
    );
    type Get = fn(&speedlayer_storage::region::RegionStats) -> u64;
    let region_series: [(&str, bool, &str, Get); 11] = [
        (
            "speedlayer_memstore_bytes",
            false,
            "Bytes in the region's memstores.",
            |r| r.memstore_bytes,
        ),
        (
            "speedlayer_frozen_memstores",
            false,
            "Frozen memstores of the region waiting for the flusher (the flush queue).",
            |r| r.frozen_memstores,
        ),
        (
            "speedlayer_flushes_total",
            true,
            "Memstore flushes of the region.",
            |r| r.flushes,
        ),
        (
            "speedlayer_wal_syncs_total",
            true,
            "WAL fsyncs of the region.",
            |r| r.wal_syncs,
        ),
        (
            "speedlayer_wal_appends_total",
            true,
            "WAL appends of the region.",
            |r| r.wal_appends,
        ),
        (
            "speedlayer_cells_written_total",
            true,
            "Cells written to the region.",
            |r| r.cells_written,
        ),
        (
            "speedlayer_too_busy_total",
            true,
            "Writes refused as too busy.",
            |r| r.too_busy,
        ),
        (
            "speedlayer_flush_failures_total",
            true,
            "Memstore flushes that failed (a full disk is retried; other failures poison the region).",
            |r| r.flush_failures,
        ),
        (
            "speedlayer_wal_no_space_failures_total",
            true,
            "WAL group writes refused because the disk was full.",
            |r| r.wal_no_space_failures,
        ),
        (
            "speedlayer_wal_torn_tails_truncated_total",
            true,
            "Torn WAL tails cut when the region opened (a crash or power cut during a write).",
            |r| r.wal_tails_truncated,
        ),
        (
            "speedlayer_region_poisoned",
            false,
            "1 while the region refuses writes after a failed durability step (restart needed).",
            |r| u64::from(r.poisoned.is_some()),
        ),
    ];
    for (name, is_counter, help, get) in region_series {
        for t in &stats.tables {
            for r in &t.regions {
                let id = r.id.to_string();
                let labels = [("table", t.name.as_str()), ("region", id.as_str())];
                if is_counter {
                    out.counter(name, help, &labels, get(r));
                } else {
                    out.gauge(name, help, &labels, get(r) as i64);
                }
            }
        }
    }
    type StoreGet = fn(&StoreStats) -> u64;
    let store_series: [(&str, bool, &str, StoreGet); 5] = [
        ("speedlayer_store_files", false, "HFiles per store.", |s| {
            s.files
        }),
        (
            "speedlayer_store_file_bytes",
            false,
            "HFile bytes per store.",
            |s| s.file_bytes,
        ),
        (
            "speedlayer_store_compactions_total",
            true,
            "Compactions completed per store (minor, major and whole expired files dropped).",
            |s| s.compaction.runs,
        ),
        (
            "speedlayer_store_compaction_bytes_written_total",
            true,
            "Bytes written by compactions per store.",
            |s| s.compaction.bytes_written,
        ),
        (
            "speedlayer_store_compaction_bytes_read_total",
            true,
            "Bytes read by compactions per store.",
            |s| s.compaction.bytes_read,
        ),
    ];
    for (name, is_counter, help, get) in store_series {
        for t in &stats.tables {
            for r in &t.regions {
                let id = r.id.to_string();
                for s in &r.stores {
                    let labels = [
                        ("table", t.name.as_str()),
                        ("region", id.as_str()),
                        ("family", s.family.as_str()),
                    ];
                    if is_counter {
                        out.counter(name, help, &labels, get(s));
                    } else {
                        out.gauge(name, help, &labels, get(s) as i64);
                    }
                }
            }
        }
    }
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
