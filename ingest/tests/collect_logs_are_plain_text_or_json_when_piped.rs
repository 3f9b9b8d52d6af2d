//! The real collector agent with stderr on a pipe (not a terminal): text logs carry no ANSI
//! colour codes, and `--log-format json` makes every line one JSON object.

mod collect_process;

use collect_process::{Collector, tail_to_file_roll};

/// Runs a collector that moves a few lines (so the sink logs too), stops it, returns stderr.
fn run(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.log"), "one\ntwo\n").unwrap();
    let config = tail_to_file_roll(dir.path(), "1h");
    let c = Collector::start(&config, extra, "debug");
    c.stop()
}

#[test]
fn text_logs_on_a_pipe_have_no_colour_codes() {
    let log = run(&[]);
    assert!(
        log.contains("INFO") && log.contains("collector agent stopped"),
        "expected info lines:\n{log}"
    );
    assert!(
        !log.contains("\x1b["),
        "ANSI escape in a piped log:\n{log:?}"
    );
}

#[test]
fn json_logs_are_one_object_per_line() {
    let log = run(&["--log-format", "json"]);
    let mut messages = Vec::new();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\nwhole log:\n{log}"));
        assert!(v.get("level").is_some(), "no level: {line}");
        messages.push(
            v["fields"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    assert!(
        messages.iter().any(|m| m == "collector agent started")
            && messages.iter().any(|m| m == "collector agent stopped"),
        "{messages:?}"
    );
    assert!(!log.contains("\x1b["), "ANSI escape in a JSON log");
}
