//! The whole pipeline as one benchmark (issue 16): simulator → collector (tail, file
//! channel, Kafka sink) → tansu → ingest worker (`sync` puts, overspeed rule, TTL sets) →
//! region server, every part a real process on this machine at once.
//!
//! - **Load:** `speedlayer-ingest simulate` writes `--rate` driving lines per second
//!   (`--cars` cars, one line per car per simulated second, so the speed-up is rate/cars)
//!   into `logs/driving.log` for `--duration` wall seconds; no garbage.
//! - **Latency probes:** every `--probe-every-ms` this process appends one driving line
//!   of its own (car `Z0000`…, speed 10) to `logs/probe.log`, which the same collector
//!   tails in a second pipeline into the same topic, and polls the probe's `driving` row
//!   with `Get` every 5 ms (every 2 % of its age once older than 250 ms) until readable:
//!   latency = line written → row readable.
//! - **CPU split:** utime+stime deltas of each process from `/proc/<pid>/stat` over the
//!   load phase; the bottleneck line names the busiest process and whether the worker
//!   kept up (its consumer lag at the end of the load phase).
//! - **Loss:** after the load, waits until the worker stored every line (or `--drain-limit`),
//!   then scans `driving` and compares count and a checksum (sum of 64-bit hashes of
//!   key + the line rebuilt from the row's cells) with every line the logs hold.
//!
//! Prints progress every 5 s and a summary table; the last line is
//! `loss: N events (...)`. `benches/pipeline_bench.sh` builds and runs it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hdrhistogram::Histogram;
use speedlayer_client::Client;
use speedlayer_client::proto::{GetRequest, ScanRequest};
use speedlayer_ingest::event::parse_driving;
use speedlayer_ingest::worker::rows::driving_key;
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;

const TOPIC: &str = "SmartCar-Topic";
const DLQ: &str = "SmartCar-Topic.dlq";
/// First simulated instant of the load (and of the probes' own clock).
const START: &str = "20261122143000";
/// How often a young probe re-reads its row (the resolution of the latency figures; an
/// older probe re-reads every 2 % of its age).
const PROBE_POLL: Duration = Duration::from_millis(5);
/// A probe not readable after this long counts as missing.
const PROBE_LIMIT: Duration = Duration::from_secs(120);
/// Columns of a `driving` row in line order.
const COLUMNS: [&str; 8] = [
    "event_time",
    "car_number",
    "accelerator",
    "brake",
    "steering_angle",
    "turn_signal",
    "speed",
    "area",
];

/// Flags of the pipeline benchmark.
#[derive(Debug, Parser)]
struct Args {
    /// Driving lines per second the simulator writes.
    #[arg(long, default_value_t = 50_000)]
    rate: u32,
    /// Wall seconds of load.
    #[arg(long, default_value_t = 300)]
    duration: u64,
    /// Simulated cars.
    #[arg(long, default_value_t = 2_500)]
    cars: u32,
    /// Partitions of the driving topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
    /// Milliseconds between two latency probes.
    #[arg(long, default_value_t = 100)]
    probe_every_ms: u64,
    /// Longest wait, after the load, for the worker to store everything (seconds).
    #[arg(long, default_value_t = 300)]
    drain_limit: u64,
    /// Working directory (default: a new temporary one, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// A child process, killed on drop.
struct Proc {
    child: Child,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns `cmd` with stdout piped and waits for a line containing `ready`; returns it.
fn spawn_ready(name: &'static str, cmd: &mut Command, ready: &str, log: &Path) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let ready = ready.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(&ready) {
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name}: no ready line in 60 s; see {}", log.display()));
    (Proc { child }, line)
}

/// Spawns `cmd` (stdout and stderr to `log`) without waiting for anything.
fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> Proc {
    let out = std::fs::File::create(log).expect("log file");
    let child = cmd
        .stdout(out.try_clone().expect("log file"))
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
    Proc { child }
}

/// The pid of this process's child whose command name starts with `comm` (the broker
/// and the server are started by the test harness types, which do not expose theirs).
fn child_pid(comm: &str) -> Option<u32> {
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let ppid = stat[close + 1..]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u32>().ok());
        if ppid == Some(me) && name.starts_with(comm) {
            return Some(pid);
        }
    }
    None
}

