//! `speedlayer bulkload` against a real `speedlayer-server`, with real binaries on
//! loopback: a SPEC §1 status file becomes `car_status` rows queryable by car prefix, its
//! bad lines go to `FILE.bad` with their reason and are counted; an input larger than the
//! loader's memory budget is sorted through spill files; and `kill -9` of the loader or of
//! the server at a random point of a load leaves all rows of the file visible or none
//! (never some), the staging area is cleaned, and the same file then loads in full.
//! `import --format csv --columns` loads any CSV through the same path.
//!
//! 4 kill cycles by default (loader, server, loader, server); `SPEEDLAYER_LONG=1` runs 16.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;

/// Writes `lines` status lines for cars `<letter>0000..<letter>0009`, one per car per
/// 3 s, plus `bad` garbage lines spread through the file; returns the good line count.
fn status_file(path: &Path, letter: char, lines: usize, bad: usize) -> usize {
    let mut s = String::new();
    let mut good = 0;
    for i in 0..lines {
        let car = i % 10;
        let t = (i / 10) * 3;
        let (h, m, sec) = (t / 3600 % 24, t / 60 % 60, t % 60);
        s.push_str(&format!(
            "20261122{h:02}{m:02}{sec:02},{letter}{car:04},{},{},31,32,1,1,{},1,0,0,{}\n",
            30 + i % 7,
            29 + i % 5,
            i % 2,
            i % 4
        ));
        good += 1;
        if bad > 0 && i % (lines / bad).max(1) == 0 && i / (lines / bad).max(1) < bad {
            s.push_str(&format!("20261122000000,{letter}0001,too,few\n"));
        }
    }
    std::fs::write(path, s).unwrap();
    good
}

fn count(server: &ServerProcess, prefix: &str) -> u64 {
    let out = server
        .cli(&["count", "car_status", "--prefix", prefix])
        .ok();
    out.trim().parse().unwrap()
}

fn create(server: &ServerProcess) {
    server
        .cli(&[
            "create-table",
            "car_status",
            "--family",
            "cf1:ttl=315360000",
        ])
        .ok();
}

#[test]
fn status_file_is_queryable_and_bad_lines_are_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &[]);
    create(&server);
    let file = dir.path().join("status-20261122.csv");
    let good = status_file(&file, 'V', 9000, 7);
    let out = server
        .cli(&[
            "bulkload",
            "car_status",
            file.to_str().unwrap(),
            "--memory-mb",
            "1",
        ])
        .ok();
    assert!(out.contains(&format!("{} lines", good + 7)), "{out}");
    assert!(out.contains(&format!("{} cells", good * 13)), "{out}");
    assert!(out.contains("7 bad lines"), "{out}");
    assert!(
        !out.contains(" 0 spill runs"),
        "1 MiB is below this input: {out}"
    );

    let bad = std::fs::read_to_string(dir.path().join("status-20261122.csv.bad")).unwrap();
    assert_eq!(bad.lines().count(), 7, "{bad}");
    for l in bad.lines() {
        let f: Vec<&str> = l.split('\t').collect();
        assert!(f[0].parse::<u64>().is_ok(), "line number first: {l}");
        assert_eq!(f[1], "expected 13 fields, got 4", "the reason: {l}");
        assert_eq!(f[2], "20261122000000,V0001,too,few", "the line itself: {l}");
    }

    assert_eq!(count(&server, "V"), good as u64);
    assert_eq!(count(&server, "V0042#"), 0);
    assert_eq!(count(&server, "V0004#"), (good / 10) as u64);
    let scan = server
        .cli(&[
            "scan",
            "car_status",
            "--prefix",
            "V0004#",
            "--limit",
            "1",
            "--json",
        ])
        .ok();
    for col in [
        "tyre_fl_psi",
        "lamp_rl",
        "battery",
        "event_time",
        "car_number",
    ] {
        assert!(scan.contains(col), "{col} missing: {scan}");
    }
    assert!(scan.contains("V0004#20261122000000#"), "{scan}");

    // Loading the same file again changes nothing (same rows, same cells).
    server
        .cli(&["bulkload", "car_status", file.to_str().unwrap()])
        .ok();
    assert_eq!(count(&server, "V"), good as u64);

    // import: any CSV, mapped by --columns, through the same path.
    server
        .cli(&["create-table", "history", "--family", "cf1"])
        .ok();
    let csv = dir.path().join("old.csv");
    std::fs::write(
        &csv,
        "20201231235959;K1;87;x\n20210101000000;K2;55;y\nnot-a-time;K3;1;z\n",
    )
    .unwrap();
    let out = server
        .cli(&[
            "import",
            "history",
            "--format",
            "csv",
            "--delimiter",
            ";",
            "--columns",
            ":ts,:key,cf1:speed,-",
            csv.to_str().unwrap(),
        ])
        .ok();
    assert!(
        out.contains("2 cells") && out.contains("1 bad lines"),
        "{out}"
    );
    let got = server.cli(&["get", "history", "K1", "--json"]).ok();
    assert!(got.contains("87") && got.contains("1609459199000"), "{got}");
    let err = server
        .cli(&[
            "import",
            "history",
            "--columns",
            ":key,nope:x",
            csv.to_str().unwrap(),
        ])
        .err();
    assert!(err.contains("no family 'nope'"), "{err}");
}

