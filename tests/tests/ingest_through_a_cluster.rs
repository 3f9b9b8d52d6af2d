//! Issue 12: the ingest worker writes through a cluster of three real region servers on
//! Debian's etcd, given the address of one server only; `driving` is pre-split so its
//! regions are spread over all three. Reads through each server's address return every
//! row, and the rule's windows are the reference's.

#[path = "ingest_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_writes_through_any_server_of_a_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    let shared = dir.path().join("shared");
    let flags = [
        "--etcd",
        &url,
        "--cluster",
        "c",
        "--lease-ttl-secs",
        "2",
        "--storage-root",
        shared.to_str().unwrap(),
        "--appendfsync",
        "always",
    ];
    let servers: Vec<ServerProcess> = (0..3)
        .map(|i| ServerProcess::start_pinned(&dir.path().join(format!("s{i}")), &flags))
        .collect();
    let out = servers[0]
        .cli(&[
            "create-table",
            "driving",
            "--family",
            "cf1",
            "--split",
            "V0004",
            "--split",
            "V0008",
        ])
        .ok();
    assert!(out.contains("created"), "{out}");
    let start = std::time::Instant::now();
    loop {
        let c = speedlayer_client::Client::connect(&servers[0].url())
            .await
            .unwrap();
        let on: BTreeSet<String> = c
            .describe_table("driving")
            .await
            .unwrap()
            .regions
            .into_iter()
            .map(|r| r.server_addr)
            .collect();
        if on.len() == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "driving not spread: {on:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 4);
    let rules = rules_file(dir.path(), 80);
    // The worker knows one server (the second) and the first one's TTL set service.
    let resp = servers[0].resp.expect("RESP on").to_string();
    let mut cfg = speedlayer_ingest::worker::WorkerConfig::new(
        &tansu.brokers(),
        &servers[1].url(),
        &resp,
        &rules,
    );
    cfg.idle_flush = Duration::from_secs(3);
    cfg.batch_linger = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_secs(1);
    let store = speedlayer_ingest::worker::GrpcStore::connect(&cfg.server)
        .await
        .unwrap();
    let registry = speedlayer_ingest::metrics::Registry::new();
    let worker = speedlayer_ingest::worker::Worker::connect(cfg, store, registry)
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run(rx));

    let lines = driving_lines(12, 0, 90, 7);
    produce(&tansu.brokers(), &records(&lines)).await;
    let want = expected_keys(&lines);
    let windows = reference_windows(&lines, |_| 80);
    let start = std::time::Instant::now();
    loop {
        let got: BTreeSet<Vec<u8>> = scan_table(&servers[2].url(), "driving")
            .await
            .unwrap_or_default()
            .into_keys()
            .collect();
        let fired: BTreeSet<Vec<u8>> = scan_table(&servers[2].url(), "overspeed")
            .await
            .unwrap_or_default()
            .into_keys()
            .collect();
        if got == want && fired.len() >= windows.len() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{} of {} rows, {} of {} windows",
            got.len(),
            want.len(),
            fired.len(),
            windows.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
    for s in &servers {
        let driving: BTreeSet<Vec<u8>> = scan_table(&s.url(), "driving")
            .await
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(driving, want, "driving read through {}", s.url());
        let overspeed: BTreeSet<Vec<u8>> = scan_table(&s.url(), "overspeed")
            .await
            .unwrap()
            .into_keys()
            .collect();
        assert_eq!(overspeed, windows, "overspeed read through {}", s.url());
    }
    println!(
        "{} driving rows and {} windows written through one server of three, read back through each",
        want.len(),
        windows.len()
    );
}
