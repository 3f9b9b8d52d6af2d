//! After a major compaction a store has one file, and deleted cells, TTL-expired cells and
//! versions beyond the family's max versions are gone — from the file (its info counts and
//! its cells, read with the HFile reader) and from reads — also after a reopen.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use bytes::Bytes;
use speedlayer_storage::compaction::CompactionOptions;
use speedlayer_storage::hfile::HFileReader;
use speedlayer_storage::{
    CellKind, Clock, Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, MutationOp, Scan,
    TableSchema, cache::BlockCache,
};

const NOW: u64 = 10_000_000;
const TTL: u64 = 60_000;

fn options(clock: &Arc<AtomicU64>) -> EngineOptions {
    EngineOptions {
        clock: Clock::manual(Arc::clone(clock)),
        compaction: CompactionOptions {
            auto: false,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    }
}

fn put(db: &Db, row: &str, q: &str, ts: u64, v: &str) {
    let m = Mutation::new(Bytes::from(row.to_string())).put(
        "f",
        q.to_string(),
        Some(ts),
        v.to_string(),
    );
    db.write("t", vec![m], Durability::SkipWal).unwrap();
}

fn op(db: &Db, row: &str, op: MutationOp) {
    let m = Mutation::new(Bytes::from(row.to_string())).op(op);
    db.write("t", vec![m], Durability::SkipWal).unwrap();
}

/// (row, qualifier, ts, kind) of every cell in the store's files, via the HFile reader.
fn cells_on_disk(db: &Db) -> Vec<(String, String, u64, CellKind)> {
    let region = db.regions("t").unwrap()[0].id;
    let store = Arc::clone(&db.region("t", region).unwrap().stores()[0]);
    let cache = Arc::new(BlockCache::new(1 << 20));
    let mut out = Vec::new();
    for f in &store.current().files {
        let r = HFileReader::open(
            &speedlayer_storage::fs::RealFs,
            &f.path,
            f.id,
            Arc::clone(&cache),
        )
        .unwrap();
        for c in r.iter() {
            let (k, _) = c.unwrap();
            out.push((
                String::from_utf8(k.row.to_vec()).unwrap(),
                String::from_utf8(k.qualifier.to_vec()).unwrap(),
                k.timestamp,
                k.kind,
            ));
        }
    }
    out
}

fn file_counts(db: &Db) -> Vec<(u64, u64)> {
    let region = db.regions("t").unwrap()[0].id;
    let store = Arc::clone(&db.region("t", region).unwrap().stores()[0]);
    store
        .current()
        .files
        .iter()
        .map(|f| (f.meta.cells, f.meta.tombstones))
        .collect()
}

fn versions(db: &Db, row: &str) -> Vec<u64> {
    db.get(
        "t",
        &Get::new(Bytes::from(row.to_string())).max_versions(10),
    )
    .unwrap()
    .map(|r| r.cells.iter().map(|c| c.timestamp).collect())
    .unwrap_or_default()
}

fn check_reads(db: &Db) {
    assert_eq!(
        versions(db, "many"),
        vec![NOW - 1, NOW - 2],
        "two newest versions"
    );
    assert!(versions(db, "deleted-col").is_empty());
    assert!(versions(db, "deleted-row").is_empty());
    assert_eq!(
        versions(db, "deleted-one"),
        vec![NOW - 20],
        "older version revealed"
    );
    assert!(versions(db, "expired").is_empty());
    assert_eq!(versions(db, "fresh"), vec![NOW - 5]);
    let rows: Vec<Bytes> = db
        .scan("t", &Scan::new())
        .unwrap()
        .map(|r| r.unwrap().row)
        .collect();
    assert_eq!(rows, vec!["deleted-one", "fresh", "many"]);
}

fn setup(dir: &Path, clock: &Arc<AtomicU64>) -> Db {
    let db = Db::open(dir, options(clock)).unwrap();
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("f").max_versions(2).ttl_ms(TTL)],
    ))
    .unwrap();
    // File 1: five versions of one column, doomed cells, an expired one, a fresh one.
    for i in 1..=5 {
        put(&db, "many", "q", NOW - i, &format!("v{i}"));
    }
    put(&db, "deleted-col", "q", NOW - 10, "x");
    put(&db, "deleted-row", "a", NOW - 10, "x");
    put(&db, "deleted-row", "b", NOW - 10, "x");
    put(&db, "deleted-one", "q", NOW - 10, "newest");
    put(&db, "deleted-one", "q", NOW - 20, "older");
    put(&db, "expired", "q", NOW - 2 * TTL, "old");
    db.flush("t").unwrap();
    // File 2: the markers.
    let col = MutationOp::DeleteColumn {
        family: Bytes::from_static(b"f"),
        qualifier: Bytes::from_static(b"q"),
        timestamp: Some(NOW - 9),
    };
    op(&db, "deleted-col", col);
    op(
        &db,
        "deleted-row",
        MutationOp::DeleteRow {
            timestamp: Some(NOW - 9),
        },
    );
    let one = MutationOp::Delete {
        family: Bytes::from_static(b"f"),
        qualifier: Bytes::from_static(b"q"),
        timestamp: Some(NOW - 10),
    };
    op(&db, "deleted-one", one);
    db.flush("t").unwrap();
    // File 3: a fresh cell.
    put(&db, "fresh", "q", NOW - 5, "new");
    db.flush("t").unwrap();
    db
}

