//! Every `Sync`-acknowledged write survives a crash: the engine dropped without a flush,
//! the data directory copied while the engine is open (what a dead process leaves), and a
//! real `kill -9` of a child process writing in a loop (this test binary re-executed).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, TableSchema,
};

fn schema() -> TableSchema {
    TableSchema::new("t", vec![FamilyOptions::new("f").max_versions(2)])
}

fn small() -> EngineOptions {
    EngineOptions {
        memstore_flush_bytes: 8 * 1024,
        max_frozen_memstores: 4,
        write_stall_ms: 5_000,
        wal_segment_bytes: 32 * 1024,
        ..EngineOptions::default()
    }
}

fn row(i: u64) -> Bytes {
    Bytes::from(format!("row{i:06}"))
}

fn put(i: u64) -> Mutation {
    Mutation::new(row(i)).put("f", "q", Some(i), Bytes::from(format!("value-{i}")))
}

fn assert_has(db: &Db, i: u64) {
    let got = db.get("t", &Get::new(row(i))).unwrap();
    let got = got.unwrap_or_else(|| panic!("acknowledged row {i} is missing"));
    assert_eq!(
        got.cells[0].value,
        Bytes::from(format!("value-{i}")),
        "row {i}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            // A file may vanish between listing and copying (a WAL segment trimmed).
            let _ = std::fs::copy(e.path(), dst);
        }
    }
}

#[test]
fn dropped_engine_keeps_every_sync_write() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), small()).unwrap();
        db.create_table(schema()).unwrap();
        for i in 0..600 {
            db.write("t", vec![put(i)], Durability::Sync).unwrap();
            if i == 300 {
                db.flush("t").unwrap();
            }
        }
        // Dropped without close: no final flush, no final sync.
    }
    let db = Db::open(dir.path(), small()).unwrap();
    for i in 0..600 {
        assert_has(&db, i);
    }
}

#[test]
fn directory_copied_while_open_has_every_sync_write() {
    let dir = tempfile::tempdir().unwrap();
    let copy = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), small()).unwrap();
    db.create_table(schema()).unwrap();
    for i in 0..400 {
        db.write("t", vec![put(i)], Durability::Sync).unwrap();
    }
    copy_dir(dir.path(), copy.path());
    // The original keeps running; the copy is what a crash at this instant leaves.
    let reopened = Db::open(copy.path(), small()).unwrap();
    for i in 0..400 {
        assert_has(&reopened, i);
    }
    drop(db);
}

const CHILD_ENV: &str = "SPEEDLAYER_CRASH_CHILD_DIR";

/// Child side of the kill test: writes Sync rows forever, printing each acknowledged one.
/// Does nothing unless started by the parent test with the env var set.
#[test]
fn crash_child_writer() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = Db::open(Path::new(&dir), small()).unwrap();
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        db.write("t", vec![put(i)], Durability::Sync).unwrap();
        use std::io::Write;
        writeln!(out, "ACK {i}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn kill_9_keeps_acknowledged_writes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Db::open(dir.path(), small()).unwrap();
        db.create_table(schema()).unwrap();
        db.close().unwrap();
    }
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut acked = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    // Enough writes that several flushes and WAL rolls happened before the kill.
    while acked.len() < 1500 {
        assert!(
            Instant::now() < deadline,
            "child too slow: {} acks",
            acked.len()
        );
        let line = lines.next().expect("child exited early").unwrap();
        if let Some(n) = line.strip_prefix("ACK ") {
            acked.push(n.parse::<u64>().unwrap());
        }
    }
    // SIGKILL: no destructor, no flush, no sync runs in the child.
    child.kill().unwrap();
    for line in lines {
        if let Some(n) = line.unwrap().strip_prefix("ACK ") {
            acked.push(n.parse::<u64>().unwrap());
        }
    }
    child.wait().unwrap();
    let db = Db::open(dir.path(), small()).unwrap();
    for &i in &acked {
        assert_has(&db, i);
    }
    let stats = db.stats();
    assert!(
        stats.table("t").unwrap().files() > 0,
        "the child must have flushed files"
    );
}
