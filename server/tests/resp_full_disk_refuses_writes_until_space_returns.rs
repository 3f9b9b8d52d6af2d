//! A full disk (`ENOSPC`) or a failing device (`EIO`) under the RESP service's AOF, rewrite
//! and shutdown snapshot, on the fault-injecting file system. As Redis does: write commands
//! (and PING) get `-MISCONF Errors writing to the AOF file: <strerror>`, reads go on, INFO
//! says `aof_last_write_status:err`, and writes resume by themselves once the disk takes
//! data again. The batch whose write failed is never acknowledged, and no acknowledged
//! write is lost, across a restart or a power cut.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Raw;
use speedlayer_server::resp::frame::Frame;
use speedlayer_server::resp::{AppendFsync, RespConfig, RespHandle, RespServer};
use speedlayer_vfs::{CutMode, FaultFs, FaultRule, Op};

const MISCONF_ENOSPC: &[u8] =
    b"-MISCONF Errors writing to the AOF file: No space left on device\r\n";
const MISCONF_EIO: &[u8] = b"-MISCONF Errors writing to the AOF file: Input/output error\r\n";

struct Env {
    rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
    data: PathBuf,
    fs: Arc<FaultFs>,
    policy: AppendFsync,
}

impl Env {
    fn new(policy: AppendFsync) -> Env {
        let dir = tempfile::tempdir().unwrap();
        Env {
            rt: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap(),
            data: dir.path().join("resp"),
            _dir: dir,
            fs: FaultFs::new(11),
            policy,
        }
    }

    fn start(&self) -> RespHandle {
        let mut cfg = RespConfig::new("127.0.0.1:0".parse().unwrap(), self.data.clone());
        cfg.appendfsync = self.policy;
        cfg.auto_aof_rewrite_percentage = 0;
        cfg.fs = self.fs.clone();
        self.rt.block_on(RespServer::start(cfg)).unwrap()
    }

    fn aof_len(&self) -> u64 {
        std::fs::metadata(self.data.join("appendonly.aof"))
            .unwrap()
            .len()
    }
}

