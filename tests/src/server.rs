//! Starting the real `speedlayer-server` binary for a test: every listener on
//! `127.0.0.1:0`, readiness taken from its `READY ... grpc=.. http=..` line (no sleeps),
//! stderr kept in a log file inside the data directory, and kill -9 / SIGTERM / restart /
//! SIGSTOP.
//!
//! Also runs the real `speedlayer` CLI against it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bins::bin_path;

/// How long a server may take to print `READY` (WAL replay included).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `speedlayer-server` child process.
pub struct ServerProcess {
    child: Option<Child>,
    data_dir: PathBuf,
    extra: Vec<String>,
    /// Fixed (gRPC, HTTP, RESP) ports kept across restarts, or `None` for port 0 each time.
    pinned: Option<[u16; 3]>,
    /// Bound RESP (TTL set service) address, if the RESP service is on.
    pub resp: Option<SocketAddr>,
    /// Bound gRPC address.
    pub grpc: SocketAddr,
    /// Bound HTTP address.
    pub http: SocketAddr,
}

impl ServerProcess {
    /// Starts a server on `data_dir` with loopback port 0 everywhere, plus `extra` flags.
    ///
    /// # Panics
    /// If it does not become ready within [`READY_TIMEOUT`] (the panic shows its log).
    pub fn start(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        Self::start_with(data_dir, extra, None)
    }

    /// Starts a server with the RESP service on, every listener on a port picked now and
    /// kept by [`restart`](Self::restart): clients pointed at it before a stop reach the
    /// restarted server at the same addresses (an outage, not a move).
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_pinned(data_dir: &Path, extra: &[&str]) -> ServerProcess {
        let ports = [free_port(), free_port(), free_port()];
        Self::start_with(data_dir, extra, Some(ports))
    }

    fn start_with(data_dir: &Path, extra: &[&str], pinned: Option<[u16; 3]>) -> ServerProcess {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, [grpc, http], resp) = spawn(data_dir, &extra, pinned);
        ServerProcess {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            extra,
            pinned,
            resp,
            grpc,
            http,
        }
    }

    /// Starts a server inside network namespace `netns` (`ip netns exec`), listening on
    /// `host` (an address of the namespace) with ports picked by the kernel, RESP off.
    /// [`kill9`](Self::kill9) and the other signals reach the server itself (`ip netns
    /// exec` execs it); [`restart`](Self::restart) starts it on the host, so do not use it.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_in_netns(
        netns: &str,
        host: &str,
        data_dir: &Path,
        extra: &[&str],
    ) -> ServerProcess {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", netns])
            .arg(bin_path("speedlayer-server"));
        let listen = vec![
            "--grpc-addr".to_owned(),
            format!("{host}:0"),
            "--http-addr".to_owned(),
            format!("{host}:0"),
            "--resp-addr".to_owned(),
            "off".to_owned(),
        ];
        let (child, [grpc, http], resp) = spawn_cmd(cmd, data_dir, listen, &extra, false);
        ServerProcess {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            extra,
            pinned: None,
            resp,
            grpc,
            http,
        }
    }

    /// The gRPC URL for clients, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The server's stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(&self.data_dir)).unwrap_or_default()
    }

    /// kill -9, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("kill -9");
            child.wait().expect("wait after kill");
        }
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing (a store that is up but
    /// stalled, e.g. on a slow disk), until [`thaw`](Self::thaw).
    pub fn freeze(&mut self) {
        self.signal(libc::SIGSTOP, "SIGSTOP");
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&mut self) {
        self.signal(libc::SIGCONT, "SIGCONT");
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// CPU time (user + system) the process has used so far, from `/proc/<pid>/stat`, in
    /// clock ticks of 10 ms (`None` when it is not running or the file is unreadable).
    pub fn cpu_ticks(&self) -> Option<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        // Fields after the parenthesised command name: state is the first, utime the 12th.
        let rest = &stat[stat.rfind(')')? + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
    }

    fn signal(&mut self, sig: libc::c_int, name: &str) {
        let child = self.child.as_ref().expect("server is running");
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "{name} failed");
    }

    /// SIGTERM, and wait (bounded) for a graceful exit; returns its status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server is running");
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "server did not exit within 60 s of SIGTERM:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the server again on the same data directory (new ports, or the same ones if
    /// it was started with [`start_pinned`](Self::start_pinned)).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let (child, [grpc, http], resp) = spawn(&self.data_dir, &self.extra, self.pinned);
        self.child = Some(child);
        self.grpc = grpc;
        self.http = http;
        self.resp = resp;
    }

    /// Whether the process is running (not stopped by this handle, not exited).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Runs the `speedlayer` CLI against this server.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        run_cli(&self.url(), args)
    }

    /// `GET path` on the HTTP port: (status code, body).
    pub fn http_get(&self, path: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(self.http).expect("connect http");
        s.set_read_timeout(Some(Duration::from_secs(30))).ok();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read http");
        let code = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status line");
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (code, body)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server.log")
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

fn spawn(
    data_dir: &Path,
    extra: &[String],
    pinned: Option<[u16; 3]>,
) -> (Child, [SocketAddr; 2], Option<SocketAddr>) {
    let cmd = Command::new(bin_path("speedlayer-server"));
    spawn_cmd(cmd, data_dir, listen_args(pinned), extra, pinned.is_some())
}

fn spawn_cmd(
    mut cmd: Command,
    data_dir: &Path,
    listen: Vec<String>,
    extra: &[String],
    with_resp: bool,
) -> (Child, [SocketAddr; 2], Option<SocketAddr>) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(data_dir))
        .expect("log file");
    let mut child = cmd
        .arg("--data-dir")
        .arg(data_dir)
        .args(listen)
        .args(extra)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn speedlayer-server");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("READY") {
                let _ = tx.send(line);
            }
        }
    });
    let line = match rx.recv_timeout(READY_TIMEOUT) {
        Ok(line) => line,
        Err(_) => {
            let _ = child.kill();
            let log = std::fs::read_to_string(log_path(data_dir)).unwrap_or_default();
            panic!("speedlayer-server did not print READY:\n{log}");
        }
    };
    let field = |name: &str| -> SocketAddr {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(name))
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("READY line without {name}: {line}"))
    };
    let grpc = field("grpc=");
    let http = field("http=");
    let resp = with_resp.then(|| field("resp="));
    (child, [grpc, http], resp)
}

