//! Concurrent `Sync` writers of one region share fsyncs (group commit through the region's
//! WAL): every write is acknowledged durable, with fewer syncs than appends; each writer
//! reads its own write right after it returns.

use std::sync::Arc;

use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, TableSchema,
};

#[test]
fn concurrent_sync_writes_share_fsyncs() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), EngineOptions::default()).unwrap());
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..100 {
                    let row = format!("t{t}-{i:03}");
                    let m = Mutation::new(row.clone()).put("f", "q", Some(1), "v");
                    db.write("t", vec![m], Durability::Sync).unwrap();
                    assert!(
                        db.get("t", &Get::new(row)).unwrap().is_some(),
                        "read your write"
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let stats = db.stats();
    let r = &stats.table("t").unwrap().regions[0];
    assert_eq!(r.wal_appends, 800);
    assert!(
        r.wal_syncs < r.wal_appends,
        "syncs {} not shared",
        r.wal_syncs
    );
    drop(db);
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert_eq!(db.scan("t", &Default::default()).unwrap().count(), 800);
}
