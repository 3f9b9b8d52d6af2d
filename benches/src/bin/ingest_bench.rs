//! End-to-end throughput and latency of the ingest worker: tansu → worker → region server
//! (`sync` puts) + overspeed rule + RESP sets, all real, on loopback.
//!
//! Two phases against one running stack (a tansu broker and a release `speedlayer-server`
//! started by the bench, the worker in this process over gRPC/RESP/Kafka):
//! 1. **Throughput**: the topic is pre-filled with `--events` simulated driving events,
//!    then a worker starts; events/s = events / (time from the first consumed record to
//!    `ingest_stored_total` reaching the count). The group join is reported apart.
//! 2. **Latency**: with the worker caught up, events are produced at `--rate` for
//!    `--seconds`; every `--probe-every`-th event is a probe whose `driving` row is polled
//!    with `Get` every 5 ms by its own task until readable. Latency = produce call → row
//!    readable (so it includes up to one poll interval and one `Get`). The phase's producer
//!    is connected first (one delivered record before the clock starts), as a fleet's
//!    long-lived producers are.
//!
//! ```text
//! cargo build --release -p speedlayer-server --bin speedlayer-server -p speedlayer-benches --bin ingest_bench
//! target/release/ingest_bench --events 500000
//! ```
//!
//! It measures, it does not assert; it is not a test (see `tests/tests/ingest_*.rs`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use speedlayer_client::Client;
use speedlayer_client::proto::{GetRequest, ScanRequest};
use speedlayer_ingest::event::parse_driving;
use speedlayer_ingest::metrics::Registry;
use speedlayer_ingest::simulate::car::Car;
use speedlayer_ingest::worker::rows::driving_key;
use speedlayer_ingest::worker::{GrpcStore, Worker, WorkerConfig};
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;
use tokio::sync::watch;

const TOPIC: &str = "SmartCar-Topic";

/// How often a probe re-reads its row (the resolution of the latency figures).
const PROBE_POLL: Duration = Duration::from_millis(5);
/// A probe not readable after this long is counted as missing.
const PROBE_LIMIT: Duration = Duration::from_secs(60);

/// Polls `driving` row `key` until readable: the time since `sent`, or `None` after
/// [`PROBE_LIMIT`].
async fn probe(client: Client, key: Vec<u8>, sent: Instant) -> Option<Duration> {
    while sent.elapsed() < PROBE_LIMIT {
        let got = client
            .get(GetRequest {
                table: "driving".into(),
                row: key.clone().into(),
                ..GetRequest::default()
            })
            .await;
        if let Ok(Some(_)) = got {
            return Some(sent.elapsed());
        }
        tokio::time::sleep(PROBE_POLL).await; // re-poll the row
    }
    None
}

/// Flags of the ingest benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Events pre-filled for the throughput phase.
    #[arg(long, default_value_t = 500_000)]
    events: usize,
    /// Simulated cars (one event per car per simulated second).
    #[arg(long, default_value_t = 2_000)]
    cars: u32,
    /// Partitions of the driving topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Produce rate of the latency phase, events/s.
    #[arg(long, default_value_t = 10_000)]
    rate: usize,
    /// Length of the latency phase, seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// One probe every this many events in the latency phase.
    #[arg(long, default_value_t = 100)]
    probe_every: usize,
}

/// Deterministic simulated driving lines: `cars` cars, one event each per simulated second
/// from `from_s` (seconds after 2026-11-22 00:00:00).
struct Sim {
    cars: Vec<Car>,
    rng: StdRng,
    second: u32,
    next_car: usize,
}

impl Sim {
    fn new(cars: u32) -> Sim {
        let mut rng = StdRng::seed_from_u64(6);
        let cars = (0..cars).map(|i| Car::new(i, &mut rng)).collect();
        Sim {
            cars,
            rng,
            second: 0,
            next_car: 0,
        }
    }

