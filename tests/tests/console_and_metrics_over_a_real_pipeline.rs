//! The web console and the metrics over a small real pipeline, every part a real process
//! on loopback: the simulator writes a driving log, the collector tails it into a real
//! tansu broker, the worker stores events and flags cars, `speedlayer-server` serves gRPC,
//! RESP and HTTP. Then:
//!
//! - `promtool check metrics` (Debian's `prometheus`) passes on the server's, the worker's
//!   and the collector's `/metrics`, and every metric name the Grafana dashboard
//!   (`config/grafana-dashboard.json`) uses exists on one of them;
//! - a real headless Chromium (through chromedriver) loads the console with no console
//!   errors, its live charts hold data after writes and reads through the real client, the
//!   tables, region and TTL set pages render, the fleet view lists exactly the cars the TTL
//!   set flagged for the day, and clicking one plots its speed with its flagged windows.
//!
//! Screenshots go to `target/console-screenshots/` (printed): overview, tables, region,
//! ttl-sets, fleet and fleet-car. One browser session for all.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;
use speedlayer_tests::webdriver::Browser;

const TOPIC: &str = "SmartCar-Topic";
const DLQ: &str = "SmartCar-Topic.dlq";
/// The simulated day (the TTL set key of its flagged cars).
const DAY: &str = "20261122";

/// A child process whose stdout line containing `marker` was seen; killed on drop.
struct Proc {
    child: Child,
    line: String,
}

