//! Reads never see half of a concurrent batch: a writer writes batches whose cells all
//! carry the same value (8 rows, and 8 columns of one row) while readers scan and get;
//! every read must see one value across the whole batch, never going backwards. Small
//! memstores make flushes happen during the run, so snapshots span memstores and files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, Scan, TableSchema,
};

const BATCHES: u64 = 1500;

fn batch(v: u64) -> Vec<Mutation> {
    let val = Bytes::from(v.to_string());
    let mut out: Vec<Mutation> = (0..8)
        .map(|i| Mutation::new(format!("b{i}")).put("f", "q", Some(v), val.clone()))
        .collect();
    let mut wide = Mutation::new("wide");
    for c in 0..8 {
        wide = wide.put("f", format!("c{c}"), Some(v), val.clone());
    }
    out.push(wide);
    out
}

fn parse(b: &Bytes) -> u64 {
    std::str::from_utf8(b).unwrap().parse().unwrap()
}

#[test]
fn concurrent_readers_see_only_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let opts = EngineOptions {
        memstore_flush_bytes: 16 * 1024,
        max_frozen_memstores: 3,
        write_stall_ms: 10_000,
        ..EngineOptions::default()
    };
    let db = Arc::new(Db::open(dir.path(), opts).unwrap());
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    db.write("t", batch(0), Durability::Async).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let mut readers = Vec::new();
    for kind in 0..2 {
        let db = Arc::clone(&db);
        let done = Arc::clone(&done);
        readers.push(std::thread::spawn(move || {
            let mut last = 0;
            let mut reads = 0u64;
            while !done.load(Ordering::Acquire) || reads < 10 {
                let values: Vec<u64> = if kind == 0 {
                    let rows: Vec<_> = db
                        .scan("t", &Scan::new().prefix("b"))
                        .unwrap()
                        .map(|r| r.unwrap())
                        .collect();
                    assert_eq!(rows.len(), 8, "every row of the batch");
                    rows.iter().map(|r| parse(&r.cells[0].value)).collect()
                } else {
                    let row = db.get("t", &Get::new("wide")).unwrap().unwrap();
                    assert_eq!(row.cells.len(), 8, "every column of the batch");
                    row.cells.iter().map(|c| parse(&c.value)).collect()
                };
                let first = values[0];
                assert!(
                    values.iter().all(|&v| v == first),
                    "half a batch seen: {values:?}"
                );
                assert!(first >= last, "went backwards: {first} after {last}");
                last = first;
                reads += 1;
            }
            reads
        }));
    }
    for v in 1..=BATCHES {
        db.write("t", batch(v), Durability::Async).unwrap();
    }
    done.store(true, Ordering::Release);
    for r in readers {
        assert!(r.join().unwrap() >= 10);
    }
    let stats = db.stats();
    assert!(
        stats.table("t").unwrap().flushes() > 0,
        "flushes must happen during the run"
    );
}
