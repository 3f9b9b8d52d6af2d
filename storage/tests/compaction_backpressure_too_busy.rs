//! Backpressure from compaction: while a store has `blocking_files` files the background
//! flusher waits, frozen memstores pile up, and writes slow down and then fail with the same
//! `TooBusy` as the memstore limit. A compaction makes room and writes resume; without one,
//! the flusher gives up waiting after `blocking_wait_ms` and flushes anyway (no deadlock).

use std::time::{Duration, Instant};

use speedlayer_storage::compaction::CompactionOptions;
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Mutation, TableSchema,
};

fn options(blocking_wait_ms: u64) -> EngineOptions {
    EngineOptions {
        memstore_flush_bytes: 4 * 1024,
        max_frozen_memstores: 1,
        write_stall_ms: 20,
        compaction: CompactionOptions {
            auto: false,
            blocking_files: 2,
            blocking_wait_ms,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn files(db: &Db) -> u64 {
    db.stats().table("t").unwrap().files()
}

/// Writes 1 KiB rows until one fails with `TooBusy` (or `limit` passes); returns how many
/// writes succeeded first, or `None` if none failed.
fn write_until_busy(db: &Db, next: &mut u64, limit: Duration) -> Option<u64> {
    let deadline = Instant::now() + limit;
    let mut ok = 0;
    while Instant::now() < deadline {
        *next += 1;
        let m = Mutation::new(format!("row{next:08}")).put("f", "q", Some(*next), vec![7u8; 1024]);
        match db.write("t", vec![m], Durability::SkipWal) {
            Ok(()) => ok += 1,
            Err(Error::TooBusy(_)) => return Some(ok),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    None
}

#[test]
fn blocked_store_makes_writes_too_busy_until_compaction_makes_room() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(60_000)).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let mut next = 0;
    for _ in 0..2 {
        next += 1;
        let m = Mutation::new(format!("seed{next}")).put("f", "q", Some(1), "v");
        db.write("t", vec![m], Durability::SkipWal).unwrap();
        db.flush("t").unwrap();
    }
    // A background flush that passed its check just before may add one more file.
    let blocked_at = files(&db);
    assert!(blocked_at >= 2, "the store is at its blocking file count");

    // The flusher now refuses to add a third file; writes fill the memstores and fail.
    let accepted = write_until_busy(&db, &mut next, Duration::from_secs(20))
        .expect("writes must fail with TooBusy while the store is blocked");
    assert!(
        accepted >= 3,
        "writes were accepted until the memstores filled: {accepted}"
    );
    assert!(
        files(&db) <= blocked_at + 1,
        "flushes stopped while blocked: {} files",
        files(&db)
    );
    let busy = db.stats().table("t").unwrap().regions[0].too_busy;
    assert!(busy >= 1);

    // A major compaction (which flushes first) makes room; the flusher catches up and
    // writes are accepted again.
    db.compact("t", true).unwrap();
    let resumed = Instant::now();
    let mut accepted_after = 0;
    while accepted_after < 20 {
        next += 1;
        let m = Mutation::new(format!("row{next:08}")).put("f", "q", Some(next), vec![7u8; 1024]);
        match db.write("t", vec![m], Durability::SkipWal) {
            Ok(()) => accepted_after += 1,
            Err(Error::TooBusy(_)) => {
                assert!(
                    resumed.elapsed() < Duration::from_secs(20),
                    "writes never resumed"
                );
                std::thread::yield_now();
            }
            Err(e) => panic!("unexpected error {e}"),
        }
        // Keep the store under the limit as new files arrive.
        if files(&db) >= 2 {
            db.compact("t", true).unwrap();
        }
    }
}

#[test]
fn flusher_gives_up_waiting_after_blocking_wait() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options(300)).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let mut next = 0;
    for _ in 0..2 {
        let m = Mutation::new(format!("seed{next}")).put("f", "q", Some(1), "v");
        next += 1;
        db.write("t", vec![m], Durability::SkipWal).unwrap();
        db.flush("t").unwrap();
    }
    assert_eq!(files(&db), 2);
    // No compaction ever runs (automatic compaction is off), yet writes keep making
    // progress: each flush waits at most 300 ms.
    let start = Instant::now();
    let mut accepted = 0;
    while accepted < 40 {
        next += 1;
        let m = Mutation::new(format!("row{next:08}")).put("f", "q", Some(next), vec![7u8; 1024]);
        match db.write("t", vec![m], Durability::SkipWal) {
            Ok(()) => accepted += 1,
            Err(Error::TooBusy(_)) => std::thread::yield_now(),
            Err(e) => panic!("unexpected error {e}"),
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "writes stalled for good"
        );
    }
    assert!(files(&db) > 2, "flushes went ahead past the blocking count");
}
