//! Issue 15's streaming status path end to end, every part real and no Kafka client of
//! ours in the middle: status files dropped into a spooling directory flow through the
//! collector (`speedlayer-ingest collect`: spooldir → `validate` status → durable file
//! channel → Kafka sink) into tansu, and one `speedlayer-ingest worker` (configured with a
//! `topics` list) stores them in `car_status` through its commit-after-durable cycle.
//!
//! The collector is `kill -9`ed while its sink is part-way through the first file and
//! restarted; a second file is dropped after the restart. At the end:
//! - every good line of both files is exactly one row of `car_status`, rebuilt from the
//!   row's cells into the line that was dropped (count and content), no other rows (what
//!   the restarted collector sends again rewrites the same keys);
//! - every bad line (both files carry one of each kind of fault) is a dead letter of the
//!   collector's `validate`, in its dead-letter file with a reason, counted by the
//!   collector, and never reached Kafka;
//! - both files were renamed `.done`, and `speedlayer scan car_status --prefix V0042#`
//!   finds that car's rows.

#[path = "ingest_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::{ServerProcess, run_cli};
use support::status::*;

/// The collector agent (`kill -9`ed on drop) and its metrics address.
struct Collector {
    child: Child,
    http: String,
}

impl Collector {
    fn start(config: &Path) -> Collector {
        let mut child = Command::new(bin_path("speedlayer-ingest"))
            .args(["collect", "--config"])
            .arg(config)
            .args(["--http-addr", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn collector");
        let out = child.stdout.take().expect("collector stdout");
        let first = BufReader::new(out)
            .lines()
            .next()
            .expect("collector output")
            .expect("collector output is text");
        // "speedlayer-ingest collect: ready, metrics on http://ADDR/metrics"
        let http = first
            .split("http://")
            .nth(1)
            .and_then(|s| s.strip_suffix("/metrics"))
            .unwrap_or_else(|| panic!("no metrics address in {first:?}"))
            .to_string();
        Collector { child, http }
    }

    /// The sum of every sample of `name` in the collector's `/metrics`.
    fn metric(&self, name: &str) -> f64 {
        let mut s = std::net::TcpStream::connect(&self.http).expect("collector metrics");
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no graceful flush
        let _ = self.child.wait();
    }
}

/// Drops `lines` into the spool directory as one complete file (written aside, renamed in).
fn drop_file(spool: &Path, name: &str, lines: &[String]) {
    let tmp = spool.join(format!(".{name}.tmp"));
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, spool.join(name)).unwrap();
}

/// Waits until `car_status` holds `n` rows (`speedlayer count`); returns them as row key
/// → rebuilt line.
async fn wait_rows(url: &str, n: usize, limit: Duration) -> BTreeMap<Vec<u8>, String> {
    let deadline = Instant::now() + limit;
    loop {
        // Until the worker's first batch the table does not exist: count 0.
        let out = run_cli(url, &["count", "car_status"]);
        let count: usize = out.stdout.trim().parse().unwrap_or(0);
        if count >= n {
            return table_lines(url, "car_status", &STATUS_COLUMNS).await;
        }
        assert!(
            Instant::now() < deadline,
            "car_status holds {count} rows, waiting for {n}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // poll interval
    }
}

/// Every `#dead-letter reason=…` header line of the collector's published dead-letter
/// files (`*.log`; the one being written is `.…inprogress`) and the line after it.
fn dead_letters(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let mut lines = text.lines();
        while let Some(l) = lines.next() {
            if let Some(reason) = l.strip_prefix("#dead-letter reason=") {
                let line = lines.next().unwrap_or_default().to_string();
                out.push((reason.to_string(), line));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_status_files_flow_collector_kafka_worker_into_car_status_across_a_collector_kill9()
{
    let tansu = speedlayer_tests::tansu::Tansu::start();
    tansu.create_topic(STATUS, 2);
    tansu.create_topic(STATUS_DLQ, 1);
    let brokers = tansu.brokers();
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start_pinned(&dir.path().join("data"), &[]);
    let url = server.url();
    let resp = server.resp.expect("pinned server has RESP").to_string();
    let rules = support::rules_file(dir.path(), 80);

    let worker_config = dir.path().join("worker.toml");
    std::fs::write(
        &worker_config,
        format!(
            "brokers = \"{brokers}\"\nserver = \"{url}\"\nresp = \"{resp}\"\n\
             rules = \"{}\"\ngroup = \"status-stream\"\nidle_flush = \"3s\"\n\
             topics = [{{ name = \"{STATUS}\", parser = \"status\", ttl = \"30days\" }}]\n",
            rules.display()
        ),
    )
    .unwrap();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let dead = dir.path().join("dead");
    let agent_config = dir.path().join("agent.toml");
    // A small sink batch so that the first file takes many acknowledged Kafka deliveries:
    // the kill below lands part-way through them.
    std::fs::write(
        &agent_config,
        format!(
            r#"
[[pipeline]]
name = "status"
batch_size = 100
source = {{ type = "spooldir", dir = "{spool}", done_suffix = ".done", ignore_pattern = "^\\.", poll_interval = "50ms" }}
interceptors = [{{ type = "validate", format = "status" }}]
channel = {{ type = "file", dir = "{chan}", capacity_mb = 64, fsync = "put" }}
sink = {{ type = "kafka", brokers = "{brokers}", topic = "{STATUS}", key = "car_number" }}
dead_letter = {{ type = "file_roll", dir = "{dead}", roll_interval = "200ms" }}
"#,
            spool = spool.display(),
            chan = dir.path().join("channel").display(),
            dead = dead.display(),
        ),
    )
    .unwrap();

    // 100 cars × 300 s and 100 cars × 60 s of status lines, bad lines among them.
    let all = status_lines(100, 360);
    let (first, second) = all.split_at(100 * 300);
    let bad = bad_status_lines();
    let mut file1: Vec<String> = first.iter().map(|(_, l)| l.clone()).collect();
    for (i, b) in bad.iter().enumerate() {
        file1.insert(1 + i * 997, b.clone());
    }
    let mut file2: Vec<String> = second.iter().map(|(_, l)| l.clone()).collect();
    for (i, b) in bad.iter().enumerate() {
        file2.insert(1 + i * 503, b.clone());
    }

    let worker = WorkerProc::start(&worker_config);
    let collector = Collector::start(&agent_config);
    drop_file(&spool, "status-20261122-a.csv", &file1);

    // kill -9 once the sink has delivered some of the first file, not all.
    let deadline = Instant::now() + Duration::from_secs(60);
    let sent_at_kill = loop {
        let out = collector.metric("speedlayer_collect_events_out_total");
        if out > 0.0 {
            break out;
        }
        assert!(Instant::now() < deadline, "the collector sent nothing");
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval
    };
    drop(collector);
    eprintln!(
        "collector killed after delivering {sent_at_kill} of {} events",
        first.len()
    );
    assert!(
        sent_at_kill < first.len() as f64,
        "the kill was to land mid-file, but all {sent_at_kill} were sent"
    );

    let collector = Collector::start(&agent_config);
    drop_file(&spool, "status-20261122-b.csv", &file2);
    let got = wait_rows(&url, all.len(), Duration::from_secs(180)).await;

    let want = expected(all.iter().map(|(_, l)| l.clone()));
    assert_eq!(want.len(), all.len(), "distinct status lines");
    assert_eq!(got.len(), want.len(), "car_status rows");
    let diff: Vec<_> = got
        .iter()
        .filter(|(k, v)| want.get(*k) != Some(*v))
        .take(3)
        .collect();
    assert!(diff.is_empty(), "car_status rows not dropped: {diff:?}");

    // Bad lines: dead letters of the collector with a reason, never on Kafka. Across the
    // kill a bad line may be dead-lettered twice (the file is read again), never lost.
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let letters = dead_letters(&dead);
        let mut lines: Vec<&str> = letters.iter().map(|(_, l)| l.as_str()).collect();
        lines.sort_unstable();
        lines.dedup();
        if lines.len() >= bad.len() {
            break letters;
        }
        assert!(
            Instant::now() < deadline,
            "dead letters so far: {letters:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    };
    for (reason, line) in &letters {
        assert!(
            bad.contains(line),
            "a good line was dead-lettered: {line} ({reason})"
        );
        assert!(reason.len() > 2, "a dead letter without a reason: {line}");
    }
    eprintln!("collector dead letters: {letters:#?}");
    assert!(
        collector.metric("speedlayer_collect_dead_letters_total") >= bad.len() as f64,
        "the restarted collector counted the second file's dead letters"
    );
    assert!(
        tansu
            .consume_all(STATUS_DLQ, Duration::from_secs(2))
            .is_empty(),
        "the worker saw a bad line: the collector's validate let it through"
    );

    // Both files done, none left to send again.
    let names: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for f in ["status-20261122-a.csv", "status-20261122-b.csv"] {
        assert!(
            names.contains(&format!("{f}.done")),
            "{f} not done: {names:?}"
        );
    }

    // Queryable from the CLI by car prefix.
    let scanned = run_cli(&url, &["scan", "car_status", "--prefix", "V0042#"]).ok();
    let want_42 = all.iter().filter(|(c, _)| c == "V0042").count();
    let rows_42: std::collections::BTreeSet<&str> = scanned
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("V0042#")))
        .collect();
    assert_eq!(rows_42.len(), want_42, "scan --prefix V0042#");
    drop(worker);
}
