//! Real `speedlayer-server`s in cluster mode over Debian's real etcd (issue 12), under a
//! sync write load that never stops: a fourth server joins and the master balances regions
//! onto it; `speedlayer admin move` moves one region and reports its unavailability;
//! `speedlayer admin balance` leaves an even cluster even; the master is killed (`kill -9`)
//! right after a table is created, and another member takes over and finishes assigning
//! it. Every acknowledged row is read back at the end.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::{counts, member_of, status, wait_until};
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::ServerProcess;

fn key(i: u32) -> String {
    format!("{}{i:07}", (b'a' + (i % 26) as u8) as char)
}

fn spread(counts: &BTreeMap<String, usize>) -> usize {
    counts.values().max().unwrap_or(&0) - counts.values().min().unwrap_or(&0)
}

struct Load {
    acked: BTreeMap<String, u32>,
    failures: u32,
    longest_call: Duration,
}

/// Sync puts one row at a time until `stop`, recording what was acknowledged.
async fn write_load(c: Client, stop: Arc<AtomicBool>) -> Load {
    let mut load = Load {
        acked: BTreeMap::new(),
        failures: 0,
        longest_call: Duration::ZERO,
    };
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let k = key(i);
        let call = Instant::now();
        let r = c
            .mutate(
                "t",
                vec![put_row(
                    k.as_bytes(),
                    &[("f", "q", i.to_string().as_bytes())],
                )],
                Durability::Sync,
            )
            .await;
        load.longest_call = load.longest_call.max(call.elapsed());
        match r {
            Ok(_) => {
                load.acked.insert(k, i);
            }
            Err(_) => load.failures += 1,
        }
        i += 1;
    }
    load
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joining_server_gets_regions_moves_are_measured_and_a_dead_master_is_replaced() {
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
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|i| ServerProcess::start(&dir.path().join(format!("s{i}")), &flags))
        .collect();
    let mut split = vec!["create-table", "t", "--family", "f"];
    for k in ["e", "i", "m", "q", "u"] {
        split.extend(["--split", k]);
    }
    assert!(servers[0].cli(&split).ok().contains("created"));
    let (_, took) = wait_until(
        &url,
        Duration::from_secs(20),
        "6 regions on 3 servers",
        |_, c| c.len() == 3 && c.values().all(|n| *n == 2),
    );
    println!("six regions open, two per server, after {took:?}");

    // The load goes through server 2 and never stops until the end.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = tokio::spawn(write_load(
        Client::connect(&servers[2].url()).await.unwrap(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A fourth server joins: the balancer gives it regions until counts differ by one.
    let joined = Instant::now();
    servers.push(ServerProcess::start(&dir.path().join("s3"), &flags));
    let fourth = member_of(&status(&url), &servers[3]);
    let (s, _) = wait_until(
        &url,
        Duration::from_secs(30),
        "balanced onto the new server",
        |_, c| c.len() == 4 && c.get(&fourth).is_some_and(|n| *n >= 1) && spread(c) <= 1,
    );
    println!(
        "fourth server joined: balanced {:?} after it started: {:?}",
        joined.elapsed(),
        counts(&s).0
    );

    // An operator's move, through the CLI and another server, of a region from a server
    // holding two to one holding one (so the balancer has no reason to move it back).
    let (c, _) = counts(&s);
    let from = c
        .iter()
        .find(|(_, n)| **n == 2)
        .map(|(m, _)| m.clone())
        .unwrap();
    let to = c
        .iter()
        .find(|(_, n)| **n == 1)
        .map(|(m, _)| m.clone())
        .unwrap();
    let region = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["server"] == from.as_str() && r["table"] == "t")
        .and_then(|r| r["id"].as_u64())
        .unwrap();
    let to_addr = s["servers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == to.as_str())
        .and_then(|m| m["grpc"].as_str())
        .unwrap()
        .to_owned();
    let out = servers[1]
        .cli(&["admin", "move", &format!("t/{region}"), &to_addr, "--json"])
        .ok();
    let moved: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(moved["from"], from.as_str(), "{out}");
    assert_eq!(moved["to"], to.as_str(), "{out}");
    let unavailable_ms = moved["unavailable_ms"].as_f64().unwrap();
    assert!(
        unavailable_ms > 0.0 && unavailable_ms < 10_000.0,
        "a graceful move's unavailability: {out}"
    );
    println!("admin move of region {region}: {out}");
    let s = status(&url);
    let r = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"].as_u64() == Some(region))
        .unwrap();
    assert_eq!(
        (r["state"].as_str(), r["server"].as_str()),
        (Some("open"), Some(to.as_str()))
    );
    // Moving it where it is is no move; an unknown server or region is a typed refusal.
    let again = servers[0]
        .cli(&["admin", "move", &region.to_string(), &to])
        .ok();
    assert!(again.contains("already open on"), "{again}");
    let err = servers[0]
        .cli(&["admin", "move", &region.to_string(), "nobody"])
        .err();
    assert!(err.contains("no live server"), "{err}");
    let err = servers[0].cli(&["admin", "move", "t/999999", &to]).err();
    assert!(err.contains("no region 999999"), "{err}");

    // `admin balance` on an even cluster: still even, nothing in transition afterwards.
    let out = servers[3].cli(&["admin", "balance", "--json"]).ok();
    let b: serde_json::Value = serde_json::from_str(&out).unwrap();
    let per: Vec<u64> = b["servers"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .collect();
    assert_eq!(per.len(), 4, "{out}");
    assert!(
        per.iter().max().unwrap() - per.iter().min().unwrap() <= 1,
        "{out}"
    );
    assert_eq!(per.iter().sum::<u64>(), 6, "{out}");

    // Kill the master right after a table is created, while it assigns the new regions.
    let s = status(&url);
    let master = s["master"].as_str().unwrap().to_owned();
    let victim = (0..3)
        .find(|i| member_of(&s, &servers[*i]) == master)
        .expect("the master is one of the first three");
    let creator = (0..3).find(|i| *i != victim).unwrap();
    let mut split = vec!["create-table", "u", "--family", "f"];
    let keys: Vec<String> = (1..12).map(|i| format!("k{i:02}")).collect();
    for k in &keys {
        split.extend(["--split", k.as_str()]);
    }
    assert!(servers[creator].cli(&split).ok().contains("created"));
    let killed = Instant::now();
    servers[victim].kill9();
    // What the dead master left half-done: regions of u it had not assigned yet, or had
    // assigned to itself (they must be taken back and assigned again).
    let at_kill = status(&url);
    let half_done = at_kill["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["table"] == "u")
        .filter(|r| r["state"] == "offline" || r["server"] == master.as_str())
        .count();
    assert!(
        half_done > 0,
        "the kill came after u was settled: {at_kill:#}"
    );
    let (s, _) = wait_until(
        &url,
        Duration::from_secs(30),
        "u assigned by a new master",
        |s, c| {
            c.len() == 3
                && !c.contains_key(&master)
                && s["master"].as_str().is_some_and(|m| m != master)
                && s["regions"].as_array().unwrap().len() == 6 + 12
        },
    );
    let (c, _) = counts(&s);
    println!(
        "master killed mid-assignment ({half_done} of u's 12 regions unassigned or on it): a new master ({}) had every region of t and u open on the three live servers {:?} after the kill: {c:?}",
        s["master"],
        killed.elapsed()
    );
    assert_eq!(c.values().sum::<usize>(), 18);
    assert!(spread(&c) <= 1, "{c:?}");

    stop.store(true, Ordering::Relaxed);
    let load = writer.await.unwrap();
    assert!(
        load.acked.len() > 50,
        "the load wrote {} rows",
        load.acked.len()
    );
    println!(
        "load: {} rows acknowledged, {} failed calls, longest call {:?}",
        load.acked.len(),
        load.failures,
        load.longest_call
    );
    let c = Client::connect(&servers[3].url()).await.unwrap();
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    let found: BTreeMap<String, u32> = rows
        .iter()
        .map(|r| {
            (
                String::from_utf8_lossy(&r.row).into_owned(),
                String::from_utf8_lossy(&r.cells[0].value).parse().unwrap(),
            )
        })
        .collect();
    let lost: Vec<_> = load
        .acked
        .iter()
        .filter(|(k, v)| found.get(*k) != Some(v))
        .collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged rows lost: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    // The new table takes writes through any server.
    c.mutate(
        "u",
        vec![put_row(b"k05x", &[("f", "q", b"1")])],
        Durability::Sync,
    )
    .await
    .unwrap();
}