    /// (car number, line) of the next event.
    fn next_line(&mut self) -> (String, String) {
        if self.next_car == self.cars.len() {
            self.next_car = 0;
            self.second += 1;
        }
        let s = self.second;
        let time = format!(
            "20261122{:02}{:02}{:02}",
            s / 3600 % 24,
            s / 60 % 60,
            s % 60
        );
        let car = &mut self.cars[self.next_car];
        self.next_car += 1;
        let mut line = String::new();
        car.driving_line(&time, &mut self.rng, &mut line);
        let line = line.trim_end().to_string();
        (car.number.clone(), line)
    }
}

fn producer(brokers: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "2000000")
        .set("log_level", "3")
        .create()
        .expect("producer")
}

/// The smallest bucket bound of Prometheus histogram `name` holding quantile `q` (cumulative
/// `_bucket{le=..}` lines of the registry's text).
fn bucket_quantile(registry: &Registry, name: &str, q: f64) -> String {
    // `NAME_bucket{topic="…",le="…"} COUNT` (one topic in this bench).
    let prefix = format!("{name}_bucket{{");
    let text = registry.render();
    let buckets: Vec<(&str, f64)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let rest = &rest[rest.find("le=\"")? + 4..];
            let (le, count) = rest.split_once("\"} ")?;
            Some((le, count.parse().ok()?))
        })
        .collect();
    let total = buckets.last().map_or(0.0, |b| b.1);
    buckets
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map_or_else(|| "?".into(), |(le, _)| format!("≤ {le} s"))
}

