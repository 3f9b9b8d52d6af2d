//! A second `speedlayer-server` started on a data directory that a running server owns
//! exits non-zero with an "in use" error naming the directory and the owner's PID, and
//! leaves the directory exactly as it was: same names, inodes, sizes, mtimes and bytes
//! (the AOF included, so it was neither loaded-and-truncated nor rewritten nor replaced).
//! The owner keeps serving, and after its restart every write it acknowledged — before and
//! after the second server's attempt — is there.
//!
//! Both ways round: the owner in full mode refuses a full and a `--only-resp` second server;
//! the owner in `--only-resp` mode refuses them too.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use speedlayer_client::proto::{self, Durability, GetRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::READY_TIMEOUT;

/// The set key every SADD of these tests goes to (a day, as the overspeed rule writes).
const DAY: &str = "20261202";

/// How the owning server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Full,
    OnlyResp,
}

impl Mode {
    /// Flags for this mode, every listener on a free loopback port.
    fn args(self) -> Vec<&'static str> {
        let mut args = vec!["--resp-addr", "127.0.0.1:0", "--appendfsync", "always"];
        match self {
            Mode::Full => args.extend(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]),
            Mode::OnlyResp => args.push("--only-resp"),
        }
        args
    }
}

/// The server that owns the data directory. Its stderr goes to a log file beside the
/// data directory, never inside it, so that the directory holds only the server's files.
struct Owner {
    child: Option<Child>,
    data_dir: PathBuf,
    log: PathBuf,
    mode: Mode,
    resp: SocketAddr,
    grpc: Option<SocketAddr>,
}

impl Owner {
    fn start(data_dir: &Path, log: &Path, mode: Mode) -> Owner {
        let mut owner = Owner {
            child: None,
            data_dir: data_dir.to_path_buf(),
            log: log.to_path_buf(),
            mode,
            resp: "127.0.0.1:0".parse().unwrap(),
            grpc: None,
        };
        owner.spawn();
        owner
    }

    /// Starts the binary and waits for its READY line (no sleeps).
    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut child = Command::new(bin_path("speedlayer-server"))
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(self.mode.args())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("READY") {
                    let _ = tx.send(line);
                }
            }
        });
        let Ok(line) = rx.recv_timeout(READY_TIMEOUT) else {
            let _ = child.kill();
            panic!("owner did not print READY:\n{}", self.log_text());
        };
        let field = |name: &str| -> Option<SocketAddr> {
            line.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .map(|a| a.parse().unwrap())
        };
        self.resp = field("resp=").expect("READY names the RESP address");
        self.grpc = field("grpc=");
        assert_eq!(self.grpc.is_some(), self.mode == Mode::Full, "{line}");
        self.child = Some(child);
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("owner is running").id()
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and wait (bounded) for the graceful exit.
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("owner is running");
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM failed");
        wait_bounded(&mut child, "owner after SIGTERM")
    }

    fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the owner before restarting it");
        self.spawn();
    }

    fn redis(&self) -> redis::Connection {
        redis::Client::open(format!("redis://{}", self.resp))
            .unwrap()
            .get_connection()
            .unwrap()
    }

    fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc.expect("full mode"))
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit, killing it and failing after [`READY_TIMEOUT`].
fn wait_bounded(child: &mut Child, what: &str) -> ExitStatus {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit within {READY_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs a second server on `data_dir` in `mode` until it exits; returns its status and
/// stderr. Fails at once if it prints READY (it would serve the owner's directory).
fn second_server(data_dir: &Path, mode: Mode) -> (ExitStatus, String) {
    let mut child = Command::new(bin_path("speedlayer-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(mode.args())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("READY") {
                let _ = ready_tx.send(line);
            }
        }
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        // Waits on the READY signal itself, bounded so that exit is polled too.
        if let Ok(line) = ready_rx.recv_timeout(Duration::from_millis(20)) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "second server ({mode:?}) became ready on the owner's directory: {line}\n{}",
                err.join().unwrap()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("second server ({mode:?}) neither exited nor became ready");
        }
    };
    (status, err.join().unwrap())
}

/// One entry of the directory tree: enough to see any create, delete, rename, rewrite,
/// truncation or write.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    is_dir: bool,
    inode: u64,
    len: u64,
    mtime: SystemTime,
    /// Whole contents of a file.
    bytes: Option<Vec<u8>>,
}

/// Every entry under `root` (and `root` itself, as ""), by relative path.
fn tree(root: &Path) -> BTreeMap<PathBuf, Entry> {
    let mut out = BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let is_dir = meta.is_dir();
        if is_dir {
            for e in std::fs::read_dir(&path).unwrap() {
                todo.push(e.unwrap().path());
            }
        }
        out.insert(
            path.strip_prefix(root).unwrap().to_path_buf(),
            Entry {
                is_dir,
                inode: meta.ino(),
                len: meta.len(),
                mtime: meta.modified().unwrap(),
                bytes: (!is_dir).then(|| std::fs::read(&path).unwrap()),
            },
        );
    }
    out
}

fn sadd(c: &mut redis::Connection, members: &[&str]) {
    let added: i64 = redis::cmd("SADD").arg(DAY).arg(members).query(c).unwrap();
    assert_eq!(
        added,
        members.len() as i64,
        "SADD acknowledged every member"
    );
}

