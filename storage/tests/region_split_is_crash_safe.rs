//! Splitting a region: rows route to the daughters, every version and delete marker comes
//! along, the split survives reopen, and a crash before the catalog commit (daughter
//! directories present but not listed) reopens with the parent intact.

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, MutationOp, Scan, TableSchema,
};

fn setup() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("f").max_versions(3)],
    ))
    .unwrap();
    for i in 0..100u64 {
        let row = format!("r{i:03}");
        let m = Mutation::new(row.clone())
            .put("f", "q", Some(1), "old")
            .put("f", "q", Some(2), Bytes::from(format!("v{i}")));
        db.write("t", vec![m], Durability::Sync).unwrap();
    }
    // A marker that must keep masking after the split.
    let del = Mutation::new("r070").op(MutationOp::DeleteColumn {
        family: "f".into(),
        qualifier: "q".into(),
        timestamp: Some(2),
    });
    db.write("t", vec![del], Durability::Sync).unwrap();
    (dir, db)
}

fn check(db: &Db) {
    let rows: Vec<_> = db
        .scan("t", &Scan::new())
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rows.len(), 99, "r070 is masked, all other rows present");
    let rev: Vec<_> = db
        .scan("t", &Scan::new().reversed(true).max_versions(3))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(rev.len(), 99);
    assert_eq!(&rev[0].row[..], b"r099");
    assert_eq!(rev[0].cells.len(), 2, "both versions kept");
    let got = db.get("t", &Get::new("r042")).unwrap().unwrap();
    assert_eq!(&got.cells[0].value[..], b"v42");
    assert!(db.get("t", &Get::new("r070")).unwrap().is_none());
}

#[test]
fn split_routes_rows_and_survives_reopen() {
    let (dir, db) = setup();
    let parent = db.regions("t").unwrap()[0].clone();
    let (l, r) = db.split_region("t", parent.id, b"r050").unwrap();
    assert_eq!((&l.end[..], &r.start[..]), (&b"r050"[..], &b"r050"[..]));
    assert_eq!(db.locate("t", b"r049").unwrap().id, l.id);
    assert_eq!(db.locate("t", b"r050").unwrap().id, r.id);
    assert!(!dir.path().join("t").join(parent.id.to_string()).exists());
    check(&db);
    // Writes after the split, one batch spanning both daughters.
    let batch = vec![
        Mutation::new("a-new").put("f", "q", Some(5), "x"),
        Mutation::new("z-new").put("f", "q", Some(5), "y"),
    ];
    db.write("t", batch, Durability::Sync).unwrap();
    // Split a daughter again.
    db.split_region("t", r.id, b"r075").unwrap();
    assert!(
        db.split_region("t", l.id, b"r050").is_err(),
        "key outside the region"
    );
    drop(db);
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert_eq!(db.regions("t").unwrap().len(), 3);
    assert!(db.get("t", &Get::new("z-new")).unwrap().is_some());
    assert_eq!(db.scan("t", &Scan::new()).unwrap().count(), 101);
}

#[test]
fn crash_before_commit_keeps_the_parent() {
    let (dir, db) = setup();
    let parent = db.regions("t").unwrap()[0].clone();
    db.flush("t").unwrap();
    drop(db);
    // What a crash after building the daughters but before the catalog write leaves.
    let tdir = dir.path().join("t");
    for id in [parent.id + 1, parent.id + 2] {
        let d = tdir.join(id.to_string());
        std::fs::create_dir_all(d.join("f")).unwrap();
        std::fs::write(d.join("f").join(format!("{:020}.hfile", 1)), b"half a file").unwrap();
    }
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert_eq!(db.regions("t").unwrap(), vec![parent.clone()]);
    assert!(!tdir.join((parent.id + 1).to_string()).exists());
    check(&db);
    // And the split still works afterwards.
    db.split_region("t", parent.id, b"r010").unwrap();
    check(&db);
}
