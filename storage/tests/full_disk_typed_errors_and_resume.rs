//! A full disk (ENOSPC) on a WAL append, a WAL roll, a flush, a manifest edit or a
//! compaction: the request that hit it gets a typed error (`Error::is_no_space`), reads keep
//! working, no file is left corrupt or orphaned, nothing is poisoned, the failure is
//! counted, and writes, flushes and compactions succeed again by themselves once space
//! returns. An I/O error on a sync (EIO) is different: the region refuses further writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use speedlayer_storage::fs::{FaultFs, FaultRule, Op};
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Get, Mutation, Scan, TableSchema,
};

const T: &str = "t";

fn options(fs: &Arc<FaultFs>) -> EngineOptions {
    EngineOptions {
        wal_segment_bytes: 2 << 10,
        // Compactions run only when the test asks, so file counts are the test's own.
        compaction: speedlayer_storage::compaction::CompactionOptions {
            auto: false,
            ..Default::default()
        },
        fs: fs.clone(),
        ..EngineOptions::default()
    }
}

fn open(dir: &Path, fs: &Arc<FaultFs>) -> Db {
    let db = Db::open(dir, options(fs)).unwrap();
    if db.describe_table(T).is_err() {
        db.create_table(TableSchema::new(T, vec![FamilyOptions::new("f")]))
            .unwrap();
    }
    db
}

fn put(db: &Db, row: &str, value: &str) -> Result<(), Error> {
    db.write(
        T,
        vec![Mutation::new(Bytes::from(row.to_string())).put("f", "q", Some(1), value.to_string())],
        Durability::Sync,
    )
}

fn contents(db: &Db) -> BTreeMap<String, String> {
    db.scan(T, &Scan::new())
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

fn region_stats(db: &Db) -> speedlayer_storage::region::RegionStats {
    db.stats().table(T).unwrap().regions[0].clone()
}

fn hfiles_on_disk(dir: &Path, db: &Db) -> usize {
    let id = db.regions(T).unwrap()[0].id;
    std::fs::read_dir(dir.join(T).join(id.to_string()).join("f"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".hfile")
        })
        .count()
}

fn listed_hfiles(db: &Db) -> usize {
    db.stats().table(T).unwrap().files() as usize
}

#[test]
fn a_full_disk_refuses_the_write_keeps_reads_and_writes_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(1);
    let db = open(dir.path(), &fs);
    let mut model = BTreeMap::new();
    for i in 0..20 {
        put(&db, &format!("r{i:02}"), "v1").unwrap();
        model.insert(format!("r{i:02}"), "v1".to_string());
    }

    // WAL appends (and the segment rolls the small segment size forces) fail: each write
    // is refused with a typed error and applies nothing.
    fs.inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("/wal/"));
    fs.inject(FaultRule::new(Op::Create, libc::ENOSPC).path_contains("/wal/"));
    for i in 0..30 {
        let e = put(&db, &format!("x{i:02}"), "lost").unwrap_err();
        assert!(e.is_no_space(), "{e}");
    }
    assert_eq!(
        contents(&db),
        model,
        "reads keep working and see no refused write"
    );
    let s = region_stats(&db);
    assert!(s.wal_no_space_failures >= 30, "{s:?}");
    assert_eq!(s.poisoned, None);

    // Space returns: the next write succeeds with no restart.
    fs.clear_faults();
    for i in 0..40 {
        put(&db, &format!("r{i:02}"), "v2").unwrap();
        model.insert(format!("r{i:02}"), "v2".to_string());
    }
    assert_eq!(contents(&db), model);

    // A flush that cannot write its HFile: refused, counted, its partial output removed,
    // the memstore kept; the next flush after space returns succeeds.
    let listed = listed_hfiles(&db);
    fs.inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains(".hfile"));
    let e = db.flush(T).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert_eq!(
        hfiles_on_disk(dir.path(), &db),
        listed,
        "no partial HFile left behind"
    );
    let s = region_stats(&db);
    // The background flusher may have met the full disk too: each attempt is counted.
    assert!(s.flush_failures >= 1, "{s:?}");
    assert_eq!(s.poisoned, None);
    put(&db, "during", "flush-failure").unwrap();
    model.insert("during".into(), "flush-failure".into());
    assert_eq!(contents(&db), model);
    fs.clear_faults();
    db.flush(T).unwrap();
    assert!(listed_hfiles(&db) > listed);

    // A manifest edit that cannot be written: the flush is refused; the manifest is not
    // poisoned and takes the next edit.
    put(&db, "m1", "v").unwrap();
    model.insert("m1".into(), "v".into());
    fs.inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("MANIFEST"));
    let e = db.flush(T).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    fs.clear_faults();
    db.flush(T).unwrap();
    assert_eq!(hfiles_on_disk(dir.path(), &db), listed_hfiles(&db));

    // A compaction that cannot write its output: refused, old files kept and readable.
    for round in 0..3 {
        put(&db, &format!("c{round}"), "v").unwrap();
        model.insert(format!("c{round}"), "v".into());
        db.flush(T).unwrap();
    }
    let before = listed_hfiles(&db);
    fs.inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains(".hfile"));
    let e = db.compact(T, true).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert_eq!(listed_hfiles(&db), before);
    assert_eq!(
        hfiles_on_disk(dir.path(), &db),
        before,
        "no partial output left"
    );
    assert_eq!(contents(&db), model);
    fs.clear_faults();
    // The same when the output is written but the manifest cannot record it (the begin
    // edit goes through, the commit edit meets the full disk): its space is freed at once.
    fs.inject(
        FaultRule::new(Op::Append, libc::ENOSPC)
            .path_contains("MANIFEST")
            .skip(1),
    );
    let e = db.compact(T, true).unwrap_err();
    assert!(e.is_no_space(), "{e}");
    assert_eq!(
        hfiles_on_disk(dir.path(), &db),
        before,
        "the unrecorded output is removed"
    );
    assert_eq!(contents(&db), model);
    fs.clear_faults();
    db.compact(T, true).unwrap();
    assert_eq!(listed_hfiles(&db), 1);
    assert_eq!(region_stats(&db).poisoned, None);

    // Everything acknowledged is there after a restart; nothing refused appears.
    drop(db);
    let db = open(dir.path(), &fs);
    assert_eq!(contents(&db), model);
    assert!(
        db.get(T, &Get::new(Bytes::from_static(b"x00")))
            .unwrap()
            .is_none(),
        "a refused write never appears"
    );
}

#[test]
fn an_io_error_on_a_wal_sync_stops_writes_but_not_reads() {
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFs::new(2);
    let db = open(dir.path(), &fs);
    put(&db, "a", "1").unwrap();
    fs.inject(
        FaultRule::new(Op::Sync, libc::EIO)
            .path_contains("/wal/")
            .times(1),
    );
    let e = put(&db, "b", "2").unwrap_err();
    assert!(!e.is_no_space(), "{e}");
    fs.clear_faults();
    // The kernel may have dropped the unsynced pages: retrying the sync would lie.
    assert!(matches!(put(&db, "c", "3"), Err(Error::Poisoned(_))));
    assert!(region_stats(&db).poisoned.is_some());
    assert_eq!(contents(&db).get("a").map(String::as_str), Some("1"));
    drop(db);
    // A restart recovers from the log and takes writes again.
    let db = open(dir.path(), &fs);
    put(&db, "d", "4").unwrap();
    assert_eq!(contents(&db).get("a").map(String::as_str), Some("1"));
}
