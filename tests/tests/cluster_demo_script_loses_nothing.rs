//! `scripts/cluster-demo.sh` run for real (debug binaries, a small fleet): etcd, three
//! servers, tansu, the worker and the collector; one server is killed with `kill -9`
//! mid-stream; the script itself counts the rows against the valid lines and exits 1 on a
//! loss. This test checks that it ran to the end, that the kill really happened mid-stream
//! and that its verdict is "nothing lost".

use std::path::{Path, PathBuf};
use std::process::Command;

use speedlayer_tests::bins::bin_path;
use speedlayer_tests::tansu::free_port;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn the_cluster_demo_kills_a_server_mid_stream_and_loses_nothing() {
    for b in ["speedlayer-server", "speedlayer-ingest", "speedlayer"] {
        bin_path(b);
    }
    let target = bin_path("speedlayer-server")
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    // The script checks its ports first and exits 2 on a busy one: pick again then.
    let mut out = None;
    for _ in 0..3 {
        let o = Command::new(repo().join("scripts/cluster-demo.sh"))
            .env("PROFILE", "debug")
            .env("CARGO_TARGET_DIR", &target)
            .env("CARS", "20")
            .env("SECONDS_SIM", "60")
            .env("SPEEDUP", "5")
            .env("ETCD_PORT", free_port().to_string())
            .env("KAFKA_PORT", free_port().to_string())
            .env("BASE_PORT", free_port().to_string())
            .env("DEMO_DIR", dir.path())
            .output()
            .expect("run scripts/cluster-demo.sh");
        let busy = o.status.code() == Some(2)
            && String::from_utf8_lossy(&o.stderr).contains("already in use");
        out = Some(o);
        if !busy {
            break;
        }
    }
    let out = out.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cluster demo failed ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stored_at_kill: u64 = text
        .lines()
        .find_map(|l| l.split("mid-stream, ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no kill line:\n{text}"));
    let valid: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("valid lines:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count:\n{text}"));
    assert!(
        stored_at_kill > 0 && stored_at_kill < valid,
        "the kill was not mid-stream ({stored_at_kill} of {valid} stored):\n{text}"
    );
    assert!(
        text.contains("gone and every region open on a live server"),
        "{text}"
    );
    assert!(text.contains("nothing lost"), "{text}");
    println!("{}", &text[text.find("==> kill").unwrap_or(0)..]);
}
