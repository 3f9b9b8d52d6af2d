//! A throughput smoke run of the engine (not a timed test: it asserts correctness only and
//! prints figures). Runs only with `SPEEDLAYER_PERF=1`; meant for
//! `SPEEDLAYER_PERF=1 cargo test --release -p speedlayer-storage --test engine_throughput_smoke -- --nocapture`.
//! The real comparison with RocksDB is the `dbbench` driver in `benches/`.

use std::time::Instant;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_storage::{
    Db, Durability, EngineOptions, FamilyOptions, Get, Mutation, Scan, TableSchema,
};

fn key(i: u64) -> Bytes {
    Bytes::from(format!("{i:024}"))
}

#[test]
fn fill_and_read_throughput() {
    if std::env::var("SPEEDLAYER_PERF").ok().as_deref() != Some("1") {
        return;
    }
    let n: u64 = std::env::var("PERF_NUM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    let value = Bytes::from(vec![b'x'; 100]);
    let report = |name: &str, t: Instant, ops: u64| {
        let us = t.elapsed().as_secs_f64() * 1e6 / ops as f64;
        println!("{name:<12}: {us:>10.3} micros/op {:>8.0} ops/sec", 1e6 / us);
    };
    let t = Instant::now();
    for i in 0..n {
        let m = Mutation::new(key(i)).put("f", "", Some(1), value.clone());
        db.write("t", vec![m], Durability::Async).unwrap();
    }
    report("fillseq", t, n);
    let mut rng = StdRng::seed_from_u64(1);
    let t = Instant::now();
    for _ in 0..n {
        let i = rng.random_range(0..n);
        assert!(db.get("t", &Get::new(key(i))).unwrap().is_some());
    }
    report("readrandom", t, n);
    db.flush("t").unwrap();
    let t = Instant::now();
    for _ in 0..n {
        let i = rng.random_range(0..n);
        assert!(db.get("t", &Get::new(key(i))).unwrap().is_some());
    }
    report("readrandom*", t, n);
    let t = Instant::now();
    let rows = db.scan("t", &Scan::new()).unwrap().count() as u64;
    assert_eq!(rows, n);
    report("readseq", t, n);
    let t = Instant::now();
    for _ in 0..n {
        let i = rng.random_range(0..n * 10);
        let m = Mutation::new(key(i)).put("f", "", Some(1), value.clone());
        db.write("t", vec![m], Durability::Async).unwrap();
    }
    report("fillrandom", t, n);
    println!("(* = after flush, from HFiles)");
}
