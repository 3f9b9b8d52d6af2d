//! Persistence through the real binary: AOF replay after kill -9, the shutdown snapshot,
//! nothing acknowledged lost under `appendfsync always`, a torn tail repaired with a log
//! line, a corrupted middle refused with a clear message, and automatic AOF rewrite.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Bin, Raw};
use speedlayer_server::resp::frame::Frame;

/// Members and TTL (seconds) of every key, as seen through the protocol.
fn state(addr: std::net::SocketAddr) -> Vec<(String, BTreeSet<String>, i64)> {
    let mut c = Raw::connect(addr);
    let Frame::Array(keys) = c.cmd(&[b"KEYS", b"*"]) else {
        panic!()
    };
    let mut out = Vec::new();
    for k in keys {
        let Frame::Bulk(k) = k else { panic!() };
        let Frame::Array(ms) = c.cmd(&[b"SMEMBERS", &k]) else {
            panic!()
        };
        let ms = ms
            .into_iter()
            .map(|m| match m {
                Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
                _ => panic!(),
            })
            .collect();
        let Frame::Integer(ttl) = c.cmd(&[b"TTL", &k]) else {
            panic!()
        };
        out.push((String::from_utf8(k.to_vec()).unwrap(), ms, ttl));
    }
    out.sort();
    out
}

fn assert_same_state(a: &[(String, BTreeSet<String>, i64)], b: &[(String, BTreeSet<String>, i64)]) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.0, &x.1), (&y.0, &y.1));
        // TTLs are absolute on disk; a restart only lets time pass.
        assert!(
            (x.2 == -1 && y.2 == -1) || (x.2 - y.2).abs() <= 5,
            "ttl {x:?} vs {y:?}"
        );
    }
}

fn workload(addr: std::net::SocketAddr) {
    let mut c = Raw::connect(addr);
    let script = "SADD 20261122 V0042 V0007 V0100\r\nEXPIRE 20261122 604800\r\nSADD 20261121 V0001\r\n\
        PEXPIREAT 20261121 33177600000000\r\nSADD plain a b c d e\r\nSREM plain a\r\nSPOP plain 1\r\n\
        SADD gone x\r\nEXPIRE gone 0\r\nSADD tmp q\r\nRENAME tmp renamed\r\nSADD s2 c d z\r\n\
        SINTERSTORE inter plain s2\r\nSMOVE s2 moved z\r\nSADD p y\r\nEXPIRE p 100\r\nPERSIST p\r\n\
        SADD dead 1\r\nDEL dead\r\n";
    c.send(script.as_bytes());
    for _ in 0..script.lines().count() {
        let _ = c.frame();
    }
}

#[test]
fn aof_replay_after_kill9_restores_sets_and_ttls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Bin::start(&data, &["--appendfsync", "always"]);
    workload(s.addr);
    let before = state(s.addr);
    assert!(before.iter().any(|k| k.0 == "20261122" && k.2 > 604000));
    s.kill9();
    assert!(
        !data.join("resp/dump.snap").exists(),
        "kill -9 must not have written a snapshot"
    );
    let s = Bin::start(&data, &[]);
    assert_same_state(&before, &state(s.addr));
    assert!(s.stop());
}

/// `everysec` and `no` only decide when the AOF is fsynced (what an OS crash can lose);
/// every acknowledged command was written to the file first, so killing the process loses
/// nothing in any mode. INFO reports the mode in use.
#[test]
fn every_appendfsync_mode_survives_a_process_kill() {
    for mode in ["everysec", "no"] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let s = Bin::start(&data, &["--appendfsync", mode]);
        let mut c = Raw::connect(s.addr);
        let Frame::Bulk(info) = c.cmd(&[b"INFO", b"persistence"]) else {
            panic!("INFO is a bulk string")
        };
        let info = String::from_utf8(info.to_vec()).unwrap();
        assert!(info.contains(&format!("appendfsync:{mode}\r\n")), "{info}");
        workload(s.addr);
        let before = state(s.addr);
        s.kill9();
        let s = Bin::start(&data, &[]);
        assert_same_state(&before, &state(s.addr));
        assert!(s.stop());
    }
}

#[test]
fn snapshot_on_clean_shutdown_then_aof_on_top() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Bin::start(&data, &[]);
    workload(s.addr);
    let before = state(s.addr);
    assert!(s.stop(), "SIGTERM exits 0");
    assert!(data.join("resp/dump.snap").exists());
    let aof = std::fs::read(data.join("resp/appendonly.aof")).unwrap();
    assert!(
        aof.starts_with(b"SLAOF 1 ") && aof.ends_with(b" incr\r\n"),
        "fresh incremental AOF"
    );

    // Restore from the snapshot, write more, crash, restore snapshot + AOF.
    let s = Bin::start(&data, &["--appendfsync", "always"]);
    assert_same_state(&before, &state(s.addr));
    let mut c = Raw::connect(s.addr);
    c.roundtrip(b"SADD 20261122 V0999\r\n", b":1\r\n");
    c.roundtrip(b"DEL renamed\r\n", b":1\r\n");
    let after = state(s.addr);
    s.kill9();
    let s = Bin::start(&data, &[]);
    assert_same_state(&after, &state(s.addr));
    assert!(s.stop());
}

