//! Real `speedlayer-server` binaries in cluster mode against Debian's real etcd (issue 12):
//!
//! - three servers started with `--etcd` join; `speedlayer cluster status` (text and
//!   `--json`) lists the three with their addresses and names one master;
//! - `kill -9` of the master: its member key goes when its lease ends and another server
//!   becomes master; SIGTERM of a member: it leaves at once (its lease is revoked);
//! - the last server, with etcd frozen (SIGSTOP), refuses every request with UNAVAILABLE
//!   once its lease is no longer confirmed, and serves again by itself when etcd returns;
//! - without `--etcd` nothing of this exists (every other test runs that way).

use std::time::{Duration, Instant};

use speedlayer_client::proto::Durability;
use speedlayer_client::put_row;
use speedlayer_tests::cluster::status;
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::{ServerProcess, client_without_retries, run_cli};
use tonic::Code;

const TTL: &str = "2";

fn member_of(server: &ServerProcess) -> String {
    let log = server.log();
    log.lines()
        .filter_map(|l| l.split("joined the cluster member=").nth(1))
        .next_back()
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no join line in:\n{log}"))
        .to_owned()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(25));
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_join_elect_a_master_and_fence_themselves() {
    let dir = tempfile::tempdir().unwrap();
    let mut etcd = Etcd::start(&dir.path().join("etcd"));
    let url = etcd.url();
    let shared = dir.path().join("shared");
    let shared = shared.to_str().unwrap();
    let flags = [
        "--etcd",
        url.as_str(),
        "--cluster",
        "c",
        "--lease-ttl-secs",
        TTL,
        "--storage-root",
        shared,
    ];
    let mut servers: Vec<ServerProcess> = (0..3)
        .map(|i| ServerProcess::start(&dir.path().join(format!("s{i}")), &flags))
        .collect();
    let ids: Vec<String> = servers.iter().map(member_of).collect();

    // All three listed with their real addresses, exactly one master among them.
    let st = status(&etcd.url());
    let listed = st["servers"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{st}");
    for (s, id) in servers.iter().zip(&ids) {
        let entry = listed.iter().find(|e| e["id"] == id.as_str()).unwrap();
        assert_eq!(entry["grpc"], s.grpc.to_string(), "{st}");
        assert_eq!(entry["http"], s.http.to_string(), "{st}");
    }
    let master = st["master"].as_str().expect("a master").to_owned();
    let m = ids
        .iter()
        .position(|id| *id == master)
        .expect("master is a member");
    // /metrics agrees: exactly the master says so, and every lease serves.
    for (i, s) in servers.iter().enumerate() {
        let (code, body) = s.http_get("/metrics");
        assert_eq!(code, 200);
        let want = if i == m { 1 } else { 0 };
        assert!(
            body.contains(&format!("\nspeedlayer_cluster_is_master {want}\n")),
            "{body}"
        );
        assert!(
            body.contains("\nspeedlayer_cluster_lease_serving 1\n"),
            "{body}"
        );
        assert!(
            body.contains("\nspeedlayer_cluster_sessions_total 1\n"),
            "{body}"
        );
    }
    let text = run_cli(
        "http://127.0.0.1:1",
        &["cluster", "status", "--etcd", &url, "--cluster", "c"],
    )
    .ok();
    assert!(text.starts_with("cluster c: 3 servers, master "), "{text}");
    assert!(text.contains(&format!("*  {master}")), "{text}");

    // A member serves: a table and a write through it.
    let c = client_without_retries(&servers[m].url()).await;
    let out = servers[m].cli(&["create-table", "t", "--family", "f"]).ok();
    assert!(out.contains("created"), "{out}");
    c.mutate(
        "t",
        vec![put_row(b"r1", &[("f", "q", b"v")])],
        Durability::Sync,
    )
    .await
    .expect("a put while the lease holds");

    // kill -9 of the master: its key goes when the lease ends; another becomes master.
    let killed = Instant::now();
    servers[m].kill9();
    let took = wait_for(
        "a new master after kill -9",
        Duration::from_secs(15),
        || {
            let st = status(&etcd.url());
            st["servers"].as_array().unwrap().len() == 2
                && st["master"].as_str().is_some_and(|x| x != master)
        },
    );
    println!(
        "kill -9 of the master: new master after {:?} (TTL {TTL} s)",
        killed.elapsed()
    );
    assert!(
        took >= Duration::from_millis(500),
        "a lease cannot end at once: {took:?}"
    );

    // SIGTERM of a member: it leaves at once.
    let others: Vec<usize> = (0..3).filter(|&i| i != m).collect();
    let (leaving, last) = (others[0], others[1]);
    let left = Instant::now();
    assert!(servers[leaving].terminate().success());
    let st = status(&etcd.url());
    assert_eq!(st["servers"].as_array().unwrap().len(), 1, "{st}");
    assert_eq!(st["master"], ids[last].as_str(), "{st}");
    println!("SIGTERM: left and handed over within {:?}", left.elapsed());
    assert!(servers[leaving].log().contains("left the cluster"));

    // etcd frozen: the last server stops serving once its lease is unconfirmed, and says
    // why; it does not wait for etcd to be back to stop.
    let c = client_without_retries(&servers[last].url()).await;
    servers[last]
        .cli(&["create-table", "u", "--family", "f"])
        .ok();
    c.mutate(
        "u",
        vec![put_row(b"a", &[("f", "q", b"v")])],
        Durability::Sync,
    )
    .await
    .expect("a put before etcd stops");
    let frozen = Instant::now();
    etcd.freeze();
    let mut refused = None;
    while frozen.elapsed() < Duration::from_secs(10) {
        match c
            .mutate(
                "u",
                vec![put_row(b"b", &[("f", "q", b"v")])],
                Durability::Sync,
            )
            .await
        {
            Ok(_) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => {
                refused = Some((frozen.elapsed(), e));
                break;
            }
        }
    }
    let (after, e) = refused.expect("the server kept acknowledging with etcd gone");
    assert_eq!(e.code(), Some(Code::Unavailable), "{e}");
    assert!(e.to_string().contains("lease is not confirmed"), "{e}");
    println!("etcd frozen: first refusal after {after:?} (TTL {TTL} s, window 2/3 of it)");
    assert!(
        after < Duration::from_millis(2000),
        "{after:?}: must stop before the TTL"
    );
    // Reads are refused too.
    let scan = servers[last].cli(&["scan", "u"]);
    assert!(
        !scan.status.success(),
        "a scan served while fenced: {}",
        scan.stdout
    );

    // etcd back: the server serves again by itself (same lease if it survived, else a new
    // member).
    etcd.thaw();
    wait_for(
        "serving again after etcd returns",
        Duration::from_secs(20),
        || servers[last].cli(&["get", "u", "a"]).status.success(),
    );
    c.mutate(
        "u",
        vec![put_row(b"c", &[("f", "q", b"v")])],
        Durability::Sync,
    )
    .await
    .expect("a put after etcd returned");
    let st = status(&etcd.url());
    assert_eq!(st["servers"].as_array().unwrap().len(), 1, "{st}");
    assert!(st["master"].is_string(), "{st}");
}
