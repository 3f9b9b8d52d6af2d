//! Issue 12: a server cut off from etcd by a real network cut, while its clients still
//! reach it, stops acknowledging writes before its regions can be reassigned.
//!
//! Server A runs in a network namespace with two veth links to the host: one to etcd, one
//! for clients. Server B runs on the host. A table has one region on each. A writer sends
//! sync puts straight to A (no relocation) for A's region; the link to etcd is taken down
//! (`ip link set … down`); A keeps answering its clients but stops acknowledging; B takes
//! the region over once A's lease ends, and a writer through B gets acknowledgements
//! again. The last write A acknowledged comes before the first B acknowledged for that
//! region, and every acknowledged row is there afterwards.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use speedlayer_client::proto::data_client::DataClient;
use speedlayer_client::proto::{Durability, MutateRequest, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::cluster::status;
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::netns::NetNs;
use speedlayer_tests::server::ServerProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cut_from_etcd_stops_acknowledging_before_its_region_moves() {
    let ns = NetNs::create().expect("network namespace (needs root and iproute2)");
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start_on(&dir.path().join("etcd"), &ns.etcd_host());
    let url = etcd.url();
    let shared = dir.path().join("shared");
    let shared = shared.to_str().unwrap();
    let ttl = 3u64;
    let ttl_s = ttl.to_string();
    let common = [
        "--etcd",
        &url,
        "--cluster",
        "c",
        "--lease-ttl-secs",
        &ttl_s,
        "--storage-root",
        shared,
    ];
    let host = ns.client_host();
    let mut a_flags = common.to_vec();
    a_flags.extend(["--advertise-host", host.as_str()]);
    let a = ServerProcess::start_in_netns(&ns.name, &host, &dir.path().join("a"), &a_flags);
    let b = ServerProcess::start(&dir.path().join("b"), &common);
    let out = b
        .cli(&["create-table", "t", "--family", "f", "--split", "m"])
        .ok();
    assert!(out.contains("created"), "{out}");
    let a_grpc = a.grpc.to_string();
    let start = Instant::now();
    let (a_id, b_id) = loop {
        let s = status(&url);
        let id_of = |grpc: &str| {
            s["servers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["grpc"] == grpc)
                .and_then(|m| m["id"].as_str())
                .map(str::to_owned)
        };
        let open_on: BTreeSet<String> = s["regions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "open")
            .filter_map(|r| r["server"].as_str().map(str::to_owned))
            .collect();
        if let (Some(ai), Some(bi)) = (id_of(&a_grpc), id_of(&b.grpc.to_string()))
            && open_on.contains(&ai)
            && open_on.contains(&bi)
        {
            break (ai, bi);
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not one region each: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let s = status(&url);
    let a_region_start = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["server"] == a_id.as_str())
        .and_then(|r| r["start"].as_str())
        .unwrap()
        .to_owned();
    // A's region is either ["", "m") or ["m", ""): keys that fall in it.
    let prefix = if a_region_start.is_empty() { "a" } else { "z" };

    // Straight to A, no relocation: every acknowledgement below is A's own.
    let mut to_a = DataClient::connect(format!("http://{a_grpc}"))
        .await
        .unwrap();
    let put_a = |i: u32| MutateRequest {
        table: "t".into(),
        mutations: vec![put_row(
            format!("{prefix}{i:06}").as_bytes(),
            &[("f", "q", b"a")],
        )],
        durability: Durability::Sync as i32,
    };
    let mut acked: Vec<String> = Vec::new();
    let mut i = 0u32;
    while i < 50 {
        to_a.mutate(put_a(i))
            .await
            .expect("A acknowledges before the cut");
        acked.push(format!("{prefix}{i:06}"));
        i += 1;
    }

    // The cut: A loses etcd; its clients' link stays up.
    ns.etcd_link(false).unwrap();
    let cut = Instant::now();
    let mut last_ack_a = Duration::ZERO;
    let mut answered_after_cut = 0;
    let mut first_refusal = None;
    // Straight to B for the same region (B refuses until it holds it), from the cut on.
    let mut to_b = DataClient::connect(b.url()).await.unwrap();
    let via_b = Client::connect(&b.url()).await.unwrap();
    let mut first_ack_b = None;
    let mut j = 0u32;
    while cut.elapsed() < Duration::from_secs(ttl * 3) && first_ack_b.is_none()
        || cut.elapsed() < Duration::from_secs(ttl + 2)
    {
        match tokio::time::timeout(Duration::from_secs(2), to_a.mutate(put_a(i))).await {
            Ok(Ok(_)) => {
                last_ack_a = cut.elapsed();
                acked.push(format!("{prefix}{i:06}"));
            }
            Ok(Err(status)) => {
                answered_after_cut += 1;
                first_refusal.get_or_insert((cut.elapsed(), status.code()));
            }
            Err(_) => {}
        }
        i += 1;
        if first_ack_b.is_none() {
            let k = format!("{prefix}b{j:06}");
            j += 1;
            let r = tokio::time::timeout(
                Duration::from_millis(500),
                to_b.mutate(MutateRequest {
                    table: "t".into(),
                    mutations: vec![put_row(k.as_bytes(), &[("f", "q", b"b")])],
                    durability: Durability::Sync as i32,
                }),
            )
            .await;
            if let Ok(Ok(_)) = r {
                first_ack_b = Some(cut.elapsed());
                acked.push(k);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_ack_b = first_ack_b.expect("B never took the region over");
    let s = status(&url);
    let moved = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["start"] == a_region_start.as_str())
        .all(|r| r["server"] == b_id.as_str() && r["state"] == "open");
    println!(
        "TTL {ttl} s: A's last acknowledgement {last_ack_a:?} after the cut, first refusal {first_refusal:?}, B's first acknowledgement for the region {first_ack_b:?} after the cut; A answered {answered_after_cut} requests with a status after the cut"
    );
    assert!(moved, "the region is not open on B: {s:#}");
    assert!(
        answered_after_cut > 0,
        "A was not reachable by its clients after the cut (the cut must only sever etcd)"
    );
    assert!(
        last_ack_a < first_ack_b,
        "A acknowledged a write ({last_ack_a:?}) after B had taken the region ({first_ack_b:?})"
    );
    assert!(
        last_ack_a < Duration::from_secs(ttl),
        "A acknowledged {last_ack_a:?} after the cut, past the lease TTL"
    );
    // Nothing acknowledged is lost.
    let rows: BTreeSet<String> = via_b
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.row).into_owned())
        .collect();
    let lost: Vec<_> = acked.iter().filter(|k| !rows.contains(*k)).collect();
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
}
