//! The real `speedlayer-server` binary with stderr on a pipe (not a terminal): text logs
//! carry no ANSI colour codes, and `--log-format json` makes every line one JSON object.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts the server with `extra` flags, waits for READY, stops it with SIGTERM and
/// returns everything it wrote to stderr.
fn run_and_collect_stderr(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_speedlayer-server"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--grpc-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
            "--resp-addr",
            "127.0.0.1:0",
        ])
        .args(extra)
        // Debug lines too: more lines, more chances for colour to slip in.
        .env("RUST_LOG", "debug")
        .env_remove("NO_COLOR")
        .env_remove("SPEEDLAYER_LOG_FORMAT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert!(line.starts_with("READY"), "first stdout line: {line:?}");
    // SAFETY: plain kill(2) on our own child's pid.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) },
        0
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 60 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    err_reader.join().unwrap()
}

#[test]
fn text_logs_on_a_pipe_have_no_colour_codes() {
    let log = run_and_collect_stderr(&[]);
    assert!(
        log.contains("INFO") && log.contains("SIGTERM: shutting down"),
        "expected info lines in the log:\n{log}"
    );
    assert!(
        !log.contains("\x1b["),
        "ANSI escape in a piped log:\n{log:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = run_and_collect_stderr(&["--log-format", "json"]);
    let mut lines = 0;
    let mut saw_shutdown = false;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nwhole log:\n{log}"));
        assert!(v.get("level").is_some(), "no level: {line}");
        assert!(v.get("timestamp").is_some(), "no timestamp: {line}");
        saw_shutdown |= v["fields"]["message"] == "SIGTERM: shutting down";
        lines += 1;
    }
    assert!(
        lines > 0 && saw_shutdown,
        "expected the shutdown line:\n{log}"
    );
    assert!(!log.contains("\x1b["), "ANSI escape in a JSON log");
}
