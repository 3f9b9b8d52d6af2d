//! Starting the real `speedlayer-server` binary for a test: every listener on
//! `127.0.0.1:0`, readiness taken from its `READY ... grpc=.. http=..` line (no sleeps),
//! stderr kept in a log file inside the data directory, and kill -9 / SIGTERM / restart.
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
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let (child, grpc, http) = spawn(data_dir, &extra);
        ServerProcess {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            extra,
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

    /// Starts the server again on the same data directory (new ports).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop the server before restarting it");
        let (child, grpc, http) = spawn(&self.data_dir, &self.extra);
        self.child = Some(child);
        self.grpc = grpc;
        self.http = http;
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

fn spawn(data_dir: &Path, extra: &[String]) -> (Child, SocketAddr, SocketAddr) {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path(data_dir))
        .expect("log file");
    let mut child = Command::new(bin_path("speedlayer-server"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"])
        .args(["--resp-addr", "off"])
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
    (child, grpc, http)
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
