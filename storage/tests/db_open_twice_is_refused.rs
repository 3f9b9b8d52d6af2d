//! A directory open in one `Db` is refused to a second `Db::open` with a typed error that
//! names the directory and the holder's PID, and the refused open changes nothing on disk;
//! once the first `Db` is dropped the directory opens again with its data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Get, Mutation, TableSchema,
};

/// Every file under `dir` with its bytes (directories as `None`).
fn tree(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                out.insert(p.clone(), None);
                todo.push(p);
            } else {
                out.insert(p.clone(), Some(std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn second_open_is_refused_and_touches_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let db = Db::open(tmp.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    db.write(
        "t",
        vec![Mutation::new("r").put("f", "q", Some(1), Bytes::from_static(b"v"))],
        Durability::Sync,
    )
    .unwrap();
    let before = tree(tmp.path());

    match Db::open(tmp.path(), EngineOptions::default()) {
        Err(Error::DirInUse { dir, pid }) => {
            assert_eq!(dir, tmp.path());
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected DirInUse, got {other:?}"),
    }
    assert_eq!(
        tree(tmp.path()),
        before,
        "the refused open changed the directory"
    );

    db.close().unwrap();
    drop(db);
    let db = Db::open(tmp.path(), EngineOptions::default()).unwrap();
    let row = db.get("t", &Get::new("r")).unwrap().expect("row survives");
    assert_eq!(row.cells[0].value, Bytes::from_static(b"v"));
}