fn metric(registry: &Registry, name: &str) -> f64 {
    registry
        .render()
        .lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args = Args::parse();
    // `RUST_LOG=speedlayer_ingest=debug` shows the worker's slow cycles with their stages.
    if let Err(e) = speedlayer_logging::init(speedlayer_logging::LogFormat::Text, "warn") {
        eprintln!("ingest_bench: cannot set up logging: {e}");
    }
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, args.partitions);
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ServerProcess::start_pinned(&dir.path().join("data"), &[]);
    let resp = server.resp.expect("RESP on").to_string();
    let rules = dir.path().join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nname = \"overspeed\"\nwindow = \"30s\"\ngroup_by = \"car_number\"\n\
         having = \"avg(speed) > 80\"\nallowed_lateness = \"5s\"\n\
         set_key = \"{window_date}\"\nmember = \"{car_number}\"\nttl = \"7d\"\n",
    )
    .expect("rules file");
    let brokers = tansu.brokers();
    let mut sim = Sim::new(args.cars);

    // Pre-fill.
    let p = producer(&brokers);
    let t = Instant::now();
    let mut pending = Vec::with_capacity(args.events);
    for _ in 0..args.events {
        let (car, line) = sim.next_line();
        let rec = FutureRecord::to(TOPIC).key(&car).payload(&line);
        match p.send_result(rec) {
            Ok(f) => pending.push(f),
            Err((e, _)) => panic!("enqueue failed: {e}"),
        }
    }
    for f in pending {
        f.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    let fill = t.elapsed();
    println!(
        "pre-fill: {} events in {:.1} s ({:.0} events/s produce)",
        args.events,
        fill.as_secs_f64(),
        args.events as f64 / fill.as_secs_f64()
    );

    // Throughput phase.
    let mut cfg = WorkerConfig::new(&brokers, &server.url(), &resp, &rules);
    cfg.group = "ingest-bench".into();
    let registry = Registry::new();
    let store = GrpcStore::connect(&cfg.server).await.expect("grpc");
    let started = Instant::now();
    let worker = Worker::connect(cfg, store, Arc::clone(&registry))
        .await
        .expect("worker");
    let (stop_tx, stop_rx) = watch::channel(false);
    let task = tokio::spawn(worker.run(stop_rx));
    let mut first = None;
    loop {
        let consumed = metric(&registry, "ingest_consumed_total");
        if first.is_none() && consumed > 0.0 {
            first = Some(Instant::now());
        }
        if metric(&registry, "ingest_stored_total") >= args.events as f64 {
            break;
        }
        assert!(!task.is_finished(), "worker stopped");
        tokio::time::sleep(Duration::from_millis(10)).await; // poll interval of the metric
    }
    let done = Instant::now();
    let first = first.unwrap_or(started);
    let busy = done - first;
    println!(
        "throughput: {} events stored in {:.2} s = {:.0} events/s (group join and first fetch {:.2} s before, excluded; {:.0} events/s including it)",
        args.events,
        busy.as_secs_f64(),
        args.events as f64 / busy.as_secs_f64(),
        (first - started).as_secs_f64(),
        args.events as f64 / (done - started).as_secs_f64()
    );
    let client = Client::connect(&server.url()).await.expect("client");
    let rows = client
        .scan_all(ScanRequest {
            table: "driving".into(),
            ..ScanRequest::default()
        })
        .await
        .expect("scan");
    println!(
        "check: {} rows readable in `driving`, {} rule firings, {} dead-lettered",
        rows.len(),
        metric(&registry, "ingest_rule_firings_total"),
        metric(&registry, "ingest_dead_lettered_total")
    );
    drop(rows);

    // Latency phase: each probe polls its own row, so a slow probe never delays another.
    let total = args.rate * args.seconds as usize;
    let mut probes = Vec::with_capacity(total / args.probe_every + 1);
    let p = producer(&brokers);
    // A fleet's producers are long-lived: connect this one (metadata, idempotent producer
    // id) with one delivered event before the clock starts, so its start-up is not
    // counted as the first probes' latency.
    {
        let (car, line) = sim.next_line();
        p.send(
            FutureRecord::to(TOPIC).key(&car).payload(&line),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("warm-up record delivered");
    }
    let tick = Duration::from_millis(10);
    let per_tick = (args.rate / 100).max(1);
    let t = Instant::now();
    let mut sent = 0usize;
    let mut pending = Vec::with_capacity(total);
    let mut interval = tokio::time::interval(tick);
    while sent < total {
        interval.tick().await;
        for _ in 0..per_tick.min(total - sent) {
            let (car, line) = sim.next_line();
            let at = Instant::now();
            let rec = FutureRecord::to(TOPIC).key(&car).payload(&line);
            match p.send_result(rec) {
                Ok(f) => pending.push(f),
                Err((e, _)) => panic!("enqueue failed: {e}"),
            }
            sent += 1;
            if sent.is_multiple_of(args.probe_every) {
                let ev = parse_driving(&line).expect("simulated line parses");
                let key = driving_key(&ev, line.as_bytes());
                probes.push(tokio::spawn(probe(client.clone(), key, at)));
            }
        }
    }
    let produce_secs = t.elapsed().as_secs_f64();
    for f in pending {
        f.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
    let mut hist = Histogram::<u64>::new(3).expect("histogram");
    let mut missing = 0;
    for h in probes {
        match h.await.expect("probe task") {
            Some(d) => hist.record(d.as_micros() as u64).expect("record"),
            None => missing += 1,
        }
    }
    println!(
        "latency: {sent} events at {:.0} events/s, {} probes ({missing} not readable within {PROBE_LIMIT:?}), polled every {PROBE_POLL:?}, produce → row readable: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        sent as f64 / produce_secs,
        hist.len(),
        hist.value_at_quantile(0.50) as f64 / 1000.0,
        hist.value_at_quantile(0.99) as f64 / 1000.0,
        hist.max() as f64 / 1000.0
    );
    println!(
        "worker cycle (consumed → stored, flagged, committed), both phases: p50 {}, p99 {}",
        bucket_quantile(&registry, "ingest_batch_seconds", 0.50),
        bucket_quantile(&registry, "ingest_batch_seconds", 0.99)
    );
    let _ = stop_tx.send(true);
    match task.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => eprintln!("worker ended with: {e}"),
        Err(e) => eprintln!("worker task: {e}"),
    }
    drop(server);
    drop(tansu);
}
