//! The whole stack as separate processes: real tansu, the real `speedlayer-server` (gRPC
//! region server + RESP TTL set service) and the real `speedlayer-ingest worker` binary.
//! Garbage mixed in; the worker is `kill -9`ed mid-stream and restarted; the region server
//! is `kill -9`ed mid-stream and restarted on the same ports and data directory. At the
//! end: every valid event stored exactly once (scan count + checksum), every garbage line
//! in the DLQ, flagged sets and overspeed rows equal to an independent reference.

#[path = "ingest_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use speedlayer_client::Client;
use speedlayer_client::proto::ScanRequest;
use speedlayer_tests::bins::bin_path;
use support::*;

/// A child process whose stdout `READY` line was seen; killed with SIGKILL on drop.
struct Proc {
    child: Child,
    ready: String,
}

impl Proc {
    fn spawn(cmd: &mut Command) -> Proc {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = tx.send(line);
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("no READY line within 60 s");
        assert!(ready.starts_with("READY"));
        Proc { child, ready }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no graceful commit, no flush
        let _ = self.child.wait();
    }
}

/// `GET path` from the `http=ADDR` of a READY line; the response body.
fn http_get(ready: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = ready
        .split_whitespace()
        .find_map(|f| f.strip_prefix("http="))
        .expect("READY line names http=ADDR");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 200"), "{out}");
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The sum of the samples of metric `name` (with any labels) in Prometheus text.
fn metric(text: &str, name: &str) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn server(data: &Path, grpc: u16, http: u16, resp: u16) -> Proc {
    Proc::spawn(
        Command::new(bin_path("speedlayer-server"))
            .arg("--data-dir")
            .arg(data)
            .args(["--grpc-addr", &format!("127.0.0.1:{grpc}")])
            .args(["--http-addr", &format!("127.0.0.1:{http}")])
            .args(["--resp-addr", &format!("127.0.0.1:{resp}")])
            // A flagged member is acknowledged before the worker commits: with `everysec`
            // a kill -9 could lose the last second of SADDs after their offsets committed.
            .args(["--appendfsync", "always"]),
    )
}

fn worker(brokers: &str, grpc: u16, resp: u16, rules: &Path) -> Proc {
    Proc::spawn(
        Command::new(bin_path("speedlayer-ingest"))
            .arg("worker")
            .args([
                "--brokers",
                brokers,
                "--topic",
                TOPIC,
                "--group",
                "full-stack",
            ])
            .args(["--server", &format!("http://127.0.0.1:{grpc}")])
            .args(["--resp", &format!("127.0.0.1:{resp}")])
            .arg("--rules")
            .arg(rules)
            .args(["--http-addr", "127.0.0.1:0", "--idle-flush", "3s"]),
    )
}

async fn driving_rows(grpc: u16) -> Vec<(Vec<u8>, Vec<u8>)> {
    table_rows(grpc, "driving").await
}

async fn table_rows(grpc: u16, table: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let Ok(client) = Client::connect(&format!("http://127.0.0.1:{grpc}")).await else {
        return Vec::new();
    };
    let req = ScanRequest {
        table: table.into(),
        ..ScanRequest::default()
    };
    let Ok(rows) = client.scan_all(req).await else {
        return Vec::new();
    };
    rows.into_iter()
        .map(|r| {
            let speed = r
                .cells
                .iter()
                .find(|c| c.qualifier.as_ref() == b"speed")
                .map(|c| c.value.to_vec())
                .unwrap_or_default();
            (r.row.to_vec(), speed)
        })
        .collect()
}

async fn wait_rows(grpc: u16, n: usize, what: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let rows = driving_rows(grpc).await;
        if rows.len() >= n {
            return rows;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {} of {n} rows",
            rows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // poll interval
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_stack_exactly_once_across_worker_and_server_kills() {
    let tansu = speedlayer_tests::tansu::Tansu::start();
    tansu.create_topic(TOPIC, 4);
    tansu.create_topic(DLQ, 1);
    let brokers = tansu.brokers();
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), 80);
    let (grpc, http, resp) = (free_port(), free_port(), free_port());
    let data = dir.path().join("data");

    let lines = driving_lines(30, 0, 120, 51);
    let bad = garbage(20);
    let third = lines.len() / 3;
    let mut first = records(&lines[..third]);
    first.extend(bad.iter().map(|b| (None, b.clone())));
    produce(&brokers, &first).await;

    let srv = server(&data, grpc, http, resp);
    let w = worker(&brokers, grpc, resp, &rules);
    wait_rows(grpc, third / 2, "first part").await;
    drop(w); // kill -9 the worker mid-stream

    produce(&brokers, &records(&lines[third..2 * third])).await;
    let w = worker(&brokers, grpc, resp, &rules);
    wait_rows(grpc, third + third / 2, "second part").await;
    drop(srv); // kill -9 the region server (and the RESP service) mid-stream
    produce(&brokers, &records(&lines[2 * third..])).await;
    let srv = server(&data, grpc, http, resp);

    let rows = wait_rows(grpc, lines.len(), "all rows").await;
    let keys: std::collections::BTreeSet<Vec<u8>> = rows.iter().map(|r| r.0.clone()).collect();
    assert_eq!(rows.len(), lines.len(), "no duplicates");
    assert_eq!(keys, expected_keys(&lines), "exactly the valid events");
    let sum: u64 = rows
        .iter()
        .map(|(k, v)| u64::from(crc32fast::hash(k)) + u64::from(crc32fast::hash(v)))
        .sum();
    let want: u64 = lines
        .iter()
        .map(|l| {
            let k = expected_keys(std::slice::from_ref(l))
                .into_iter()
                .next()
                .unwrap();
            u64::from(crc32fast::hash(&k))
                + u64::from(crc32fast::hash(l.speed.to_string().as_bytes()))
        })
        .sum();
    assert_eq!(sum, want, "row checksum");

    let want_sets = reference_sets(&lines, |_| 80);
    let client = redis::Client::open(format!("redis://127.0.0.1:{resp}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = client.get_connection().ok().and_then(|mut c| {
            let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).ok()?;
            let mut m = std::collections::BTreeMap::new();
            for k in keys {
                let s: std::collections::BTreeSet<String> =
                    redis::cmd("SMEMBERS").arg(&k).query(&mut c).ok()?;
                m.insert(k, s);
            }
            Some(m)
        });
        if got.as_ref() == Some(&want_sets) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "sets {got:?} != reference {want_sets:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await; // poll interval
    }
    let want_windows = reference_windows(&lines, |_| 80);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let overspeed: BTreeSet<Vec<u8>> = table_rows(grpc, "overspeed")
            .await
            .into_iter()
            .map(|r| r.0)
            .collect();
        if overspeed.len() >= want_windows.len() || Instant::now() >= deadline {
            let show = |a: &BTreeSet<Vec<u8>>, b: &BTreeSet<Vec<u8>>| {
                a.difference(b)
                    .map(|k| String::from_utf8_lossy(k).into_owned())
                    .collect::<Vec<_>>()
            };
            assert!(
                overspeed == want_windows,
                "overspeed rows: extra {:?}, missing {:?}",
                show(&overspeed, &want_windows),
                show(&want_windows, &overspeed)
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await; // poll interval
    }
    let dead = tansu.consume_at_least(DLQ, bad.len(), Duration::from_secs(30));
    let mut got: Vec<String> = dead
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    got.sort();
    got.dedup(); // the DLQ is at-least-once across a kill
    let mut want_dead = bad.clone();
    want_dead.sort();
    want_dead.dedup();
    assert_eq!(
        got, want_dead,
        "every garbage line in the DLQ, no valid line"
    );

    // The surviving worker's /metrics: what it consumed, stored, retried through the
    // server outage, flagged, how long its batches took, and lag per owned partition.
    let text = http_get(&w.ready, "/metrics");
    for (name, positive) in [
        ("ingest_consumed_total", true),
        ("ingest_stored_total", true),
        ("ingest_store_retries_total", true),
        ("ingest_rule_firings_total", true),
        ("ingest_batch_seconds_count", true),
        ("ingest_dead_lettered_total", false),
        ("ingest_late_total", false),
    ] {
        let v = metric(&text, name).unwrap_or_else(|| panic!("{name} missing:\n{text}"));
        assert!(!positive || v > 0.0, "{name} = {v}");
    }
    assert_eq!(
        metric(&text, "ingest_partitions_owned"),
        Some(4.0),
        "{text}"
    );
    for p in 0..4 {
        let lag = format!("ingest_consumer_lag{{topic=\"{TOPIC}\",partition=\"{p}\"}}");
        assert!(text.contains(&lag), "{lag} missing:\n{text}");
    }
    drop(w);
    drop(srv);
}
