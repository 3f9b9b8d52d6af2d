//! In cluster mode (two real `speedlayer-server`s over Debian's real etcd), each server's
//! console shows the regions it hosts, and only those: the two lists split the table's
//! regions between them. Each `/metrics`, cluster series included, passes
//! `promtool check metrics`.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use speedlayer_client::Client;
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;

fn hosted(server: &ServerProcess) -> BTreeSet<(String, u64)> {
    let (code, body) = server.http_get("/api/server");
    assert_eq!(code, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["cluster_hosted"]
        .as_array()
        .unwrap_or_else(|| panic!("cluster mode lists what it hosts: {body}"))
        .iter()
        .map(|p| {
            (
                p[0].as_str().unwrap_or_default().to_owned(),
                p[1].as_u64().unwrap_or_default(),
            )
        })
        .collect()
}

fn promtool_check(text: &str) {
    let bin = std::env::var("PROMTOOL_BIN").unwrap_or_else(|_| "promtool".into());
    let mut child = Command::new(&bin)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_shows_what_a_cluster_member_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    let shared = dir.path().join("shared");
    let shared = shared.to_str().unwrap();
    let flags = [
        "--etcd",
        &url,
        "--cluster",
        "c",
        "--lease-ttl-secs",
        "2",
        "--storage-root",
        shared,
    ];
    let servers: Vec<ServerProcess> = (0..2)
        .map(|i| ServerProcess::start(&dir.path().join(format!("s{i}")), &flags))
        .collect();
    let out = servers[0]
        .cli(&[
            "create-table",
            "t",
            "--family",
            "f",
            "--split",
            "g",
            "--split",
            "n",
            "--split",
            "t",
        ])
        .ok();
    assert!(out.contains("created"), "{out}");

    // Wait until both servers host some of the table's four regions.
    let c = Client::connect(&servers[1].url()).await.unwrap();
    let start = Instant::now();
    let regions: BTreeSet<(String, u64)> = loop {
        let described = c.describe_table("t").await.expect("describe");
        let addrs: BTreeSet<String> = described
            .regions
            .iter()
            .map(|r| r.server_addr.clone())
            .collect();
        if addrs.len() == 2 && described.regions.len() == 4 {
            break described
                .regions
                .iter()
                .map(|r| ("t".to_owned(), r.region_id))
                .collect();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "regions not spread over two servers: {described:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    };

    // Each console lists its own regions; together, every region once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (a, b) = (hosted(&servers[0]), hosted(&servers[1]));
        let a_t: BTreeSet<_> = a.into_iter().filter(|(t, _)| t == "t").collect();
        let b_t: BTreeSet<_> = b.into_iter().filter(|(t, _)| t == "t").collect();
        let union: BTreeSet<_> = a_t.union(&b_t).cloned().collect();
        if !a_t.is_empty() && !b_t.is_empty() && a_t.is_disjoint(&b_t) && union == regions {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "consoles list {a_t:?} and {b_t:?}, the table has {regions:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }

    for s in &servers {
        let (code, text) = s.http_get("/metrics");
        assert_eq!(code, 200);
        assert!(text.contains("speedlayer_build_info{"), "{text}");
        promtool_check(&text);
    }
}
