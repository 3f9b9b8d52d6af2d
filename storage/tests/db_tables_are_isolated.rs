//! Tables are independent: same rows in two tables (their files share the block cache and
//! have the same file ids in their regions) never mix, schemas and tables survive reopen,
//! dropped tables are gone from disk, and check-and-mutate applies only when the check
//! holds.

use bytes::Bytes;
use speedlayer_storage::{
    CompareOp, Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, TableSchema,
};

fn put(v: &str) -> Vec<Mutation> {
    (0..50)
        .map(|i| {
            Mutation::new(format!("r{i:02}")).put("f", "q", Some(1), Bytes::from(v.to_string()))
        })
        .collect()
}

fn value(db: &Db, t: &str, row: &str) -> Option<Bytes> {
    db.get(t, &Get::new(row.to_string()))
        .unwrap()
        .map(|r| r.cells[0].value.clone())
}

#[test]
fn same_rows_in_two_tables_never_mix() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    for t in ["one", "two"] {
        db.create_table(TableSchema::new(
            t,
            vec![FamilyOptions::new("f").max_versions(2)],
        ))
        .unwrap();
        db.write(t, put(t), Durability::Sync).unwrap();
        db.flush(t).unwrap();
    }
    for _ in 0..2 {
        for t in ["one", "two"] {
            for i in 0..50 {
                assert_eq!(
                    value(&db, t, &format!("r{i:02}")).as_deref(),
                    Some(t.as_bytes())
                );
            }
        }
    }
    assert!(
        db.stats().block_cache_hits > 0,
        "second pass served from the cache"
    );
    db.close().unwrap();
    drop(db);

    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    let names: Vec<String> = db.list_tables().into_iter().map(|s| s.name).collect();
    assert_eq!(names, vec!["one".to_string(), "two".to_string()]);
    assert_eq!(
        db.describe_table("one").unwrap().families[0].max_versions,
        2
    );
    assert_eq!(value(&db, "two", "r07").as_deref(), Some(&b"two"[..]));
    db.drop_table("one").unwrap();
    assert!(!dir.path().join("one").exists());
    db.create_table(TableSchema::new("one", vec![FamilyOptions::new("f")]))
        .unwrap();
    assert_eq!(
        value(&db, "one", "r07"),
        None,
        "a recreated table starts empty"
    );
    assert_eq!(db.regions("two").unwrap().len(), 1);
    assert_eq!(db.locate("two", b"anything").unwrap().table, "two");
}

#[test]
fn check_and_mutate_applies_only_when_the_check_holds() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let set = |v: &str| Mutation::new("r").put("f", "q", None, Bytes::from(v.to_string()));
    let cam = |op, expected: Option<&str>, v: &str| {
        db.check_and_mutate(
            "t",
            b"r",
            b"f",
            b"q",
            op,
            expected.map(|e| Bytes::from(e.to_string())),
            set(v),
            Durability::Sync,
        )
        .unwrap()
    };
    assert!(
        !cam(CompareOp::Eq, Some("1"), "x"),
        "absent column fails an equality check"
    );
    assert!(
        cam(CompareOp::Eq, None, "10"),
        "absent column passes the absence check"
    );
    assert!(
        !cam(CompareOp::Eq, None, "y"),
        "present column fails the absence check"
    );
    assert!(cam(CompareOp::Gt, Some("9"), "11"), "10 > 9 numerically");
    assert_eq!(value(&db, "t", "r").as_deref(), Some(&b"11"[..]));
    assert!(!cam(CompareOp::Lt, Some("5"), "z"));
    assert_eq!(value(&db, "t", "r").as_deref(), Some(&b"11"[..]));
}
