//! `speedlayer-metrics`: the one Prometheus registry of every speedlayer binary (the
//! region server, the ingest worker, the collector), built on the `prometheus-client`
//! crate and rendered in the Prometheus text format 0.0.4 (what `promtool check metrics`
//! and every Prometheus scrape accept).
//!
//! - [`Registry`]: families by name, each a `prometheus-client` `Family` keyed by its label
//!   set. Handles ([`Counter`], [`Gauge`], [`Histogram`]) are cheap clones over atomics: the
//!   hot path never locks; registering and rendering take the registry's lock.
//! - Snapshot families: values another component already keeps (the storage engine's
//!   per-region statistics, the RESP keyspace) are copied in by a render hook
//!   ([`Registry::on_render`]) just before each rendering, so nothing is counted twice.
//! - [`Registry::for_binary`] adds `speedlayer_build_info` (version, git commit, profile)
//!   and the process's uptime and start time.
//!
//! Bounded: every family's label values come from a fixed set (RPC and command names,
//! outcomes) or from what the process hosts (tables, regions, stores). This crate does not
//! serve HTTP; each binary mounts [`Registry::render`] on its own router.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};

pub mod build;

/// The `Content-Type` of [`Registry::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Default histogram buckets for latencies in seconds (1 ms … 10 s).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A label set: `(name, value)` pairs in the order given.
pub type Labels = Vec<(String, String)>;

