//! Shared helpers of the `ingest_*` end-to-end tests: a real tansu broker, the real
//! `speedlayer-server` process (gRPC region server + our RESP TTL set service, pinned ports
//! so a stopped server comes back at the same addresses), an in-process worker talking to
//! both over the network, a data generator with garbage mixed in, and an independent
//! reference computation of the flagged sets.
//!
//! Nothing at a system boundary is stood in: rows are read back with `speedlayer-client`
//! scans, sets with the `redis` crate against our RESP port.

#![allow(dead_code)]

pub mod status;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use speedlayer_client::Client;
use speedlayer_client::proto::ScanRequest;
use speedlayer_ingest::metrics::Registry;
use speedlayer_ingest::worker::{GrpcStore, Store, Worker, WorkerConfig};
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;
use tokio::sync::watch;

pub const TOPIC: &str = "SmartCar-Topic";
pub const DLQ: &str = "SmartCar-Topic.dlq";
/// 2026-11-22 14:30:00 read as UTC, in ms.
pub const T0_MS: i64 = 1_795_357_800_000;

/// A table read back through the real client: row key → qualifier → newest value.
pub type Table = BTreeMap<Vec<u8>, BTreeMap<String, Vec<u8>>>;

/// A client of our RESP TTL set service (the `redis` crate, a real Redis client).
pub struct Resp {
    pub addr: String,
}

impl Resp {
    fn conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://{}", self.addr))?.get_connection()
    }

    /// All sets with their members; an error while the service is down.
    pub fn try_sets(&self) -> redis::RedisResult<BTreeMap<String, BTreeSet<String>>> {
        let mut c = self.conn()?;
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c)?;
        let mut out = BTreeMap::new();
        for k in keys {
            let m: BTreeSet<String> = redis::cmd("SMEMBERS").arg(&k).query(&mut c)?;
            out.insert(k, m);
        }
        Ok(out)
    }

    /// All sets with their members.
    pub fn sets(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.try_sets().unwrap()
    }

    pub fn ttl(&self, key: &str) -> i64 {
        let mut c = self.conn().unwrap();
        redis::cmd("TTL").arg(key).query(&mut c).unwrap()
    }
}

/// Scans `table` on the server at `url`; an error while the server is down.
pub async fn scan_table(url: &str, table: &str) -> Result<Table, String> {
    let client = Client::connect(url).await.map_err(|e| e.to_string())?;
    let req = ScanRequest {
        table: table.into(),
        ..ScanRequest::default()
    };
    let rows = client.scan_all(req).await.map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let cols = r
                .cells
                .iter()
                .map(|c| {
                    (
                        String::from_utf8_lossy(&c.qualifier).into_owned(),
                        c.value.to_vec(),
                    )
                })
                .collect();
            (r.row.to_vec(), cols)
        })
        .collect())
}

/// One generated driving line.
#[derive(Debug, Clone)]
pub struct Line {
    pub car: String,
    pub t_ms: i64,
    pub speed: u32,
    pub text: String,
}

fn stamp(ms: i64) -> String {
    chrono_like(ms)
}

/// yyyyMMddHHmmss of UTC ms without a chrono dependency in this crate.
fn chrono_like(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `cars` cars, one event per car per second for `seconds` s from `from_s`, in time order;
/// each car has a base speed so some windows average above 80 and some below.
pub fn driving_lines(cars: usize, from_s: i64, seconds: i64, seed: u64) -> Vec<Line> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let bases: Vec<i64> = (0..cars).map(|_| rng.random_range(60..100)).collect();
    let mut out = Vec::new();
    for s in from_s..from_s + seconds {
        for (c, base) in bases.iter().enumerate() {
            let t_ms = T0_MS + s * 1000;
            let speed = (base + rng.random_range(-15..15)).clamp(0, 300) as u32;
            let car = format!("V{c:04}");
            let text = format!(
                "{},{car},{},{},{},N,{speed},A{:02}",
                stamp(t_ms),
                rng.random_range(0..10),
                rng.random_range(0..10),
                rng.random_range(-540..=540),
                c % 100
            );
            out.push(Line {
                car,
                t_ms,
                speed,
                text,
            });
        }
    }
    out
}

