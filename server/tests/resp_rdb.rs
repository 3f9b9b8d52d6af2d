//! Redis's RDB format with the real tools (`server/docs/rdb.md`): Debian's
//! `redis-check-rdb` accepts what SAVE writes and `redis-server` loads it to the same sets
//! and expiry times; an RDB written by `redis-server` holding only sets is imported at a
//! first start with the same members and expiry times (plain, intset, LZF-compressed and
//! large sets); one holding another type is refused with a typed error; every one-byte
//! corruption of a real file is an error, never a panic or a silent partial load.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::{Raw, RealRedis, config, state};
use speedlayer_server::error::ServerError;
use speedlayer_server::resp::frame::Frame;
use speedlayer_server::resp::keyspace::{Keyspace, Set};
use speedlayer_server::resp::{ManualClock, RespServer, SystemClock, rdb};

/// A data set exercising every encoding Redis 7.0 writes for sets.
fn populate(c: &mut Raw) {
    let long = vec![b'a'; 200];
    let mut cmds: Vec<Vec<Vec<u8>>> = vec![
        vec![
            b"SADD".to_vec(),
            b"plain".to_vec(),
            b"x".to_vec(),
            b"y".to_vec(),
            long.clone(),
        ],
        vec![
            b"SADD".to_vec(),
            b"bin".to_vec(),
            b"\x00\xff\r\n".to_vec(),
            b"".to_vec(),
        ],
        vec![
            b"SADD".to_vec(),
            b"ints16".to_vec(),
            b"1".to_vec(),
            b"-5".to_vec(),
            b"300".to_vec(),
        ],
        vec![
            b"SADD".to_vec(),
            b"ints32".to_vec(),
            b"70000".to_vec(),
            b"-2".to_vec(),
        ],
        vec![
            b"SADD".to_vec(),
            b"ints64".to_vec(),
            b"9223372036854775807".to_vec(),
            b"-9223372036854775808".to_vec(),
        ],
        vec![
            b"SADD".to_vec(),
            b"notint".to_vec(),
            b"01".to_vec(),
            b"+1".to_vec(),
            b"-0".to_vec(),
        ],
        vec![
            b"PEXPIREAT".to_vec(),
            b"plain".to_vec(),
            b"4102444800123".to_vec(),
        ],
        vec![
            b"PEXPIREAT".to_vec(),
            b"ints16".to_vec(),
            b"4102444800999".to_vec(),
        ],
    ];
    let mut big = vec![b"SADD".to_vec(), b"bigints".to_vec()];
    big.extend((0..1000).map(|i| (i * 7).to_string().into_bytes()));
    cmds.push(big);
    let mut strs = vec![b"SADD".to_vec(), b"bigstrs".to_vec()];
    strs.extend((0..3000).map(|i| format!("V{i:05}-compressible-compressible").into_bytes()));
    cmds.push(strs);
    for cmd in cmds {
        let args: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        let reply = c.cmd(&args);
        assert!(matches!(reply, Frame::Integer(n) if n >= 1), "{reply:?}");
    }
}

fn copy_rdb(from: &Path, to_dir: &Path) {
    std::fs::create_dir_all(to_dir).unwrap();
    std::fs::copy(from, to_dir.join(rdb::RDB_FILE)).unwrap();
}

#[test]
fn what_save_writes_passes_redis_check_rdb_and_loads_into_redis_server() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = rt.block_on(common::start(config(dir.path())));
    let mut c = Raw::connect(ours.local_addr());
    populate(&mut c);
    let Frame::Integer(before) = c.cmd(&[b"LASTSAVE"]) else {
        panic!()
    };
    assert_eq!(c.cmd(&[b"SAVE"]), Frame::Simple("OK".into()));
    let Frame::Integer(after) = c.cmd(&[b"LASTSAVE"]) else {
        panic!()
    };
    assert!(after >= before);
    // SAVE is refused inside MULTI, as Redis's no_multi commands are.
    assert_eq!(c.cmd(&[b"MULTI"]), Frame::Simple("OK".into()));
    assert_eq!(
        c.cmd(&[b"SAVE"]),
        Frame::Error("ERR Command not allowed inside a transaction".into())
    );
    assert!(matches!(c.cmd(&[b"EXEC"]), Frame::Error(e) if e.starts_with("EXECABORT")));
    let ours_state = state(&mut c);
    let file = dir.path().join(rdb::RDB_FILE);

    let check = Command::new("redis-check-rdb").arg(&file).output().unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "redis-check-rdb: {text}");
    assert!(text.contains("RDB looks OK"), "{text}");
    assert!(
        text.contains("keys read") || text.contains("Checksum OK"),
        "{text}"
    );

    let redis_dir = tempfile::tempdir().unwrap();
    copy_rdb(&file, redis_dir.path());
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut r = Raw::connect(redis.addr);
    assert_eq!(state(&mut r), ours_state);
    assert_eq!(
        r.cmd(&[b"OBJECT", b"ENCODING", b"ints16"]),
        Frame::Bulk("intset".into())
    );
    assert_eq!(
        r.cmd(&[b"OBJECT", b"ENCODING", b"ints64"]),
        Frame::Bulk("intset".into())
    );
    assert_eq!(
        r.cmd(&[b"OBJECT", b"ENCODING", b"notint"]),
        Frame::Bulk("hashtable".into())
    );
    rt.block_on(ours.shutdown()).unwrap();
}

