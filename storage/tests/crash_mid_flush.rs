//! A crash in the middle of a flush leaves HFiles the manifest does not list — complete
//! or half-written. Reopening removes them and serves the data from the WAL; foreign
//! cells in such files never appear.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, Scan, TableSchema,
};

fn table() -> TableSchema {
    TableSchema::new("t", vec![FamilyOptions::new("f")])
}

fn write_rows(db: &Db, prefix: &str, n: u64) {
    for i in 0..n {
        let m = Mutation::new(Bytes::from(format!("{prefix}{i:03}"))).put("f", "q", Some(1), "v");
        db.write("t", vec![m], Durability::Sync).unwrap();
    }
}

fn family_dir(dir: &Path, db: &Db) -> PathBuf {
    let region = db.regions("t").unwrap()[0].id;
    dir.join("t").join(region.to_string()).join("f")
}

fn hfiles(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "hfile"))
        .collect();
    v.sort();
    v
}

#[test]
fn unlisted_and_partial_files_are_removed_and_wal_data_served() {
    // A real HFile full of foreign rows, to plant as unlisted flush output.
    let other = tempfile::tempdir().unwrap();
    let foreign = {
        let db = Db::open(other.path(), EngineOptions::default()).unwrap();
        db.create_table(table()).unwrap();
        write_rows(&db, "foreign", 50);
        db.flush("t").unwrap();
        let fdir = family_dir(other.path(), &db);
        std::fs::read(&hfiles(&fdir)[0]).unwrap()
    };

    let dir = tempfile::tempdir().unwrap();
    let fdir = {
        let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
        db.create_table(table()).unwrap();
        write_rows(&db, "mine", 40);
        family_dir(dir.path(), &db)
    };
    // Whole file never recorded, and a file cut short mid-write.
    std::fs::write(fdir.join(format!("{:020}.hfile", 900)), &foreign).unwrap();
    std::fs::write(
        fdir.join(format!("{:020}.hfile", 901)),
        &foreign[..foreign.len() / 2],
    )
    .unwrap();
    std::fs::write(fdir.join(format!("{:020}.hfile.tmp", 902)), b"partial").unwrap();

    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    for i in 0..40 {
        let r = Bytes::from(format!("mine{i:03}"));
        assert!(
            db.get("t", &Get::new(r)).unwrap().is_some(),
            "row {i} from the WAL"
        );
    }
    let rows: Vec<_> = db
        .scan("t", &Scan::new())
        .unwrap()
        .map(|r| r.unwrap().row)
        .collect();
    assert_eq!(rows.len(), 40, "no foreign rows: {:?}", rows.first());
    let left: Vec<PathBuf> = std::fs::read_dir(&fdir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        left.iter()
            .all(|p| !p.to_string_lossy().contains("0000000090")),
        "orphans removed: {left:?}"
    );
    // And it flushes and reopens normally afterwards.
    db.flush("t").unwrap();
    drop(db);
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert_eq!(db.scan("t", &Scan::new()).unwrap().count(), 40);
}
