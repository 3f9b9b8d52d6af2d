//! TTL semantics with a hand-moved clock: rounding of TTL/PTTL, lazy expiry on access,
//! active expiry reclaiming keys nobody touches (and writing `DEL` to the AOF), and TTLs
//! surviving a restart as absolute times.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Raw, config, start_with_clock};
use speedlayer_server::resp::ManualClock;
use speedlayer_server::resp::frame::Frame;

const T0: i64 = 1_795_000_000_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_counts_down_and_key_expires_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock(config(dir.path()), clock.clone()).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD 20261122 V0042\r\n", b":1\r\n");
    c.roundtrip(b"EXPIRE 20261122 604800\r\n", b":1\r\n");
    c.roundtrip(b"TTL 20261122\r\n", b":604800\r\n");
    c.roundtrip(b"PTTL 20261122\r\n", b":604800000\r\n");
    c.roundtrip(
        b"EXPIRETIME 20261122\r\n",
        format!(":{}\r\n", (T0 + 604_800_000) / 1000).as_bytes(),
    );
    clock.advance(604_800_000 - 1_499);
    c.roundtrip(b"TTL 20261122\r\n", b":1\r\n"); // 1.499 s rounds to 1
    c.roundtrip(b"PTTL 20261122\r\n", b":1499\r\n");
    clock.advance(999);
    c.roundtrip(b"TTL 20261122\r\n", b":1\r\n"); // 0.5 s rounds up
    // SADD keeps the TTL.
    c.roundtrip(b"SADD 20261122 V0043\r\n", b":1\r\n");
    c.roundtrip(b"PTTL 20261122\r\n", b":500\r\n");
    clock.advance(500);
    c.roundtrip(b"TTL 20261122\r\n", b":-2\r\n");
    c.roundtrip(b"SISMEMBER 20261122 V0042\r\n", b":0\r\n");
    c.roundtrip(b"EXISTS 20261122\r\n", b":0\r\n");
    // A new SADD after expiry starts a fresh key without TTL.
    c.roundtrip(b"SADD 20261122 V0001\r\n", b":1\r\n");
    c.roundtrip(b"TTL 20261122\r\n", b":-1\r\n");
    c.roundtrip(b"SCARD 20261122\r\n", b":1\r\n");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn active_expiry_reclaims_untouched_keys_and_logs_del() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let mut cfg = config(dir.path());
    cfg.hz = 100;
    let h = start_with_clock(cfg, clock.clone()).await;
    let mut c = Raw::connect(h.local_addr());
    let mut req = Vec::new();
    for i in 0..2000 {
        req.extend_from_slice(
            format!("SADD k{i} m\r\nPEXPIRE k{i} {}\r\n", 1000 + i % 2).as_bytes(),
        );
    }
    req.extend_from_slice(b"SADD forever m\r\n");
    c.send(&req);
    for _ in 0..4001 {
        c.expect(b":1\r\n");
    }
    c.roundtrip(b"DBSIZE\r\n", b":2001\r\n");
    clock.advance(1_001);
    // Nobody touches the keys: only the active loop can bring DBSIZE down.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if c.cmd(&[b"DBSIZE"]) == Frame::Integer(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "active expiry did not reclaim the keys"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Frame::Bulk(info) = c.cmd(&[b"INFO", b"stats"]) else {
        panic!()
    };
    assert!(String::from_utf8_lossy(&info).contains("expired_keys:2000\r\n"));
    // Deletions of expired keys reach the AOF as DEL.
    let aof = dir.path().join("appendonly.aof");
    loop {
        let text = std::fs::read(&aof).unwrap();
        if text.windows(9).filter(|w| w == b"$3\r\nDEL\r\n").count() == 2000 {
            break;
        }
        assert!(Instant::now() < deadline, "no DEL in the AOF");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ttl_survives_restart_as_absolute_time() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(T0));
    let h = start_with_clock(config(dir.path()), clock.clone()).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD a m\r\nEXPIRE a 100\r\n", b":1\r\n:1\r\n");
    c.roundtrip(b"SADD b m\r\nEXPIRE b 10\r\n", b":1\r\n:1\r\n");
    drop(c);
    h.shutdown().await.unwrap();
    // 60 s pass while the server is down.
    clock.advance(60_000);
    let h = start_with_clock(config(dir.path()), clock.clone()).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"TTL a\r\n", b":40\r\n");
    c.roundtrip(b"TTL b\r\n", b":-2\r\n");
    h.shutdown().await.unwrap();
}

/// A clock that jumps a second forward every time it is read, so that time visibly passes
/// between the commands of one EXEC.
#[derive(Debug)]
struct TickingClock(std::sync::atomic::AtomicI64);

impl speedlayer_server::resp::Clock for TickingClock {
    fn now_ms(&self) -> i64 {
        self.0.fetch_add(1_000, std::sync::atomic::Ordering::SeqCst)
    }
}

/// Redis 7.0 freezes, inside EXEC, only the time that decides whether a key has expired;
/// EXPIRE's base and TTL/PTTL read the running clock. Verified against redis-server 7.0.15
/// (with `enable-debug-command yes`): `SADD k2 a`, `MULTI`, `PEXPIRE k2 100`,
/// `DEBUG SLEEP 0.2`, `PTTL k2`, `TTL k2`, `EXISTS k2`, `EXEC` replies `1 OK 0 0 1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_freezes_expiry_but_not_ttl_like_redis() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(TickingClock(std::sync::atomic::AtomicI64::new(T0)));
    let h = start_with_clock(config(dir.path()), clock).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k2 a\r\n", b":1\r\n");
    c.roundtrip(b"MULTI\r\n", b"+OK\r\n");
    for cmd in ["PEXPIRE k2 100", "PTTL k2", "TTL k2", "EXISTS k2"] {
        c.roundtrip(format!("{cmd}\r\n").as_bytes(), b"+QUEUED\r\n");
    }
    assert_eq!(
        c.cmd(&[b"EXEC"]),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Integer(0),
            Frame::Integer(0),
            Frame::Integer(1),
        ])
    );
    // After EXEC the running clock decides: the key is gone.
    c.roundtrip(b"EXISTS k2\r\n", b":0\r\n");
    h.shutdown().await.unwrap();
}
