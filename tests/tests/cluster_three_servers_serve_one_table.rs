//! Three real `speedlayer-server`s in cluster mode over Debian's real etcd and one shared
//! storage root (issue 12): a table pre-split in four is spread over all three; the client
//! library and the CLI, given any one server's address, write and read every row; `kill -9`
//! of a server under a sync write load loses no acknowledged row, and writes resume once
//! its regions are reopened elsewhere; SIGTERM of another moves its regions at once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::{create_table, member_flags, start_members};
use speedlayer_tests::etcd::Etcd;

fn key(i: u32) -> String {
    // Spread over the whole key space: first letters a..z.
    format!("{}{i:06}", (b'a' + (i % 26) as u8) as char)
}

async fn all_rows(c: &Client) -> BTreeMap<String, String> {
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .expect("full scan");
    let mut out = BTreeMap::new();
    let mut last = String::new();
    for r in rows {
        let k = String::from_utf8_lossy(&r.row).into_owned();
        assert!(k > last, "rows out of order: {k} after {last}");
        last = k.clone();
        out.insert(k, String::from_utf8_lossy(&r.cells[0].value).into_owned());
    }
    out
}

async fn servers_of(c: &Client) -> BTreeSet<String> {
    c.describe_table("t")
        .await
        .expect("describe")
        .regions
        .iter()
        .map(|r| r.server_addr.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_spread_over_three_servers_survives_a_kill_and_a_drain() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    let flags = member_flags(&url, &dir.path().join("shared"), 2, &[]);
    let mut servers = start_members(dir.path(), 3, &flags);

    create_table(&servers[0], "t", &["g", "n", "t"]);
    // The client knows only server 1; the table's regions are everywhere.
    let c = Client::connect(&servers[1].url()).await.unwrap();
    let start = Instant::now();
    while servers_of(&c).await.len() < 3 {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "regions not spread over three servers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("four regions on three servers after {:?}", start.elapsed());

    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..520 {
        c.mutate(
            "t",
            vec![put_row(key(i).as_bytes(), &[("f", "q", b"1")])],
            Durability::Sync,
        )
        .await
        .unwrap_or_else(|e| panic!("put {}: {e}", key(i)));
        acked.insert(key(i), "1".into());
    }
    // A batch spanning every region, through one call.
    let batch: Vec<_> = (520..600)
        .map(|i| put_row(key(i).as_bytes(), &[("f", "q", b"1")]))
        .collect();
    c.mutate("t", batch, Durability::Sync).await.unwrap();
    for i in 520..600 {
        acked.insert(key(i), "1".into());
    }
    assert_eq!(
        all_rows(&c).await,
        acked,
        "a scan through one server returns every row"
    );
    let cli = servers[2].cli(&["count", "t"]).ok();
    assert!(cli.contains("600"), "the CLI through another server: {cli}");

    // kill -9 of a server that is not the client's, under a sync write load.
    let victim = 2;
    let killed = Instant::now();
    servers[victim].kill9();
    let mut first_failure_streak: Option<Instant> = None;
    let mut longest_gap = Duration::ZERO;
    // The client retries through the failover, so the outage shows as one long call.
    let mut longest_call = Duration::ZERO;
    let mut failures = 0;
    let mut i = 600;
    while killed.elapsed() < Duration::from_secs(8) {
        let k = key(i);
        let call = Instant::now();
        let result = c
            .mutate(
                "t",
                vec![put_row(k.as_bytes(), &[("f", "q", b"2")])],
                Durability::Sync,
            )
            .await;
        longest_call = longest_call.max(call.elapsed());
        match result {
            Ok(_) => {
                acked.insert(k, "2".into());
                if let Some(t) = first_failure_streak.take() {
                    longest_gap = longest_gap.max(t.elapsed());
                }
            }
            Err(_) => {
                failures += 1;
                first_failure_streak.get_or_insert_with(Instant::now);
            }
        }
        i += 1;
    }
    assert!(
        first_failure_streak.is_none(),
        "writes had not resumed 8 s after the kill"
    );
    println!(
        "kill -9: {} rows acknowledged meanwhile, {failures} failed calls, longest failing streak {longest_gap:?}, longest call {longest_call:?} (TTL 2 s)",
        i - 600 - failures
    );
    let start = Instant::now();
    loop {
        let servers_now = servers_of(&c).await;
        if servers_now.len() == 2 && !servers_now.contains(&servers[victim].url()) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{servers_now:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        all_rows(&c).await,
        acked,
        "an acknowledged row was lost in the failover"
    );

    // SIGTERM of server 0: it flushes, leaves, and its regions move to server 1.
    let left = Instant::now();
    assert!(servers[0].terminate().success());
    let start = Instant::now();
    while servers_of(&c).await != BTreeSet::from([servers[1].url()]) {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "regions did not move after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    println!(
        "SIGTERM: every region on the last server {:?} after the signal",
        left.elapsed()
    );
    assert_eq!(all_rows(&c).await, acked, "a row was lost in the drain");
}