fn labels(l: &[(&str, &str)]) -> Labels {
    l.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A monotonically increasing counter.
#[derive(Debug, Clone, Default)]
pub struct Counter(prometheus_client::metrics::counter::Counter<u64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// Current value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Debug, Clone, Default)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge<i64>);

impl Gauge {
    /// Sets the value.
    pub fn set(&self, v: i64) {
        self.0.set(v);
    }
    /// Adds `d` (may be negative).
    pub fn add(&self, d: i64) {
        self.0.inc_by(d);
    }
    /// Current value.
    pub fn get(&self) -> i64 {
        self.0.get()
    }
}

#[derive(Debug)]
struct HistogramInner {
    bounds: Vec<f64>,
    /// Non-cumulative counts per bucket; the last is `+Inf`.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in micro-units, so it stays one atomic integer (no lock on observe).
    sum_micros: AtomicU64,
}

/// A histogram with fixed upper bounds, lock-free on [`Histogram::observe`] (the
/// `prometheus-client` histogram takes a mutex per observation; the RESP and gRPC hot paths
/// should not).
#[derive(Debug, Clone)]
pub struct Histogram(Arc<HistogramInner>);

/// A point-in-time copy of a histogram: cumulative counts per upper bound.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound, observations <= bound)`, ascending, ending with `+Inf`.
    pub cumulative: Vec<(f64, u64)>,
    /// Sum of the observations.
    pub sum: f64,
}

impl HistogramSnapshot {
    /// Observations counted.
    pub fn count(&self) -> u64 {
        self.cumulative.last().map_or(0, |b| b.1)
    }

    /// The `q` quantile (0..=1) of the observations between `earlier` and `self`, by linear
    /// interpolation inside the bucket (as PromQL's `histogram_quantile`); `None` without
    /// observations. A value in the `+Inf` bucket reports the highest finite bound.
    pub fn quantile_since(&self, earlier: Option<&HistogramSnapshot>, q: f64) -> Option<f64> {
        let delta: Vec<(f64, u64)> = self
            .cumulative
            .iter()
            .enumerate()
            .map(|(i, (b, c))| {
                let before = earlier.and_then(|e| e.cumulative.get(i)).map_or(0, |x| x.1);
                (*b, c.saturating_sub(before))
            })
            .collect();
        let total = delta.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total as f64;
        let mut prev_bound = 0.0;
        let mut prev_count = 0u64;
        for (bound, cum) in &delta {
            if (*cum as f64) >= rank {
                if bound.is_infinite() {
                    return Some(prev_bound);
                }
                let in_bucket = (cum - prev_count) as f64;
                let frac = if in_bucket > 0.0 {
                    (rank - prev_count as f64) / in_bucket
                } else {
                    1.0
                };
                return Some(prev_bound + (bound - prev_bound) * frac);
            }
            prev_bound = *bound;
            prev_count = *cum;
        }
        Some(prev_bound)
    }
}

impl Histogram {
    /// A detached histogram with upper `bounds` (ascending; `+Inf` is implied).
    pub fn new(bounds: &[f64]) -> Self {
        let bounds: Vec<f64> = bounds.iter().copied().filter(|b| b.is_finite()).collect();
        Histogram(Arc::new(HistogramInner {
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            bounds,
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }))
    }

    /// Records one observation (negative values and NaN count as 0).
    pub fn observe(&self, v: f64) {
        let v = if v.is_nan() { 0.0 } else { v.max(0.0) };
        let i = self.0.bounds.partition_point(|b| *b < v);
        self.0.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.0.count.fetch_add(1, Ordering::Relaxed);
        self.0
            .sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
    }

    /// Records `n` observations of `v` at once (one bucket update for a batch of equal
    /// values, e.g. the mean time of each request of a pipelined batch).
    pub fn observe_many(&self, v: f64, n: u64) {
        let v = if v.is_nan() { 0.0 } else { v.max(0.0) };
        let i = self.0.bounds.partition_point(|b| *b < v);
        self.0.buckets[i].fetch_add(n, Ordering::Relaxed);
        self.0.count.fetch_add(n, Ordering::Relaxed);
        self.0
            .sum_micros
            .fetch_add((v * 1e6 * n as f64) as u64, Ordering::Relaxed);
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }

    /// The current cumulative counts and sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cum = 0;
        let mut cumulative = Vec::with_capacity(self.0.buckets.len());
        for (i, b) in self.0.buckets.iter().enumerate() {
            cum += b.load(Ordering::Relaxed);
            cumulative.push((self.0.bounds.get(i).copied().unwrap_or(f64::INFINITY), cum));
        }
        HistogramSnapshot {
            cumulative,
            sum: self.0.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
        }
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.snapshot();
        // prometheus-client takes per-bucket (non-cumulative) counts and accumulates them.
        let mut prev = 0;
        let per_bucket: Vec<(f64, u64)> = snap
            .cumulative
            .iter()
            .map(|(b, c)| {
                let n = c - prev;
                prev = *c;
                (*b, n)
            })
            .collect();
        encoder.encode_histogram::<NoLabelSet>(snap.sum, snap.count(), &per_bucket, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[derive(Debug, Clone)]
struct HistogramBuckets(Arc<[f64]>);

impl prometheus_client::metrics::family::MetricConstructor<Histogram> for HistogramBuckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(&self.0)
    }
}

#[derive(Debug, Clone)]
enum FamilyRef {
    Counter(Family<Labels, prometheus_client::metrics::counter::Counter<u64>>),
    Gauge(Family<Labels, prometheus_client::metrics::gauge::Gauge<i64>>),
    FloatGauge(Family<Labels, prometheus_client::metrics::gauge::Gauge<f64, AtomicU64>>),
    Histogram(Family<Labels, Histogram, HistogramBuckets>),
}

#[derive(Debug, Default)]
struct Inner {
    reg: prometheus_client::registry::Registry,
    families: BTreeMap<String, FamilyRef>,
    /// Families refilled by the render hooks: emptied before each rendering.
    snapshot: Vec<String>,
}

/// `prometheus-client` appends `_total` to counters itself.
fn base_name(name: &str, kind: &FamilyRef) -> String {
    match kind {
        FamilyRef::Counter(_) => name.strip_suffix("_total").unwrap_or(name).to_owned(),
        _ => name.to_owned(),
    }
}

impl Inner {
    fn family(&mut self, name: &str, help: &str, make: impl FnOnce() -> FamilyRef) -> FamilyRef {
        if let Some(f) = self.families.get(name) {
            return f.clone();
        }
        let f = make();
        let base = base_name(name, &f);
        // prometheus-client ends every help text with a full stop itself.
        let help = help.trim_end_matches('.');
        match &f {
            FamilyRef::Counter(x) => self.reg.register(base, help, x.clone()),
            FamilyRef::Gauge(x) => self.reg.register(base, help, x.clone()),
            FamilyRef::FloatGauge(x) => self.reg.register(base, help, x.clone()),
            FamilyRef::Histogram(x) => self.reg.register(base, help, x.clone()),
        }
        self.families.insert(name.to_owned(), f.clone());
        f
    }

    fn counter(&mut self, name: &str, help: &str, l: &[(&str, &str)]) -> Counter {
        match self.family(name, help, || FamilyRef::Counter(Family::default())) {
            FamilyRef::Counter(f) => Counter(f.get_or_create_owned(&labels(l))),
            _ => {
                debug_assert!(false, "metric {name} registered with another kind");
                Counter::default()
            }
        }
    }

    fn gauge(&mut self, name: &str, help: &str, l: &[(&str, &str)]) -> Gauge {
        match self.family(name, help, || FamilyRef::Gauge(Family::default())) {
            FamilyRef::Gauge(f) => Gauge(f.get_or_create_owned(&labels(l))),
            _ => {
                debug_assert!(false, "metric {name} registered with another kind");
                Gauge::default()
            }
        }
    }

    fn float_gauge(&mut self, name: &str, help: &str, l: &[(&str, &str)], v: f64) {
        match self.family(name, help, || FamilyRef::FloatGauge(Family::default())) {
            FamilyRef::FloatGauge(f) => {
                f.get_or_create(&labels(l)).set(v);
            }
            _ => debug_assert!(false, "metric {name} registered with another kind"),
        }
    }
}

/// A hook run before each rendering to copy values kept elsewhere into snapshot families.
pub type RenderHook = Arc<dyn Fn(&mut Snapshot<'_>) + Send + Sync>;

/// The registry: metric families by name, plus render hooks and included registries.
pub struct Registry {
    inner: Mutex<Inner>,
    hooks: Mutex<Vec<RenderHook>>,
    children: Mutex<Vec<Arc<Registry>>>,
    process: Option<build::Process>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("families", &self.inner.lock().families.len())
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// An empty registry (a component's own; include it in a binary's with
    /// [`Registry::include`]).
    pub fn new() -> Arc<Registry> {
        Arc::new(Registry {
            inner: Mutex::new(Inner::default()),
            hooks: Mutex::new(Vec::new()),
            children: Mutex::new(Vec::new()),
            process: None,
        })
    }

    /// The registry of the binary `binary` (e.g. `speedlayer-server`): with
    /// `speedlayer_build_info`, `speedlayer_process_uptime_seconds` and
    /// `speedlayer_process_start_time_seconds`.
    pub fn for_binary(binary: &str) -> Arc<Registry> {
        let process = build::Process::new(binary);
        let r = Registry {
            inner: Mutex::new(Inner::default()),
            hooks: Mutex::new(Vec::new()),
            children: Mutex::new(Vec::new()),
            process: Some(process.clone()),
        };
        r.gauge(
            "speedlayer_build_info",
            "Always 1; the labels say which build this process runs (binary, version, git commit, cargo profile)",
            &process.info_labels(),
        )
        .set(1);
        Arc::new(r)
    }

    /// The process's build and start time, for binaries made by [`Registry::for_binary`].
    pub fn process(&self) -> Option<&build::Process> {
        self.process.as_ref()
    }

    /// The counter `name{labels}`, created at 0 on first use. `name` is the exposed name
    /// (ending in `_total`). Registering the same name with another kind returns a
    /// detached handle (a programming error, caught by `debug_assert` in tests).
    pub fn counter(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Counter {
        self.inner.lock().counter(name, help, labels)
    }

    /// The gauge `name{labels}`.
    pub fn gauge(&self, name: &str, help: &str, labels: &[(&str, &str)]) -> Gauge {
        self.inner.lock().gauge(name, help, labels)
    }

    /// The histogram `name{labels}` with upper `bounds` (ascending). The bounds of the
    /// family's first registration apply to all its label sets.
    pub fn histogram(
        &self,
        name: &str,
        help: &str,
        l: &[(&str, &str)],
        bounds: &[f64],
    ) -> Histogram {
        let mut inner = self.inner.lock();
        match inner.family(name, help, || {
            FamilyRef::Histogram(Family::new_with_constructor(HistogramBuckets(
                bounds.into(),
            )))
        }) {
            FamilyRef::Histogram(f) => f.get_or_create_owned(&labels(l)),
            _ => {
                debug_assert!(false, "metric {name} registered with another kind");
                Histogram::new(bounds)
            }
        }
    }

    /// Renders `child`'s families after this registry's own, in every rendering.
    pub fn include(&self, child: Arc<Registry>) {
        self.children.lock().push(child);
    }

    /// Runs `hook` before each rendering. The hook fills snapshot families through the
    /// [`Snapshot`] it is given (emptied before each run, so a region that left disappears);
    /// it must not call this registry's other methods (the registry is locked meanwhile).
    pub fn on_render(&self, hook: RenderHook) {
        self.hooks.lock().push(hook);
    }

    /// Everything, in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        let hooks: Vec<RenderHook> = self.hooks.lock().clone();
        {
            let mut inner = self.inner.lock();
            for name in inner.snapshot.clone() {
                match inner.families.get(&name) {
                    Some(FamilyRef::Counter(f)) => f.clear(),
                    Some(FamilyRef::Gauge(f)) => f.clear(),
                    Some(FamilyRef::FloatGauge(f)) => f.clear(),
                    Some(FamilyRef::Histogram(f)) => f.clear(),
                    None => {}
                }
            }
            if let Some(p) = &self.process {
                inner.float_gauge(
                    "speedlayer_process_uptime_seconds",
                    "Seconds since this process started",
                    &[],
                    p.uptime().as_secs_f64(),
                );
                inner.float_gauge(
                    "speedlayer_process_start_time_seconds",
                    "Start time of the process since the Unix epoch, in seconds",
                    &[],
                    p.start_unix_secs(),
                );
            }
            let mut snap = Snapshot { inner: &mut inner };
            for h in &hooks {
                h(&mut snap);
            }
            // Writing to a String cannot fail.
            let _ = prometheus_client::encoding::prometheus_text::encode(out, &inner.reg);
        }
        let children: Vec<Arc<Registry>> = self.children.lock().clone();
        for c in children {
            c.render_into(out);
        }
    }
}

/// What a render hook writes into: values copied from elsewhere, valid for one rendering.
pub struct Snapshot<'a> {
    inner: &'a mut Inner,
}

impl Snapshot<'_> {
    fn mark(&mut self, name: &str) {
        if !self.inner.snapshot.iter().any(|n| n == name) {
            self.inner.snapshot.push(name.to_owned());
        }
    }

    /// Sets the counter `name{labels}` to `value` (a total kept by its owner).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: u64) {
        self.mark(name);
        let c = self.inner.counter(name, help, labels);
        c.add(value.saturating_sub(c.get()));
    }

    /// Sets the gauge `name{labels}` to `value`.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: i64) {
        self.mark(name);
        self.inner.gauge(name, help, labels).set(value);
    }

    /// Sets the floating-point gauge `name{labels}` to `value`.
    pub fn float_gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], value: f64) {
        self.mark(name);
        self.inner.float_gauge(name, help, labels, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_gauges_and_histograms_with_labels_in_text_format() {
        let r = Registry::new();
        r.counter("events_in_total", "Events in.", &[("component", "src\"1")])
            .add(3);
        r.counter("events_in_total", "Events in.", &[("component", "src\"1")])
            .inc();
        r.gauge("channel_fill", "Fill.", &[]).set(-2);
        let h = r.histogram("lat_seconds", "Latency.", &[("p", "a")], &[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let text = r.render();
        assert!(
            text.contains("# HELP events_in_total Events in.\n# TYPE events_in_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("events_in_total{component=\"src\\\"1\"} 4\n"),
            "{text}"
        );
        assert!(text.contains("channel_fill -2\n"), "{text}");
        assert!(
            text.contains("lat_seconds_bucket{p=\"a\",le=\"0.1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{p=\"a\",le=\"1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("lat_seconds_bucket{p=\"a\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(text.contains("lat_seconds_count{p=\"a\"} 3\n"), "{text}");
        assert!(text.contains("lat_seconds_sum{p=\"a\"} 5.55\n"), "{text}");
        assert!(
            !text.contains("# EOF"),
            "text format 0.0.4 has no EOF marker"
        );
    }

    #[test]
    fn snapshot_families_are_refilled_each_rendering() {
        let r = Registry::new();
        let regions = Arc::new(Mutex::new(vec![("1", 10i64), ("2", 20)]));
        let seen = regions.clone();
        r.on_render(Arc::new(move |s: &mut Snapshot<'_>| {
            for (id, v) in seen.lock().iter() {
                s.gauge("mem_bytes", "Bytes.", &[("region", id)], *v);
                s.counter(
                    "flushes_total",
                    "Flushes.",
                    &[("region", id)],
                    (*v as u64) / 10,
                );
            }
        }));
        let text = r.render();
        assert!(text.contains("mem_bytes{region=\"2\"} 20\n"), "{text}");
        assert!(text.contains("flushes_total{region=\"1\"} 1\n"), "{text}");
        regions.lock().remove(1);
        let text = r.render();
        assert!(
            !text.contains("region=\"2\""),
            "a region that left disappears: {text}"
        );
        assert!(text.contains("mem_bytes{region=\"1\"} 10\n"), "{text}");
    }

    #[test]
    fn binary_registry_has_build_info_and_uptime_and_children() {
        let r = Registry::for_binary("speedlayer-test");
        let child = Registry::new();
        child.counter("child_total", "Child.", &[]).inc();
        r.include(child);
        let text = r.render();
        assert!(
            text.contains("speedlayer_build_info{binary=\"speedlayer-test\",version=\""),
            "{text}"
        );
        assert!(
            text.contains("speedlayer_process_uptime_seconds "),
            "{text}"
        );
        assert!(text.contains("child_total 1\n"), "{text}");
    }

    #[test]
    fn quantiles_interpolate_within_buckets_of_the_interval() {
        let h = Histogram::new(&[0.001, 0.01, 0.1]);
        for _ in 0..100 {
            h.observe(0.0005);
        }
        let before = h.snapshot();
        for _ in 0..90 {
            h.observe(0.005);
        }
        for _ in 0..10 {
            h.observe(0.05);
        }
        let now = h.snapshot();
        let p50 = now.quantile_since(Some(&before), 0.5).unwrap();
        assert!(p50 > 0.001 && p50 <= 0.01, "{p50}");
        let p99 = now.quantile_since(Some(&before), 0.99).unwrap();
        assert!(p99 > 0.01 && p99 <= 0.1, "{p99}");
        assert_eq!(now.quantile_since(Some(&now), 0.5), None, "no observations");
    }
}
