//! Cluster mode's split (`Db::prepare_hosted_split`, then meta's commit, then
//! `finish_hosted_split` or `abort_hosted_split`) on the fault-injecting file system:
//!
//! - a prepared split refuses the parent's writes (retryable `TooBusy`) and an abort gives
//!   them back, with the daughters' directories gone;
//! - a power cut at a random point of the preparation: when `prepare` returned `Ok` (the
//!   server would now commit in meta), both daughters open on another server with every
//!   acknowledged row; when it failed (no commit), the parent does;
//! - after `finish`, the parent is no longer held and its directory is gone, and the
//!   daughters hold everything.

use std::sync::Arc;

use bytes::Bytes;
use speedlayer_storage::fs::{CutMode, FaultFs};
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Mutation, Scan, TableSchema,
};

fn schema() -> TableSchema {
    TableSchema::new("t", vec![FamilyOptions::new("f")])
}

fn options(fs: &Arc<FaultFs>) -> EngineOptions {
    EngineOptions {
        memstore_flush_bytes: 4 << 10,
        wal_segment_bytes: 8 << 10,
        fs: fs.process(),
        ..EngineOptions::default()
    }
}

fn put(db: &Db, row: &str, value: &str) -> Result<(), Error> {
    db.write(
        "t",
        vec![Mutation::new(Bytes::copy_from_slice(row.as_bytes())).put(
            "f",
            "q",
            Some(1),
            Bytes::copy_from_slice(value.as_bytes()),
        )],
        Durability::Sync,
    )
}

fn rows(db: &Db) -> Vec<(String, String)> {
    db.scan("t", &Scan::new())
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            (
                String::from_utf8_lossy(&r.row).into_owned(),
                String::from_utf8_lossy(&r.cells[0].value).into_owned(),
            )
        })
        .collect()
}

fn expected(n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| (format!("r{i:03}"), format!("v{i}")))
        .collect()
}

/// A hosted database holding region 1 (the whole table) at epoch 1, with `n` rows.
fn loaded(root: &std::path::Path, fs: &Arc<FaultFs>, n: usize) -> Db {
    let db = Db::open_hosted(root, options(fs)).unwrap();
    db.host_region(schema(), 1, Bytes::new(), Bytes::new(), 1)
        .unwrap();
    for i in 0..n {
        put(&db, &format!("r{i:03}"), &format!("v{i}")).unwrap();
    }
    db
}

#[test]
fn a_prepared_split_holds_writes_and_an_abort_gives_them_back() {
    let root = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(1);
    let db = loaded(root.path(), &fs, 200);
    db.prepare_hosted_split("t", 1, b"r100", [2, 3]).unwrap();
    assert!(root.path().join("t/2").exists() && root.path().join("t/3").exists());
    assert!(
        matches!(put(&db, "r005", "x"), Err(Error::TooBusy(_))),
        "the parent took a write while its daughters were being built"
    );
    db.abort_hosted_split("t", 1, [2, 3]);
    assert!(!root.path().join("t/2").exists() && !root.path().join("t/3").exists());
    put(&db, "r005", "v5").unwrap();
    assert_eq!(rows(&db), expected(200));
    // Bad requests are refused before anything changes.
    for (key, ids) in [(&b""[..], [2, 3]), (b"r100", [1, 3]), (b"r100", [4, 4])] {
        assert!(matches!(
            db.prepare_hosted_split("t", 1, key, ids),
            Err(Error::InvalidArgument(_))
        ));
    }
    put(&db, "r006", "v6").unwrap();
}

#[test]
fn after_finish_the_daughters_hold_everything_and_the_parent_is_gone() {
    let root = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(2);
    let db = loaded(root.path(), &fs, 300);
    db.prepare_hosted_split("t", 1, b"r150", [2, 3]).unwrap();
    db.finish_hosted_split("t", 1).unwrap();
    assert!(db.hosted_regions().is_empty());
    assert!(
        !root.path().join("t/1").exists(),
        "the parent's directory is left"
    );
    // The daughters open (as meta assigns them) for the parent's next epoch.
    db.host_region(schema(), 2, Bytes::new(), Bytes::from_static(b"r150"), 2)
        .unwrap();
    db.host_region(schema(), 3, Bytes::from_static(b"r150"), Bytes::new(), 2)
        .unwrap();
    assert_eq!(rows(&db), expected(300));
    // New writes land in the daughters and are newer than the parent's.
    put(&db, "r000", "new").unwrap();
    put(&db, "r299", "new").unwrap();
    let got = rows(&db);
    assert_eq!(got[0].1, "new");
    assert_eq!(got[299].1, "new");
}

#[test]
fn a_power_cut_during_preparation_leaves_the_parent_or_complete_daughters() {
    let cycles: u64 = std::env::var("SPEEDLAYER_LONG").map_or(40, |_| 400);
    let mut outcomes = [0u32; 2];
    for seed in 0..cycles {
        let root = tempfile::tempdir().unwrap();
        let fs = FaultFs::new(seed);
        let db = loaded(root.path(), &fs, 150);
        // Budgets spread over the preparation's file operations (flush, two daughters).
        let budget = (seed * 7919) % 160;
        fs.schedule_cut(
            budget,
            if seed % 2 == 0 {
                CutMode::Strict
            } else {
                CutMode::Random
            },
        );
        let prepared = db.prepare_hosted_split("t", 1, b"r075", [2, 3]).is_ok();
        drop(db);
        if !fs.is_down() {
            fs.power_cut(CutMode::Strict).unwrap();
        }
        fs.power_on();
        fs.cancel_cut();
        // Another server opens what meta would list after the cut.
        let other = Db::open_hosted(root.path(), options(&fs)).unwrap();
        if prepared {
            other
                .host_region(schema(), 2, Bytes::new(), Bytes::from_static(b"r075"), 2)
                .unwrap_or_else(|e| panic!("seed {seed}: left daughter: {e}"));
            other
                .host_region(schema(), 3, Bytes::from_static(b"r075"), Bytes::new(), 2)
                .unwrap_or_else(|e| panic!("seed {seed}: right daughter: {e}"));
        } else {
            other
                .host_region(schema(), 1, Bytes::new(), Bytes::new(), 2)
                .unwrap_or_else(|e| panic!("seed {seed}: parent: {e}"));
        }
        assert_eq!(
            rows(&other),
            expected(150),
            "seed {seed} budget {budget}: prepared={prepared}"
        );
        outcomes[usize::from(prepared)] += 1;
    }
    println!(
        "{cycles} cuts: {} during preparation (parent reopened), {} after it (daughters opened)",
        outcomes[0], outcomes[1]
    );
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "cuts must land on both sides: {outcomes:?}"
    );
}