/// Runs the loader in the background; returns the child.
fn spawn_loader(url: &str, file: &Path) -> std::process::Child {
    Command::new(bin_path("speedlayer"))
        .args(["--addr", url, "bulkload", "car_status"])
        .arg(file)
        .args(["--memory-mb", "2", "--retries", "0", "--no-progress"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn staging_gone(data: &Path) -> bool {
    let s = data.join("regions").join("@bulkload");
    !s.exists() || std::fs::read_dir(s).unwrap().next().is_none()
}

#[test]
fn kill9_of_the_loader_or_the_server_is_all_or_nothing_per_file() {
    let cycles = if std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1") {
        16
    } else {
        4
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = ServerProcess::start(&data, &[]);
    create(&server);
    // Calibrate: how long one load of this size takes here.
    let calib = dir.path().join("calib.csv");
    let lines = 10_000;
    status_file(&calib, 'Z', lines, 0);
    let t0 = Instant::now();
    let status = spawn_loader(&server.url(), &calib).wait().unwrap();
    assert!(status.success());
    let full = t0.elapsed();
    assert_eq!(count(&server, "Z"), lines as u64);

    let mut rng = rand::rngs::StdRng::seed_from_u64(15);
    let (mut none, mut all) = (0, 0);
    for cycle in 0..cycles {
        let letter = (b'A' + cycle as u8) as char;
        let file = dir.path().join(format!("status-{letter}.csv"));
        let n = status_file(&file, letter, lines, 0) as u64;
        let mut loader = spawn_loader(&server.url(), &file);
        let at = full.mul_f64(rng.random_range(0.3..1.3));
        std::thread::sleep(at); // a random point of the load, by design
        let kill_server = cycle % 2 == 1;
        if kill_server {
            server.kill9();
            let _ = loader.wait();
            server.restart();
        } else {
            let _ = loader.kill();
            let _ = loader.wait();
        }
        let seen = count(&server, &letter.to_string());
        let what = if kill_server { "server" } else { "loader" };
        assert!(
            seen == 0 || seen == n,
            "cycle {cycle}: kill -9 of the {what} after {at:?} left {seen} of {n} rows"
        );
        if seen == 0 {
            none += 1;
        } else {
            all += 1;
        }
        // The server drops a broken stage by itself (at once, or at the restart).
        let deadline = Instant::now() + Duration::from_secs(20);
        while !staging_gone(&data) {
            assert!(
                Instant::now() < deadline,
                "cycle {cycle}: staging left behind"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // The same file loads in full afterwards (again, if it was already there).
        assert!(spawn_loader(&server.url(), &file).wait().unwrap().success());
        assert_eq!(count(&server, &letter.to_string()), n, "cycle {cycle}");
    }
    eprintln!("{cycles} kills: {none} left none of the file, {all} all of it");
    server.terminate();
    server.restart();
    assert_eq!(count(&server, "Z"), lines as u64, "after a clean restart");
}
