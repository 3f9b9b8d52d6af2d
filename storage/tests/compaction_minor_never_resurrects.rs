//! The classic compaction bug: a minor compaction merges the newer files holding delete
//! markers but not the older file holding the cells they mask; if it dropped the markers,
//! the deleted cells would come back. Here the old file is made too big for the ratio, so
//! the minor compaction provably leaves it out, and every kind of delete must stay in
//! force — after the minor, after a reopen, and after the final major.

use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_storage::compaction::CompactionOptions;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, MutationOp, Scan, TableSchema,
};

fn options() -> EngineOptions {
    EngineOptions {
        compaction: CompactionOptions {
            auto: false,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn write(db: &Db, m: Mutation) {
    db.write("t", vec![m], Durability::SkipWal).unwrap();
}

fn f() -> Bytes {
    Bytes::from_static(b"f")
}

fn q() -> Bytes {
    Bytes::from_static(b"q")
}

/// (file id, cells, tombstones) of the store, oldest first.
fn files(db: &Db) -> Vec<(u64, u64, u64)> {
    let region = db.regions("t").unwrap()[0].id;
    let store = Arc::clone(&db.region("t", region).unwrap().stores()[0]);
    let mut v: Vec<_> = store
        .current()
        .files
        .iter()
        .map(|f| (f.meta.max_seq, f.id, f.meta.cells, f.meta.tombstones))
        .collect();
    v.sort();
    v.into_iter().map(|(_, id, c, t)| (id, c, t)).collect()
}

fn visible(db: &Db, row: &str) -> Option<Vec<(u64, Bytes)>> {
    db.get("t", &Get::new(Bytes::from(row.to_string())).max_versions(5))
        .unwrap()
        .map(|r| {
            r.cells
                .into_iter()
                .map(|c| (c.timestamp, c.value))
                .collect()
        })
}

fn check(db: &Db, stage: &str) {
    assert_eq!(
        visible(db, "del-version"),
        Some(vec![(5, Bytes::from("v5"))]),
        "{stage}: version delete"
    );
    assert_eq!(visible(db, "del-column"), None, "{stage}: column delete");
    assert_eq!(visible(db, "del-family"), None, "{stage}: family delete");
    assert_eq!(visible(db, "del-row"), None, "{stage}: row delete");
    assert_eq!(
        visible(db, "kept"),
        Some(vec![(10, Bytes::from("newer")), (1, Bytes::from("old"))]),
        "{stage}: untouched row"
    );
    let rows: Vec<Bytes> = db
        .scan("t", &Scan::new().prefix("del"))
        .unwrap()
        .map(|r| r.unwrap().row)
        .collect();
    assert_eq!(
        rows,
        vec!["del-version"],
        "{stage}: scan sees no deleted row"
    );
}

#[test]
fn minor_compaction_keeps_markers_for_cells_outside_its_set() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), options()).unwrap();
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("f").max_versions(5)],
    ))
    .unwrap();

    // File 1 (old and big): the cells that will be deleted, plus incompressible filler.
    write(
        &db,
        Mutation::new("del-version")
            .put("f", "q", Some(5), "v5")
            .put("f", "q", Some(7), "v7"),
    );
    write(
        &db,
        Mutation::new("del-column")
            .put("f", "q", Some(3), "x")
            .put("f", "q", Some(4), "y"),
    );
    write(
        &db,
        Mutation::new("del-family")
            .put("f", "a", Some(3), "x")
            .put("f", "b", Some(4), "y"),
    );
    write(&db, Mutation::new("del-row").put("f", "q", Some(3), "x"));
    write(&db, Mutation::new("kept").put("f", "q", Some(1), "old"));
    let mut rng = StdRng::seed_from_u64(3);
    for i in 0..300 {
        let v: Vec<u8> = (0..200).map(|_| rng.random()).collect();
        write(
            &db,
            Mutation::new(format!("zfill{i:04}")).put("f", "q", Some(1), v),
        );
    }
    db.flush("t").unwrap();

    // Files 2..4 (small): the markers, then unrelated writes.
    write(
        &db,
        Mutation::new("del-version").op(MutationOp::Delete {
            family: f(),
            qualifier: q(),
            timestamp: Some(7),
        }),
    );
    write(
        &db,
        Mutation::new("del-column").op(MutationOp::DeleteColumn {
            family: f(),
            qualifier: q(),
            timestamp: Some(4),
        }),
    );
    write(
        &db,
        Mutation::new("del-family").op(MutationOp::DeleteFamily {
            family: f(),
            timestamp: Some(4),
        }),
    );
    write(
        &db,
        Mutation::new("del-row").op(MutationOp::DeleteRow { timestamp: Some(3) }),
    );
    db.flush("t").unwrap();
    write(&db, Mutation::new("kept").put("f", "q", Some(10), "newer"));
    db.flush("t").unwrap();
    write(&db, Mutation::new("other").put("f", "q", Some(10), "o"));
    db.flush("t").unwrap();
    check(&db, "before compaction");

    let before = files(&db);
    assert_eq!(before.len(), 4);
    let big = before[0];

    db.compact("t", false).unwrap();

    let after = files(&db);
    assert_eq!(after.len(), 2, "the three small files merged: {after:?}");
    assert_eq!(
        after[0], big,
        "the big old file was left out of the minor compaction"
    );
    assert_eq!(
        after[1].2, 4,
        "all four markers kept in the minor output: {after:?}"
    );
    check(&db, "after minor");

    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), options()).unwrap();
    check(&db, "after reopen");

    // A major sees every file: the markers and what they mask can finally go.
    db.compact("t", true).unwrap();
    let last = files(&db);
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].2, 0, "no markers after a major");
    // del-version keeps v5; kept keeps 2 versions; other 1; 300 fillers.
    assert_eq!(last[0].1, 1 + 2 + 1 + 300);
    check(&db, "after major");
}
