//! What the cluster tests read of a running cluster: `speedlayer cluster status --json`
//! (cluster name `c`, the name every cluster test uses), a member's id, open regions per
//! member, and waiting until a condition on the status holds.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::server::{ServerProcess, run_cli};

/// The cluster name every cluster test starts its servers with (`--cluster c`).
pub const CLUSTER: &str = "c";

/// `speedlayer cluster status --json` of cluster [`CLUSTER`] on etcd `etcd`, parsed.
pub fn status(etcd: &str) -> serde_json::Value {
    let out = run_cli(
        "http://127.0.0.1:1",
        &[
            "cluster",
            "status",
            "--etcd",
            etcd,
            "--cluster",
            CLUSTER,
            "--json",
        ],
    )
    .ok();
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The member id of `server` in `status`, if it is a live member.
pub fn member(status: &serde_json::Value, server: &ServerProcess) -> Option<String> {
    let grpc = server.grpc.to_string();
    status["servers"]
        .as_array()?
        .iter()
        .find(|m| m["grpc"] == grpc.as_str())
        .and_then(|m| m["id"].as_str())
        .map(str::to_owned)
}

/// The member id of `server` in `status`; panics if it is not a member.
pub fn member_of(status: &serde_json::Value, server: &ServerProcess) -> String {
    member(status, server).unwrap_or_else(|| panic!("{} is not a member: {status}", server.grpc))
}

/// Open regions per live member, and whether every region is open on a live member.
pub fn counts(status: &serde_json::Value) -> (BTreeMap<String, usize>, bool) {
    let mut counts: BTreeMap<String, usize> = status["servers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["id"].as_str())
        .map(|id| (id.to_owned(), 0))
        .collect();
    let mut settled = true;
    for r in status["regions"].as_array().into_iter().flatten() {
        let on = r["server"].as_str().unwrap_or("");
        match (r["state"].as_str(), counts.get_mut(on)) {
            (Some("open"), Some(n)) => *n += 1,
            _ => settled = false,
        }
    }
    (counts, settled)
}

/// Waits until every region is open on a live member and `done` holds; panics naming
/// `what` and the last status after `limit`. Returns that status and the time it took.
pub fn wait_until(
    etcd: &str,
    limit: Duration,
    what: &str,
    done: impl Fn(&serde_json::Value, &BTreeMap<String, usize>) -> bool,
) -> (serde_json::Value, Duration) {
    let start = Instant::now();
    loop {
        let s = status(etcd);
        let (c, settled) = counts(&s);
        if settled && done(&s, &c) {
            return (s, start.elapsed());
        }
        assert!(
            start.elapsed() < limit,
            "{what} not reached in {limit:?}: {s:#}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The flags of a member of cluster [`CLUSTER`] on etcd `etcd`, sharing the storage root
/// `shared`, with a lease of `ttl_secs`, followed by `extra`.
pub fn member_flags(
    etcd: &str,
    shared: &std::path::Path,
    ttl_secs: u64,
    extra: &[&str],
) -> Vec<String> {
    let mut flags: Vec<String> = [
        "--etcd",
        etcd,
        "--cluster",
        CLUSTER,
        "--lease-ttl-secs",
        &ttl_secs.to_string(),
        "--storage-root",
        shared.to_str().expect("a UTF-8 storage root"),
    ]
    .map(str::to_owned)
    .to_vec();
    flags.extend(extra.iter().map(|s| (*s).to_owned()));
    flags
}

/// `flags` as the `&[&str]` [`ServerProcess::start`] takes.
pub fn as_args(flags: &[String]) -> Vec<&str> {
    flags.iter().map(String::as_str).collect()
}

/// Starts `n` members with `flags`, their data directories `dir/s0`, `dir/s1`, ….
pub fn start_members(dir: &std::path::Path, n: usize, flags: &[String]) -> Vec<ServerProcess> {
    (0..n)
        .map(|i| ServerProcess::start(&dir.join(format!("s{i}")), &as_args(flags)))
        .collect()
}

/// `speedlayer create-table TABLE --family f --split K …` through `server`; panics unless
/// the table was created.
pub fn create_table(server: &ServerProcess, table: &str, splits: &[&str]) {
    let mut args = vec!["create-table", table, "--family", "f"];
    for k in splits {
        args.extend(["--split", k]);
    }
    let out = server.cli(&args).ok();
    assert!(out.contains("created"), "{out}");
}
