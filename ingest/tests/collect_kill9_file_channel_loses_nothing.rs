//! The real `speedlayer-ingest collect` binary with the issue's configuration (tail → file
//! channel → Kafka with a Kafka dead-letter topic; spooldir → memory → file_roll) is killed
//! with SIGKILL three times while a writer appends and rotates the driving log, restarted
//! each time, and finally stopped with SIGTERM. Every valid line is in the topic and every
//! garbage line in the DLQ (duplicates are allowed across a crash: at-least-once), and the
//! spooled status lines are in the archive.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use speedlayer_tests::tansu::Tansu;

const LINES: usize = 40_000;

fn line(i: usize) -> String {
    if i % 50 == 49 {
        return format!("garbage-{i}");
    }
    let sec = i / 100;
    format!(
        "202611221{:01}{:02}{:02},V{:04},3,0,-12,N,{},A07",
        (sec / 3600) % 10,
        (sec / 60) % 60,
        sec % 60,
        i % 100,
        i % 300
    )
}

/// GETs /metrics from the URL in the agent's READY line.
fn scrape(ready: &str) -> String {
    use std::io::Read;
    let addr = ready
        .split("http://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_else(|| panic!("no metrics URL in {ready:?}"));
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    body
}

fn start(dir: &Path) -> (Child, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_speedlayer-ingest"))
        .args(["collect", "--config"])
        .arg(dir.join("agent.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(c.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    assert!(first.contains("ready"), "unexpected first line {first:?}");
    // Keep draining stdout so the agent never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    (c, first)
}

fn position(dir: &Path) -> Option<String> {
    fs::read_to_string(dir.join("state/driving.pos")).ok()
}

/// The byte offset recorded in the tail checkpoint.
fn offset(dir: &Path) -> Option<u64> {
    position(dir)?.split(' ').nth(4)?.parse().ok()
}

#[test]
fn sigkill_three_times_loses_no_line() {
    let t = Tansu::start();
    t.create_topic("SmartCar-Topic", 4);
    t.create_topic("SmartCar-Topic.dlq", 1);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().to_path_buf();
    for sub in ["logs", "state", "spool/status", "archive"] {
        fs::create_dir_all(dir.join(sub)).unwrap();
    }
    fs::write(
        dir.join("agent.toml"),
        format!(
            r#"
[agent]
http_addr = "127.0.0.1:0"

[[pipeline]]
name = "driving"
source = {{ type = "tail", path = "logs/driving.log", position_file = "state/driving.pos" }}
interceptors = [{{ type = "validate", format = "driving" }}]
channel = {{ type = "file", dir = "state/driving-channel", capacity_mb = 512 }}
sink = {{ type = "kafka", brokers = "{b}", topic = "SmartCar-Topic", key = "car_number" }}
dead_letter = {{ type = "kafka", brokers = "{b}", topic = "SmartCar-Topic.dlq" }}

[[pipeline]]
name = "status"
source = {{ type = "spooldir", dir = "spool/status", done_suffix = ".done" }}
channel = {{ type = "memory", capacity = 10000 }}
sink = {{ type = "file_roll", dir = "archive/status", roll_size_mb = 128, roll_interval = "1h" }}
"#,
            b = t.brokers()
        ),
    )
    .unwrap();
    let status: Vec<String> = (0..5000).map(|i| format!("status-{i}")).collect();
    fs::write(dir.join("spool/status/.s.tmp"), status.join("\n") + "\n").unwrap();
    fs::rename(
        dir.join("spool/status/.s.tmp"),
        dir.join("spool/status/s.csv"),
    )
    .unwrap();

    let written = Arc::new(AtomicUsize::new(0));
    let w = written.clone();
    let log: PathBuf = dir.join("logs/driving.log");
    let log2 = log.clone();
    let writer = std::thread::spawn(move || {
        for chunk in 0..LINES / 200 {
            if chunk == LINES / 400 {
                fs::rename(&log2, log2.with_extension("log.1")).unwrap();
            }
            let mut f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log2)
                .unwrap();
            let text: String = (chunk * 200..chunk * 200 + 200)
                .map(|i| line(i) + "\n")
                .collect();
            f.write_all(text.as_bytes()).unwrap();
            w.store(chunk * 200 + 200, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(10)); // pacing the load, not a wait
        }
    });

    let (mut agent, ready) = start(&dir);
    let m = scrape(&ready);
    assert!(
        m.contains("# TYPE speedlayer_collect_events_in_total counter"),
        "{m}"
    );
    assert!(
        m.contains("speedlayer_collect_channel_events{pipeline=\"driving\""),
        "{m}"
    );
    for k in 1..=3 {
        let before = position(&dir);
        let deadline = Instant::now() + Duration::from_secs(60);
        // Kill once this run has made progress (its checkpoint moved), or, if the writer is
        // done and an earlier run already caught up, right away.
        let caught_up = |dir: &Path| {
            written.load(Ordering::SeqCst) == LINES
                && offset(dir)
                    == fs::metadata(dir.join("logs/driving.log"))
                        .ok()
                        .map(|m| m.len())
        };
        while written.load(Ordering::SeqCst) < k * LINES / 4
            || (position(&dir) == before && !caught_up(&dir))
        {
            assert!(Instant::now() < deadline, "no progress before kill {k}");
            std::thread::sleep(Duration::from_millis(5));
        }
        agent.kill().unwrap(); // SIGKILL
        agent.wait().unwrap();
        agent = start(&dir).0;
    }
    writer.join().unwrap();
    // Caught up: the checkpoint is at the end of the live file.
    let size = fs::metadata(&log).unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while offset(&dir) != Some(size) {
        assert!(Instant::now() < deadline, "tail never caught up");
        std::thread::sleep(Duration::from_millis(10));
    }
    unsafe { libc::kill(agent.id() as i32, libc::SIGTERM) };
    let st = agent.wait().unwrap();
    assert!(st.success(), "clean stop failed: {st}");

    let valid: BTreeSet<String> = (0..LINES).filter(|i| i % 50 != 49).map(line).collect();
    let garbage: BTreeSet<String> = (0..LINES).filter(|i| i % 50 == 49).map(line).collect();
    let recs = t.consume_all("SmartCar-Topic", Duration::from_secs(60));
    let mut counts: HashMap<String, usize> = HashMap::new();
    for r in &recs {
        *counts
            .entry(String::from_utf8(r.payload.clone()).unwrap())
            .or_default() += 1;
    }
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    let missing = valid.difference(&got).count();
    assert_eq!(missing, 0, "{missing} valid lines lost");
    assert_eq!(got, valid, "unexpected payloads in the topic");
    let dups: usize = counts.values().map(|c| c - 1).sum();
    eprintln!(
        "{} records for {} lines: {dups} duplicates across 3 crashes",
        recs.len(),
        valid.len()
    );
    let dlq: BTreeSet<String> = t
        .consume_all("SmartCar-Topic.dlq", Duration::from_secs(30))
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    assert_eq!(dlq, garbage);
    let archived: BTreeSet<String> = fs::read_dir(dir.join("archive/status"))
        .unwrap()
        .flat_map(|e| {
            fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(archived, status.iter().cloned().collect());
}