#[test]
fn rdb_from_redis_loads_with_members_and_ttls() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut r = Raw::connect(redis.addr);
    populate(&mut r);
    assert_eq!(r.cmd(&[b"SAVE"]), Frame::Simple("OK".into()));
    let redis_state = state(&mut r);

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_rdb(&redis_dir.path().join("dump.rdb"), dir.path());
    let ours = rt.block_on(common::start(config(dir.path())));
    let mut c = Raw::connect(ours.local_addr());
    assert_eq!(state(&mut c), redis_state);
    rt.block_on(ours.shutdown()).unwrap();

    // The import became our own state: it survives a restart without the RDB.
    std::fs::remove_file(dir.path().join(rdb::RDB_FILE)).unwrap();
    let ours = rt.block_on(common::start(config(dir.path())));
    let mut c = Raw::connect(ours.local_addr());
    assert_eq!(state(&mut c), redis_state);
    rt.block_on(ours.shutdown()).unwrap();
}

#[test]
fn an_rdb_holding_other_types_is_refused_with_a_typed_error() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut r = Raw::connect(redis.addr);
    assert_eq!(r.cmd(&[b"SADD", b"s", b"a"]), Frame::Integer(1));
    assert_eq!(
        r.cmd(&[b"HSET", b"car:7", b"speed", b"88"]),
        Frame::Integer(1)
    );
    assert_eq!(r.cmd(&[b"SAVE"]), Frame::Simple("OK".into()));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_rdb(&redis_dir.path().join("dump.rdb"), dir.path());
    let got = rt.block_on(RespServer::start_with_clock(
        config(dir.path()),
        Arc::new(SystemClock),
    ));
    match got {
        Err(ServerError::RdbUnsupported { key, what, .. }) => {
            assert_eq!((key.as_str(), what.as_str()), ("car:7", "a hash"));
        }
        Err(other) => panic!("wrong error: {other}"),
        Ok(_) => panic!("an RDB with a hash was loaded"),
    }
    // Nothing was half-loaded: no AOF was started from it.
    assert!(!dir.path().join("appendonly.aof").exists());
}

#[test]
fn every_one_byte_corruption_of_a_real_rdb_is_an_error() {
    let redis_dir = tempfile::tempdir().unwrap();
    let redis = RealRedis::start(&["--dir", redis_dir.path().to_str().unwrap()]);
    let mut r = Raw::connect(redis.addr);
    assert_eq!(r.cmd(&[b"SADD", b"s", b"a", b"bb"]), Frame::Integer(2));
    assert_eq!(r.cmd(&[b"SADD", b"i", b"1", b"2"]), Frame::Integer(2));
    assert_eq!(
        r.cmd(&[b"PEXPIREAT", b"i", b"4102444800000"]),
        Frame::Integer(1)
    );
    assert_eq!(r.cmd(&[b"SAVE"]), Frame::Simple("OK".into()));
    let good = std::fs::read(redis_dir.path().join("dump.rdb")).unwrap();
    let path = Path::new("dump.rdb");
    let decoded = rdb::decode(&good, path, 0).unwrap();
    assert_eq!(decoded.keys.len(), 2);
    for i in 0..good.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] ^= flip;
            assert!(
                rdb::decode(&bad, path, 0).is_err(),
                "flipping byte {i} with {flip:#04x} went unnoticed"
            );
        }
    }
    for cut in 0..good.len() {
        assert!(rdb::decode(&good[..cut], path, 0).is_err(), "cut at {cut}");
    }
}

