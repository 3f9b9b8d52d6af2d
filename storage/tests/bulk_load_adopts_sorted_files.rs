//! Bulk load (`storage/docs/bulk_load.md`): staged cells become visible all at once, into
//! an empty table and into one with data and several regions; the ordering rules of §4
//! (newest timestamp wins; at the same timestamp a stored cell wins over a loaded one); a
//! split between staging and commit refuses the load with `BoundariesChanged` and adopts
//! nothing; loaded files survive flush, compaction, split and reopen; bad input is refused
//! with typed errors; nothing is left in the staging area.

use std::collections::BTreeMap;
use std::path::Path;

use speedlayer_storage::bulk::STAGING_DIR;
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Mutation, Scan, TableSchema,
};

type Model = BTreeMap<String, String>;

fn open(dir: &Path) -> Db {
    Db::open(dir, EngineOptions::default()).unwrap()
}

fn create(db: &Db) {
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("a"), FamilyOptions::new("b")],
    ))
    .unwrap();
}

/// Every (row, family:qualifier) → value.
fn read_all(db: &Db) -> Model {
    let mut m = Model::new();
    for r in db.scan("t", &Scan::new()).unwrap() {
        let r = r.unwrap();
        for c in &r.cells {
            m.insert(
                format!(
                    "{}/{}:{}",
                    String::from_utf8_lossy(&r.row),
                    String::from_utf8_lossy(&c.family),
                    String::from_utf8_lossy(&c.qualifier)
                ),
                String::from_utf8_lossy(&c.value).into_owned(),
            );
        }
    }
    m
}

/// Loads rows `from..to` (both families) with values tagged `tag`, timestamp `ts`.
fn load(db: &Db, from: usize, to: usize, ts: u64, tag: &str) -> Result<u64, Error> {
    let mut st = db.stage_bulk_load("t")?;
    for i in from..to {
        let row = format!("r{i:05}");
        for fam in ["a", "b"] {
            st.push(
                row.as_bytes(),
                fam,
                b"q",
                ts,
                format!("{tag}{i}").as_bytes(),
            )?;
        }
    }
    Ok(db.commit_bulk_load(st)?.cells)
}

fn expect(m: &mut Model, from: usize, to: usize, tag: &str) {
    for i in from..to {
        for fam in ["a", "b"] {
            m.insert(format!("r{i:05}/{fam}:q"), format!("{tag}{i}"));
        }
    }
}

fn staging_is_empty(dir: &Path) -> bool {
    let s = dir.join(STAGING_DIR);
    !s.exists() || std::fs::read_dir(s).unwrap().next().is_none()
}

#[test]
fn load_into_an_empty_table_is_visible_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::new();
    {
        let db = open(dir.path());
        create(&db);
        assert_eq!(load(&db, 0, 2000, 10, "L").unwrap(), 4000);
        expect(&mut model, 0, 2000, "L");
        assert_eq!(read_all(&db), model);
        let st = db.stats();
        let files: u64 = st.tables[0].regions[0].stores.iter().map(|s| s.files).sum();
        assert_eq!(files, 2, "one file per family, no memstore: {st:?}");
        assert_eq!(
            st.tables[0].regions[0].memstore_bytes, 0,
            "no WAL, no memstore"
        );
        assert!(staging_is_empty(dir.path()));
        db.close().unwrap();
    }
    let db = open(dir.path());
    assert_eq!(read_all(&db), model, "after reopen");
    db.compact("t", true).unwrap();
    assert_eq!(read_all(&db), model, "after a major compaction");
}