#[test]
fn kill9_with_appendfsync_always_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Bin::start(&data, &["--appendfsync", "always"]);
    let addr = s.addr;
    let (tx, rx) = std::sync::mpsc::channel::<u32>();
    let writer = std::thread::spawn(move || {
        let mut c = Raw::connect(addr);
        for i in 0u32.. {
            if std::io::Write::write_all(&mut c.s, format!("SADD acked m{i}\r\n").as_bytes())
                .is_err()
            {
                return;
            }
            let mut b = [0u8; 4];
            if std::io::Read::read_exact(&mut c.s, &mut b).is_err() || &b != b":1\r\n" {
                return;
            }
            if tx.send(i).is_err() {
                return;
            }
        }
    });
    // Kill once a few hundred writes were acknowledged, while more are in flight.
    let mut acked = Vec::new();
    while acked.len() < 300 {
        acked.push(rx.recv_timeout(Duration::from_secs(30)).unwrap());
    }
    s.kill9();
    writer.join().unwrap();
    acked.extend(rx.try_iter());
    let s = Bin::start(&data, &[]);
    let mut c = Raw::connect(s.addr);
    for i in &acked {
        assert_eq!(
            c.cmd(&[b"SISMEMBER", b"acked", format!("m{i}").as_bytes()]),
            Frame::Integer(1),
            "acknowledged m{i} lost"
        );
    }
    assert!(s.stop());
}

fn aof_path(data: &Path) -> std::path::PathBuf {
    data.join("resp/appendonly.aof")
}

#[test]
fn torn_tail_is_truncated_with_a_log_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Bin::start(&data, &["--appendfsync", "always"]);
    workload(s.addr);
    let before = state(s.addr);
    s.kill9();
    let whole = std::fs::metadata(aof_path(&data)).unwrap().len();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(aof_path(&data))
        .unwrap();
    f.write_all(b"*3\r\n$4\r\nSADD\r\n$8\r\n2026112").unwrap();
    drop(f);
    let s = Bin::start(&data, &[]);
    assert_same_state(&before, &state(s.addr));
    assert!(
        s.stderr()
            .contains("truncating the file to the last whole command"),
        "{}",
        s.stderr()
    );
    assert_eq!(std::fs::metadata(aof_path(&data)).unwrap().len(), whole);
    assert!(s.stop());
}

#[test]
fn corrupted_middle_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Bin::start(&data, &["--appendfsync", "always"]);
    workload(s.addr);
    s.kill9();
    let mut bytes = std::fs::read(aof_path(&data)).unwrap();
    let pos = bytes.windows(6).position(|w| w == b"$4\r\nSR").unwrap();
    bytes[pos] = b'#';
    std::fs::write(aof_path(&data), &bytes).unwrap();
    let err = Bin::try_start(&data, &[])
        .err()
        .expect("must refuse to start");
    assert!(err.contains("is corrupted at byte"), "{err}");
    assert!(err.contains("not a torn tail"), "{err}");
}

#[test]
fn aof_rewrites_when_it_grows_and_still_restores() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Bin::start(
        &data,
        &[
            "--auto-aof-rewrite-min-size",
            "4096",
            "--auto-aof-rewrite-percentage",
            "100",
        ],
    );
    let mut c = Raw::connect(s.addr);
    // Churn: every triple leaves the live state as it was (~11 members) but grows the AOF.
    // Sent as RESP, as the AOF logs it; returns the bytes sent, which is what the AOF would
    // hold without rewrites. Every reply is read, so every command is logged.
    let burst = |c: &mut Raw, from: usize, to: usize| -> usize {
        let mut req = Vec::new();
        for i in from..to {
            let (m, k) = (format!("m{i}"), format!("k{}", i % 10));
            for args in [
                ["SADD", "churn", &m],
                ["SREM", "churn", &m],
                ["SADD", "keep", &k],
            ] {
                req.extend_from_slice(b"*3\r\n");
                for a in args {
                    req.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
                }
            }
        }
        c.send(&req);
        for _ in 0..3 * (to - from) {
            let _ = c.frame();
        }
        req.len()
    };
    let rewrites = |c: &mut Raw| -> (u64, bool) {
        let Frame::Bulk(info) = c.cmd(&[b"INFO", b"persistence"]) else {
            panic!("INFO is a bulk string")
        };
        let info = String::from_utf8(info.to_vec()).unwrap();
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name} in {info}"))
        };
        (field("aof_rewrites"), field("aof_rewrite_in_progress") == 1)
    };
    let wait_for_rewrite = |c: &mut Raw, after: u64| -> u64 {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            match rewrites(c) {
                (n, false) if n > after => return n,
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "no rewrite after the AOF grew, within 20 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    // Past the 4 KiB minimum: a rewrite fires (perhaps mid-burst; the rest of the burst is
    // then appended to the new file and makes its base size).
    let mut written = burst(&mut c, 0, 400);
    let first = wait_for_rewrite(&mut c, 0);
    // Three times as much again: more than doubles any base the first rewrite can leave
    // (at most everything written so far), so growth must trigger another rewrite.
    written += burst(&mut c, 400, 1600);
    wait_for_rewrite(&mut c, first);
    let size = std::fs::metadata(aof_path(&data)).unwrap().len() as usize;
    assert!(
        size < written,
        "the rewrites did not compact: {size} bytes on disk, {written} bytes of commands sent"
    );
    let before = state(s.addr);
    s.kill9();
    let s = Bin::start(&data, &[]);
    assert_same_state(&before, &state(s.addr));
    assert!(s.stop());
}
