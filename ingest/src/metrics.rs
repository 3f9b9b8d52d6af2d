//! A small Prometheus registry (counters, gauges, histograms, each with labels) rendered in
//! the text exposition format, and an axum router serving it at `/metrics`.
//!
//! Handles are cheap `Arc`s over atomics: the hot path increments without locking; only
//! registration and rendering take the registry lock. This is not a general metrics
//! facade: no summaries, no push gateway, no timestamps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::{Error, Result};

/// Default histogram buckets for latencies in seconds (1 ms … 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A monotonically increasing counter.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Clone, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    /// Adds `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.fetch_add(d, Ordering::Relaxed);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct HistogramInner {
    bounds: Vec<f64>,
    /// Non-cumulative counts per bucket; the last is `+Inf`.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in micro-units, so it stays an atomic integer.
    sum_micros: AtomicU64,
}

/// A histogram with fixed upper bounds.
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramInner>);

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram(Arc::new(HistogramInner {
            bounds: bounds.to_vec(),
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }))
    }

    /// Records one observation (negative values count as 0).
    pub fn observe(&self, v: f64) {
        let v = v.max(0.0);
        let i = self.0.bounds.partition_point(|b| *b < v);
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.count.fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone)]
enum Metric {
    Counter(Counter),
    Gauge(Gauge),
    Histogram(Histogram),
}

impl Metric {
    fn kind(&self) -> &'static str {
        match self {
            Metric::Counter(_) => "counter",
            Metric::Gauge(_) => "gauge",
            Metric::Histogram(_) => "histogram",
        }
    }
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: &'static str,
    /// Rendered label set (`a="x",b="y"`) → metric.
    series: BTreeMap<String, Metric>,
}

/// The registry: metric families by name.
#[derive(Debug, Default)]
pub struct Registry {
    families: Mutex<BTreeMap<String, Family>>,
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn render_labels(labels: &[(&str, &str)]) -> String {
    let mut s = String::new();
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{k}=\"{}\"", escape(v));
    }
    s
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry::default())
    }

    fn get_or_insert(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        make: impl FnOnce() -> Metric,
    ) -> Metric {
        let mut fams = self.families.lock();
        let key = render_labels(labels);
        let fam = fams.entry(name.to_owned()).or_insert_with(|| Family {
            help: help.to_owned(),
            kind: "",
            series: BTreeMap::new(),
        });
        let m = fam.series.entry(key).or_insert_with(make).clone();
        if fam.kind.is_empty() {
            fam.kind = m.kind();
        }
        m
    }

    /// The counter `name{labels}`, created at 0 on first use. Registering the same name with
    /// another kind returns a detached handle (and is a programming error caught in tests).
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        match self.get_or_insert(name, help, labels, || Metric::Counter(Counter::default())) {
            Metric::Counter(c) => c,
            _ => {
                debug_assert!(false, "metric {name} registered with another kind");
                Counter::default()
            }
        }
    }

    /// The gauge `name{labels}`.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        match self.get_or_insert(name, help, labels, || Metric::Gauge(Gauge::default())) {
            Metric::Gauge(g) => g,
            _ => {
                debug_assert!(false, "metric {name} registered with another kind");
                Gauge::default()
            }
        }
    }

    /// The histogram `name{labels}` with upper `bounds` (ascending).
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        labels: &[(&str, &str)],
        bounds: &[f64],
    ) -> Histogram {
        match self.get_or_insert(name, help, labels, || {
            Metric::Histogram(Histogram::new(bounds))
        }) {
            Metric::Histogram(h) => h,
            _ => {
                debug_assert!(false, "metric {name} registered with another kind");
                Histogram::new(bounds)
            }
        }
    }

    /// The whole registry in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let fams = self.families.lock();
        let mut out = String::new();
        for (name, fam) in fams.iter() {
            let _ = writeln!(out, "# HELP {name} {}", fam.help.replace('\n', " "));
            let _ = writeln!(out, "# TYPE {name} {}", fam.kind);
            for (labels, m) in &fam.series {
                let braces = |extra: &str| -> String {
                    match (labels.is_empty(), extra.is_empty()) {
                        (true, true) => String::new(),
                        (true, false) => format!("{{{extra}}}"),
                        (false, true) => format!("{{{labels}}}"),
                        (false, false) => format!("{{{labels},{extra}}}"),
                    }
                };
                match m {
                    Metric::Counter(c) => {
                        let _ = writeln!(out, "{name}{} {}", braces(""), c.get());
                    }
                    Metric::Gauge(g) => {
                        let _ = writeln!(out, "{name}{} {}", braces(""), g.get());
                    }
                    Metric::Histogram(h) => {
                        let mut cum = 0;
                        for (i, b) in h.0.buckets.iter().enumerate() {
                            cum += b.load(Ordering::Relaxed);
                            let le =
                                h.0.bounds
                                    .get(i)
                                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {cum}",
                                braces(&format!("le=\"{le}\""))
                            );
                        }
                        let sum = h.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                        let _ = writeln!(out, "{name}_sum{} {sum}", braces(""));
                        let _ = writeln!(out, "{name}_count{} {}", braces(""), h.count());
                    }
                }
            }
        }
        out
    }
}

/// An axum router serving `GET /metrics` from `registry`.
pub fn router(registry: Arc<Registry>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let r = registry.clone();
            async move { ([("content-type", "text/plain; version=0.0.4")], r.render()) }
        }),
    )
}

/// Binds `addr` (e.g. `127.0.0.1:0`) and serves `/metrics` in a background task; returns
/// the bound address.
///
/// # Errors
/// [`Error::Io`] if the address cannot be bound.
pub async fn serve(registry: Arc<Registry>, addr: &str) -> Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::io("bind", addr, e))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::io("local_addr", addr, e))?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router(registry)).await {
            tracing::error!(error = %e, "metrics server stopped");
        }
    });
    Ok(local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_with_labels() {
        let r = Registry::new();
        let c = r.counter("events_in_total", "Events in.", &[("component", "src\"1")]);
        c.add(3);
        r.counter("events_in_total", "Events in.", &[("component", "src\"1")])
            .inc();
        r.gauge("channel_fill", "Fill.", &[]).set(-2);
        let h = r.histogram("lat_seconds", "Latency.", &[("p", "a")], &[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let text = r.render();
        assert!(text.contains("# TYPE events_in_total counter\n"));
        assert!(
            text.contains("events_in_total{component=\"src\\\"1\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("channel_fill -2\n"));
        assert!(text.contains("lat_seconds_bucket{p=\"a\",le=\"0.1\"} 1\n"));
        assert!(text.contains("lat_seconds_bucket{p=\"a\",le=\"1\"} 2\n"));
        assert!(text.contains("lat_seconds_bucket{p=\"a\",le=\"+Inf\"} 3\n"));
        assert!(text.contains("lat_seconds_count{p=\"a\"} 3\n"));
        assert!(text.contains("lat_seconds_sum{p=\"a\"} 5.55\n"), "{text}");
    }

    #[tokio::test]
    async fn serves_metrics_over_http() {
        let r = Registry::new();
        r.counter("x_total", "X.", &[]).add(7);
        let addr = serve(r, "127.0.0.1:0").await.unwrap();
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut body = String::new();
        s.read_to_string(&mut body).await.unwrap();
        assert!(body.starts_with("HTTP/1.1 200"), "{body}");
        assert!(body.contains("x_total 7"), "{body}");
    }
}
