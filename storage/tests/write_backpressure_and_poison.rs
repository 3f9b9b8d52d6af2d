//! Writes are bounded and refuse to pretend: when flushes fall behind, writes stall and
//! then fail with `TooBusy` (memory stays bounded) and succeed again once flushes catch up;
//! after a failed WAL sync every write is refused with `Poisoned`, while reads still work.

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Get, Mutation, TableSchema,
};

fn put(i: u64) -> Vec<Mutation> {
    vec![Mutation::new(format!("r{i:06}")).put("f", "q", Some(1), Bytes::from(vec![7u8; 200]))]
}

#[test]
fn too_many_frozen_memstores_fail_fast_then_recover() {
    let dir = tempfile::tempdir().unwrap();
    let flush_bytes = 4096;
    let opts = EngineOptions {
        memstore_flush_bytes: flush_bytes,
        max_frozen_memstores: 2,
        write_stall_ms: 20,
        ..EngineOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let region = db.region("t", db.regions("t").unwrap()[0].id).unwrap();
    region.pause_flushes(true);
    let mut busy = None;
    for i in 0..10_000 {
        match db.write("t", put(i), Durability::SkipWal) {
            Ok(()) => {}
            Err(Error::TooBusy(msg)) => {
                busy = Some(i);
                assert!(msg.contains("frozen"), "{msg}");
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    let stopped_at = busy.expect("writes must fail fast once flushes lag");
    let st = db.stats();
    let r = &st.table("t").unwrap().regions[0];
    assert_eq!(r.frozen_memstores, 2);
    assert!(r.too_busy >= 1);
    // Bounded: the frozen ones plus a full active one, plus one write's worth.
    assert!(
        r.memstore_bytes <= 3 * flush_bytes as u64 + 1024,
        "memstore bytes {} unbounded",
        r.memstore_bytes
    );
    region.pause_flushes(false);
    db.flush("t").unwrap();
    db.write("t", put(stopped_at), Durability::Sync).unwrap();
    for i in 0..=stopped_at {
        assert!(
            db.get("t", &Get::new(format!("r{i:06}")))
                .unwrap()
                .is_some()
        );
    }
}

#[test]
fn failed_sync_poisons_writes_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    db.write("t", put(1), Durability::Sync).unwrap();
    let region = db.region("t", db.regions("t").unwrap()[0].id).unwrap();
    region.wal().inject_sync_failure();
    assert!(
        db.write("t", put(2), Durability::Sync).is_err(),
        "the failed sync is reported"
    );
    for d in [Durability::Sync, Durability::Async, Durability::SkipWal] {
        match db.write("t", put(3), d) {
            Err(Error::Poisoned(msg)) => assert!(!msg.is_empty()),
            other => panic!("{d:?}: expected Poisoned, got {other:?}"),
        }
    }
    assert!(db.get("t", &Get::new("r000001")).unwrap().is_some());
    assert!(db.get("t", &Get::new("r000003")).unwrap().is_none());
}