/// Garbage lines of every kind the parser refuses.
pub fn garbage(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| match i % 5 {
            0 => format!("garbage line {i}"),
            1 => format!("{},V0001,3,0,-12,N,999,A07", stamp(T0_MS + i as i64)),
            2 => format!("20261399000000,V0001,3,0,-12,N,80,A07#{i}"),
            3 => format!("{},bad{i},3,0,-12,N,80,A07", stamp(T0_MS)),
            _ => format!("{},V0001,3,0,-12,X,80,A07,extra{i}", stamp(T0_MS)),
        })
        .collect()
}

/// Produces lines keyed by their car number (garbage keyed by `garbage`): everything is
/// enqueued at once, then every delivery report is awaited.
pub async fn produce(brokers: &str, lines: &[(Option<String>, String)]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .set("queue.buffering.max.messages", "1000000")
        .create()
        .unwrap();
    let mut pending = Vec::with_capacity(lines.len());
    for (key, text) in lines {
        let key = key.as_deref().unwrap_or("garbage");
        let rec = FutureRecord::to(TOPIC).key(key).payload(text.as_str());
        match p.send_result(rec) {
            Ok(f) => pending.push(f),
            Err((e, _)) => panic!("enqueue failed: {e}"),
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// Independent reference: per car and 30 s window, avg(speed) > threshold.
pub fn reference_sets(
    lines: &[Line],
    threshold_for: impl Fn(i64) -> u32,
) -> BTreeMap<String, BTreeSet<String>> {
    let mut sums: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for l in lines {
        let start = l.t_ms - l.t_ms.rem_euclid(30_000);
        let e = sums.entry((l.car.clone(), start)).or_default();
        e.0 += 1;
        e.1 += u64::from(l.speed);
    }
    let mut sets: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for ((car, start), (n, sum)) in sums {
        if sum as f64 / n as f64 > f64::from(threshold_for(start)) {
            sets.entry(stamp(start)[..8].to_string())
                .or_default()
                .insert(car);
        }
    }
    sets
}

/// Expected `driving` row keys (independent of the worker's code): car#time#crc32(line).
pub fn expected_keys(lines: &[Line]) -> BTreeSet<Vec<u8>> {
    lines
        .iter()
        .map(|l| {
            format!(
                "{}#{}#{:08x}",
                l.car,
                stamp(l.t_ms),
                crc32fast::hash(l.text.as_bytes())
            )
            .into_bytes()
        })
        .collect()
}

pub fn rules_file(dir: &Path, threshold: u32) -> PathBuf {
    let path = dir.join("rules.toml");
    write_rules(&path, threshold);
    path
}

pub fn write_rules(path: &Path, threshold: u32) {
    std::fs::write(
        path,
        format!(
            "[[rule]]\nname = \"overspeed\"\nwindow = \"30s\"\ngroup_by = \"car_number\"\n\
             having = \"avg(speed) > {threshold}\"\nallowed_lateness = \"5s\"\n\
             set_key = \"{{window_date}}\"\nmember = \"{{car_number}}\"\nttl = \"7d\"\n"
        ),
    )
    .unwrap();
}

/// The test's broker, region server + RESP service, rule file and topics.
pub struct Env {
    pub tansu: Tansu,
    /// The real `speedlayer-server` (stop/restart it for an outage: same ports, same data).
    pub server: ServerProcess,
    pub redis: Resp,
    pub dir: tempfile::TempDir,
    pub rules: PathBuf,
    url: String,
}

impl Env {
    pub fn start(threshold: u32) -> Env {
        let tansu = Tansu::start();
        tansu.create_topic(TOPIC, 4);
        Env::with_tansu(tansu, threshold)
    }

    /// Like [`start`](Self::start) on a broker the test started (e.g. a `sqlite://` one it
    /// will stop and restart); `TOPIC` must already exist on it.
    pub fn with_tansu(tansu: Tansu, threshold: u32) -> Env {
        // The DLQ topic is left to the worker to create.
        let dir = tempfile::tempdir().unwrap();
        // A flagged member is acknowledged before the worker commits: `always` makes every
        // acknowledged SADD survive a server stop, so the sets can be asserted exactly.
        // The worker's info lines (sink failures, recoveries, partition changes) are
        // captured by default, so a test failing in CI shows them; `RUST_LOG` overrides
        // (`RUST_LOG=info` adds librdkafka's).
        let filter = tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("speedlayer_ingest=info"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
        let server =
            ServerProcess::start_pinned(&dir.path().join("data"), &["--appendfsync", "always"]);
        let redis = Resp {
            addr: server.resp.expect("pinned server has RESP").to_string(),
        };
        let rules = rules_file(dir.path(), threshold);
        let url = server.url();
        Env {
            tansu,
            server,
            redis,
            dir,
            rules,
            url,
        }
    }

    /// The region server's gRPC URL (stable across restarts).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn config(&self) -> WorkerConfig {
        let mut c = WorkerConfig::new(
            &self.tansu.brokers(),
            &self.url,
            &self.redis.addr,
            &self.rules,
        );
        c.idle_flush = Duration::from_secs(3);
        c.batch_linger = Duration::from_millis(20);
        c.backoff_max = Duration::from_secs(1);
        c.rules_poll = Duration::from_millis(200);
        c
    }

    /// Starts a worker in this process, talking gRPC and RESP to the server and Kafka to
    /// tansu; aborting its task = `kill -9` as far as Kafka and the store can tell.
    pub async fn worker(&self) -> RunningWorker {
        self.worker_with(self.config()).await
    }

    /// Like [`worker`](Self::worker) with a modified configuration.
    pub async fn worker_with(&self, cfg: WorkerConfig) -> RunningWorker {
        let store = GrpcStore::connect(&cfg.server).await.unwrap();
        self.worker_on(cfg, store).await
    }

    /// Like [`worker_with`](Self::worker_with) over a given store (e.g. a wrapper of the
    /// real one that records what the worker sends).
    pub async fn worker_on<S: Store>(&self, cfg: WorkerConfig, store: S) -> RunningWorker {
        let registry = Registry::new();
        let w = Worker::connect(cfg, store, Arc::clone(&registry))
            .await
            .unwrap();
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(w.run(rx));
        RunningWorker {
            task,
            stop: tx,
            registry,
        }
    }

    /// `table` read back through the client (empty while the server is down).
    pub fn table(&self, table: &str) -> Table {
        self.try_table(table).unwrap_or_default()
    }

    /// `table` read back through the client, or why not.
    pub fn try_table(&self, table: &str) -> Result<Table, String> {
        let url = self.url.clone();
        let table = table.to_string();
        // Called from sync polling closures inside a multi-thread runtime.
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(scan_table(&url, &table))
        })
    }

    pub fn driving_keys(&self) -> BTreeSet<Vec<u8>> {
        self.table("driving").into_keys().collect()
    }

    /// Waits until `cond` holds, polling every 100 ms, up to `limit`.
    pub async fn wait_for(&self, what: &str, limit: Duration, cond: impl FnMut() -> bool) {
        assert!(
            self.settle(limit, cond).await,
            "timed out waiting for {what}"
        );
    }

    /// After an outage or a stall: every row of `lines` is stored, no event was late, and
    /// the `overspeed` rows and flagged sets equal the reference at `threshold`. If the
    /// windows do not all fire within 60 s, prints what the worker counted before the diff.
    pub async fn assert_caught_up_exactly(
        &self,
        w: &RunningWorker,
        lines: &[Line],
        threshold: u32,
    ) {
        let all = expected_keys(lines);
        self.wait_for("catch up", Duration::from_secs(90), || {
            self.driving_keys() == all
        })
        .await;
        let want_windows = reference_windows(lines, |_| threshold);
        let fired = self
            .settle(Duration::from_secs(60), || {
                self.overspeed_keys().len() >= want_windows.len()
            })
            .await;
        if !fired {
            eprintln!(
                "not every window fired within 60 s: consumed {}, stored {}, late {}, firings {}, store retries {}",
                w.metric("ingest_consumed_total"),
                w.metric("ingest_stored_total"),
                w.metric("ingest_late_total"),
                w.metric("ingest_rule_firings_total"),
                w.metric("ingest_store_retries_total"),
            );
        }
        assert_eq!(
            w.metric("ingest_late_total"),
            0.0,
            "events dead-lettered as late: a window fired before all its events arrived"
        );
        assert_same_keys("overspeed rows", &self.overspeed_keys(), &want_windows);
        let want_sets = reference_sets(lines, |_| threshold);
        self.wait_for(
            "sets to match the reference",
            Duration::from_secs(30),
            || self.redis.try_sets().is_ok_and(|s| s == want_sets),
        )
        .await;
    }

    /// Like [`wait_for`](Self::wait_for), but returns whether `cond` came to hold, so the
    /// caller's assertion can say what differs.
    pub async fn settle(&self, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while !cond() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
        }
        true
    }
}

