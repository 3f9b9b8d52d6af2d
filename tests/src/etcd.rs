//! Starting Debian's real `etcd` (3.4, v3 API; `scripts/install-deps.sh` installs
//! `etcd-server`) for a test: one member on loopback, client and peer ports picked now, data
//! in a temporary directory, readiness taken from a real v3 call (`etcdctl endpoint
//! health`), and kill -9 / SIGSTOP / SIGCONT / restart on the same ports and data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tansu::free_port;

/// How long etcd may take to answer after it starts.
pub const ETCD_READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running single-member etcd.
pub struct Etcd {
    host: String,
    tls: Option<crate::certs::TestCerts>,
    child: Option<Child>,
    dir: PathBuf,
    client_port: u16,
    peer_port: u16,
}

impl Etcd {
    /// Starts etcd with its data in `dir` on two free loopback ports.
    ///
    /// # Panics
    /// If `etcd` is not installed or does not become healthy within
    /// [`ETCD_READY_TIMEOUT`] (three tries on new ports; the panic shows its log).
    pub fn start(dir: &Path) -> Etcd {
        Etcd::start_on(dir, "127.0.0.1")
    }

    /// As [`start`](Self::start), listening on `host` (e.g. the host side of a veth link
    /// to a network namespace) instead of loopback.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_on(dir: &Path, host: &str) -> Etcd {
        Etcd::start_with(dir, host, None)
    }

    /// As [`start`](Self::start), serving clients over TLS (`https://`) with `certs`'
    /// server certificate.
    ///
    /// # Panics
    /// As [`start`](Self::start).
    pub fn start_tls(dir: &Path, certs: &crate::certs::TestCerts) -> Etcd {
        Etcd::start_with(dir, "127.0.0.1", Some(certs.clone()))
    }

    fn start_with(dir: &Path, host: &str, tls: Option<crate::certs::TestCerts>) -> Etcd {
        let mut last = String::new();
        for _ in 0..3 {
            let mut e = Etcd {
                host: host.to_owned(),
                tls: tls.clone(),
                child: None,
                dir: dir.to_path_buf(),
                client_port: free_port(),
                peer_port: free_port(),
            };
            match e.spawn_and_wait() {
                Ok(()) => return e,
                Err(log) => last = log,
            }
        }
        panic!("etcd did not start three times; last log:\n{last}");
    }

    /// The client URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.host, self.client_port)
    }

    /// etcd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("etcd.log")).unwrap_or_default()
    }

    /// kill -9, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGSTOP: etcd keeps its sockets but answers nothing (a partitioned or stalled
    /// coordinator), until [`thaw`](Self::thaw).
    pub fn freeze(&mut self) {
        self.signal(libc::SIGSTOP);
    }

    /// SIGCONT after [`freeze`](Self::freeze).
    pub fn thaw(&mut self) {
        self.signal(libc::SIGCONT);
    }

    fn signal(&self, sig: libc::c_int) {
        let c = self.child.as_ref().expect("etcd is running");
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(c.id() as libc::pid_t, sig) };
        assert_eq!(rc, 0, "signal {sig} to etcd failed");
    }

    /// Starts etcd again on the same ports and data after [`kill9`](Self::kill9).
    ///
    /// # Panics
    /// If it does not come back healthy.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "stop etcd before restarting it");
        if let Err(log) = self.spawn_and_wait() {
            panic!("etcd did not restart:\n{log}");
        }
    }

    /// `etcdctl` v3 against this etcd: (success, stdout + stderr).
    pub fn ctl(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new("etcdctl");
        if let Some(t) = &self.tls {
            cmd.arg(format!("--cacert={}", t.ca.display()));
        }
        let out = cmd
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.url()))
            .arg("--command-timeout=2s")
            .args(args)
            .output()
            .expect("running etcdctl");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).expect("etcd dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("etcd.log"))
            .expect("etcd log");
        let client = self.url();
        let peer = format!("http://{}:{}", self.host, self.peer_port);
        let mut cmd = Command::new("etcd");
        if let Some(t) = &self.tls {
            cmd.arg(format!("--cert-file={}", t.cert.display()))
                .arg(format!("--key-file={}", t.key.display()));
        }
        let child = cmd
            .arg("--name=t")
            .arg(format!("--data-dir={}", self.dir.join("data").display()))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=t={peer}"))
            .arg("--heartbeat-interval=100")
            .arg("--election-timeout=1000")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawning etcd (is Debian's etcd-server installed?): {e}"))?;
        self.child = Some(child);
        let deadline = Instant::now() + ETCD_READY_TIMEOUT;
        loop {
            if let Some(c) = self.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                self.child = None;
                return Err(format!("etcd exited with {status}:\n{}", self.log()));
            }
            let (ok, _) = self.ctl(&["endpoint", "health"]);
            if ok {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill9();
                return Err(format!("etcd not healthy within 30 s:\n{}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_ref() {
            // A frozen etcd must be thawed to die promptly on SIGKILL's wait.
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGCONT) };
        }
        self.kill9();
    }
}
