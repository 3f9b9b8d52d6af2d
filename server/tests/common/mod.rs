//! Helpers shared by the `resp_*` integration tests: an in-process server, the real
//! binary (started and awaited through its READY line), Debian's `redis-server`, and a raw
//! TCP client that compares exact bytes.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod differential;

use speedlayer_server::resp::frame::{Frame, FrameError};
use speedlayer_server::resp::{Clock, RespConfig, RespHandle, RespServer, SystemClock};

/// A config listening on a free loopback port, persisting into `dir`.
pub fn config(dir: &Path) -> RespConfig {
    RespConfig::new("127.0.0.1:0".parse().unwrap(), dir.to_path_buf())
}

/// Starts an in-process server.
pub async fn start(cfg: RespConfig) -> RespHandle {
    RespServer::start_with_clock(cfg, Arc::new(SystemClock))
        .await
        .unwrap()
}

/// Starts an in-process server with a given clock.
pub async fn start_with_clock(cfg: RespConfig, clock: Arc<dyn Clock>) -> RespHandle {
    RespServer::start_with_clock(cfg, clock).await.unwrap()
}

/// A blocking raw connection for exact-bytes tests.
pub struct Raw {
    pub s: TcpStream,
    /// Bytes read but not consumed yet.
    buf: Vec<u8>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_nodelay(true).unwrap();
        Raw { s, buf: Vec::new() }
    }

    /// Like [`Raw::connect`], `None` if nothing listens there (within a second).
    pub fn try_connect(addr: SocketAddr) -> Option<Raw> {
        let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        s.set_nodelay(true).ok()?;
        Some(Raw { s, buf: Vec::new() })
    }

    pub fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).unwrap();
    }

    /// Reads exactly `expected.len()` bytes and asserts they are `expected`.
    pub fn expect(&mut self, expected: &[u8]) {
        let mut got = vec![0u8; expected.len()];
        self.s
            .read_exact(&mut got)
            .unwrap_or_else(|e| panic!("reading {:?}: {e}", String::from_utf8_lossy(expected)));
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(expected),
            "reply bytes differ"
        );
    }

    /// Sends `req` and asserts the reply is exactly `reply`.
    pub fn roundtrip(&mut self, req: &[u8], reply: &[u8]) {
        self.send(req);
        self.expect(reply);
    }

    /// Asserts the server closed the connection (EOF, or reset).
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unread bytes before close: {:?}",
            self.buf
        );
        let mut b = [0u8; 64];
        match self.s.read(&mut b) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!("expected close, got {:?}", String::from_utf8_lossy(&b[..n])),
        }
    }

    /// Reads one whole frame.
    pub fn frame(&mut self) -> Frame {
        let mut chunk = [0u8; 4096];
        loop {
            match Frame::parse(&self.buf) {
                Ok((f, n)) => {
                    self.buf.drain(..n);
                    return f;
                }
                Err(FrameError::Incomplete) => {}
                Err(e) => panic!("bad frame: {e}"),
            }
            let n = self.s.read(&mut chunk).unwrap();
            assert!(n > 0, "connection closed mid-frame");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads one whole frame, or `None` if the server closes the connection first.
    pub fn try_frame(&mut self) -> Option<Frame> {
        let mut chunk = [0u8; 4096];
        loop {
            match Frame::parse(&self.buf) {
                Ok((f, n)) => {
                    self.buf.drain(..n);
                    return Some(f);
                }
                Err(FrameError::Incomplete) => {}
                Err(e) => panic!("bad frame: {e}"),
            }
            match self.s.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends a command and reads its reply; `None` if the connection closed instead.
    pub fn try_cmd(&mut self, args: &[&[u8]]) -> Option<Frame> {
        self.s.write_all(&encode(args)).ok()?;
        self.try_frame()
    }

    /// Sends a command as a RESP array and reads one frame.
    pub fn cmd(&mut self, args: &[&[u8]]) -> Frame {
        self.send(&encode(args));
        self.frame()
    }
}

/// RESP array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut v = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        v.extend_from_slice(a);
        v.extend_from_slice(b"\r\n");
    }
    v
}

/// Path of the real binary.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_speedlayer-server"))
}

/// The real `speedlayer-server` binary, started with `--resp-addr 127.0.0.1:0`.
pub struct Bin {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr_path: PathBuf,
}

impl Bin {
    /// Starts the binary with `data_dir` and extra flags; waits for its READY line.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Bin {
        Self::try_start(data_dir, extra).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Bin::start`], returning the stderr text if the binary exits before READY.
    pub fn try_start(data_dir: &Path, extra: &[&str]) -> Result<Bin, String> {
        let stderr_path = data_dir.with_extension(format!("stderr.{}", rand_suffix()));
        let err = std::fs::File::create(&stderr_path).unwrap();
        let mut child = Command::new(bin())
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--resp-addr", "127.0.0.1:0", "--only-resp"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // The first line is READY, or EOF when the binary exits; bounded by a deadline.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no READY line within 60 s")
            });
        if !line.starts_with("READY ") {
            let _ = child.wait();
            return Err(std::fs::read_to_string(&stderr_path).unwrap_or_default());
        }
        let addr = line
            .split_whitespace()
            .find_map(|f| f.strip_prefix("resp="))
            .expect("resp= field")
            .parse()
            .unwrap();
        Ok(Bin {
            child,
            addr,
            stderr_path,
        })
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// SIGTERM and wait; returns the exit status success.
    pub fn stop(mut self) -> bool {
        unsafe_kill(self.child.id(), "TERM");
        let ok = self.child.wait().unwrap().success();
        std::mem::forget(self);
        ok
    }

    /// SIGKILL and wait.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        std::mem::forget(self);
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn unsafe_kill(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(st.success());
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Debian's `redis-server`, for differential tests.
pub struct RealRedis {
    pub child: Child,
    pub addr: SocketAddr,
}

impl RealRedis {
    /// Starts `redis-server` on a free port and waits until it answers PING.
    pub fn start(extra: &[&str]) -> RealRedis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--databases", "1", "--dir", "/tmp"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (make test installs it)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut s) = TcpStream::connect(addr) {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let _ = s.write_all(b"PING\r\n");
                let mut b = [0u8; 7];
                if s.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n" {
                    break;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            std::thread::yield_now();
        }
        RealRedis { child, addr }
    }
}

impl Drop for RealRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `redis-cli` with args (and optional stdin); returns stdout.
pub fn redis_cli(addr: SocketAddr, args: &[&str], stdin: Option<&str>) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli is installed");
    {
        let mut i = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            i.write_all(s.as_bytes()).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every set key of a server: its name, its members (sorted) and its PEXPIRETIME reply,
/// sorted by key.
pub type State = Vec<(Vec<u8>, std::collections::BTreeSet<Vec<u8>>, Frame)>;

/// The [`State`] of the server `c` is connected to (KEYS, SMEMBERS, PEXPIRETIME).
pub fn state(c: &mut Raw) -> State {
    let Frame::Array(keys) = c.cmd(&[b"KEYS", b"*"]) else {
        panic!("KEYS")
    };
    let mut out = Vec::new();
    for k in keys {
        let Frame::Bulk(k) = k else { panic!() };
        let Frame::Array(ms) = c.cmd(&[b"SMEMBERS", &k]) else {
            panic!("SMEMBERS")
        };
        let members = ms
            .into_iter()
            .map(|m| match m {
                Frame::Bulk(b) => b.to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        out.push((k.to_vec(), members, c.cmd(&[b"PEXPIRETIME", &k])));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
