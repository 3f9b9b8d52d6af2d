//! `scripts/demo.sh` run for real (debug binaries, a small fleet, loopback ports picked
//! free): a busy port is named before anything starts, together with the variable that
//! moves it; the working directory is the one given in `DEMO_DIR` (never the checkout);
//! and the same seed gives the same results: stored rows, dead-lettered lines, overspeed
//! windows and flagged cars.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use speedlayer_tests::bins::bin_path;
use speedlayer_tests::tansu::free_port;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The demo with debug binaries, a small fleet and fresh ports, plus `env`.
fn demo(env: &[(&str, String)]) -> Output {
    // Fail here, clearly, if a binary the demo runs has not been built.
    for b in ["speedlayer-server", "speedlayer-ingest", "speedlayer"] {
        bin_path(b);
    }
    let target = bin_path("speedlayer-server")
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let mut cmd = Command::new(repo().join("scripts/demo.sh"));
    cmd.env("PROFILE", "debug")
        .env("CARGO_TARGET_DIR", target)
        .env("CARS", "20")
        .env("SECONDS_SIM", "60")
        .env("SPEEDUP", "60")
        .env("KAFKA_PORT", free_port().to_string())
        .env("GRPC", format!("127.0.0.1:{}", free_port()))
        .env("HTTP", format!("127.0.0.1:{}", free_port()))
        .env("RESP", format!("127.0.0.1:{}", free_port()))
        .env_remove("DEMO_DIR")
        .env_remove("START")
        .env_remove("SEED");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run scripts/demo.sh")
}

/// The results section, without the lines that name the directory or a port, or count
/// down a TTL.
fn results(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let start = text.find("==> results").expect("a results section");
    text[start..]
        .lines()
        .filter(|l| {
            !l.starts_with("TTL of")
                && !l.starts_with("logs and data")
                && !l.starts_with("flagged cars on")
                // The bulk load's summary carries its timings and peak RSS; the
                // `car_status rows:` line below it holds what must repeat.
                && !l.trim_start().starts_with("loaded ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_busy_port_is_named_with_the_variable_that_moves_it() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = demo(&[("GRPC", addr.clone())]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{addr} is already in use (set by GRPC)")),
        "{err}"
    );
    assert!(err.contains("pick free ones"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("demo directory"),
        "nothing created before the check"
    );
}

#[test]
fn the_same_seed_gives_the_same_results_in_the_given_directory() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let first = demo(&[("DEMO_DIR", a.path().display().to_string())]);
    let second = demo(&[("DEMO_DIR", b.path().display().to_string())]);
    let (r1, r2) = (results(&first), results(&second));
    assert_eq!(r1, r2, "same seed and start, different results");
    assert!(r1.contains("overspeed windows:"), "{r1}");
    assert!(r1.contains("dead-lettered lines:"), "{r1}");
    for dir in [a.path(), b.path()] {
        assert!(dir.join("data/LOCK").exists(), "server data under DEMO_DIR");
        assert!(dir.join("logs/driving.log").exists(), "logs under DEMO_DIR");
    }
    let out = String::from_utf8_lossy(&first.stdout);
    assert!(
        out.contains(&format!("demo directory: {}", a.path().display())),
        "the directory is printed:\n{out}"
    );
    assert!(
        !repo().join(".demo").exists(),
        "nothing written into the checkout"
    );
}