fn listen_args(pinned: Option<[u16; 3]>) -> Vec<String> {
    let addr = |p: u16| format!("127.0.0.1:{p}");
    match pinned {
        None => ["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"]
            .into_iter()
            .chain(["--resp-addr", "off"])
            .map(String::from)
            .collect(),
        Some([g, h, r]) => vec![
            "--grpc-addr".into(),
            addr(g),
            "--http-addr".into(),
            addr(h),
            "--resp-addr".into(),
            addr(r),
        ],
    }
}

/// What one CLI run produced.
#[derive(Debug)]
pub struct CliOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert!(
            self.status.success(),
            "speedlayer failed ({}): {}",
            self.status,
            self.stderr
        );
        self.stdout
    }

    /// Asserts failure and returns stderr.
    pub fn err(self) -> String {
        assert!(
            !self.status.success(),
            "speedlayer should have failed; stdout: {}",
            self.stdout
        );
        self.stderr
    }
}

/// Runs `speedlayer --addr URL args...`.
pub fn run_cli(url: &str, args: &[&str]) -> CliOutput {
    let out = Command::new(bin_path("speedlayer"))
        .arg("--addr")
        .arg(url)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run speedlayer");
    CliOutput {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A client that tries each request once (10 s timeout): a test that counts acknowledged
/// writes must see the first failure, not a retried success.
///
/// # Panics
/// If the server at `url` cannot be reached.
pub async fn client_without_retries(url: &str) -> speedlayer_client::Client {
    let opts = speedlayer_client::ClientOptions {
        retry: speedlayer_client::RetryPolicy {
            max_attempts: 1,
            ..speedlayer_client::RetryPolicy::default()
        },
        request_timeout: std::time::Duration::from_secs(10),
        ..speedlayer_client::ClientOptions::default()
    };
    speedlayer_client::Client::connect_with(url, opts)
        .await
        .expect("connect to the test server")
}
