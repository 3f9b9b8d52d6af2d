//! A compaction stopped at every step of its protocol — after the begin edit, after writing
//! its output, after the commit edit, before deleting its inputs — as if the process died
//! there (the engine is dropped without closing): reopening gives exactly the model's data,
//! either the old file set or the new one (never a mix), no unlisted file is left behind,
//! no compaction stays pending, and compaction works again afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use speedlayer_storage::compaction::{CompactionOptions, FailPoint};
use speedlayer_storage::hfile::parse_file_name;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Mutation, MutationOp, Scan, TableSchema,
};

type Model = BTreeMap<String, String>;

fn options() -> EngineOptions {
    EngineOptions {
        compaction: CompactionOptions {
            auto: false,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    }
}

/// Three flushes of similar size with overwrites and deletes; returns the model. (No WAL:
/// every write is flushed before the compaction, so the files alone hold the data.)
fn populate(db: &Db) -> Model {
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let mut model = Model::new();
    let mut ts = 1;
    for round in 0..3 {
        for i in 0..60 {
            ts += 1;
            let row = format!("r{i:03}");
            if round > 0 && i % 7 == round {
                let m = Mutation::new(row.clone()).op(MutationOp::DeleteRow {
                    timestamp: Some(ts),
                });
                db.write("t", vec![m], Durability::SkipWal).unwrap();
                model.remove(&row);
            } else if round == 0 || i % 3 == round {
                let v = format!("{row}-round{round}");
                let m = Mutation::new(row.clone()).put("f", "q", Some(ts), v.clone());
                db.write("t", vec![m], Durability::SkipWal).unwrap();
                model.insert(row, v);
            }
        }
        db.flush("t").unwrap();
    }
    model
}

fn read_all(db: &Db) -> Model {
    db.scan("t", &Scan::new())
        .unwrap()
        .map(|r| {
            let r = r.unwrap();
            let v = r.value(b"f", b"q").unwrap().clone();
            (
                String::from_utf8(r.row.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

/// Ids of the store's live files, and of the `.hfile`s in its directory.
fn live_and_on_disk(db: &Db, dir: &Path) -> (BTreeSet<u64>, BTreeSet<u64>) {
    let region = db.regions("t").unwrap()[0].id;
    let r = db.region("t", region).unwrap();
    let live = r.stores()[0].current().files.iter().map(|f| f.id).collect();
    let fdir = dir.join("t").join(region.to_string()).join("f");
    let disk = std::fs::read_dir(fdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .map(|n| parse_file_name(&n).unwrap_or_else(|| panic!("stray file {n}")))
        .collect();
    (live, disk)
}

fn pending(db: &Db) -> usize {
    let region = db.regions("t").unwrap()[0].id;
    let r = db.region("t", region).unwrap();
    r.manifest().lock().state().pending_compactions.len()
}

#[test]
fn crash_at_every_step_leaves_old_or_new_set() {
    for major in [false, true] {
        for point in FailPoint::ALL {
            let case = format!(
                "{} stopped {point:?}",
                if major { "major" } else { "minor" }
            );
            let dir = tempfile::tempdir().unwrap();
            let (model, old_ids) = {
                let db = Db::open(dir.path(), options()).unwrap();
                let model = populate(&db);
                assert_eq!(read_all(&db), model, "{case}: before");
                let (old_ids, disk) = live_and_on_disk(&db, dir.path());
                assert_eq!(old_ids.len(), 3, "{case}");
                assert_eq!(old_ids, disk, "{case}");

                let region = db.regions("t").unwrap()[0].id;
                let store = Arc::clone(&db.region("t", region).unwrap().stores()[0]);
                store.lifecycle.set_fail_point(Some(point));
                let err = db.compact("t", major).unwrap_err();
                assert!(err.to_string().contains("fail point"), "{case}: {err}");
                (model, old_ids)
                // Dropped without close: the process "dies" here.
            };

            let db = Db::open(dir.path(), options()).unwrap();
            assert_eq!(read_all(&db), model, "{case}: after reopen");
            let (live, disk) = live_and_on_disk(&db, dir.path());
            assert_eq!(live, disk, "{case}: no unlisted file survives the reopen");
            assert_eq!(pending(&db), 0, "{case}: no compaction left pending");
            match point {
                FailPoint::AfterBegin | FailPoint::AfterOutputWritten => {
                    assert_eq!(live, old_ids, "{case}: the old set stands")
                }
                FailPoint::AfterCommit | FailPoint::BeforeDeleteInputs => {
                    assert_eq!(live.len(), 1, "{case}: the new set stands");
                    assert!(live.is_disjoint(&old_ids), "{case}: {live:?}");
                }
            }

            // Compaction works again and the data is unchanged.
            db.compact("t", true).unwrap();
            assert_eq!(read_all(&db), model, "{case}: after a later major");
            let (live, disk) = live_and_on_disk(&db, dir.path());
            assert_eq!((live.len(), &live), (1, &disk), "{case}");
        }
    }
}
