//! TTL: a cell is invisible once now − ts > ttl, in memstore and in files, and a file whose
//! cells are all expired is not even read. Time comes from a manual clock: no sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use speedlayer_storage::{
    Clock, Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, TableSchema,
};

#[test]
fn expired_cells_disappear_as_the_clock_moves() {
    let dir = tempfile::tempdir().unwrap();
    let now = Arc::new(AtomicU64::new(10_000));
    let opts = EngineOptions {
        clock: Clock::manual(Arc::clone(&now)),
        ..EngineOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("f").max_versions(5).ttl_ms(1_000)],
    ))
    .unwrap();
    let put = |ts: Option<u64>, v: &str| {
        db.write(
            "t",
            vec![Mutation::new("r").put("f", "q", ts, v.to_string())],
            Durability::Sync,
        )
        .unwrap();
    };
    put(Some(9_500), "old"); // expires after 10_500
    db.flush("t").unwrap();
    put(None, "new"); // ts = 10_000, expires after 11_000
    let versions = |db: &Db| {
        db.get("t", &Get::new("r").max_versions(5))
            .unwrap()
            .map_or(0, |r| r.cells.len())
    };
    assert_eq!(versions(&db), 2);
    now.store(10_500, Ordering::Relaxed);
    assert_eq!(versions(&db), 2, "exactly ttl old is still visible");
    now.store(10_501, Ordering::Relaxed);
    assert_eq!(versions(&db), 1);
    let skipped = db.stats().table("t").unwrap().bloom_skipped_files();
    assert!(skipped >= 1, "the all-expired file was skipped");
    now.store(11_001, Ordering::Relaxed);
    assert_eq!(versions(&db), 0);
}
