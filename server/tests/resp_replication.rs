//! Replication as a Redis master (`server/docs/replication.md`), with a stock Debian
//! `redis-server --replicaof` our address as the replica: a full sync (PSYNC, our RDB, the
//! stream), staying in sync under a pipelined write load from several clients (sets,
//! expiries, transactions, SPOP, SMOVE, keys expiring on the master), the same SMEMBERS
//! and expiry times on both, WAIT, ROLE and INFO replication; then a partial resync after
//! a short disconnect, within the backlog.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{Raw, RealRedis, State, config, state};
use speedlayer_server::resp::frame::Frame;

fn info_field(c: &mut Raw, section: &[u8], field: &str) -> Option<String> {
    let text = match c.cmd(&[b"INFO", section]) {
        Frame::Bulk(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
}

/// Waits until the replica's link is up and it applied everything we streamed.
fn wait_in_sync(ours: &mut Raw, replica: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ours_off = info_field(ours, b"replication", "master_repl_offset");
        let up = info_field(replica, b"replication", "master_link_status");
        let theirs = info_field(replica, b"replication", "master_repl_offset");
        if up.as_deref() == Some("up") && ours_off.is_some() && ours_off == theirs {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "replica not in sync: link {up:?}, offsets ours {ours_off:?} replica {theirs:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The replica's state is ours; the first differing keys otherwise.
fn assert_same(replica: &State, ours: &State) {
    let r: std::collections::BTreeMap<_, _> = replica.iter().map(|(k, m, t)| (k, (m, t))).collect();
    let o: std::collections::BTreeMap<_, _> = ours.iter().map(|(k, m, t)| (k, (m, t))).collect();
    let diff: Vec<String> = r
        .keys()
        .chain(o.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|k| r.get(*k) != o.get(*k))
        .take(5)
        .map(|k| {
            format!(
                "{}: replica {:?} ours {:?}",
                String::from_utf8_lossy(k),
                r.get(*k),
                o.get(*k)
            )
        })
        .collect();
    assert!(diff.is_empty(), "replica differs: {diff:#?}");
}

/// A pipelined load of `n` rounds on `c`: SADD, SREM, expiries, SMOVE, SPOP, DEL, *STORE
/// and MULTI/EXEC, replies read back.
fn load(c: &mut Raw, tag: &str, n: usize) {
    let mut req = Vec::new();
    let mut replies = 0;
    for i in 0..n {
        let k = format!("{tag}:{}", i % 50);
        let cmds: Vec<Vec<String>> = vec![
            vec![
                "SADD".into(),
                k.clone(),
                format!("V{i}"),
                format!("{}", i % 7),
            ],
            vec!["SREM".into(), k.clone(), format!("V{}", i / 2)],
            vec!["PEXPIRE".into(), k.clone(), format!("{}", 600_000 + i)],
            vec![
                "SMOVE".into(),
                k.clone(),
                format!("{tag}:moved"),
                format!("V{i}"),
            ],
            vec![
                "SUNIONSTORE".into(),
                format!("{tag}:union"),
                k.clone(),
                format!("{tag}:moved"),
            ],
        ];
        for cmd in &cmds {
            let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
            req.extend(common::encode(&args));
            replies += 1;
        }
        if i % 10 == 0 {
            for cmd in [
                vec!["MULTI".to_string()],
                vec!["SADD".into(), format!("{tag}:tx"), format!("T{i}")],
                vec!["SPOP".into(), k.clone()],
                vec!["PERSIST".into(), k.clone()],
                vec!["EXEC".into()],
            ] {
                let args: Vec<&[u8]> = cmd.iter().map(|s| s.as_bytes()).collect();
                req.extend(common::encode(&args));
                replies += 1;
            }
        }
        if i % 25 == 0 {
            // A key that expires on the master: the replica must see it go (DEL).
            let gone = format!("{tag}:short:{i}");
            req.extend(common::encode(&[b"SADD", gone.as_bytes(), b"x"]));
            req.extend(common::encode(&[b"PEXPIRE", gone.as_bytes(), b"30"]));
            replies += 2;
        }
    }
    c.send(&req);
    for _ in 0..replies {
        let f = c.frame();
        assert!(!matches!(f, Frame::Error(_)), "{f:?}");
    }
}

#[test]
fn a_redis_replica_full_syncs_stays_in_sync_under_load_and_resyncs_partially() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = rt.block_on(common::start(config(dir.path())));
    let addr = ours.local_addr();
    let mut c = Raw::connect(addr);
    // Before any replica: WAIT has nobody to wait for.
    assert_eq!(c.cmd(&[b"WAIT", b"1", b"100"]), Frame::Integer(0));
    // State before the sync: it must arrive in the RDB.
    load(&mut c, "pre", 300);
    let mut ints: Vec<Vec<u8>> = vec![b"SADD".to_vec(), b"ints".to_vec()];
    ints.extend((0..100).map(|i| (i * 3).to_string().into_bytes()));
    let args: Vec<&[u8]> = ints.iter().map(Vec::as_slice).collect();
    assert_eq!(c.cmd(&args), Frame::Integer(100));

    let replica_dir = tempfile::tempdir().unwrap();
    let port = addr.port().to_string();
    let redis = RealRedis::start(&[
        "--dir",
        replica_dir.path().to_str().unwrap(),
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let mut r = Raw::connect(redis.addr);
    wait_in_sync(&mut c, &mut r);
    assert_eq!(
        info_field(&mut c, b"stats", "sync_full").as_deref(),
        Some("1")
    );

    // Load from three clients at once while the replica follows.
    std::thread::scope(|s| {
        for tag in ["a", "b", "c"] {
            s.spawn(move || {
                let mut w = Raw::connect(addr);
                load(&mut w, tag, 400);
            });
        }
    });
    std::thread::sleep(Duration::from_millis(100)); // let the short keys expire
    let mut probe = Raw::connect(addr);
    for i in (0..400).step_by(25) {
        let k = format!("a:short:{i}");
        assert_eq!(probe.cmd(&[b"EXISTS", k.as_bytes()]), Frame::Integer(0));
    }
    assert_eq!(c.cmd(&[b"SADD", b"last", b"write"]), Frame::Integer(1));
    assert_eq!(c.cmd(&[b"WAIT", b"1", b"5000"]), Frame::Integer(1));
    wait_in_sync(&mut c, &mut r);
    let ours_state = state(&mut c);
    assert!(ours_state.len() > 100, "{}", ours_state.len());
    assert_same(&state(&mut r), &ours_state);

    // ROLE and INFO replication describe the replica.
    let Frame::Array(role) = c.cmd(&[b"ROLE"]) else {
        panic!()
    };
    assert_eq!(role[0], Frame::Bulk("master".into()));
    let Frame::Array(replicas) = &role[2] else {
        panic!()
    };
    assert_eq!(replicas.len(), 1);
    assert_eq!(
        info_field(&mut c, b"replication", "connected_slaves").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut r, b"replication", "master_replid"),
        info_field(&mut c, b"replication", "master_replid")
    );

    assert_eq!(
        info_field(&mut c, b"stats", "sync_full").as_deref(),
        Some("1"),
        "after the load"
    );
    // A short disconnect: the replica comes back with PSYNC and continues from the backlog.
    assert_eq!(
        r.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"master"]),
        Frame::Integer(1)
    );
    load(&mut c, "during", 50);
    std::thread::sleep(Duration::from_millis(100)); // let the short keys expire
    assert_eq!(c.cmd(&[b"WAIT", b"1", b"5000"]), Frame::Integer(1));
    wait_in_sync(&mut c, &mut r);
    assert_same(&state(&mut r), &state(&mut c));
    assert_eq!(
        info_field(&mut c, b"stats", "sync_full").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut c, b"stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    // Our side drops the link (CLIENT KILL TYPE replica): again a partial resync.
    assert_eq!(
        c.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"replica"]),
        Frame::Integer(1)
    );
    load(&mut c, "killed", 20);
    assert_eq!(c.cmd(&[b"WAIT", b"1", b"5000"]), Frame::Integer(1));
    wait_in_sync(&mut c, &mut r);
    assert_eq!(
        info_field(&mut c, b"stats", "sync_partial_ok").as_deref(),
        Some("2")
    );
    drop(redis);
    rt.block_on(ours.shutdown()).unwrap();
}

/// Waits until our replica `c` applied everything its master `m` streamed.
/// Lets the 30 ms keys of `load(_, tag, n)` expire, then touches each on the master so
/// that it deletes them now and the DELs are in the stream before a comparison (otherwise
/// reading the master's state would expire one and race the replica's read).
fn expire_short_keys(m: &mut Raw, tag: &str, n: usize) {
    std::thread::sleep(Duration::from_millis(100));
    for i in (0..n).step_by(25) {
        let k = format!("{tag}:short:{i}");
        assert_eq!(m.cmd(&[b"EXISTS", k.as_bytes()]), Frame::Integer(0));
    }
}

fn wait_replica_in_sync(m: &mut Raw, c: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let theirs = info_field(m, b"replication", "master_repl_offset");
        let up = info_field(c, b"replication", "master_link_status");
        let ours = info_field(c, b"replication", "slave_repl_offset");
        if up.as_deref() == Some("up") && theirs.is_some() && theirs == ours {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not in sync: link {up:?}, master {theirs:?}, replica {ours:?}, error {:?}",
            info_field(c, b"replication", "master_link_error")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// REPLICAOF: ours as a read-only replica of a stock redis-server (full sync of plain,
/// intset and large sets with expiry times, then the stream under load, keys expiring on
/// the master removed by its DELs, a partial resync after the master dropped the link),
/// a second one of ours replicating from the first, a
/// master that starts holding a string stopping the link with the reason in
/// `master_link_error`, and REPLICAOF NO ONE making it writable again.
#[test]
fn ours_replicates_from_redis_and_from_ours_and_refuses_other_types() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut m = Raw::connect(redis.addr);
    load(&mut m, "pre", 200);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = rt.block_on(common::start(config(dir_a.path())));
    let b = rt.block_on(common::start(config(dir_b.path())));
    let mut ca = Raw::connect(a.local_addr());
    let mut cb = Raw::connect(b.local_addr());
    let port = redis.addr.port().to_string();
    assert_eq!(
        ca.cmd(&[b"REPLICAOF", b"127.0.0.1", port.as_bytes()]),
        Frame::Simple("OK".into())
    );
    wait_replica_in_sync(&mut m, &mut ca);
    assert_same(&state(&mut ca), &state(&mut m));

    // Chained: a replica of ours that is itself a replica.
    let port_a = a.local_addr().port().to_string();
    assert_eq!(
        cb.cmd(&[b"REPLICAOF", b"127.0.0.1", port_a.as_bytes()]),
        Frame::Simple("OK".into())
    );
    wait_replica_in_sync(&mut ca, &mut cb);

    load(&mut m, "live", 300);
    std::thread::sleep(Duration::from_millis(100)); // the short keys expire on the master
    assert_eq!(m.cmd(&[b"WAIT", b"1", b"5000"]), Frame::Integer(1));
    wait_replica_in_sync(&mut m, &mut ca);
    wait_replica_in_sync(&mut ca, &mut cb);
    let want = state(&mut m);
    assert_same(&state(&mut ca), &want);
    assert_same(&state(&mut cb), &want);
    assert_eq!(
        ca.cmd(&[b"SADD", b"x", b"y"]),
        Frame::Error("READONLY You can't write against a read only replica.".into())
    );
    let Frame::Array(role) = ca.cmd(&[b"ROLE"]) else {
        panic!()
    };
    assert_eq!(role[0], Frame::Bulk("slave".into()));
    assert_eq!(role[3], Frame::Bulk("connected".into()));

    // A short disconnect: we come back with PSYNC and continue from the master's backlog.
    assert_eq!(
        m.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"replica"]),
        Frame::Integer(1)
    );
    load(&mut m, "after", 30);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(m.cmd(&[b"WAIT", b"1", b"5000"]), Frame::Integer(1));
    wait_replica_in_sync(&mut m, &mut ca);
    assert_same(&state(&mut ca), &state(&mut m));
    assert_eq!(
        info_field(&mut m, b"stats", "sync_partial_ok").as_deref(),
        Some("1")
    );
    assert_eq!(
        info_field(&mut m, b"stats", "sync_full").as_deref(),
        Some("1")
    );

    // The master starts holding a string: the link stops and says why.
    assert_eq!(m.cmd(&[b"SET", b"str", b"v"]), Frame::Simple("OK".into()));
    let deadline = Instant::now() + Duration::from_secs(20);
    let error = loop {
        if let Some(e) = info_field(&mut ca, b"replication", "master_link_error") {
            break e;
        }
        assert!(Instant::now() < deadline, "no master_link_error");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        error.contains("SET") || error.contains("a string"),
        "{error}"
    );
    assert_eq!(
        info_field(&mut ca, b"replication", "master_link_status").as_deref(),
        Some("down")
    );
    // Reconnecting, the full sync's RDB holds the string: refused, with the key named.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let e = info_field(&mut ca, b"replication", "master_link_error").unwrap_or_default();
        if e.contains("a string") {
            assert!(e.contains("\"str\""), "{e}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "RDB with a string not refused: {e}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Promoted: writable, a master again, data kept.
    assert_eq!(
        ca.cmd(&[b"REPLICAOF", b"NO", b"ONE"]),
        Frame::Simple("OK".into())
    );
    assert_eq!(ca.cmd(&[b"SADD", b"x", b"y"]), Frame::Integer(1));
    let Frame::Array(role) = ca.cmd(&[b"ROLE"]) else {
        panic!()
    };
    assert_eq!(role[0], Frame::Bulk("master".into()));
    assert!(state(&mut ca).len() > 50);
    rt.block_on(b.shutdown()).unwrap();
    rt.block_on(a.shutdown()).unwrap();
}

/// The `replicaof` setting (`--replicaof HOST:PORT`): a service that starts as a replica.
#[test]
fn the_replicaof_setting_starts_as_a_replica() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut m = Raw::connect(redis.addr);
    load(&mut m, "boot", 20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.replicaof = Some(("127.0.0.1".into(), redis.addr.port()));
    let ours = rt.block_on(common::start(cfg));
    let mut c = Raw::connect(ours.local_addr());
    wait_replica_in_sync(&mut m, &mut c);
    assert_same(&state(&mut c), &state(&mut m));
    assert_eq!(
        c.cmd(&[b"SADD", b"x", b"y"]),
        Frame::Error("READONLY You can't write against a read only replica.".into())
    );
    rt.block_on(ours.shutdown()).unwrap();
}

/// Runs `tests/clients/redis_py_replication.py` against a master and its replica.
fn redis_py_replication(master: u16, replica: u16) -> Result<String, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/redis_py_replication.py"
    );
    let out = std::process::Command::new("python3")
        .args([
            script,
            "127.0.0.1",
            &master.to_string(),
            &replica.to_string(),
        ])
        .output()
        .expect("python3 runs (make test installs it with redis-py)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && stdout.starts_with("OK redis-py") {
        Ok(stdout)
    } else {
        Err(format!(
            "{}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// redis-py, unchanged, with a master and a replica: WAIT, reads from the replica, ROLE,
/// READONLY as `ReadOnlyError`, INFO replication, a key the master expires. The script is
/// first run against redis-server master and replica (its expectations are the client's
/// real behaviour), then against a master and a replica of ours.
#[test]
fn redis_py_reads_from_our_replica_after_wait() {
    let dir = tempfile::tempdir().unwrap();
    let master = RealRedis::start(&["--dir", dir.path().to_str().unwrap()]);
    let port = master.addr.port().to_string();
    let dir2 = tempfile::tempdir().unwrap();
    let replica = RealRedis::start(&[
        "--dir",
        dir2.path().to_str().unwrap(),
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let mut r = Raw::connect(replica.addr);
    let deadline = Instant::now() + Duration::from_secs(20);
    while info_field(&mut r, b"replication", "master_link_status").as_deref() != Some("up") {
        assert!(Instant::now() < deadline, "redis replica never up");
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(e) = redis_py_replication(master.addr.port(), replica.addr.port()) {
        panic!("the script does not hold against redis-server itself: {e}");
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = rt.block_on(common::start(config(da.path())));
    let mut cfg = config(db.path());
    cfg.replicaof = Some(("127.0.0.1".into(), a.local_addr().port()));
    let b = rt.block_on(common::start(cfg));
    let (mut ca, mut cb) = (Raw::connect(a.local_addr()), Raw::connect(b.local_addr()));
    wait_replica_in_sync(&mut ca, &mut cb);
    if let Err(e) = redis_py_replication(a.local_addr().port(), b.local_addr().port()) {
        panic!("redis-py against our master and replica: {e}");
    }
    rt.block_on(b.shutdown()).unwrap();
    rt.block_on(a.shutdown()).unwrap();
}

/// `masterauth` / `masteruser`: ours replicates from a redis-server with `requirepass`,
/// sending AUTH after PING as a Redis replica does; a wrong password stops the link with
/// the master's refusal in `master_link_error`; `CONFIG SET masteruser/masterauth` applies
/// to the next link (`AUTH <user> <password>`).
#[test]
fn masterauth_authenticates_our_link_to_a_redis_master_with_requirepass() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut m = Raw::connect(redis.addr);
    assert_eq!(
        m.cmd(&[b"CONFIG", b"SET", b"requirepass", b"s3cret"]),
        Frame::Simple("OK".into())
    );
    assert_eq!(m.cmd(&[b"AUTH", b"s3cret"]), Frame::Simple("OK".into()));
    load(&mut m, "auth", 20);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.replicaof = Some(("127.0.0.1".into(), redis.addr.port()));
    cfg.masterauth = Some("wrong".into());
    let ours = rt.block_on(common::start(cfg));
    let mut c = Raw::connect(ours.local_addr());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let err = info_field(&mut c, b"replication", "master_link_error");
        if let Some(e) = err {
            assert!(e.starts_with("master refused AUTH: -WRONGPASS"), "{e}");
            break;
        }
        assert!(Instant::now() < deadline, "no AUTH refusal reported");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        info_field(&mut c, b"replication", "master_link_status").as_deref(),
        Some("down")
    );
    // The password alone (AUTH <password>).
    assert_eq!(
        c.cmd(&[b"CONFIG", b"SET", b"masterauth", b"s3cret"]),
        Frame::Simple("OK".into())
    );
    wait_replica_in_sync(&mut m, &mut c);
    assert_same(&state(&mut c), &state(&mut m));
    // User and password (AUTH default <password>), on a new link.
    assert_eq!(
        c.cmd(&[b"CONFIG", b"SET", b"masteruser", b"default"]),
        Frame::Simple("OK".into())
    );
    assert_eq!(
        c.cmd(&[b"REPLICAOF", b"NO", b"ONE"]),
        Frame::Simple("OK".into())
    );
    let port = redis.addr.port().to_string();
    assert_eq!(
        c.cmd(&[b"REPLICAOF", b"127.0.0.1", port.as_bytes()]),
        Frame::Simple("OK".into())
    );
    load(&mut m, "user", 10);
    wait_replica_in_sync(&mut m, &mut c);
    assert_same(&state(&mut c), &state(&mut m));
    assert_eq!(
        c.cmd(&[b"CONFIG", b"GET", b"masteruser"]),
        Frame::Array(vec![
            Frame::Bulk("masteruser".into()),
            Frame::Bulk("default".into())
        ])
    );
    rt.block_on(ours.shutdown()).unwrap();
}

/// The replica's position in its master's stream survives a clean restart, as Redis keeps
/// `repl-id`/`repl-offset` in its RDB: our replica (the real binary) stopped with SIGTERM
/// and started again asks `PSYNC <master replid> <offset + 1>` and continues partially
/// (the master counts `sync_partial_ok`, not another `sync_full`), with every write made
/// meanwhile. After a kill -9 following more applied stream, the recorded position is
/// stale, so it is not used: a full sync, and the same data.
#[test]
fn a_restarted_replica_resumes_with_a_partial_resync() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dm = tempfile::tempdir().unwrap();
    let master = rt.block_on(common::start(config(dm.path())));
    let mut m = Raw::connect(master.local_addr());
    load(&mut m, "before", 50);
    let dr = tempfile::tempdir().unwrap();
    let data = dr.path().join("data");
    let flag = format!("127.0.0.1:{}", master.local_addr().port());
    let stat = |m: &mut Raw, f: &str| info_field(m, b"stats", f).unwrap_or_default();

    let r = common::Bin::start(&data, &["--replicaof", &flag]);
    let mut c = Raw::connect(r.addr);
    wait_replica_in_sync(&mut m, &mut c);
    assert_eq!(stat(&mut m, "sync_full"), "1");
    assert!(r.stop(), "clean shutdown");

    load(&mut m, "while-down", 30);
    let r = common::Bin::start(&data, &["--replicaof", &flag]);
    let mut c = Raw::connect(r.addr);
    wait_replica_in_sync(&mut m, &mut c);
    assert_eq!(stat(&mut m, "sync_partial_ok"), "1", "resumed partially");
    assert_eq!(stat(&mut m, "sync_full"), "1", "no second full sync");
    expire_short_keys(&mut m, "while-down", 30);
    wait_replica_in_sync(&mut m, &mut c);
    assert_same(&state(&mut c), &state(&mut m));

    // More of the stream applied (into the AOF after the snapshot), then a crash: the
    // snapshot's position no longer matches the keys, so the restart syncs in full.
    load(&mut m, "after", 30);
    expire_short_keys(&mut m, "after", 30);
    wait_replica_in_sync(&mut m, &mut c);
    r.kill9();
    load(&mut m, "after-crash", 10);
    let r = common::Bin::start(&data, &["--replicaof", &flag]);
    let mut c = Raw::connect(r.addr);
    wait_replica_in_sync(&mut m, &mut c);
    assert_eq!(
        stat(&mut m, "sync_full"),
        "2",
        "a stale position is not used"
    );
    assert_eq!(stat(&mut m, "sync_partial_ok"), "1");
    expire_short_keys(&mut m, "after-crash", 10);
    wait_replica_in_sync(&mut m, &mut c);
    assert_same(&state(&mut c), &state(&mut m));
    assert!(r.stop());
    rt.block_on(master.shutdown()).unwrap();
}
