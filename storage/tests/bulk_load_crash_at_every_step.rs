//! A bulk load cut by a power failure before each file-system change of its staging and
//! commit, in turn, on the fault-injecting file system (unsynced bytes and directory
//! entries are lost, in `Strict` and `Random` cut modes): the database always opens again,
//! and shows either all of the load or none of it — never some rows or one family only —
//! with the data that was there before intact, the staging area gone, and no file the
//! manifests do not list. The same load then goes in.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use speedlayer_storage::bulk::STAGING_DIR;
use speedlayer_storage::fs::{CutMode, FaultFs};
use speedlayer_storage::hfile::parse_file_name;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Mutation, Scan, TableSchema,
};

type Model = BTreeMap<String, String>;

fn options(fs: &Arc<FaultFs>) -> EngineOptions {
    EngineOptions {
        fs: fs.process(),
        ..EngineOptions::default()
    }
}

fn read_all(db: &Db) -> Model {
    let mut m = Model::new();
    for r in db.scan("t", &Scan::new()).unwrap() {
        let r = r.unwrap();
        for c in &r.cells {
            m.insert(
                format!(
                    "{}/{}",
                    String::from_utf8_lossy(&r.row),
                    String::from_utf8_lossy(&c.family)
                ),
                String::from_utf8_lossy(&c.value).into_owned(),
            );
        }
    }
    m
}

/// A table of two regions and two families, with flushed data in family `a`.
fn prepare(dir: &Path, fs: &Arc<FaultFs>) -> Model {
    let db = Db::open(dir, options(fs)).unwrap();
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("a"), FamilyOptions::new("b")],
    ))
    .unwrap();
    for i in 0..50 {
        let m = Mutation::new(format!("r{i:03}")).put("a", "q", Some(1), "old");
        db.write("t", vec![m], Durability::Sync).unwrap();
    }
    let r = db.regions("t").unwrap()[0].id;
    db.split_region("t", r, b"r025").unwrap();
    db.close().unwrap();
    read_all(&db)
}

/// Stages and commits rows 0..50 in both families at timestamp 2 (newer than the data).
fn load(db: &Db) -> speedlayer_storage::Result<()> {
    let mut st = db.stage_bulk_load("t")?;
    for i in 0..50 {
        for fam in ["a", "b"] {
            st.push(format!("r{i:03}").as_bytes(), fam, b"q", 2, b"new")?;
        }
    }
    db.commit_bulk_load(st).map(|_| ())
}

fn loaded(before: &Model) -> Model {
    let mut m = before.clone();
    for i in 0..50 {
        for fam in ["a", "b"] {
            m.insert(format!("r{i:03}/{fam}"), "new".into());
        }
    }
    m
}

/// Every `.hfile` in every family directory is live in its store.
fn no_unlisted_files(db: &Db, dir: &Path, ctx: &str) {
    for info in db.regions("t").unwrap() {
        let region = db.region("t", info.id).unwrap();
        for store in region.stores() {
            let live: Vec<u64> = store.current().files.iter().map(|f| f.id).collect();
            let fdir = dir
                .join("t")
                .join(info.id.to_string())
                .join(&store.opts.name);
            for e in std::fs::read_dir(&fdir).unwrap() {
                let name = e.unwrap().file_name().to_string_lossy().into_owned();
                let id = parse_file_name(&name).unwrap_or_else(|| panic!("{ctx}: stray {name}"));
                assert!(live.contains(&id), "{ctx}: {name} is not live in {fdir:?}");
            }
        }
    }
}

fn run(mode: CutMode, seed: u64) -> (u64, u64) {
    let (mut none, mut all) = (0, 0);
    for n in 0.. {
        let dir = tempfile::tempdir().unwrap();
        let fs = FaultFs::new(seed + n);
        let before = prepare(dir.path(), &fs);
        let after = loaded(&before);
        let ctx = format!("{mode:?} cut before change {n}");
        let db = Db::open(dir.path(), options(&fs)).unwrap();
        fs.schedule_cut(n, mode);
        let r = load(&db);
        drop(db);
        if !fs.is_down() {
            r.unwrap_or_else(|e| panic!("{ctx}: the load failed without a cut: {e}"));
            fs.cancel_cut();
            assert!(n > 10, "the protocol takes more than {n} changes");
            return (none, all);
        }
        // A cut while the staging directory is removed, after the adoption, leaves the
        // load acknowledged; the directory is then removed at open.
        let acknowledged = r.is_ok();
        fs.power_on();
        let db = Db::open(dir.path(), options(&fs))
            .unwrap_or_else(|e| panic!("{ctx}: must open after the cut: {e}"));
        let got = read_all(&db);
        if acknowledged {
            assert_eq!(got, after, "{ctx}: an acknowledged load is all there");
            all += 1;
        } else if got == before {
            none += 1;
        } else if got == after {
            all += 1;
        } else {
            panic!("{ctx}: a partial load is visible: {got:?}");
        }
        assert!(
            !dir.path().join(STAGING_DIR).exists(),
            "{ctx}: staging left"
        );
        no_unlisted_files(&db, dir.path(), &ctx);
        // The load can be run (again): the result is the loaded state either way.
        load(&db).unwrap_or_else(|e| panic!("{ctx}: load after recovery: {e}"));
        assert_eq!(read_all(&db), after, "{ctx}");
        db.close().unwrap();
        drop(db);
        let db = Db::open(dir.path(), options(&fs)).unwrap();
        assert_eq!(read_all(&db), after, "{ctx}: after another reopen");
    }
    unreachable!()
}

#[test]
fn a_power_cut_at_every_step_shows_all_of_the_load_or_none() {
    for (mode, seed) in [(CutMode::Strict, 1), (CutMode::Random, 1000)] {
        let (none, all) = run(mode, seed);
        eprintln!("{mode:?}: {none} cuts showed none of the load, {all} all of it");
        assert!(none > 0, "{mode:?}: some cuts land before the commit");
        assert!(all > 0, "{mode:?}: some cuts land after the commit");
    }
}