/// `GET /metrics` from `addr`; empty on failure.
fn metrics(addr: &str) -> String {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    )
    .is_err()
    {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Sum of the samples of `name` (any labels).
fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// utime + stime of `pid` in clock ticks (0 if it is gone).
fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // Fields after the `(comm)`, which may contain spaces: state is field 3, utime 14.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0;
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    n(11) + n(12)
}

fn clock_ticks_per_s() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn line_hash(key: &[u8], line: &str) -> u64 {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    line.hash(&mut h);
    h.finish()
}

/// Count and checksum of every valid line of `files` (each distinct row key once), keyed
/// as the worker keys them; and the number of invalid lines.
fn expected(files: &[PathBuf]) -> (u64, u64, u64) {
    let (mut n, mut sum, mut bad) = (0u64, 0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    for f in files {
        let Ok(file) = std::fs::File::open(f) else {
            continue;
        };
        for line in BufReader::new(file).lines().map_while(Result::ok) {
            match parse_driving(&line) {
                Ok(ev) => {
                    let key = driving_key(&ev, line.as_bytes());
                    if seen.insert(key_id(&key)) {
                        n += 1;
                        sum = sum.wrapping_add(line_hash(&key, &line));
                    }
                }
                Err(_) => bad += 1,
            }
        }
    }
    (n, sum, bad)
}

/// A 128-bit identity of a key, for de-duplication without keeping every key in memory.
fn key_id(key: &[u8]) -> (u64, u64) {
    let mut a = DefaultHasher::new();
    key.hash(&mut a);
    let mut b = DefaultHasher::new();
    (1u8, key).hash(&mut b);
    (a.finish(), b.finish())
}

/// Count and checksum of the `driving` table, each row's line rebuilt from its cells.
async fn stored(client: &Client) -> (u64, u64) {
    let mut stream = client
        .scan(ScanRequest {
            table: "driving".into(),
            ..ScanRequest::default()
        })
        .await
        .expect("scan driving");
    let (mut n, mut sum) = (0u64, 0u64);
    while let Some(row) = stream.next().await.expect("scan row") {
        let line = COLUMNS
            .iter()
            .map(|c| {
                row.cells
                    .iter()
                    .find(|x| x.qualifier.as_ref() == c.as_bytes())
                    .map(|x| String::from_utf8_lossy(&x.value).into_owned())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(",");
        n += 1;
        sum = sum.wrapping_add(line_hash(&row.row, &line));
    }
    (n, sum)
}

/// yyyyMMddHHmmss of START + `s` seconds.
fn probe_time(s: u64) -> String {
    let t = chrono::NaiveDateTime::parse_from_str(START, "%Y%m%d%H%M%S").expect("START")
        + chrono::Duration::seconds(s as i64);
    t.format("%Y%m%d%H%M%S").to_string()
}

/// Writes probes until `stop`, each polled by its own task; the latencies (µs) and the
/// number of probes that never became readable.
///
/// A probe's event time follows the simulated clock (START + wall time × `speedup`), so
/// the rule engine sees it in order with the load; car `Z0000`…`Z9999` in turn keeps the
/// row keys apart.
async fn probes(
    path: PathBuf,
    client: Client,
    every: Duration,
    speedup: f64,
    stop: Arc<AtomicBool>,
    hist: Arc<Mutex<Histogram<u64>>>,
) -> (u64, u64) {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .expect("probe log");
    let mut tasks = Vec::new();
    let mut n = 0u64;
    let mut tick = tokio::time::interval(every);
    let t0 = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let sim = (t0.elapsed().as_secs_f64() * speedup) as u64;
        let line = format!("{},Z{:04},0,0,0,N,10,P01", probe_time(sim), n % 10_000);
        let ev = parse_driving(&line).expect("probe line parses");
        let key = driving_key(&ev, line.as_bytes());
        let sent = Instant::now();
        file.write_all(format!("{line}\n").as_bytes())
            .expect("write probe");
        n += 1;
        let (client, hist) = (client.clone(), hist.clone());
        tasks.push(tokio::spawn(async move {
            while sent.elapsed() < PROBE_LIMIT {
                let got = client
                    .get(GetRequest {
                        table: "driving".into(),
                        row: key.clone().into(),
                        ..GetRequest::default()
                    })
                    .await;
                if let Ok(Some(_)) = got {
                    let us = sent.elapsed().as_micros() as u64;
                    if let Ok(mut h) = hist.lock() {
                        let _ = h.record(us.max(1));
                    }
                    return true;
                }
                // Re-poll every 5 ms while young, then every 2 % of the probe's age: the
                // resolution stays within 2 %, and a backlog of old probes does not turn
                // into a flood of Gets competing with the pipeline for the server.
                tokio::time::sleep(PROBE_POLL.max(sent.elapsed() / 50)).await;
            }
            false
        }));
    }
    let mut missing = 0;
    for t in tasks {
        if !t.await.unwrap_or(false) {
            missing += 1;
        }
    }
    (n, missing)
}

fn ms(us: u64) -> String {
    format!("{:.0} ms", us as f64 / 1000.0)
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d).expect("--dir");
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().expect("tempdir");
            tmp.path().to_path_buf()
        }
    };
    for d in ["logs", "state", "spool"] {
        std::fs::create_dir_all(dir.join(d)).expect("mkdir");
    }
    let speedup = f64::from(args.rate) / f64::from(args.cars);
    println!(
        "pipeline bench: {} lines/s ({} cars at {speedup:.2}× speed) for {} s, {} partitions, probe every {} ms; dir {}",
        args.rate,
        args.cars,
        args.duration,
        args.partitions,
        args.probe_every_ms,
        dir.display()
    );

    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, args.partitions);
    tansu.create_topic(DLQ, 1);
    let brokers = tansu.brokers();
    let server = ServerProcess::start_pinned(&dir.join("data"), &[]);
    let url = server.url();
    let resp = server.resp.expect("pinned server has RESP").to_string();
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
    std::fs::write(
        dir.join("worker.toml"),
        format!(
            "brokers = \"{brokers}\"\nserver = \"{url}\"\nresp = \"{resp}\"\n\
             rules = \"{}\"\ngroup = \"pipeline-bench\"\nhttp_addr = \"127.0.0.1:0\"\n",
            rules.display()
        ),
    )
    .expect("worker.toml");
    let (worker, ready) = spawn_ready(
        "worker",
        Command::new(bin_path("speedlayer-ingest"))
            .arg("worker")
            .arg("--config")
            .arg(dir.join("worker.toml")),
        "READY",
        &dir.join("worker.log"),
    );
    let worker_http = ready
        .split_whitespace()
        .find_map(|f| f.strip_prefix("http="))
        .expect("READY http=")
        .to_string();
    let pipeline = |name: &str, file: &str| {
        format!(
            "[[pipeline]]\nname = \"{name}\"\nbatch_size = 2000\n\
             source = {{ type = \"tail\", path = \"logs/{file}\", position_file = \"state/{name}.pos\", poll_interval = \"20ms\" }}\n\
             interceptors = [{{ type = \"validate\", format = \"driving\" }}]\n\
             channel = {{ type = \"file\", dir = \"state/{name}-channel\", capacity_mb = 512, fsync = \"put\" }}\n\
             sink = {{ type = \"kafka\", brokers = \"{brokers}\", topic = \"{TOPIC}\", key = \"car_number\" }}\n\
             dead_letter = {{ type = \"kafka\", brokers = \"{brokers}\", topic = \"{DLQ}\" }}\n"
        )
    };
    std::fs::write(
        dir.join("agent.toml"),
        format!(
            "[agent]\ndrain_timeout = \"30s\"\n\n{}\n{}",
            pipeline("driving", "driving.log"),
            pipeline("probe", "probe.log")
        ),
    )
    .expect("agent.toml");
    let (collector, ready) = spawn_ready(
        "collector",
        Command::new(bin_path("speedlayer-ingest"))
            .arg("collect")
            .arg("--config")
            .arg(dir.join("agent.toml"))
            .args(["--http-addr", "127.0.0.1:0"]),
        "ready",
        &dir.join("collect.log"),
    );
    let collect_http = ready
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .expect("collector metrics address")
        .to_string();

    let client = Client::connect(&url).await.expect("client");
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 600_000_000, 3).expect("histogram"),
    ));
    let stop = Arc::new(AtomicBool::new(false));

    let sim_secs = (args.duration as f64 * speedup).ceil() as u64;
    let mut simulator = spawn(
        "simulator",
        Command::new(bin_path("speedlayer-ingest"))
            .arg("simulate")
            .args(["--cars", &args.cars.to_string()])
            .args(["--duration", &sim_secs.to_string()])
            .args(["--speedup", &format!("{speedup}")])
            .args(["--seed", "16", "--start", START])
            .arg("--driving-log")
            .arg(dir.join("logs/driving.log"))
            .arg("--status-spool")
            .arg(dir.join("spool")),
        &dir.join("simulate.log"),
    );
    let procs: Vec<(&str, u32)> = vec![
        ("simulator", simulator.pid()),
        ("collector", collector.pid()),
        ("tansu", child_pid("tansu").unwrap_or(0)),
        ("worker", worker.pid()),
        ("server", child_pid("speedlayer-serv").unwrap_or(0)),
        ("bench", std::process::id()),
    ];
    let t0 = Instant::now();
    // Warm-up: the group join and the first fetch; probes and CPU count from the first
    // stored row on, so the figures are the steady state.
    while metric(&metrics(&worker_http), "ingest_stored_total") < 1.0 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "nothing stored in 120 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // warm-up poll
    }
    let warm = Instant::now();
    println!(
        "  warm-up: first row stored {:.1} s after the simulator started",
        (warm - t0).as_secs_f64()
    );
    let probe_task = tokio::spawn(probes(
        dir.join("logs/probe.log"),
        client.clone(),
        Duration::from_millis(args.probe_every_ms.max(1)),
        speedup,
        stop.clone(),
        hist.clone(),
    ));
    let cpu0: Vec<u64> = procs.iter().map(|(_, p)| cpu_ticks(*p)).collect();
    // The last reading of each process (a process that exits keeps its last one).
    let mut cpu1 = cpu0.clone();
    let mut last = (Instant::now(), 0.0);
    let load_end;
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await; // load-end poll
        for (i, (_, p)) in procs.iter().enumerate() {
            cpu1[i] = cpu1[i].max(cpu_ticks(*p));
        }
        if let Ok(Some(_)) = simulator.child.try_wait() {
            load_end = Instant::now();
            break;
        }
        if last.0.elapsed() < Duration::from_secs(5) {
            continue; // progress every 5 s
        }
        let w = metrics(&worker_http);
        let stored = metric(&w, "ingest_stored_total");
        let lag = metric(&w, "ingest_consumer_lag");
        let c = metrics(&collect_http);
        let rate = (stored - last.1) / last.0.elapsed().as_secs_f64();
        last = (Instant::now(), stored);
        let p = hist.lock().map_or(0, |h| h.value_at_quantile(0.99));
        println!(
            "  {:>4} s: stored {stored:.0} ({rate:.0}/s now), consumer lag {lag:.0}, collector in {:.0} out {:.0}, probe p99 so far {}",
            t0.elapsed().as_secs(),
            metric(&c, "speedlayer_collect_events_in_total"),
            metric(&c, "speedlayer_collect_events_out_total"),
            ms(p)
        );
    }
    let lag_at_end = metric(&metrics(&worker_http), "ingest_consumer_lag");
    stop.store(true, Ordering::Relaxed);
    let load_secs = (load_end - t0).as_secs_f64();
    let cpu_secs = (load_end - warm).as_secs_f64();
    let files = [dir.join("logs/driving.log"), dir.join("logs/probe.log")];
    let (probes_sent, probes_missing) = probe_task.await.expect("probes");
    let (want_n, want_sum, bad_lines) = expected(&files);
    // Drain: wait until the worker stored every distinct line (replays may store more).
    let drain_deadline = Instant::now() + Duration::from_secs(args.drain_limit);
    let mut all_stored_at = None;
    let mut shown = Instant::now();
    println!("  load done; draining {want_n} lines");
    while Instant::now() < drain_deadline {
        let stored = metric(&metrics(&worker_http), "ingest_stored_total");
        if stored >= want_n as f64 {
            all_stored_at = Some(Instant::now());
            break;
        }
        if shown.elapsed() >= Duration::from_secs(5) {
            shown = Instant::now();
            println!(
                "  drain {:>4} s: stored {stored:.0} of {want_n}",
                (shown - load_end).as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await; // drain poll
    }
    let (got_n, got_sum) = stored(&client).await;
    let ticks = clock_ticks_per_s();
    let h = hist.lock().map(|h| h.clone()).expect("histogram");

    println!();
    println!("== pipeline bench summary ==");
    println!(
        "load            {load_secs:.0} s at {} lines/s asked ({} cars × {speedup:.2}), {} lines + {} probes written",
        args.rate,
        args.cars,
        want_n.saturating_sub(probes_sent),
        probes_sent
    );
    let sustained = match all_stored_at {
        Some(at) => format!(
            "{:.0} events/s (all {want_n} stored {:.1} s after the load ended)",
            want_n as f64 / (at - t0).as_secs_f64(),
            (at - load_end).as_secs_f64()
        ),
        None => format!(
            "NOT caught up: {got_n} of {want_n} stored {} s after the load",
            args.drain_limit
        ),
    };
    println!("sustained       {sustained}");
    println!(
        "latency         p50 {}  p99 {}  max {}  ({} probes, {} never readable)",
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.99)),
        ms(h.max()),
        h.len(),
        probes_missing
    );
    println!("cpu (load)      process    % of one core");
    let mut busiest = ("", 0.0f64);
    let mut total = 0.0;
    for (i, (name, _)) in procs.iter().enumerate() {
        let pct = cpu1[i].saturating_sub(cpu0[i]) as f64 / ticks / cpu_secs * 100.0;
        total += pct;
        if pct > busiest.1 {
            busiest = (name, pct);
        }
        println!("                {name:<10} {pct:>6.1}");
    }
    println!(
        "                {:<10} {total:>6.1} (of {} cores)",
        "total",
        cores()
    );
    let kept_up = lag_at_end < f64::from(args.rate);
    println!(
        "bottleneck      busiest process: {} ({:.0}% of a core); worker consumer lag at load end {lag_at_end:.0} ({}); machine {}",
        busiest.0,
        busiest.1,
        if kept_up {
            "kept up"
        } else {
            "fell behind: the worker side limits"
        },
        if total >= 90.0 * cores() as f64 {
            "CPU-saturated"
        } else {
            "not CPU-saturated"
        }
    );
    println!("dead-lettered   {bad_lines} invalid lines in the logs");
    let lost = want_n.saturating_sub(got_n);
    println!(
        "loss: {lost} events (stored {got_n} of {want_n}, checksum {})",
        if got_sum == want_sum && got_n == want_n {
            "match"
        } else {
            "MISMATCH"
        }
    );
    drop(simulator);
    drop(collector);
    drop(worker);
    drop(server);
    drop(tansu);
    if got_n != want_n || got_sum != want_sum {
        std::process::exit(1);
    }
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
