//! Gets skip files that cannot hold the row (bloom filter, key range) or whose cells are
//! all older than the time range, and the skips are counted in stats.

use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, TableSchema,
};

#[test]
fn gets_read_only_files_that_may_hold_the_row() {
    let dir = tempfile::tempdir().unwrap();
    // The test counts files: no background compaction may merge them meanwhile.
    let opts = EngineOptions {
        compaction: speedlayer_storage::compaction::CompactionOptions {
            auto: false,
            ..Default::default()
        },
        ..EngineOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    // Five files with interleaved rows: every file's key range covers every row, so only
    // the bloom filter can tell them apart.
    for file in 0..5u64 {
        let batch = (0..200u64)
            .map(|i| {
                let row = format!("row{:05}", i * 5 + file);
                Mutation::new(row).put("f", "q", Some(100 + file), "v")
            })
            .collect();
        db.write("t", batch, Durability::Async).unwrap();
        db.flush("t").unwrap();
    }
    let skipped = |db: &Db| db.stats().table("t").unwrap().bloom_skipped_files();
    assert_eq!(db.stats().table("t").unwrap().files(), 5);
    let before = skipped(&db);
    for i in 0..1000u64 {
        let got = db
            .get("t", &Get::new(format!("row{i:05}")))
            .unwrap()
            .unwrap();
        assert_eq!(got.cells[0].timestamp, 100 + i % 5);
    }
    // 4 of 5 files lack each row; allow ~1% bloom false positives.
    let by_bloom = skipped(&db) - before;
    assert!(
        by_bloom >= 3900,
        "bloom skipped only {by_bloom} of 4000 files"
    );
    // A time range newer than every file skips them all, bloom or not.
    let before = skipped(&db);
    let got = db
        .get("t", &Get::new("row00000").time_range(1000, 2000))
        .unwrap();
    assert!(got.is_none());
    assert_eq!(skipped(&db) - before, 5);
}