#[test]
fn major_compaction_leaves_one_file_without_dead_data() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let db = setup(dir.path(), &clock);

    let before = file_counts(&db);
    assert_eq!(before.len(), 3, "three flushes, three files");
    assert!(
        before.iter().map(|(_, t)| t).sum::<u64>() >= 3,
        "markers on disk: {before:?}"
    );
    check_reads(&db);

    db.compact("t", true).unwrap();

    let after = file_counts(&db);
    assert_eq!(after.len(), 1, "one file after a major compaction");
    // Survivors: many@NOW-1, many@NOW-2, deleted-one@NOW-20, fresh@NOW-5.
    assert_eq!(
        after[0],
        (4, 0),
        "cell count and tombstone count of the output"
    );
    let mut disk = cells_on_disk(&db);
    disk.sort_by_key(|(r, q, ts, k)| (r.clone(), q.clone(), *ts, k.code()));
    assert_eq!(
        disk,
        vec![
            ("deleted-one".into(), "q".into(), NOW - 20, CellKind::Put),
            ("fresh".into(), "q".into(), NOW - 5, CellKind::Put),
            ("many".into(), "q".into(), NOW - 2, CellKind::Put),
            ("many".into(), "q".into(), NOW - 1, CellKind::Put),
        ]
    );
    check_reads(&db);

    let region = db.regions("t").unwrap()[0].id;
    let stats = db.stats();
    let store = &stats.table("t").unwrap().regions[0].stores[0];
    assert_eq!(store.compaction.runs, 1);
    assert_eq!(store.compaction.majors, 1);
    assert_eq!(
        (store.compaction.files_in, store.compaction.files_out),
        (3, 1)
    );
    assert_eq!(store.compaction.cells_dropped, 15 - 4, "15 cells in, 4 out");
    assert!(store.compaction.bytes_read > 0 && store.compaction.bytes_written > 0);
    let wa = store.compaction.write_amplification().unwrap();
    assert!(wa.is_finite() && wa > 0.0, "write amplification {wa}");

    // The replaced files are gone from the directory once nothing reads them.
    let fdir = dir.path().join("t").join(region.to_string()).join("f");
    let on_disk = std::fs::read_dir(&fdir).unwrap().count();
    assert_eq!(on_disk, 1, "inputs deleted");

    // Time passes: the fresh cell expires too; a second major leaves the store empty.
    clock.store(NOW + TTL, std::sync::atomic::Ordering::Relaxed);
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), options(&clock)).unwrap();
    assert_eq!(file_counts(&db).len(), 1, "reopen sees the compacted file");
    db.compact("t", true).unwrap();
    assert!(
        file_counts(&db).is_empty(),
        "everything expired: no output file"
    );
    assert!(versions(&db, "fresh").is_empty());
    assert_eq!(std::fs::read_dir(&fdir).unwrap().count(), 0);
}

#[test]
fn readers_keep_the_files_they_started_with() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(AtomicU64::new(NOW));
    let db = setup(dir.path(), &clock);
    let region = db.regions("t").unwrap()[0].id;
    let fdir = dir.path().join("t").join(region.to_string()).join("f");

    // A scan opened before the compaction holds the old version.
    let mut scan = db.scan("t", &Scan::new()).unwrap();
    let first = scan.next().unwrap().unwrap();
    db.compact("t", true).unwrap();
    let store = Arc::clone(&db.region("t", region).unwrap().stores()[0]);
    assert_eq!(store.current().files.len(), 1);
    assert_eq!(
        store.lifecycle.graveyard_len(),
        3,
        "inputs wait for the reader"
    );
    assert_eq!(std::fs::read_dir(&fdir).unwrap().count(), 4);
    let rest: Vec<Bytes> = scan.by_ref().map(|r| r.unwrap().row).collect();
    let mut all = vec![first.row];
    all.extend(rest);
    assert_eq!(
        all,
        vec!["deleted-one", "fresh", "many"],
        "the old snapshot reads whole"
    );
    drop(scan);
    assert_eq!(
        store.lifecycle.reap(),
        3,
        "last reader gone: inputs deleted"
    );
    assert_eq!(std::fs::read_dir(&fdir).unwrap().count(), 1);
}

#[test]
fn files_a_reader_held_past_the_compaction_go_at_the_next_flush_or_close() {
    for by_close in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(AtomicU64::new(NOW));
        let db = setup(dir.path(), &clock);
        let region = db.regions("t").unwrap()[0].id;
        let fdir = dir.path().join("t").join(region.to_string()).join("f");

        // A reader holds the inputs past the compaction's end, then lets go; no
        // compaction follows to reap them.
        let mut scan = db.scan("t", &Scan::new()).unwrap();
        scan.next().unwrap().unwrap();
        db.compact("t", true).unwrap();
        assert_eq!(std::fs::read_dir(&fdir).unwrap().count(), 4);
        drop(scan);
        assert_eq!(
            std::fs::read_dir(&fdir).unwrap().count(),
            4,
            "nothing has reaped yet"
        );
        if by_close {
            db.close().unwrap();
            assert_eq!(
                std::fs::read_dir(&fdir).unwrap().count(),
                1,
                "close deleted the replaced files"
            );
        } else {
            put(&db, "later", "q", NOW, "x");
            db.flush("t").unwrap();
            assert_eq!(
                std::fs::read_dir(&fdir).unwrap().count(),
                2,
                "the flush deleted the replaced files: compacted file + flushed file"
            );
        }
    }
}
