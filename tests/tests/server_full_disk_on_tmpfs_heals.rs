//! The real server on a small real filesystem (a size-limited tmpfs) that fills up: writes
//! get RESOURCE_EXHAUSTED naming the full disk, reads keep working, /metrics counts the
//! refusals, nothing is poisoned, and once space returns (a filler file is deleted) writes
//! succeed again with no restart; after a restart every acknowledged write is there.
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
    let mut server = ServerProcess::start(&data, &["--memstore-flush-bytes", "1048576"]);
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

    // Fill the disk through the server.
    let value = vec![b'v'; 32 << 10];
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..2000u32 {
        let key = format!("row{i:05}");
        let put = put_row(key.as_bytes(), &[("f", "q", &value)]);
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

    // Space returns: writes succeed again by themselves.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut i = 0u32;
    while acked.len() < 50 || i < 20 {
        let key = format!("after{i:05}");
        let put = put_row(key.as_bytes(), &[("f", "q", &value)]);
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

    // Every acknowledged write survives a restart.
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
    server.restart();
    let c = client_without_retries(&server.url()).await;
    assert_readable(&c, &acked).await;
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
}
