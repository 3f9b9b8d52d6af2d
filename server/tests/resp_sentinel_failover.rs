//! Failover with Debian's `redis-sentinel`: three of our services (a master and two
//! replicas through the `replicaof` setting of their config files) monitored by three
//! Sentinels (quorum 2); a write load through redis-py's Sentinel client doing SADD then
//! `WAIT 1`; the master killed with -9. Sentinel promotes a replica, the client keeps
//! working, every write WAIT acknowledged as replicated is on the new master, and the old
//! master, restarted from its config file, is turned into a replica of the new one.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{Raw, bin, free_port};
use speedlayer_server::resp::frame::Frame;

/// One of our servers, started from a config file on a fixed port.
struct Node {
    child: Option<Child>,
    config: PathBuf,
    port: u16,
    stderr: PathBuf,
}

impl Node {
    fn new(dir: &Path, name: &str, master: Option<u16>) -> Node {
        let port = free_port();
        let data = dir.join(format!("{name}-data"));
        let config = dir.join(format!("{name}.toml"));
        let replicaof = master.map_or("none".to_owned(), |p| format!("127.0.0.1:{p}"));
        std::fs::write(
            &config,
            format!(
                "# {name}: written by the test; CONFIG REWRITE edits [resp]\nonly_resp = true\ndata_dir = {:?}\n\n[resp]\naddr = \"127.0.0.1:{port}\"\nreplicaof = \"{replicaof}\"\n",
                data.display().to_string()
            ),
        )
        .unwrap();
        let mut n = Node {
            child: None,
            config,
            port,
            stderr: dir.join(format!("{name}.stderr")),
        };
        n.start();
        n
    }

    fn start(&mut self) {
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.stderr)
            .unwrap();
        let mut child = Command::new(bin())
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        assert!(
            line.starts_with("READY "),
            "server on port {} did not start: {}",
            self.port,
            std::fs::read_to_string(&self.stderr).unwrap_or_default()
        );
        self.child = Some(child);
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().unwrap();
            c.wait().unwrap();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A `redis-sentinel` process.
struct Sentinel {
    child: Child,
    port: u16,
}

impl Sentinel {
    fn start(dir: &Path, n: usize, master: u16) -> Sentinel {
        let port = free_port();
        let conf = dir.join(format!("sentinel{n}.conf"));
        std::fs::write(
            &conf,
            format!(
                "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\nsentinel monitor mymaster 127.0.0.1 {master} 2\nsentinel down-after-milliseconds mymaster 1000\nsentinel failover-timeout mymaster 6000\nsentinel parallel-syncs mymaster 2\n",
                dir.display(),
                dir.join(format!("sentinel{n}.log")).display()
            ),
        )
        .unwrap();
        let child = Command::new("redis-sentinel")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-sentinel is installed (scripts/install-deps.sh)");
        Sentinel { child, port }
    }

    fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn try_cmd(addr: SocketAddr, args: &[&[u8]]) -> Option<Frame> {
    Raw::try_connect(addr)?.try_cmd(args)
}

fn info(addr: SocketAddr, field: &str) -> Option<String> {
    let Frame::Bulk(text) = try_cmd(addr, &[b"INFO", b"replication"])? else {
        return None;
    };
    String::from_utf8_lossy(&text).lines().find_map(|l| {
        l.strip_prefix(field)
            .and_then(|r| r.strip_prefix(':'))
            .map(str::to_owned)
    })
}

/// Waits for `ok`; on timeout fails with the Sentinels' logs and our servers' stderr
/// from `dir`.
fn wait_until(dir: &Path, what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        if Instant::now() >= deadline {
            panic!("timed out waiting until {what}\n{}", diagnostics(dir));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Sentinels' logs and our servers' stderr, for a failure message.
fn diagnostics(dir: &Path) -> String {
    let mut out = String::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".log") || name.ends_with(".stderr") {
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("==> {name}\n"));
            for l in &lines[lines.len().saturating_sub(40)..] {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// `SENTINEL <what> mymaster` as a list of field maps.
fn sentinel_list(s: &Sentinel, what: &[u8]) -> Vec<Vec<(String, String)>> {
    let Some(Frame::Array(items)) = try_cmd(s.addr(), &[b"SENTINEL", what, b"mymaster"]) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Frame::Array(kv) = item else { return None };
            Some(
                kv.chunks(2)
                    .filter_map(|p| match p {
                        [Frame::Bulk(k), Frame::Bulk(v)] => Some((
                            String::from_utf8_lossy(k).into_owned(),
                            String::from_utf8_lossy(v).into_owned(),
                        )),
                        _ => None,
                    })
                    .collect(),
            )
        })
        .collect()
}

fn field<'a>(item: &'a [(String, String)], name: &str) -> &'a str {
    item.iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

fn members(addr: SocketAddr) -> BTreeSet<String> {
    match try_cmd(addr, &[b"SMEMBERS", b"flagged"]) {
        Some(Frame::Array(v) | Frame::Set(v)) => v
            .into_iter()
            .filter_map(|m| match m {
                Frame::Bulk(b) => Some(String::from_utf8_lossy(&b).into_owned()),
                _ => None,
            })
            .collect(),
        other => panic!("SMEMBERS on {addr}: {other:?}"),
    }
}

#[derive(Debug)]
struct LoadReport {
    json: serde_json::Value,
}

#[test]
fn sentinel_fails_over_our_services_without_losing_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Node::new(dir.path(), "a", None);
    let b = Node::new(dir.path(), "b", Some(a.port));
    let c = Node::new(dir.path(), "c", Some(a.port));
    for n in [&b, &c] {
        wait_until(
            dir.path(),
            "both replicas are linked",
            Duration::from_secs(20),
            || info(n.addr(), "master_link_status").as_deref() == Some("up"),
        );
    }
    let sentinels: Vec<Sentinel> = (0..3)
        .map(|i| Sentinel::start(dir.path(), i, a.port))
        .collect();
    // Every Sentinel sees both replicas (found through our INFO, connected through pub/sub)
    // and the two other Sentinels (found through our __sentinel__:hello channel).
    wait_until(
        dir.path(),
        "the Sentinels see both replicas and each other",
        Duration::from_secs(30),
        || {
            sentinels.iter().all(|s| {
                let replicas = sentinel_list(s, b"REPLICAS");
                let others = sentinel_list(s, b"SENTINELS");
                replicas.len() == 2
                    && replicas.iter().all(|r| {
                        field(r, "flags") == "slave" && field(r, "master-link-status") == "ok"
                    })
                    && others.len() == 2
            })
        },
    );

    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/redis_py_sentinel_failover.py"
    );
    let ports: Vec<String> = sentinels.iter().map(|s| s.port.to_string()).collect();
    let mut load = Command::new("python3")
        .args([script, &ports.join(","), "300", "100", "60"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 with redis-py (scripts/install-deps.sh)");
    let stdout = load.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the load reaches 300 acknowledged writes");
    assert_eq!(first, "KILL");
    let killed_at = Instant::now();
    a.kill9();
    let last = rx
        .recv_timeout(Duration::from_secs(90))
        .expect("the load ends with its report");
    let status = load.wait().unwrap();
    let mut err = String::new();
    let _ = std::io::Read::read_to_string(&mut load.stderr.take().unwrap(), &mut err);
    assert!(status.success(), "load script failed: {err}");
    let report = LoadReport {
        json: serde_json::from_str(&last).unwrap_or_else(|e| panic!("{e}: {last}")),
    };
    let new = report.json["new"]
        .as_array()
        .unwrap_or_else(|| panic!("the client never saw a new master: {report:?}"));
    let new_port = new[1].as_u64().unwrap() as u16;
    assert!(
        new_port == b.port || new_port == c.port,
        "new master {new:?} is one of the replicas"
    );
    assert!(
        report.json["acked_on_new"].as_u64() >= Some(100),
        "the client kept writing through the failover: {report:?}"
    );
    let failover = killed_at.elapsed();
    let new_addr = SocketAddr::from(([127, 0, 0, 1], new_port));
    assert_eq!(info(new_addr, "role").as_deref(), Some("master"));

    // No write WAIT acknowledged as replicated is lost.
    let acked: BTreeSet<String> = report.json["acked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let on_new = members(new_addr);
    let lost: Vec<&String> = acked.difference(&on_new).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost on the new master, e.g. {:?}",
        lost.len(),
        acked.len(),
        &lost[..lost.len().min(5)]
    );

    // The old master, restarted from its config file, is reconfigured by Sentinel into a
    // replica of the new master, and converges to its data.
    a.start();
    wait_until(
        dir.path(),
        "the old master follows the new one",
        Duration::from_secs(60),
        || {
            info(a.addr(), "master_port").as_deref() == Some(&new_port.to_string())
                && info(a.addr(), "master_link_status").as_deref() == Some("up")
        },
    );
    let text = std::fs::read_to_string(&a.config).unwrap();
    assert!(
        text.contains(&format!("replicaof = \"127.0.0.1:{new_port}\"")),
        "CONFIG REWRITE recorded the new master in the old one's file:\n{text}"
    );
    let _ = try_cmd(new_addr, &[b"WAIT", b"2", b"5000"]);
    assert_eq!(members(a.addr()), members(new_addr));
    let _ = std::io::stderr().write_all(
        format!(
            "failover: {} acknowledged writes kept, {} more on the new master, errors {}, the load ended {:?} after the kill\n",
            acked.len(),
            report.json["acked_on_new"],
            report.json["errors"],
            failover
        )
        .as_bytes(),
    );
}
