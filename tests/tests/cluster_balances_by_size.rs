//! The balancer's byte rule with real servers over Debian's real etcd (issue 12): region
//! counts are already even (two servers, three regions: 2 and 1), but the server with two
//! regions holds far more bytes. `speedlayer admin balance` moves one of its regions to
//! the light server by size (`--balance-min-mb 1`) — the 1 MiB one, nearest half the gap — the
//! master counts the move as a size move, a second run moves nothing, and every row
//! written before is read back.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::RngCore;
use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::{
    counts, create_table, member_flags, start_members, status, wait_until,
};
use speedlayer_tests::etcd::Etcd;

const VALUE: usize = 1024;

/// The value of one `# TYPE`-less sample line `name value` in a /metrics text.
fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn even_counts_uneven_bytes_move_one_region_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    let flags = member_flags(
        &url,
        &dir.path().join("shared"),
        2,
        &["--balance", "manual", "--balance-min-mb", "1"],
    );
    let servers = start_members(dir.path(), 2, &flags);
    create_table(&servers[0], "t", &["h", "p"]);
    let (s, _) = wait_until(&url, Duration::from_secs(20), "3 regions open", |_, c| {
        c.len() == 2 && c.values().sum::<usize>() == 3
    });
    let (c, _) = counts(&s);
    let heavy = c.iter().find(|(_, n)| **n == 2).unwrap().0.clone();
    let light = c.iter().find(|(_, n)| **n == 1).unwrap().0.clone();
    // Per region: (id, its server, a key prefix inside it).
    let regions: Vec<(u64, String, String)> = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let start = r["start"].as_str().unwrap();
            (
                r["id"].as_u64().unwrap(),
                r["server"].as_str().unwrap().to_owned(),
                if start.is_empty() { "a" } else { start }.to_owned(),
            )
        })
        .collect();
    let on_heavy: Vec<_> = regions.iter().filter(|r| r.1 == heavy).collect();
    let on_light: Vec<_> = regions.iter().filter(|r| r.1 == light).collect();
    // Heavy: 4 MiB and 1 MiB; light: 0.5 MiB, of incompressible values. The rule moves the
    // region nearest half the 4.5 MiB gap that is smaller than it: the 1 MiB one.
    let plan = [
        (on_heavy[0], 4096u32),
        (on_heavy[1], 1024),
        (on_light[0], 512),
    ];
    let client = Client::connect(&servers[0].url()).await.unwrap();
    let mut rng = rand::rng();
    let mut written = 0usize;
    for (region, rows) in plan {
        for chunk in (0..rows).collect::<Vec<_>>().chunks(128) {
            let batch = chunk
                .iter()
                .map(|i| {
                    let mut v = vec![0u8; VALUE];
                    rng.fill_bytes(&mut v);
                    put_row(format!("{}{i:06}", region.2).as_bytes(), &[("f", "q", &v)])
                })
                .collect();
            client
                .mutate("t", batch, Durability::Sync)
                .await
                .expect("put");
            written += chunk.len();
        }
    }
    // Sizes are read from the store files, not the log: flush on every server.
    for s in &servers {
        s.cli(&["flush", "t"]).ok();
    }

    let out = servers[1].cli(&["admin", "balance", "--json"]).ok();
    let b: serde_json::Value = serde_json::from_str(&out).unwrap();
    println!("admin balance by size: {out}");
    assert_eq!(b["moved"], 1, "{out}");
    assert_eq!(b["servers"][&heavy], 1, "{out}");
    assert_eq!(b["servers"][&light], 2, "{out}");
    let after = status(&url);
    let moved = on_heavy[1].0;
    let r = after["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"].as_u64() == Some(moved))
        .unwrap();
    assert_eq!(
        (r["state"].as_str(), r["server"].as_str()),
        (Some("open"), Some(light.as_str())),
        "the 1 MiB region moves to the light server: {after:#}"
    );
    let by_size: u64 = servers
        .iter()
        .map(|s| {
            metric(
                &s.http_get("/metrics").1,
                "speedlayer_cluster_master_balanced_by_size_total",
            )
        })
        .sum();
    assert_eq!(by_size, 1, "the master counts one move by size");

    // Now the heavy server holds fewer regions than the light one: counts win, nothing
    // moves, however uneven the bytes still are.
    let out = servers[0].cli(&["admin", "balance", "--json"]).ok();
    let b: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(b["moved"], 0, "{out}");

    // Every row is still there.
    let mut per_prefix: BTreeMap<char, usize> = BTreeMap::new();
    let rows = client
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .expect("scan");
    for row in &rows {
        *per_prefix.entry(row.row[0] as char).or_default() += 1;
    }
    assert_eq!(rows.len(), written, "{per_prefix:?}");
}