#[test]
fn load_into_a_table_with_data_and_regions_follows_the_ordering_rules() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create(&db);
    let mut model = Model::new();
    // Existing data at timestamp 10 for rows 0..1000, some flushed, some in the memstore.
    for i in 0..1000 {
        let row = format!("r{i:05}");
        let m = Mutation::new(row.clone()).put("a", "q", Some(10), format!("W{i}"));
        db.write("t", vec![m], Durability::Sync).unwrap();
        model.insert(format!("{row}/a:q"), format!("W{i}"));
        if i == 600 {
            db.flush("t").unwrap();
        }
    }
    // Three regions.
    let r1 = db.regions("t").unwrap()[0].id;
    db.split_region("t", r1, b"r00300").unwrap();
    let right = db.locate("t", b"r00700").unwrap().id;
    db.split_region("t", right, b"r00700").unwrap();
    assert_eq!(db.regions("t").unwrap().len(), 3);

    // Same timestamp (10): the stored cell wins; family b had nothing, so the load shows.
    load(&db, 0, 1000, 10, "L").unwrap();
    for i in 0..1000 {
        model.insert(format!("r{i:05}/b:q"), format!("L{i}"));
    }
    assert_eq!(read_all(&db), model, "same timestamp: stored cells win");

    // A newer timestamp (20): the loaded cell wins, across all three regions.
    load(&db, 0, 1500, 20, "N").unwrap();
    expect(&mut model, 0, 1500, "N");
    assert_eq!(read_all(&db), model, "newer timestamp: loaded cells win");

    // A later put at the same timestamp as the load wins over it.
    let m = Mutation::new("r00042").put("a", "q", Some(20), "P");
    db.write("t", vec![m], Durability::Sync).unwrap();
    model.insert("r00042/a:q".into(), "P".into());
    assert_eq!(read_all(&db), model);

    // Flush, compaction, split and reopen keep the loaded data.
    db.compact("t", true).unwrap();
    assert_eq!(read_all(&db), model, "after compaction");
    let mid = db.locate("t", b"r00500").unwrap().id;
    db.split_region("t", mid, b"r00500").unwrap();
    assert_eq!(read_all(&db), model, "after a split of loaded data");
    db.close().unwrap();
    drop(db);
    let db = open(dir.path());
    assert_eq!(read_all(&db), model, "after reopen");
    assert!(staging_is_empty(dir.path()));
}

#[test]
fn a_split_between_stage_and_commit_refuses_the_load_and_adopts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create(&db);
    for i in 0..100 {
        let m = Mutation::new(format!("r{i:05}")).put("a", "q", Some(1), "w");
        db.write("t", vec![m], Durability::Sync).unwrap();
    }
    let before = read_all(&db);
    let mut st = db.stage_bulk_load("t").unwrap();
    for i in 0..100 {
        st.push(format!("r{i:05}").as_bytes(), "b", b"q", 5, b"L")
            .unwrap();
    }
    let r = db.regions("t").unwrap()[0].id;
    db.split_region("t", r, b"r00050").unwrap();
    match db.commit_bulk_load(st) {
        Err(Error::BoundariesChanged { table, reason }) => {
            assert_eq!(table, "t");
            assert!(reason.contains("gone"), "{reason}");
        }
        other => panic!("expected BoundariesChanged, got {other:?}"),
    }
    assert_eq!(read_all(&db), before, "nothing adopted");
    assert!(staging_is_empty(dir.path()), "the refused stage is removed");
    // Staged again against the new boundaries, it goes in (one part per region).
    let mut st = db.stage_bulk_load("t").unwrap();
    for i in 0..100 {
        st.push(format!("r{i:05}").as_bytes(), "b", b"q", 5, b"L")
            .unwrap();
    }
    let done = db.commit_bulk_load(st).unwrap();
    assert_eq!((done.parts, done.regions, done.cells), (2, 2, 100));
    assert_eq!(read_all(&db).len(), 200);
}

#[test]
fn bad_input_is_refused_with_typed_errors_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create(&db);
    let mut st = db.stage_bulk_load("t").unwrap();
    assert!(matches!(
        st.push(b"r1", "nope", b"q", 1, b"v"),
        Err(Error::UnknownFamily { .. })
    ));
    assert!(
        matches!(st.push(b"r1", "a", b"q", 1, b"v"), Err(Error::InvalidArgument(m)) if m.contains("already failed")),
        "a failed stage refuses further cells"
    );
    drop(st);

    let mut st = db.stage_bulk_load("t").unwrap();
    st.push(b"r2", "a", b"q", 1, b"v").unwrap();
    let e = st.push(b"r1", "a", b"q", 1, b"v").unwrap_err();
    assert!(
        matches!(&e, Error::InvalidArgument(m) if m.contains("must not decrease")),
        "{e}"
    );
    assert!(
        db.commit_bulk_load(st).is_err(),
        "a failed stage cannot commit"
    );

    let mut st = db.stage_bulk_load("t").unwrap();
    st.push(b"r1", "a", b"q", 1, b"v").unwrap();
    let e = st.push(b"r1", "a", b"q", 1, b"w").unwrap_err();
    assert!(
        matches!(e, Error::InvalidArgument(_)),
        "a repeated cell: {e}"
    );
    drop(st);

    let mut st = db.stage_bulk_load("t").unwrap();
    assert!(matches!(
        st.push(b"", "a", b"q", 1, b"v"),
        Err(Error::InvalidArgument(_))
    ));
    drop(st);
    let mut st = db.stage_bulk_load("t").unwrap();
    let big = vec![b'x'; 5000];
    assert!(matches!(
        st.push(&big, "a", b"q", 1, b"v"),
        Err(Error::InvalidArgument(_))
    ));
    drop(st);

    assert!(matches!(
        db.stage_bulk_load("nope"),
        Err(Error::UnknownTable(_))
    ));
    assert!(read_all(&db).is_empty());
    assert!(
        staging_is_empty(dir.path()),
        "abandoned stages remove their files"
    );
}