fn smembers(c: &mut redis::Connection) -> Vec<String> {
    let mut m: Vec<String> = redis::cmd("SMEMBERS").arg(DAY).query(c).unwrap();
    m.sort();
    m
}

async fn grpc_put(url: &str, row: &str, value: &str) {
    let c = Client::connect(url).await.unwrap();
    c.mutate(
        "driving",
        vec![put_row(
            row.as_bytes(),
            &[("cf1", "speed", value.as_bytes())],
        )],
        Durability::Sync,
    )
    .await
    .unwrap();
}

async fn grpc_get(url: &str, row: &str) -> Option<Bytes> {
    let c = Client::connect(url).await.unwrap();
    c.get(GetRequest {
        table: "driving".into(),
        row: Bytes::from(row.to_owned()),
        ..Default::default()
    })
    .await
    .unwrap()
    .and_then(|r| r.cells.first().map(|c| c.value.clone()))
}

/// The scenario: `owner_mode` owns the directory; each of `second_modes` is refused
/// without touching it; the owner's acknowledged writes all survive its restart.
fn second_instance_touches_nothing(owner_mode: Mode, second_modes: &[Mode]) {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut owner = Owner::start(&data, &tmp.path().join("owner.log"), owner_mode);
    let rt = tokio::runtime::Runtime::new().unwrap();

    // Acknowledged writes before the second server's attempts.
    let mut r = owner.redis();
    sadd(&mut r, &["V0001", "V0002"]);
    let ttl_set: i64 = redis::cmd("EXPIRE")
        .arg(DAY)
        .arg(604_800)
        .query(&mut r)
        .unwrap();
    assert_eq!(ttl_set, 1);
    if owner_mode == Mode::Full {
        let url = owner.grpc_url();
        rt.block_on(async {
            Client::connect(&url)
                .await
                .unwrap()
                .create_table(proto::TableSchema {
                    name: "driving".into(),
                    families: vec![proto::FamilySchema {
                        name: "cf1".into(),
                        ..Default::default()
                    }],
                })
                .await
                .unwrap();
            grpc_put(&url, "V0001#20261202143015", "87").await;
        });
    }

    let before = tree(&data);
    let aof = PathBuf::from("resp").join("appendonly.aof");
    let aof_bytes = before[&aof].bytes.as_deref().unwrap();
    assert!(
        aof_bytes.windows(5).any(|w| w == b"V0002"),
        "the acknowledged SADD is in the AOF before the second server starts"
    );
    assert!(before.contains_key(Path::new("LOCK")));

    for &mode in second_modes {
        let (status, stderr) = second_server(&data, mode);
        assert!(
            !status.success(),
            "second server ({mode:?}) exited successfully:\n{stderr}"
        );
        assert!(stderr.contains("in use"), "{mode:?}: {stderr}");
        assert!(
            stderr.contains(&data.display().to_string()),
            "{mode:?}: the error names the directory: {stderr}"
        );
        assert!(
            stderr.contains(&format!("pid {}", owner.pid())),
            "{mode:?}: the error names the owner's PID {}: {stderr}",
            owner.pid()
        );
        let after = tree(&data);
        for (path, entry) in &before {
            assert_eq!(
                after.get(path),
                Some(entry),
                "second server ({mode:?}) changed {}",
                path.display()
            );
        }
        assert_eq!(
            after.keys().collect::<Vec<_>>(),
            before.keys().collect::<Vec<_>>(),
            "second server ({mode:?}) created or removed entries"
        );
    }

    // The owner still serves, and writes after the attempts are acknowledged too.
    sadd(&mut r, &["V0003"]);
    let mut fresh = owner.redis();
    sadd(&mut fresh, &["V0004"]);
    if owner_mode == Mode::Full {
        rt.block_on(grpc_put(&owner.grpc_url(), "V0001#20261202143016", "91"));
    }
    drop((r, fresh));

    let status = owner.terminate();
    assert!(
        status.success(),
        "owner exit: {status}\n{}",
        owner.log_text()
    );
    owner.restart();

    let mut r = owner.redis();
    assert_eq!(
        smembers(&mut r),
        ["V0001", "V0002", "V0003", "V0004"],
        "every acknowledged SADD survives the restart\n{}",
        owner.log_text()
    );
    let ttl: i64 = redis::cmd("TTL").arg(DAY).query(&mut r).unwrap();
    assert!(
        (604_000..=604_800).contains(&ttl),
        "the EXPIRE survives: {ttl}"
    );
    if owner_mode == Mode::Full {
        let url = owner.grpc_url();
        rt.block_on(async {
            assert_eq!(
                grpc_get(&url, "V0001#20261202143015").await.as_deref(),
                Some(&b"87"[..]),
                "the put before the attempts survives"
            );
            assert_eq!(
                grpc_get(&url, "V0001#20261202143016").await.as_deref(),
                Some(&b"91"[..]),
                "the put after the attempts survives"
            );
        });
    }
    let status = owner.terminate();
    assert!(
        status.success(),
        "owner exit: {status}\n{}",
        owner.log_text()
    );
}

#[test]
fn full_server_owner_refuses_a_second_full_and_resp_only_server() {
    second_instance_touches_nothing(Mode::Full, &[Mode::Full, Mode::OnlyResp]);
}

#[test]
fn resp_only_owner_refuses_a_second_full_and_resp_only_server() {
    second_instance_touches_nothing(Mode::OnlyResp, &[Mode::Full, Mode::OnlyResp]);
}