impl Proc {
    fn spawn(cmd: &mut Command, marker: &'static str) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.contains(marker) {
                    let _ = tx.send(line);
                }
            }
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no {marker:?} line within 60 s"));
        Proc { child, line }
    }

    /// The `host:port` after `prefix` in the ready line.
    fn addr_after(&self, prefix: &str) -> String {
        let rest = &self.line[self.line.find(prefix).expect(prefix) + prefix.len()..];
        rest.split(['/', ' ']).next().unwrap().to_owned()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn get(addr: &str, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{path}: {out}");
    out.split_once("\r\n\r\n").unwrap().1.to_owned()
}

/// `promtool check metrics` on `text`; panics with promtool's findings.
fn promtool_check(what: &str, text: &str) {
    let bin = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".into());
    let mut child = Command::new(&bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e} (install: scripts/install-deps.sh)"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed on the {what}'s /metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sample names (before `{` or the value) of a Prometheus text exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The metric names the dashboard's expressions use.
fn dashboard_names(dashboard: &Value) -> BTreeSet<String> {
    let mut exprs = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x) {
                        ("expr", Value::String(s)) => out.push(s.clone()),
                        _ => walk(x, out),
                    }
                }
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(dashboard, &mut exprs);
    exprs
        .iter()
        .flat_map(|e| {
            e.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .filter(|t| t.starts_with("speedlayer_") || t.starts_with("ingest_"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn agent_config(dir: &Path, brokers: &str) -> PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            r#"[agent]
drain_timeout = "5s"

[[pipeline]]
name = "driving"
batch_size = 500
source = {{ type = "tail", path = "{log}", position_file = "{pos}", poll_interval = "50ms", rotation_quiet = "1s" }}
interceptors = [{{ type = "validate", format = "driving" }}]
channel = {{ type = "memory", capacity = 10000 }}
sink = {{ type = "kafka", brokers = "{brokers}", topic = "{TOPIC}", key = "car_number", properties = {{}} }}
dead_letter = {{ type = "kafka", brokers = "{brokers}", topic = "{DLQ}" }}
"#,
            log = dir.join("logs/driving.log").display(),
            pos = dir.join("state/driving.pos").display(),
        ),
    )
    .unwrap();
    path
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn driving_rows(url: &str) -> usize {
    let Ok(c) = Client::connect(url).await else {
        return 0;
    };
    c.scan_all(ScanRequest {
        table: "driving".into(),
        ..ScanRequest::default()
    })
    .await
    .map_or(0, |r| r.len())
}

fn assert_no_console_errors(b: &Browser, page: &str) {
    let severe: Vec<_> = b
        .console_log()
        .into_iter()
        .filter(|(level, _)| level == "SEVERE")
        .collect();
    assert!(severe.is_empty(), "console errors on {page}: {severe:?}");
    let caught = b.eval("return window.speedlayer.errors;", json!([]));
    assert_eq!(caught, json!([]), "uncaught errors on {page}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_and_metrics_over_a_real_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 2);
    tansu.create_topic(DLQ, 1);
    let brokers = tansu.brokers();
    let server = ServerProcess::start_pinned(&dir.path().join("data"), &[]);
    let resp = server.resp.expect("RESP on").to_string();
    let http = server.http.to_string();

    // The simulator writes the whole log first (speedup 0); the collector tails it.
    let sim = Command::new(bin_path("speedlayer-ingest"))
        .args([
            "simulate",
            "--cars",
            "20",
            "--duration",
            "240",
            "--speedup",
            "0",
        ])
        .args(["--seed", "14", "--start", &format!("{DAY}143000")])
        .arg("--driving-log")
        .arg(dir.path().join("logs/driving.log"))
        .arg("--status-spool")
        .arg(dir.path().join("spool"))
        .output()
        .unwrap();
    assert!(sim.status.success(), "{sim:?}");
    let summary =
        String::from_utf8_lossy(&sim.stdout).into_owned() + &String::from_utf8_lossy(&sim.stderr);
    let lines: usize = summary
        .split_whitespace()
        .find_map(|f| f.strip_prefix("driving_lines="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no driving_lines= in {summary}"));
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    let collector = Proc::spawn(
        Command::new(bin_path("speedlayer-ingest"))
            .arg("collect")
            .arg("--config")
            .arg(agent_config(dir.path(), &brokers))
            .args(["--http-addr", "127.0.0.1:0"]),
        "ready",
    );
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/rules.toml");
    let worker = Proc::spawn(
        Command::new(bin_path("speedlayer-ingest"))
            .arg("worker")
            .args([
                "--brokers",
                &brokers,
                "--topic",
                TOPIC,
                "--group",
                "console",
            ])
            .args(["--server", &server.url(), "--resp", &resp])
            .arg("--rules")
            .arg(&rules)
            .args(["--http-addr", "127.0.0.1:0", "--idle-flush", "2s"]),
        "READY",
    );

    // Wait for every event stored and the day's flagged set.
    let redis = redis::Client::open(format!("redis://{resp}")).unwrap();
    let mut conn = redis.get_connection().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let flagged: BTreeSet<String> = loop {
        let stored = driving_rows(&server.url()).await;
        let members: BTreeSet<String> = redis::cmd("SMEMBERS").arg(DAY).query(&mut conn).unwrap();
        if stored == lines && !members.is_empty() {
            // Windows close on the idle flush: let the last ones land.
            tokio::time::sleep(Duration::from_secs(4)).await; // idle flush (2 s) + margin
            break redis::cmd("SMEMBERS").arg(DAY).query(&mut conn).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "pipeline: {stored} of {lines} rows stored, {} cars flagged",
            members.len()
        );
        tokio::time::sleep(Duration::from_millis(300)).await; // poll interval
    };

    // Metrics: promtool on every endpoint; the dashboard's names all exist.
    let server_metrics = get(&http, "/metrics");
    let worker_metrics = get(&worker.addr_after("http="), "/metrics");
    let collector_metrics = get(&collector.addr_after("http://"), "/metrics");
    promtool_check("server", &server_metrics);
    promtool_check("worker", &worker_metrics);
    promtool_check("collector", &collector_metrics);
    for (what, text) in [
        ("server", &server_metrics),
        ("worker", &worker_metrics),
        ("collector", &collector_metrics),
    ] {
        assert!(
            text.contains("speedlayer_build_info{")
                && text.contains("speedlayer_process_uptime_seconds "),
            "{what} has build info and uptime"
        );
    }
    assert!(
        server_metrics.contains("speedlayer_resp_commands_total{command=\"sadd\",outcome=\"ok\"}")
    );
    let mut live: BTreeSet<String> = sample_names(&server_metrics);
    live.extend(sample_names(&worker_metrics));
    live.extend(sample_names(&collector_metrics));
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/grafana-dashboard.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let used = dashboard_names(&dashboard);
    assert!(
        used.len() > 30,
        "the dashboard covers the pipeline: {used:?}"
    );
    let missing: Vec<_> = used.difference(&live).collect();
    assert!(
        missing.is_empty(),
        "dashboard names no live endpoint has: {missing:?}"
    );

    // The browser: one session for every page.
    let shots = screenshot_dir();
    println!("console screenshots: {}", shots.display());
    let b = tokio::task::block_in_place(Browser::start);
    let base = format!("http://{http}");
    let client = Client::connect(&server.url()).await.unwrap();
    tokio::task::block_in_place(|| {
        b.goto(&format!("{base}/#overview"));
        b.wait_for(
            "the server page",
            Duration::from_secs(20),
            "return document.querySelectorAll('#server-info .card').length > 5;",
        );
    });
    // A flush gives the region files to list; synced writes and reads through the real
    // client while the page is open, which the newest samples of the charts must show.
    client.flush("driving").await.unwrap();
    let made = server
        .cli(&["create-table", "probe", "--family", "cf1"])
        .ok();
    assert!(made.contains("created"), "{made}");
    for i in 0..40u32 {
        let row = format!("probe-{i}");
        client
            .mutate(
                "probe",
                vec![put_row(row.as_bytes(), &[("cf1", "q", b"v")])],
                Durability::Sync,
            )
            .await
            .unwrap();
        client
            .scan_all(ScanRequest {
                table: "driving".into(),
                limit: Some(10),
                ..ScanRequest::default()
            })
            .await
            .unwrap();
    }
    tokio::task::block_in_place(|| {
        b.wait_for(
            "charts with the writes, reads and WAL syncs just done",
            Duration::from_secs(20),
            "const s = window.speedlayer.charts; const last = (c, i) => c.data[i].slice(-6); \
             return !!s.ops && last(s.ops, 1).some(v => v > 0) && last(s.ops, 2).some(v => v > 0) \
                 && last(s.stalls, 2).some(v => v > 0);",
        );
        b.wait_for(
            "latency and memstore charts with data",
            Duration::from_secs(10),
            "const s = window.speedlayer.charts; \
             return s.latency.data[2].some(v => v != null && v > 0) && s.memstore.data[0].length > 2;",
        );
        let drawn = b.eval(
            "const c = document.querySelector('#chart-ops canvas'); \
             const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; \
             let n = 0; for (let i = 3; i < px.length; i += 4) if (px[i] > 0) n++; return n;",
            json!([]),
        );
        assert!(
            drawn.as_u64().unwrap_or(0) > 500,
            "the chart canvas is drawn: {drawn}"
        );
        b.screenshot(&shots.join("overview.png"));
        assert_no_console_errors(&b, "overview");

        b.goto(&format!("{base}/#tables"));
        b.wait_for(
            "the tables page",
            Duration::from_secs(10),
            "return document.querySelector('#tables').textContent.includes('overspeed');",
        );
        b.screenshot(&shots.join("tables.png"));
        b.click("#tables a[href^='#region/driving/']");
        b.wait_for(
            "a region's files",
            Duration::from_secs(10),
            "return document.querySelectorAll('#region table tr').length > 1;",
        );
        b.screenshot(&shots.join("region.png"));
        assert_no_console_errors(&b, "tables and region");

        b.goto(&format!("{base}/#resp"));
        b.eval(
            &format!("document.getElementById('lookup-key').value = '{DAY}';"),
            json!([]),
        );
        b.click("#lookup button");
        b.wait_for(
            "the key lookup",
            Duration::from_secs(10),
            "return document.querySelectorAll('#lookup-result table tr').length > 1 && \
                    document.querySelector('#resp-commands').textContent.includes('sadd');",
        );
        let shown = b.eval(
            "return [...document.querySelectorAll('#lookup-result td')].map(e => e.textContent);",
            json!([]),
        );
        let shown: BTreeSet<String> = serde_json::from_value(shown).unwrap();
        assert_eq!(shown, flagged, "the lookup shows the set's members");
        b.screenshot(&shots.join("ttl-sets.png"));
        assert_no_console_errors(&b, "TTL sets");

        b.goto(&format!("{base}/#fleet"));
        b.eval(
            &format!(
                "document.getElementById('fleet-day').value = '{}-{}-{}';",
                &DAY[..4],
                &DAY[4..6],
                &DAY[6..]
            ),
            json!([]),
        );
        b.click("#fleet-form button");
        b.wait_for(
            "the flagged cars",
            Duration::from_secs(10),
            "return document.querySelectorAll('#fleet-list a.car').length > 0;",
        );
        let cars = b.eval(
            "return [...document.querySelectorAll('#fleet-list a.car')].map(e => e.dataset.car);",
            json!([]),
        );
        let cars: BTreeSet<String> = serde_json::from_value(cars).unwrap();
        assert_eq!(
            cars, flagged,
            "the fleet view lists exactly the TTL set's cars"
        );
        let windows = b.eval(
            "return window.speedlayer.fleet.cars.map(c => c.windows.length);",
            json!([]),
        );
        assert!(
            windows
                .as_array()
                .unwrap()
                .iter()
                .all(|n| n.as_u64() > Some(0)),
            "every flagged car has its overspeed windows: {windows}"
        );
        b.click("#fleet-list a.car");
        b.wait_for(
            "the car's speed plot",
            Duration::from_secs(10),
            "const c = window.speedlayer.carChart; return !!c && c.data[0].length > 10;",
        );
        let plotted = b.eval(
            "const c = window.speedlayer.carChart; \
             return {points: c.data[0].length, over: c.data[1].filter(v => v > 80).length, \
                     threshold: c.data[2][0], note: document.getElementById('car-note').textContent};",
            json!([]),
        );
        assert_eq!(plotted["threshold"], json!(80), "{plotted}");
        assert!(
            plotted["over"].as_u64() > Some(0),
            "speeds over the threshold: {plotted}"
        );
        assert!(
            !plotted["note"]
                .as_str()
                .unwrap_or("")
                .starts_with("0 events"),
            "{plotted}"
        );
        b.screenshot(&shots.join("fleet.png"));
        b.eval(
            "document.getElementById('car-panel').scrollIntoView();",
            json!([]),
        );
        b.screenshot(&shots.join("fleet-car.png"));
        assert_no_console_errors(&b, "fleet");
    });

    // Read-only: no route takes anything but GET.
    for path in ["/", "/api/resp/key?key=x", "/api/tables", "/metrics"] {
        let mut s = std::net::TcpStream::connect(&http).unwrap();
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut s, &mut out).unwrap();
        assert!(out.starts_with("HTTP/1.1 405"), "POST {path}: {out}");
    }
    drop(worker);
    drop(collector);
}
