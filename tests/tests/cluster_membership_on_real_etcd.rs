//! Membership, master election and lease self-fencing of `speedlayer-cluster` against
//! Debian's real etcd on loopback (issue 12; design: `server/docs/cluster_design.md`).
//!
//! - Three members join; exactly one is master; `ClusterStatus` (what `speedlayer cluster
//!   status` prints) lists all three and names it.
//! - The master leaves gracefully: another is master at once; a member that dies without
//!   leaving disappears when its lease ends, and the master role passes on.
//! - A member cut off from etcd while etcd keeps running (a real TCP path that stops
//!   passing bytes) stops serving *before* etcd expires its lease, which is the only moment
//!   its regions may be given away; when the link returns it joins again as a new member.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use speedlayer_cluster::{Addresses, ClusterConfig, ClusterStatus, Fence, Member};
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::link::Link;

fn addrs(n: u16) -> Addresses {
    Addresses {
        grpc: SocketAddr::from(([127, 0, 0, 1], 17000 + n)),
        http: SocketAddr::from(([127, 0, 0, 1], 18000 + n)),
        resp: None,
    }
}

fn config(endpoint: String, ttl_s: u64) -> ClusterConfig {
    let mut c = ClusterConfig::new(vec![endpoint]);
    c.name = "t".into();
    c.lease_ttl = Duration::from_secs(ttl_s);
    c
}

async fn join(cfg: &ClusterConfig, n: u16) -> (Member, Arc<Fence>) {
    let _ = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("speedlayer_cluster=info")
        .try_init();
    let fence = Arc::new(Fence::new());
    let m = Member::join(cfg.clone(), addrs(n), "test", fence.clone())
        .await
        .expect("join");
    (m, fence)
}

/// Waits until `f` holds, polling every 20 ms; returns how long it took.
async fn until(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn masters(ms: &[&Member]) -> Vec<String> {
    ms.iter()
        .filter(|m| m.is_master())
        .map(|m| m.id())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_elect_one_master_and_hand_over() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let cfg = config(etcd.url(), 2);
    let (a, fa) = join(&cfg, 1).await;
    let (b, _) = join(&cfg, 2).await;
    let (c, _) = join(&cfg, 3).await;
    assert!(fa.serving(), "a joined member serves");
    until("one master", Duration::from_secs(10), async || {
        masters(&[&a, &b, &c]).len() == 1
    })
    .await;
    let status = ClusterStatus::read(&cfg).await.unwrap();
    assert_eq!(status.servers.len(), 3, "{status:?}");
    let first = masters(&[&a, &b, &c]).remove(0);
    assert_eq!(status.master.as_deref(), Some(first.as_str()));
    for m in [&a, &b, &c] {
        let info = status.servers.iter().find(|s| s.id == m.id()).unwrap();
        assert!(info.grpc.starts_with("127.0.0.1:1700"), "{info:?}");
    }
    // Held for a few lease periods: still exactly one, the same one.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(masters(&[&a, &b, &c]), vec![first.clone()]);

    // The master leaves gracefully: its lease is revoked, another is elected at once.
    let mut rest: Vec<Member> = Vec::new();
    for m in [a, b, c] {
        if m.id() == first {
            m.leave().await;
        } else {
            rest.push(m);
        }
    }
    let handover = until(
        "a new master after a graceful leave",
        Duration::from_secs(5),
        async || masters(&[&rest[0], &rest[1]]).len() == 1,
    )
    .await;
    let status = ClusterStatus::read(&cfg).await.unwrap();
    assert_eq!(status.servers.len(), 2);
    let second = masters(&[&rest[0], &rest[1]]).remove(0);
    assert_eq!(status.master.as_deref(), Some(second.as_str()));
    println!("graceful leave: new master after {handover:?}");

    // The new master dies without leaving (dropped, as a crash): etcd ends its lease after
    // the TTL and the last member becomes master.
    let (dead, alive): (Vec<Member>, Vec<Member>) = rest.into_iter().partition(|m| m.is_master());
    let died = Instant::now();
    drop(dead);
    until(
        "the dead master's key gone and a new master",
        Duration::from_secs(10),
        async || alive[0].is_master(),
    )
    .await;
    let took = died.elapsed();
    let status = ClusterStatus::read(&cfg).await.unwrap();
    assert_eq!(status.servers.len(), 1, "{status:?}");
    assert_eq!(status.master.as_deref(), Some(alive[0].id().as_str()));
    assert!(
        took >= Duration::from_millis(1000),
        "a crashed master's lease cannot end at once: {took:?}"
    );
    println!("crashed master: successor after {took:?} (TTL 2 s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_from_etcd_stops_serving_before_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(dir.path());
    let etcd_addr: SocketAddr = etcd.url().trim_start_matches("http://").parse().unwrap();
    let link = Link::start(etcd_addr).await;
    let ttl = 3;
    let cut_cfg = config(format!("http://{}", link.addr()), ttl);
    let direct = config(etcd.url(), ttl);
    let (m, fence) = join(&cut_cfg, 1).await;
    let first_id = m.id();
    let (watcher, _) = join(&direct, 2).await;
    // Let a few keepalives pass so the fence has its steady-state window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(fence.serving());

    let cut_at = Instant::now();
    link.cut();
    // Watch, through an uncut connection, for the moment etcd deletes the member's key
    // (its lease ended), and meanwhile for the moment the member stops serving.
    let mut stopped_serving: Option<Duration> = None;
    let key_gone: Duration;
    loop {
        if stopped_serving.is_none() && !fence.serving() {
            stopped_serving = Some(cut_at.elapsed());
        }
        let st = ClusterStatus::read(&direct).await.unwrap();
        if !st.servers.iter().any(|s| s.id == first_id) {
            key_gone = cut_at.elapsed();
            // A member cut off cannot be master either.
            assert!(!m.is_master());
            assert_eq!(st.master.as_deref(), Some(watcher.id().as_str()));
            break;
        }
        assert!(
            cut_at.elapsed() < Duration::from_secs(20),
            "the lease never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stopped = stopped_serving.expect("the member still served when its lease ended");
    assert!(!fence.serving());
    println!(
        "cut at 0: member stopped serving at {stopped:?}, etcd ended its lease at {key_gone:?} (TTL {ttl} s)"
    );
    assert!(
        stopped + Duration::from_millis(500) <= key_gone,
        "the fence must close well before the lease ends: {stopped:?} vs {key_gone:?}"
    );

    // The link returns: etcd tells the member its lease is gone; it joins as a new member.
    link.restore();
    until(
        "the member serving again",
        Duration::from_secs(15),
        async || fence.serving(),
    )
    .await;
    assert_ne!(m.id(), first_id, "a new session is a new member id");
    let st = ClusterStatus::read(&direct).await.unwrap();
    assert!(st.servers.iter().any(|s| s.id == m.id()), "{st:?}");
    let stats = m.stats();
    assert_eq!(stats.sessions, 2, "{stats:?}");
    assert_eq!(stats.leases_lost, 1, "{stats:?}");
    assert!(stats.keepalive_failures >= 1, "{stats:?}");
}
