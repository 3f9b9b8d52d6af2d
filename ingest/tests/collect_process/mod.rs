//! The real `speedlayer-ingest collect` binary for a test: started on a config file with
//! stdout and stderr on pipes (never a terminal), readiness taken from its `ready` line,
//! stopped with SIGTERM; its whole stderr is returned for assertions on the log.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running collector agent.
pub struct Collector {
    child: Child,
    stderr: Option<JoinHandle<String>>,
}

impl Collector {
    /// Starts `speedlayer-ingest [extra...] collect --config <config>` with `RUST_LOG`
    /// set to `rust_log`, and waits for its ready line.
    ///
    /// # Panics
    /// If it exits or does not print the ready line within 60 s.
    pub fn start(config: &Path, extra: &[&str], rust_log: &str) -> Collector {
        let mut child = Command::new(env!("CARGO_BIN_EXE_speedlayer-ingest"))
            .args(extra)
            .arg("collect")
            .arg("--config")
            .arg(config)
            .env("RUST_LOG", rust_log)
            .env_remove("NO_COLOR")
            .env_remove("SPEEDLAYER_LOG_FORMAT")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn speedlayer-ingest collect");
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if line.contains("ready") {
                    let _ = tx.send(());
                }
            }
        });
        let mut c = Collector {
            child,
            stderr: Some(stderr),
        };
        if rx.recv_timeout(Duration::from_secs(60)).is_err() {
            let _ = c.child.kill();
            let _ = c.child.wait();
            panic!("collector not ready within 60 s:\n{}", c.take_stderr());
        }
        c
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, wait (bounded) for a clean exit, and return everything it wrote to stderr.
    ///
    /// # Panics
    /// If it does not exit 0 within 60 s.
    pub fn stop(mut self) -> String {
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM failed");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("collector did not exit within 60 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20)); // polling for the exit
        };
        let log = self.take_stderr();
        assert!(status.success(), "collector exited with {status}:\n{log}");
        log
    }

    fn take_stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Writes an agent file with one pipeline: tail `dir/in.log` → memory channel →
/// file_roll into `dir/out` rolling every `roll_interval`. Returns its path.
pub fn tail_to_file_roll(dir: &Path, roll_interval: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    std::fs::write(
        &path,
        format!(
            "[[pipeline]]\nname = \"archive\"\n\
             source = {{ type = \"tail\", path = \"in.log\", position_file = \"in.pos\" }}\n\
             channel = {{ type = \"memory\", capacity = 1000 }}\n\
             sink = {{ type = \"file_roll\", dir = \"out\", roll_interval = \"{roll_interval}\" }}\n"
        ),
    )
    .expect("write agent.toml");
    path
}

/// Names of the rolled (published) files in `dir`, sorted; in-progress files excluded.
pub fn rolled_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}
