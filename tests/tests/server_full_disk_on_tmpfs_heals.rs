//! The real server on a small real filesystem (a size-limited tmpfs) that fills up: gRPC
//! writes get RESOURCE_EXHAUSTED naming the full disk and RESP writes Redis's `-MISCONF`,
//! reads keep working on both, /metrics and INFO say what failed, nothing is poisoned, and
//! once space returns (a filler file is deleted) writes succeed again with no restart;
//! after a restart every acknowledged write is there.
//!
//! Needs root (it mounts a tmpfs), as `make test` does on CI.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use speedlayer_client::proto::{self, Durability, GetRequest};
use speedlayer_client::put_row;
use speedlayer_tests::server::{ServerProcess, client_without_retries};
use tonic::Code;

const FS_BYTES: u64 = 24 << 20;
const FREE_AT_START: u64 = 6 << 20;

/// A tmpfs mounted for the test, unmounted (lazily, so a failed test cannot wedge it) on
/// drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes}"),
                "speedlayer-test",
            ])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mounting a tmpfs needs root (make test runs as root on CI): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

fn fill(path: &PathBuf, bytes: u64) {
    let chunk = vec![0x5au8; 1 << 20];
    let mut f = std::fs::File::create(path).unwrap();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        std::io::Write::write_all(&mut f, &chunk[..n]).unwrap();
        left -= n as u64;
    }
    f.sync_all().unwrap();
}

async fn assert_readable(c: &speedlayer_client::Client, keys: &[String]) {
    for key in keys {
        let row = c
            .get(GetRequest {
                table: "t".into(),
                row: Bytes::from(key.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(row.is_some(), "acknowledged {key} unreadable");
    }
}

/// Fills every free page of the filesystem holding `path` (writes until ENOSPC).
fn top_up(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    for size in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
        let chunk = vec![0x5au8; size];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
    let _ = f.sync_all();
}

/// One command on a fresh connection (a refused write may close its connection).
fn resp(addr: std::net::SocketAddr, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let client = redis::Client::open(format!("redis://{addr}"))?;
    let mut con = client.get_connection_with_timeout(Duration::from_secs(5))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut con)
}

/// `len` random bytes: nothing lz4 can shrink.
fn incompressible(len: usize) -> Vec<u8> {
    use rand::RngCore;
    let mut v = vec![0u8; len];
    rand::rng().fill_bytes(&mut v);
    v
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_resource_exhausted_keeps_reads_and_heals_when_space_returns() {
    let fs = Tmpfs::mount(FS_BYTES);
    let filler = fs.path().join("filler");
    fill(&filler, FS_BYTES - FREE_AT_START);
    let data = fs.path().join("data");
    let mut server = ServerProcess::start_pinned(&data, &["--memstore-flush-bytes", "1048576"]);
    let resp_addr = server.resp.expect("the RESP service is on");
    for m in ["V0001", "V0002"] {
        resp(resp_addr, &["SADD", "20261202", m]).unwrap();
    }
    let c = client_without_retries(&server.url()).await;
    c.create_table(proto::TableSchema {
        name: "t".into(),
        families: vec![proto::FamilySchema {
            name: "f".into(),
            ..Default::default()
        }],
    })
    .await
    .unwrap();

    // Fill the disk through the server. The values are random: the family's blocks are
    // lz4-compressed, and a compressible value (32 KiB of one byte) shrinks to a few
    // hundred bytes in an HFile, so the disk filled only if the WAL happened to outrun its
    // flushes (it did not, once, on CI). Each row gets its own bytes: lz4 would also find
    // a value repeated in the next cell of the same block.
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..2000u32 {
        let key = format!("row{i:05}");
        let put = put_row(key.as_bytes(), &[("f", "q", &incompressible(32 << 10))]);
        match c.mutate("t", vec![put], Durability::Sync).await {
            Ok(_) => acked.push(key),
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let e = refusal.expect("the disk never filled");
    assert_eq!(e.code(), Some(Code::ResourceExhausted), "{e}");
    assert!(
        e.to_string().contains("No space left on device"),
        "the message names the cause: {e}"
    );
    assert!(
        acked.len() > 10,
        "only {} writes before the disk filled",
        acked.len()
    );

    // Reads keep working while the disk is full.
    assert_readable(&c, &[acked[0].clone(), acked[acked.len() - 1].clone()]).await;
    let (code, text) = server.http_get("/metrics");
    assert_eq!(code, 200);
    let refused = metric(&text, "speedlayer_wal_no_space_failures_total")
        + metric(&text, "speedlayer_flush_failures_total");
    assert!(refused > 0, "/metrics does not count the refusals:\n{text}");
    assert_eq!(metric(&text, "speedlayer_region_poisoned"), 0);

    // The TTL set service on the same full disk: a write meets the failing AOF (its
    // connection is closed: an unknown outcome, never a false OK), then writes get MISCONF
    // while reads are served.
    // A small append can still land in the slack of the AOF's last page: take every free
    // page first, then write until the AOF meets the full disk.
    top_up(&fs.path().join("filler2"));
    let mut members = vec!["V0001".to_string(), "V0002".to_string()];
    let mut met_full_disk = false;
    for i in 0..5000 {
        let m = format!("W{i:05}{}", "m".repeat(200));
        match resp(resp_addr, &["SADD", "20261202", &m]) {
            Ok(_) => members.push(m),
            Err(_) => {
                met_full_disk = true;
                break;
            }
        }
    }
    assert!(met_full_disk, "the AOF never met the full disk");
    let e = resp(resp_addr, &["SADD", "20261202", "V0004"]).unwrap_err();
    assert!(
        e.to_string().contains("MISCONF") && e.to_string().contains("No space left on device"),
        "{e}"
    );
    assert_eq!(
        resp(resp_addr, &["SISMEMBER", "20261202", "V0001"]).unwrap(),
        redis::Value::Int(1)
    );
    let info = resp(resp_addr, &["INFO", "persistence"]).unwrap();
    assert!(
        format!("{info:?}").contains("aof_last_write_status:err"),
        "{info:?}"
    );

    // Space returns: writes succeed again by themselves.
    std::fs::remove_file(&filler).unwrap();
    std::fs::remove_file(fs.path().join("filler2")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0u32;
    while acked.len() < 50 || i < 20 {
        let key = format!("after{i:05}");
        let put = put_row(key.as_bytes(), &[("f", "q", &incompressible(32 << 10))]);
        match c.mutate("t", vec![put], Durability::Sync).await {
            Ok(_) => {
                acked.push(key);
                i += 1;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "writes did not resume: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    let deadline = Instant::now() + Duration::from_secs(30);
    while let Err(e) = resp(resp_addr, &["SADD", "20261202", "V0005"]) {
        assert!(Instant::now() < deadline, "RESP writes did not resume: {e}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Every acknowledged write survives a restart.
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
    server.restart();
    let c = client_without_retries(&server.url()).await;
    assert_readable(&c, &acked).await;
    members.push("V0005".into());
    for m in &members {
        assert_eq!(
            resp(resp_addr, &["SISMEMBER", "20261202", m]).unwrap(),
            redis::Value::Int(1),
            "acknowledged SADD {m} lost"
        );
    }
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
}
