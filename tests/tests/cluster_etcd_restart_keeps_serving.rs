//! etcd restarted under a running cluster (issue 12): real `speedlayer-server`s over
//! Debian's real etcd, `kill -9` of etcd and a restart on the same data a second later.
//! Open regions keep serving writes the whole time (the outage is shorter than the fence
//! window, two thirds of the lease TTL), no region is ever held by two servers, and
//! assignment resumes when etcd returns: a table created afterwards is spread and served.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::{create_table, member_flags, start_members};
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;

/// `speedlayer_cluster_hosted_regions` of one server's /metrics.
fn hosted(s: &ServerProcess) -> u64 {
    let (code, text) = s.http_get("/metrics");
    assert_eq!(code, 200);
    text.lines()
        .find_map(|l| l.strip_prefix("speedlayer_cluster_hosted_regions "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no hosted-regions gauge:\n{text}"))
}

async fn regions_on(c: &Client, table: &str) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in c.describe_table(table).await.expect("describe").regions {
        *out.entry(r.server_addr).or_default() += 1;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_regions_serve_through_an_etcd_restart_and_assignment_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    // TTL 6 s: a member keeps serving 4 s after its last confirmed keepalive.
    let flags = member_flags(&url, &dir.path().join("shared"), 6, &[]);
    let servers = start_members(dir.path(), 3, &flags);
    create_table(&servers[0], "t", &["h", "p"]);
    let c = Client::connect(&servers[1].url()).await.unwrap();
    let start = Instant::now();
    while regions_on(&c, "t").await.len() < 3 || servers.iter().map(hosted).sum::<u64>() != 3 {
        assert!(start.elapsed() < Duration::from_secs(15), "t not spread");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut acked = BTreeMap::new();
    let write = |i: u32| {
        let c = c.clone();
        async move {
            let k = format!("{}{i:06}", (b'a' + (i % 26) as u8) as char);
            let r = c
                .mutate(
                    "t",
                    vec![put_row(k.as_bytes(), &[("f", "q", b"1")])],
                    Durability::Sync,
                )
                .await;
            (k, r)
        }
    };
    for i in 0..100 {
        let (k, r) = write(i).await;
        r.unwrap();
        acked.insert(k, ());
    }

    // etcd dies and comes back a second later, while writes go on.
    let down = Instant::now();
    etcd.kill9();
    let mut i = 100;
    let mut failures = Vec::new();
    let mut restarted = None;
    let mut max_hosted = 0;
    while down.elapsed() < Duration::from_secs(4) {
        if restarted.is_none() && down.elapsed() > Duration::from_secs(1) {
            etcd.restart();
            restarted = Some(down.elapsed());
        }
        let (k, r) = write(i).await;
        match r {
            Ok(_) => {
                acked.insert(k, ());
            }
            Err(e) => failures.push(format!("{k} at {:?}: {e}", down.elapsed())),
        }
        max_hosted = max_hosted.max(servers.iter().map(hosted).sum::<u64>());
        i += 1;
    }
    println!(
        "etcd killed, restarted after 1 s, healthy again {:?} after the kill: {} writes acknowledged in the 4 s from the kill, {} failed",
        restarted.unwrap(),
        acked.len() - 100,
        failures.len()
    );
    assert!(
        failures.is_empty(),
        "writes failed while etcd restarted: {failures:?}"
    );
    assert_eq!(
        max_hosted, 3,
        "a region was held twice (or lost) during the restart"
    );

    // Assignment resumes: a new table is spread over the three servers and served.
    let out = servers[2]
        .cli(&["create-table", "u", "--family", "f", "--split", "m"])
        .ok();
    assert!(out.contains("created"), "{out}");
    let start = Instant::now();
    while servers.iter().map(hosted).sum::<u64>() != 5 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "u not assigned after etcd returned"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.mutate(
        "u",
        vec![
            put_row(b"a", &[("f", "q", b"1")]),
            put_row(b"z", &[("f", "q", b"1")]),
        ],
        Durability::Sync,
    )
    .await
    .unwrap();
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    let found: BTreeMap<String, ()> = rows
        .iter()
        .map(|r| (String::from_utf8_lossy(&r.row).into_owned(), ()))
        .collect();
    assert_eq!(
        found, acked,
        "rows lost or invented across the etcd restart"
    );
    for s in &servers {
        assert!(!s.log().contains("panicked"), "{}", s.log());
    }
}
