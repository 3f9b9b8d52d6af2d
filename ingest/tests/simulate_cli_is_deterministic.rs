//! The `simulate` subcommand with the flags scripts rely on: it writes the driving log and
//! the status spool, prints a summary, is byte-identical under the same `--seed`, mixes in
//! garbage at the requested rate, and produces some (not all, not no) cars averaging above
//! 80 km/h over a 30 s window.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::process::Command;

use speedlayer_ingest::event::{parse_driving, parse_status};

fn sim(dir: &Path, seed: &str, garbage: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_speedlayer-ingest"))
        .args([
            "simulate",
            "--cars",
            "100",
            "--duration",
            "60",
            "--speedup",
            "0",
        ])
        .args([
            "--seed",
            seed,
            "--garbage-rate",
            garbage,
            "--start",
            "20261122120000",
        ])
        .arg("--driving-log")
        .arg(dir.join("logs/driving.log"))
        .arg("--status-spool")
        .arg(dir.join("spool"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn same_seed_same_bytes_with_garbage_and_speeders() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let sa = sim(a.path(), "42", "0.02");
    let sb = sim(b.path(), "42", "0.02");
    assert!(sa.contains("driving_lines=6000"), "{sa}");
    assert!(sa.contains("status_records=2000"), "{sa}");
    let log_a = fs::read_to_string(a.path().join("logs/driving.log")).unwrap();
    let log_b = fs::read_to_string(b.path().join("logs/driving.log")).unwrap();
    assert_eq!(log_a, log_b);
    assert_eq!(
        fs::read(a.path().join("spool/status-20261122.csv")).unwrap(),
        fs::read(b.path().join("spool/status-20261122.csv")).unwrap()
    );
    assert_eq!(sa.split(" elapsed").next(), sb.split(" elapsed").next());

    let bad = log_a.lines().filter(|l| parse_driving(l).is_err()).count();
    assert!(
        (60..=180).contains(&bad),
        "{bad} garbage lines for rate 0.02 of 6000"
    );
    assert!(sa.contains(&format!("garbage_lines={bad} ")), "{sa}");
    let status = fs::read_to_string(a.path().join("spool/status-20261122.csv")).unwrap();
    assert!(status.lines().all(|l| parse_status(l).is_ok()));

    // Average speed per car over each aligned 30 s window.
    let mut win: HashMap<(String, i64), (u64, u64)> = HashMap::new();
    for e in log_a.lines().filter_map(|l| parse_driving(l).ok()) {
        let w = win
            .entry((e.car_number.clone(), e.event_time_ms / 30_000))
            .or_default();
        w.0 += u64::from(e.speed);
        w.1 += 1;
    }
    let mut speeders: Vec<&String> = win
        .iter()
        .filter(|(_, (s, n))| *s as f64 / *n as f64 > 80.0)
        .map(|((c, _), _)| c)
        .collect();
    speeders.sort();
    speeders.dedup();
    assert!(
        speeders.len() >= 3 && speeders.len() <= 50,
        "{} speeders",
        speeders.len()
    );

    let c = tempfile::tempdir().unwrap();
    sim(c.path(), "43", "0.02");
    assert_ne!(
        log_a,
        fs::read_to_string(c.path().join("logs/driving.log")).unwrap()
    );
}
