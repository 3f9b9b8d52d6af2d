//! Bulk loads into a table that is taking writes and splitting at the same time: every
//! load that commits is wholly visible, a load that meets changed boundaries is refused
//! (`BoundariesChanged`) and staged again, every acknowledged write is still there, and
//! everything is again there after a reopen.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Mutation, Scan, TableSchema,
};

const LOADS: usize = 12;
const ROWS_PER_LOAD: usize = 400;

/// Rows of load `l` interleave with every other load's and with the writers' rows.
fn load_row(l: usize, i: usize) -> String {
    format!("{:05}-L{l:02}", (i * 25 + l * 2) % 10_000)
}

fn rows(db: &Db, family: &[u8]) -> BTreeSet<String> {
    db.scan("t", &Scan::new())
        .unwrap()
        .map(|r| r.unwrap())
        .filter(|r| r.cells.iter().any(|c| c.family == family))
        .map(|r| String::from_utf8(r.row.to_vec()).unwrap())
        .collect()
}

#[test]
fn loads_commit_whole_while_writes_and_splits_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Db::open(dir.path(), EngineOptions::default()).unwrap());
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("w"), FamilyOptions::new("l")],
    ))
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut acked = BTreeSet::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let r = format!("{:05}-W", (i * 7919) % 10_000);
                let m = Mutation::new(r.clone()).put("w", "q", None, "v");
                match db.write("t", vec![m], Durability::Sync) {
                    Ok(()) => {
                        acked.insert(r);
                        i += 1;
                    }
                    Err(Error::TooBusy(_)) => std::thread::yield_now(),
                    Err(e) => panic!("write failed: {e}"),
                }
            }
            acked
        })
    };
    let splitter = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut splits = 0;
            let mut k = 1usize;
            while !stop.load(Ordering::Relaxed) && splits < 30 {
                let key = format!("{:05}", (k * 3331) % 10_000);
                k += 1;
                let region = db.locate("t", key.as_bytes()).unwrap();
                match db.split_region("t", region.id, key.as_bytes()) {
                    Ok(_) => splits += 1,
                    Err(Error::InvalidArgument(_) | Error::TooBusy(_)) => {}
                    Err(e) => panic!("split failed: {e}"),
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            splits
        })
    };

    let mut loaded = BTreeSet::new();
    let mut refused = 0;
    for l in 0..LOADS {
        let mut mine: Vec<String> = (0..ROWS_PER_LOAD).map(|i| load_row(l, i)).collect();
        mine.sort();
        loop {
            let mut st = db.stage_bulk_load("t").unwrap();
            for r in &mine {
                st.push(r.as_bytes(), "l", b"q", 1, b"x").unwrap();
            }
            match db.commit_bulk_load(st) {
                Ok(done) => {
                    assert_eq!(done.cells, ROWS_PER_LOAD as u64);
                    break;
                }
                Err(Error::BoundariesChanged { .. }) => refused += 1,
                Err(e) => panic!("load {l}: {e}"),
            }
        }
        loaded.extend(mine);
        // Every committed load is wholly visible at once.
        let seen = rows(&db, b"l");
        assert!(loaded.is_subset(&seen), "load {l}: rows missing");
        assert_eq!(seen.len(), loaded.len(), "load {l}: rows of no load");
    }
    stop.store(true, Ordering::Relaxed);
    let acked = writer.join().unwrap();
    let splits = splitter.join().unwrap();
    eprintln!(
        "{LOADS} loads ({refused} refused and staged again), {} writes, {splits} splits",
        acked.len()
    );
    assert!(splits > 0 && !acked.is_empty());
    let check = |db: &Db, when: &str| {
        assert_eq!(rows(db, b"l"), loaded, "{when}: loaded rows");
        let w = rows(db, b"w");
        assert!(acked.is_subset(&w), "{when}: acknowledged writes missing");
    };
    check(&db, "live");
    db.close().unwrap();
    drop(db);
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    check(&db, "after reopen");
}
