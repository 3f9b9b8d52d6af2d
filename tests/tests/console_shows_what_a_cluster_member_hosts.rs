//! In cluster mode (two real `speedlayer-server`s over Debian's real etcd), each server's
//! console shows the regions it hosts, and only those: the two lists split the table's
//! regions between them. Each `/metrics`, cluster series included, passes
//! `promtool check metrics`. The cluster view (`/api/cluster`, and the console's Cluster
//! page in real headless Chromium) shows both servers, the master and every region, the
//! same from either server; a server running alone answers 404 there.

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use speedlayer_client::Client;
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::webdriver::Browser;

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

    // The cluster view, from either server: both members, one master, every region open.
    for s in &servers {
        let (code, body) = s.http_get("/api/cluster");
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["servers"].as_array().map(Vec::len), Some(2), "{body}");
        assert!(v["master"].is_string(), "{body}");
        let t_regions: Vec<_> = v["regions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["table"] == "t")
            .collect();
        assert_eq!(t_regions.len(), 4, "{body}");
        assert!(t_regions.iter().all(|r| r["state"] == "open"), "{body}");
    }
    let b = tokio::task::block_in_place(Browser::start);
    let base = format!("http://{}", servers[1].http);
    tokio::task::block_in_place(|| {
        b.goto(&format!("{base}/#cluster"));
        b.wait_for(
            "the cluster page with two servers and four regions of t",
            Duration::from_secs(20),
            "const ts = document.querySelectorAll('#cluster table'); \
             if (ts.length < 2) return false; \
             const rows = (t) => [...t.querySelectorAll('tr')].filter(r => r.querySelector('td')); \
             const t = rows(ts[1]).filter(r => r.cells[0].textContent === 't'); \
             return rows(ts[0]).length === 2 && t.length === 4 && t.every(r => r.cells[4].textContent === 'open') \
               && rows(ts[0]).some(r => r.cells[0].textContent === 'master');",
        );
        let severe: Vec<_> = b
            .console_log()
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .collect();
        assert!(
            severe.is_empty(),
            "console errors on the cluster page: {severe:?}"
        );
        assert_eq!(
            b.eval("return window.speedlayer.errors;", json!([])),
            json!([]),
            "uncaught errors on the cluster page"
        );
        let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
            std::path::PathBuf::from,
        );
        let shots = target.join("console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        b.screenshot(&shots.join("cluster.png"));
        println!(
            "cluster page screenshot: {}",
            shots.join("cluster.png").display()
        );
    });

    for s in &servers {
        let (code, text) = s.http_get("/metrics");
        assert_eq!(code, 200);
        assert!(text.contains("speedlayer_build_info{"), "{text}");
        promtool_check(&text);
    }
}
