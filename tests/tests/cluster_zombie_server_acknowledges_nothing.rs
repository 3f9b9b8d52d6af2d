//! Issue 12's zombie: a real server is paused (SIGSTOP) past its lease while requests wait
//! for it, its region moves to the other server, and it is resumed (SIGCONT). It
//! acknowledges nothing for the region it no longer owns — neither the requests that
//! waited nor new ones — and none of those writes ever appears: not on the new owner, and
//! not when the region is later moved back to the resumed server (which has joined again
//! as a new member), so nothing is lost or duplicated.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use speedlayer_client::proto::data_client::DataClient;
use speedlayer_client::proto::{Durability, MutateRequest, ScanRequest};
use speedlayer_client::{Client, ClientOptions, put_row};
use speedlayer_tests::cluster::{member, status};
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;

fn put(key: &str) -> MutateRequest {
    MutateRequest {
        table: "t".into(),
        mutations: vec![put_row(key.as_bytes(), &[("f", "q", b"1")])],
        durability: Durability::Sync as i32,
    }
}

async fn rows(c: &Client, etcd: &str) -> BTreeSet<String> {
    c.scan_all(ScanRequest {
        table: "t".into(),
        ..ScanRequest::default()
    })
    .await
    .unwrap_or_else(|e| panic!("scan: {e}; cluster now: {:#}", status(etcd)))
    .into_iter()
    .map(|r| String::from_utf8_lossy(&r.row).into_owned())
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_zombie_acknowledges_nothing_and_its_writes_never_appear() {
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
        // No balancer: the region goes back to the resumed server only when moved below,
        // so nothing it answers after the resume can be a legitimate new owner's answer.
        "--balance",
        "manual",
    ];
    let mut a = ServerProcess::start(&dir.path().join("a"), &flags);
    let b = ServerProcess::start(&dir.path().join("b"), &flags);
    assert!(
        b.cli(&["create-table", "t", "--family", "f", "--split", "m"])
            .ok()
            .contains("created")
    );
    // Wait for one region on each; `r` is A's, with keys under `p`.
    let start = Instant::now();
    let (a_id, r_id, p) = loop {
        let s = status(&url);
        if let Some(a_id) = member(&s, &a)
            && let Some(r) = s["regions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["server"] == a_id.as_str() && r["state"] == "open")
            && s["regions"]
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["state"] == "open")
        {
            let p = if r["start"] == "" { "a" } else { "z" };
            break (a_id, r["id"].as_u64().unwrap(), p.to_owned());
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // A short request deadline: a call stuck on the paused server re-locates after it.
    let c = Client::connect_with(
        &b.url(),
        ClientOptions {
            request_timeout: Duration::from_millis(800),
            ..ClientOptions::default()
        },
    )
    .await
    .unwrap();
    let mut acked = BTreeSet::new();
    for i in 0..20 {
        let k = format!("{p}-before-{i:03}");
        c.mutate("t", put(&k).mutations, Durability::Sync)
            .await
            .unwrap();
        acked.insert(k);
    }

    // Pause A with requests on their way to it.
    a.freeze();
    let mut waiting = Vec::new();
    for i in 0..10 {
        let mut to_a = DataClient::connect(a.url()).await.unwrap();
        let k = format!("{p}-zombie-waited-{i:03}");
        waiting.push((
            k.clone(),
            tokio::spawn(async move { to_a.mutate(put(&k)).await.is_ok() }),
        ));
    }
    // The region moves to B once A's lease ends; writes through B resume.
    let paused = Instant::now();
    let mut i = 0;
    let mut last_error = String::new();
    loop {
        let s = status(&url);
        let moved = s["regions"].as_array().unwrap().iter().any(|r| {
            r["id"].as_u64() == Some(r_id) && r["server"] != a_id.as_str() && r["state"] == "open"
        });
        let k = format!("{p}-during-{i:03}");
        i += 1;
        match c.mutate("t", put(&k).mutations, Durability::Sync).await {
            Ok(_) => {
                acked.insert(k);
                if moved {
                    break;
                }
            }
            Err(e) => last_error = e.to_string(),
        }
        assert!(
            paused.elapsed() < Duration::from_secs(30),
            "the region never moved, or writes through B never resumed ({last_error}): {s:#}"
        );
    }
    println!(
        "region {r_id} open on B {:?} after A was paused",
        paused.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Resume A: what waited, and anything new, is refused.
    a.thaw();
    let mut refused = Vec::new();
    for (k, t) in waiting {
        let ok = tokio::time::timeout(Duration::from_secs(20), t)
            .await
            .unwrap()
            .unwrap();
        assert!(
            !ok,
            "the zombie acknowledged {k}, which waited while it was paused; A's log:\n{}\nB's log:\n{}",
            a.log(),
            b.log()
        );
        refused.push(k);
    }
    let mut to_a = DataClient::connect(a.url()).await.unwrap();
    for i in 0..10 {
        let k = format!("{p}-zombie-after-{i:03}");
        let r = to_a.mutate(put(&k)).await;
        assert!(r.is_err(), "the resumed zombie acknowledged {k}");
        refused.push(k);
    }
    let check = |got: &BTreeSet<String>, when: &str| {
        let lost: Vec<_> = acked.difference(got).collect();
        assert!(lost.is_empty(), "{when}: acknowledged rows lost: {lost:?}");
        let ghosts: Vec<_> = refused.iter().filter(|k| got.contains(*k)).collect();
        assert!(
            ghosts.is_empty(),
            "{when}: refused writes appeared: {ghosts:?}"
        );
    };
    check(&rows(&c, &url).await, "on the new owner");

    // A joins again as a new member; move the region back to it: it replays the region's
    // logs, which must not bring back what it wrote as a zombie.
    let start = Instant::now();
    let a_new = loop {
        let s = status(&url);
        if let Some(id) = member(&s, &a)
            && id != a_id
        {
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "A did not join again: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let out = b.cli(&["admin", "move", &r_id.to_string(), &a_new]).ok();
    assert!(
        out.contains("moved region") || out.contains("already open"),
        "{out}"
    );
    check(
        &rows(&c, &url).await,
        "after moving the region back to the resumed server",
    );
    println!(
        "resumed zombie: {} writes refused, none appeared; {} acknowledged rows all present",
        refused.len(),
        acked.len()
    );
}
