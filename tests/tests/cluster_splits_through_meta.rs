//! Issue 12: regions split in cluster mode, through meta. Three real servers on Debian's
//! etcd with a small split size take a sync write load; regions split (each split one
//! transaction in meta: parent `split`, daughters opening on the splitting server), the
//! balancer spreads the daughters, the regions always tile the key space, and every
//! acknowledged row reads back through any server, also after `kill -9` of one of them.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::{member_flags, start_members, status};
use speedlayer_tests::etcd::Etcd;

/// The table's live regions tile the key space: sorted, contiguous, from "" to "".
fn assert_tiled(s: &serde_json::Value) -> usize {
    let mut regions: Vec<(String, String)> = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["table"] == "t")
        .map(|r| {
            (
                r["start"].as_str().unwrap().to_owned(),
                r["end"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    regions.sort();
    let mut expect = String::new();
    for (start, end) in &regions {
        assert_eq!(start, &expect, "gap or overlap: {regions:?}");
        expect = end.clone();
    }
    assert_eq!(
        expect, "",
        "the last region does not reach the end: {regions:?}"
    );
    regions.len()
}

fn key(i: u32) -> String {
    // Spread over the key space so that every region grows.
    format!("{:08x}", i.wrapping_mul(2_654_435_761))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regions_split_through_meta_under_load_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    let flags = member_flags(
        &url,
        &dir.path().join("shared"),
        2,
        &[
            "--memstore-flush-bytes",
            "8192",
            "--region-split-bytes",
            "40000",
            "--split-check-millis",
            "200",
        ],
    );
    let mut servers = start_members(dir.path(), 3, &flags);
    assert!(
        servers[0]
            .cli(&["create-table", "t", "--family", "f"])
            .ok()
            .contains("created")
    );
    let c = Client::connect(&servers[1].url()).await.unwrap();
    let value = [b'x'; 200];
    let mut acked: BTreeMap<String, u32> = BTreeMap::new();
    let started = Instant::now();
    let mut i = 0u32;
    let mut regions = 1;
    let mut longest = Duration::ZERO;
    while regions < 6 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "only {regions} regions after {i} rows: {:#}",
            status(&url)
        );
        let batch: Vec<_> = (i..i + 20)
            .map(|j| put_row(key(j).as_bytes(), &[("f", "q", &value[..])]))
            .collect();
        let call = Instant::now();
        c.mutate("t", batch, Durability::Sync)
            .await
            .unwrap_or_else(|e| panic!("batch at {i}: {e}"));
        longest = longest.max(call.elapsed());
        for j in i..i + 20 {
            acked.insert(key(j), j);
        }
        i += 20;
        if i.is_multiple_of(400) {
            regions = assert_tiled(&status(&url));
        }
    }
    println!(
        "{regions} regions after {i} rows ({:?}); longest batch call {longest:?}",
        started.elapsed()
    );
    // The daughters are spread: every server holds some of the table.
    let start = Instant::now();
    loop {
        let s = status(&url);
        assert_tiled(&s);
        let on: std::collections::BTreeSet<_> = s["regions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "open")
            .filter_map(|r| r["server"].as_str().map(str::to_owned))
            .collect();
        if on.len() == 3 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "not spread: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let check = |rows: Vec<speedlayer_client::proto::Row>, via: &str| {
        let found: BTreeMap<String, ()> = rows
            .iter()
            .map(|r| (String::from_utf8_lossy(&r.row).into_owned(), ()))
            .collect();
        let missing: Vec<_> = acked.keys().filter(|k| !found.contains_key(*k)).collect();
        assert!(
            missing.is_empty(),
            "{} rows lost (via {via}): {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(found.len(), acked.len(), "rows invented (via {via})");
    };
    for s in &servers {
        let c = Client::connect(&s.url()).await.unwrap();
        let rows = c
            .scan_all(ScanRequest {
                table: "t".into(),
                ..ScanRequest::default()
            })
            .await
            .unwrap();
        check(rows, &s.url());
    }
    // kill -9 of a server holding daughters: they reopen elsewhere from the shared root.
    servers[2].kill9();
    let start = Instant::now();
    loop {
        let s = status(&url);
        let settled = s["servers"].as_array().unwrap().len() == 2
            && s["regions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["state"] == "open");
        if settled {
            assert_tiled(&s);
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{s:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let c = Client::connect(&servers[0].url()).await.unwrap();
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    check(rows, "a survivor after kill -9");
    let splits: u64 = servers[..2]
        .iter()
        .map(|s| {
            let (_, text) = s.http_get("/metrics");
            text.lines()
                .find_map(|l| l.strip_prefix("speedlayer_cluster_splits_total "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0)
        })
        .sum();
    println!("splits counted by the two survivors: {splits}");
}
