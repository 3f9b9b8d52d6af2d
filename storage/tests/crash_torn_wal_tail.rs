//! A WAL whose last record was torn by a crash (file cut mid-record, or garbage after the
//! last record) reopens with every record before the tear, at engine level.

use std::path::PathBuf;

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, TableSchema,
};

fn setup(rows: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    for i in 0..rows {
        let m = Mutation::new(Bytes::from(format!("r{i:03}"))).put("f", "q", Some(1), "v");
        db.write("t", vec![m], Durability::Sync).unwrap();
    }
    let region = db.regions("t").unwrap()[0].id;
    drop(db);
    let wal = dir.path().join("t").join(region.to_string()).join("wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    segs.sort();
    let last = segs.pop().expect("a WAL segment");
    (dir, last)
}

fn present(db: &Db, rows: u64) -> Vec<bool> {
    (0..rows)
        .map(|i| {
            db.get("t", &Get::new(Bytes::from(format!("r{i:03}"))))
                .unwrap()
                .is_some()
        })
        .collect()
}

#[test]
fn cut_mid_record_keeps_everything_before() {
    let (dir, seg) = setup(10);
    let len = std::fs::metadata(&seg).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 5).unwrap();
    drop(f);
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    let got = present(&db, 10);
    assert_eq!(&got[..9], &[true; 9], "records before the tear");
    assert!(!got[9], "the torn record is gone");
    // The log is writable again after the truncation, and the new write survives.
    let m = Mutation::new("after").put("f", "q", Some(1), "v");
    db.write("t", vec![m], Durability::Sync).unwrap();
    drop(db);
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert!(db.get("t", &Get::new("after")).unwrap().is_some());
    assert_eq!(&present(&db, 10)[..9], &[true; 9]);
}

#[test]
fn garbage_tail_is_dropped() {
    let (dir, seg) = setup(5);
    let mut raw = std::fs::read(&seg).unwrap();
    raw.extend_from_slice(&[0xAB; 37]);
    std::fs::write(&seg, raw).unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert_eq!(present(&db, 5), vec![true; 5]);
}