/// A key, its members and its expiry.
type Key = (Vec<u8>, BTreeSet<Vec<u8>>, Option<i64>);

#[test]
fn encode_then_decode_is_the_same_keyspace() {
    let clock = Arc::new(ManualClock::new(1_800_000_000_000));
    let mut ks = Keyspace::new(clock);
    let mut plain = Set::new();
    for m in [&b"a"[..], b"", b"\x00\xff", &[b'z'; 70_000]] {
        plain.insert(m).unwrap();
    }
    ks.insert(b"plain", plain, Some(1_800_000_060_000));
    let mut ints = Set::new();
    for m in [&b"-1"[..], b"40000", b"7"] {
        ints.insert(m).unwrap();
    }
    ks.insert(b"ints", ints, None);
    let mut gone = Set::new();
    gone.insert(b"x").unwrap();
    ks.insert(b"gone", gone, Some(1_799_999_999_000));
    let bytes = rdb::encode(&ks, 1_800_000_000, 0);
    let d = rdb::decode(&bytes, Path::new("t.rdb"), 1_800_000_000_000).unwrap();
    assert_eq!(d.expired, 0, "expired keys are not written");
    let mut got: Vec<Key> = d
        .keys
        .into_iter()
        .map(|(k, s, e)| {
            (
                k.to_vec(),
                s.iter().map(|m| m.as_bytes().to_vec()).collect(),
                e,
            )
        })
        .collect();
    got.sort();
    let set = |v: &[&[u8]]| v.iter().map(|m| m.to_vec()).collect::<BTreeSet<_>>();
    assert_eq!(
        got,
        vec![
            (b"ints".to_vec(), set(&[b"-1", b"40000", b"7"]), None),
            (
                b"plain".to_vec(),
                set(&[b"a", b"", b"\x00\xff", &[b'z'; 70_000]]),
                Some(1_800_000_060_000)
            ),
        ]
    );
    // Read later, the key with a minute left has expired and is left out.
    let d = rdb::decode(&bytes, Path::new("t.rdb"), 1_800_000_060_000).unwrap();
    assert_eq!((d.keys.len(), d.expired), (1, 1));
}

fn info_field(c: &mut Raw, field: &str) -> String {
    let text = match c.cmd(&[b"INFO", b"persistence"]) {
        Frame::Bulk(b) | Frame::Verbatim(_, b) => String::from_utf8_lossy(&b).into_owned(),
        other => panic!("{other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")).map(str::to_owned))
        .unwrap_or_default()
}

/// BGSAVE: the file is written by a thread of its own (INFO persistence shows it running,
/// then `ok`), `redis-check-rdb` accepts it; inside EXEC it is scheduled for after the
/// transaction, which it then holds whole.
#[test]
fn bgsave_writes_in_the_background_and_waits_for_a_transaction() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ours = rt.block_on(common::start(config(dir.path())));
    let mut c = Raw::connect(ours.local_addr());
    populate(&mut c);
    assert_eq!(
        c.cmd(&[b"BGSAVE"]),
        Frame::Simple("Background saving started".into())
    );
    let file = dir.path().join(rdb::RDB_FILE);
    let wait_done = |c: &mut Raw| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while info_field(c, "rdb_bgsave_in_progress") != "0" {
            assert!(std::time::Instant::now() < deadline, "BGSAVE never ended");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(info_field(c, "rdb_last_bgsave_status"), "ok");
    };
    wait_done(&mut c);
    let check = Command::new("redis-check-rdb").arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let keys = |file: &Path| {
        let d = rdb::decode(&std::fs::read(file).unwrap(), file, 0).unwrap();
        d.keys.len()
    };
    let before = keys(&file);
    assert_eq!(c.cmd(&[b"MULTI"]), Frame::Simple("OK".into()));
    assert_eq!(
        c.cmd(&[b"SADD", b"tx1", b"a"]),
        Frame::Simple("QUEUED".into())
    );
    assert_eq!(c.cmd(&[b"BGSAVE"]), Frame::Simple("QUEUED".into()));
    assert_eq!(
        c.cmd(&[b"SADD", b"tx2", b"a"]),
        Frame::Simple("QUEUED".into())
    );
    assert_eq!(
        c.cmd(&[b"EXEC"]),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Simple("Background saving scheduled".into()),
            Frame::Integer(1)
        ])
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while keys(&file) != before + 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled BGSAVE never ran"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    wait_done(&mut c);
    rt.block_on(ours.shutdown()).unwrap();
}