/// A worker task; dropping it (e.g. when a test fails) aborts the task, so a failed test
/// ends instead of leaving workers running against stopped services.
pub struct RunningWorker {
    pub task: tokio::task::JoinHandle<speedlayer_ingest::Result<()>>,
    pub stop: watch::Sender<bool>,
    pub registry: Arc<Registry>,
}

impl RunningWorker {
    /// Abrupt stop: the task is dropped mid-cycle, nothing more is committed.
    pub async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }

    /// Graceful stop.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        (&mut self.task).await.unwrap().unwrap();
    }

    /// Whether the worker task is still running (not returned, not panicked).
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    pub fn metric(&self, name: &str) -> f64 {
        self.registry
            .render()
            .lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Asserts two key sets are equal; on failure names the missing and unexpected keys as text.
#[track_caller]
pub fn assert_same_keys(what: &str, got: &BTreeSet<Vec<u8>>, want: &BTreeSet<Vec<u8>>) {
    let text = |ks: Vec<&Vec<u8>>| -> Vec<String> {
        ks.into_iter()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .collect()
    };
    let missing = text(want.difference(got).collect());
    let extra = text(got.difference(want).collect());
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{what}: {} expected, {} found; missing {missing:?}; unexpected {extra:?}",
        want.len(),
        got.len()
    );
}

/// Independent reference of the `overspeed` row keys: `car#windowstart#overspeed`.
pub fn reference_windows(lines: &[Line], threshold_for: impl Fn(i64) -> u32) -> BTreeSet<Vec<u8>> {
    let mut sums: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for l in lines {
        let start = l.t_ms - l.t_ms.rem_euclid(30_000);
        let e = sums.entry((l.car.clone(), start)).or_default();
        e.0 += 1;
        e.1 += u64::from(l.speed);
    }
    sums.into_iter()
        .filter(|((_, start), (n, sum))| *sum as f64 / *n as f64 > f64::from(threshold_for(*start)))
        .map(|((car, start), _)| format!("{car}#{}#overspeed", stamp(start)).into_bytes())
        .collect()
}

impl Env {
    pub fn overspeed_keys(&self) -> BTreeSet<Vec<u8>> {
        self.table("overspeed").into_keys().collect()
    }
}

/// Lines as keyed records.
pub fn records(lines: &[Line]) -> Vec<(Option<String>, String)> {
    lines
        .iter()
        .map(|l| (Some(l.car.clone()), l.text.clone()))
        .collect()
}