#[test]
fn an_uncommitted_stage_is_forgotten_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open(dir.path());
        create(&db);
        let mut st = db.stage_bulk_load("t").unwrap();
        st.push(b"r1", "a", b"q", 1, b"v").unwrap();
        st.finish().unwrap();
        // The process dies holding the stage: its files stay on disk.
        std::mem::forget(st);
    }
    assert!(!staging_is_empty(dir.path()));
    let db = open(dir.path());
    assert!(read_all(&db).is_empty(), "never committed: never visible");
    assert!(!dir.path().join(STAGING_DIR).exists(), "removed at open");
}

#[test]
fn rows_pushed_whole_follow_the_same_rules_as_cells() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    create(&db);
    type C<'a> = (&'a str, &'a [u8], u64, &'a [u8]);
    fn c<'a>(family: &'a str, q: &'a [u8], ts: u64, v: &'a [u8]) -> C<'a> {
        (family, q, ts, v)
    }
    // Refused, each in its own stage: a row below the previous one, cells out of order
    // within a family, a repeated cell, an unknown family, an oversize qualifier.
    let big = vec![b'q'; 2000];
    let bad: Vec<(&[u8], Vec<C<'_>>, &str)> = vec![
        (&b"r0"[..], vec![c("a", b"q", 1, b"v")], "must not decrease"),
        (
            &b"r2"[..],
            vec![c("a", b"q2", 1, b"v"), c("a", b"q1", 1, b"v")],
            "strictly increase",
        ),
        (
            &b"r2"[..],
            vec![c("a", b"q", 1, b"v"), c("a", b"q", 1, b"w")],
            "strictly increase",
        ),
        (&b"r2"[..], vec![c("nope", b"q", 1, b"v")], "nope"),
        (&b"r2"[..], vec![c("a", &big, 1, b"v")], "above the limits"),
    ];
    for (row, cells, why) in bad {
        let mut st = db.stage_bulk_load("t").unwrap();
        st.push_row(b"r1", [c("a", b"q", 1, b"v")]).unwrap();
        let e = st.push_row(row, cells).unwrap_err();
        assert!(e.to_string().contains(why), "{why}: {e}");
        assert!(
            st.push_row(b"r9", [c("a", b"q", 1, b"v")]).is_err(),
            "a failed stage refuses further rows"
        );
        assert!(db.commit_bulk_load(st).is_err());
    }
    assert!(read_all(&db).is_empty());
    assert!(staging_is_empty(dir.path()));

    // Accepted: rows whole (two families interleaved, several timestamps of a column),
    // mixed with single cells, the same as pushing every cell alone.
    let mut st = db.stage_bulk_load("t").unwrap();
    st.push_row(
        b"r1",
        [
            c("a", b"q", 9, b"new"),
            c("b", b"q", 5, b"b1"),
            c("a", b"q", 5, b"old"),
            c("a", b"z", 5, b"z1"),
        ],
    )
    .unwrap();
    st.push(b"r1", "b", b"r", 5, b"b2").unwrap();
    st.push_row(b"r2", [c("b", b"q", 5, b"b3")]).unwrap();
    assert_eq!(db.commit_bulk_load(st).unwrap().cells, 6);
    let want: Model = [
        ("r1/a:q", "new"),
        ("r1/a:z", "z1"),
        ("r1/b:q", "b1"),
        ("r1/b:r", "b2"),
        ("r2/b:q", "b3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(read_all(&db), want);
}
