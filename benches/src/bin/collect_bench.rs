//! Collector throughput against a real tansu broker, release build:
//!
//! 1. `tail` → validator → file channel → Kafka sink: a pre-written driving log of `--lines`
//!    lines, timed from agent start until every line is delivered (delivery reports).
//! 2. `spooldir` of one status file of `--status-mb` MB → memory channel → file_roll sink,
//!    and the same file → file channel → Kafka.
//!
//! `cargo run --release -p speedlayer-benches --bin collect_bench -- --lines 2000000`

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::metrics::Registry;
use speedlayer_ingest::simulate::car::Car;
use speedlayer_tests::tansu::Tansu;

#[derive(Parser)]
struct Args {
    /// Driving lines for the tail benchmark.
    #[arg(long, default_value_t = 2_000_000)]
    lines: usize,
    /// Size of the spooled status file in MB.
    #[arg(long, default_value_t = 100)]
    status_mb: usize,
    /// File channel fsync policy: put, never, or an interval like 1s.
    #[arg(long, default_value = "put")]
    fsync: String,
    /// Lines per source batch / sink take.
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 4)]
    partitions: u32,
}

fn run(dir: &Path, toml: &str, pipeline: &str, expect: u64) -> f64 {
    fs::write(dir.join(format!("{pipeline}.toml")), toml).unwrap();
    let cfg = AgentConfig::load(&dir.join(format!("{pipeline}.toml"))).unwrap();
    let reg: Arc<Registry> = Registry::new();
    let out = reg.counter(
        "speedlayer_collect_events_out_total",
        "",
        &[("pipeline", pipeline), ("branch", "main")],
    );
    let t0 = Instant::now();
    let a = agent::start(&cfg, &reg).unwrap();
    while out.get() < expect {
        assert!(
            t0.elapsed() < Duration::from_secs(600),
            "stuck at {}",
            out.get()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let secs = t0.elapsed().as_secs_f64();
    a.stop().unwrap();
    secs
}

fn main() {
    let args = Args::parse();
    let t = Tansu::start();
    let d = tempfile::tempdir_in(".").unwrap();
    let dir = d.path();
    fs::create_dir_all(dir.join("logs")).unwrap();
    fs::create_dir_all(dir.join("spool")).unwrap();

    // Driving log: realistic lines from the simulator's car model.
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let mut cars: Vec<Car> = (0..1000).map(|i| Car::new(i, &mut rng)).collect();
    let mut f = std::io::BufWriter::new(fs::File::create(dir.join("logs/driving.log")).unwrap());
    let mut s = String::new();
    for i in 0..args.lines {
        let sec = i / 1000;
        let time = format!(
            "20261122{:02}{:02}{:02}",
            (sec / 3600) % 24,
            (sec / 60) % 60,
            sec % 60
        );
        s.clear();
        cars[i % 1000].driving_line(&time, &mut rng, &mut s);
        f.write_all(s.as_bytes()).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    let bytes = fs::metadata(dir.join("logs/driving.log")).unwrap().len();

    t.create_topic("bench-driving", args.partitions);
    t.create_topic("bench-driving.dlq", 1);
    t.create_topic("bench-status", args.partitions);
    let tail = format!(
        r#"
[[pipeline]]
name = "tail"
batch_size = {batch}
source = {{ type = "tail", path = "logs/driving.log", position_file = "state/tail.pos" }}
interceptors = [{{ type = "validate", format = "driving" }}]
channel = {{ type = "file", dir = "state/tail-channel", capacity_mb = 512, fsync = "{fsync}" }}
sink = {{ type = "kafka", brokers = "{b}", topic = "bench-driving", key = "car_number" }}
dead_letter = {{ type = "kafka", brokers = "{b}", topic = "bench-driving.dlq" }}
"#,
        batch = args.batch,
        fsync = args.fsync,
        b = t.brokers()
    );
    let secs = run(dir, &tail, "tail", args.lines as u64);
    println!(
        "tail -> validate -> file channel (fsync={}) -> kafka: {} lines ({:.1} MB) in {secs:.2} s = {:.0} lines/s",
        args.fsync,
        args.lines,
        bytes as f64 / 1e6,
        args.lines as f64 / secs
    );

    // Status file of ~status_mb MB.
    let mut f = std::io::BufWriter::new(fs::File::create(dir.join(".status.tmp")).unwrap());
    let mut n = 0u64;
    let mut written = 0usize;
    while written < args.status_mb * 1_000_000 {
        let sec = n / 100;
        let time = format!(
            "20261122{:02}{:02}{:02}",
            (sec / 3600) % 24,
            (sec / 60) % 60,
            sec % 60
        );
        s.clear();
        cars[(n % 100) as usize].status_line(&time, &mut rng, &mut s);
        f.write_all(s.as_bytes()).unwrap();
        written += s.len();
        n += 1;
    }
    f.flush().unwrap();
    drop(f);
    for (name, channel, sink) in [
        (
            "spool_file_roll",
            "{ type = \"memory\", capacity = 100000 }".to_owned(),
            "{ type = \"file_roll\", dir = \"archive\", roll_size_mb = 128, roll_interval = \"1h\" }".to_owned(),
        ),
        (
            "spool_kafka",
            format!("{{ type = \"file\", dir = \"state/spool-channel\", capacity_mb = 512, fsync = \"{}\" }}", args.fsync),
            format!("{{ type = \"kafka\", brokers = \"{}\", topic = \"bench-status\", key = \"car_number\" }}", t.brokers()),
        ),
    ] {
        let spool = dir.join(format!("spool-{name}"));
        fs::create_dir_all(&spool).unwrap();
        fs::copy(dir.join(".status.tmp"), spool.join("status-20261122.csv")).unwrap();
        let toml = format!(
            r#"
[[pipeline]]
name = "{name}"
batch_size = {batch}
source = {{ type = "spooldir", dir = "spool-{name}" }}
interceptors = [{{ type = "validate", format = "status" }}]
channel = {channel}
sink = {sink}
dead_letter = {{ type = "logger" }}
"#,
            batch = args.batch
        );
        let secs = run(dir, &toml, name, n);
        println!(
            "spooldir {:.0} MB status file -> validate -> {name}: {n} lines in {secs:.2} s = {:.0} lines/s ({:.1} MB/s)",
            written as f64 / 1e6,
            n as f64 / secs,
            written as f64 / 1e6 / secs
        );
    }
}