fn members(c: &mut Raw, key: &[u8]) -> BTreeSet<String> {
    let Frame::Array(ms) = c.cmd(&[b"SMEMBERS", key]) else {
        panic!("SMEMBERS is an array")
    };
    ms.into_iter()
        .map(|m| match m {
            Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
            other => panic!("member {other:?}"),
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn info_field(c: &mut Raw, name: &str) -> String {
    let Frame::Bulk(info) = c.cmd(&[b"INFO", b"persistence"]) else {
        panic!("INFO is a bulk string")
    };
    let info = String::from_utf8(info.to_vec()).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {name} in {info}"))
        .trim()
        .to_string()
}

/// Waits (on the server's own status, not a sleep) until the AOF accepts writes again.
fn wait_until_writes_resume(c: &mut Raw) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(c, "aof_last_write_status") != "ok" {
        assert!(Instant::now() < deadline, "writes never resumed");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_temp_files(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        assert!(
            name == "appendonly.aof" || name == "dump.snap",
            "a temporary file was left behind: {name}"
        );
    }
}

fn full_disk_on_aof_append(policy: AppendFsync) {
    let env = Env::new(policy);
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k a b\r\n", b":2\r\n");
    let len_before = env.aof_len();

    env.fs
        .inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("appendonly"));
    // The batch whose write fails is applied but not acknowledged.
    assert_eq!(c.try_cmd(&[b"SADD", b"k", b"c"]), None);
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k d\r\n", MISCONF_ENOSPC);
    c.roundtrip(b"DEL k\r\n", MISCONF_ENOSPC);
    c.roundtrip(b"PING\r\n", MISCONF_ENOSPC);
    c.roundtrip(b"SISMEMBER k a\r\n", b":1\r\n");
    assert_eq!(members(&mut c, b"k"), set(&["a", "b", "c"]));
    assert_eq!(info_field(&mut c, "aof_last_write_status"), "err");
    assert_eq!(
        env.aof_len(),
        len_before,
        "the partial write was cut back: the file ends with a whole command"
    );

    env.fs.clear_faults();
    wait_until_writes_resume(&mut c);
    c.roundtrip(b"SADD k d\r\n", b":1\r\n");
    c.roundtrip(b"PING\r\n", b"+PONG\r\n");
    drop(c);

    if policy == AppendFsync::Always {
        // Acknowledged under `always` means on disk: a power cut keeps it.
        env.fs.power_cut(CutMode::Strict).unwrap();
        let _ = env.rt.block_on(h.shutdown());
        env.fs.power_on();
    } else {
        env.rt.block_on(h.shutdown()).unwrap();
    }
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    assert_eq!(members(&mut c, b"k"), set(&["a", "b", "c", "d"]));
    drop(c);
    env.rt.block_on(h.shutdown()).unwrap();
    no_temp_files(&env.data);
}

#[test]
fn full_disk_on_aof_append_refuses_writes_with_misconf_and_heals_with_everysec() {
    full_disk_on_aof_append(AppendFsync::Everysec);
}

#[test]
fn full_disk_on_aof_append_refuses_writes_with_misconf_and_heals_with_always() {
    full_disk_on_aof_append(AppendFsync::Always);
}

#[test]
fn failed_fsync_is_not_retried_on_the_same_file_but_rewritten_into_a_new_one() {
    let env = Env::new(AppendFsync::Always);
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k a\r\n", b":1\r\n");
    env.fs.inject(
        FaultRule::new(Op::Sync, libc::EIO)
            .path_contains("appendonly.aof")
            .times(1),
    );
    assert_eq!(c.try_cmd(&[b"SADD", b"k", b"b"]), None);
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k c\r\n", MISCONF_EIO);
    c.roundtrip(b"SMEMBERS k\r\n", b"*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    wait_until_writes_resume(&mut c);
    assert_eq!(
        info_field(&mut c, "aof_rewrites"),
        "1",
        "the recovery rewrote the state into a new file"
    );
    c.roundtrip(b"SADD k c\r\n", b":1\r\n");
    drop(c);
    env.fs.power_cut(CutMode::Strict).unwrap();
    let _ = env.rt.block_on(h.shutdown());
    env.fs.power_on();
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    assert_eq!(members(&mut c, b"k"), set(&["a", "b", "c"]));
    drop(c);
    env.rt.block_on(h.shutdown()).unwrap();
}

#[test]
fn a_rewrite_that_hits_a_full_disk_leaves_the_old_aof_in_charge_and_no_temp_file() {
    let env = Env::new(AppendFsync::Everysec);
    let h = env.start();
    let aof = h.shared.aof.as_ref().unwrap();
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k a b\r\n", b":2\r\n");
    env.fs
        .inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("rewrite"));
    assert!(aof.rewrite(&h.shared.ks).is_err());
    no_temp_files(&env.data);
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "err");
    assert_eq!(info_field(&mut c, "aof_rewrites_consecutive_failures"), "1");
    // A failed rewrite does not refuse writes: the old AOF still takes them.
    assert_eq!(info_field(&mut c, "aof_last_write_status"), "ok");
    c.roundtrip(b"SADD k c\r\n", b":1\r\n");
    env.fs.clear_faults();
    aof.rewrite(&h.shared.ks).unwrap();
    assert_eq!(info_field(&mut c, "aof_last_bgrewrite_status"), "ok");
    c.roundtrip(b"SADD k d\r\n", b":1\r\n");
    drop(c);
    env.rt.block_on(h.shutdown()).unwrap();
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    assert_eq!(members(&mut c, b"k"), set(&["a", "b", "c", "d"]));
    drop(c);
    env.rt.block_on(h.shutdown()).unwrap();
}

#[test]
fn a_shutdown_snapshot_that_hits_a_full_disk_keeps_the_aof_and_loses_nothing() {
    let env = Env::new(AppendFsync::Everysec);
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k a b\r\n", b":2\r\n");
    c.roundtrip(b"EXPIRE k 100000\r\n", b":1\r\n");
    drop(c);
    env.fs
        .inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("dump.snap"));
    assert!(env.rt.block_on(h.shutdown()).is_err());
    no_temp_files(&env.data);
    env.fs.clear_faults();
    let h = env.start();
    let mut c = Raw::connect(h.local_addr());
    assert_eq!(members(&mut c, b"k"), set(&["a", "b"]));
    let Frame::Integer(ttl) = c.cmd(&[b"TTL", b"k"]) else {
        panic!("TTL is an integer")
    };
    assert!(ttl > 99_000, "{ttl}");
    drop(c);
    env.rt.block_on(h.shutdown()).unwrap();
}
