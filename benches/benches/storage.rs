//! Criterion benches of the storage engine, one group per component: the `Db` write path
//! (single put per durability mode, batched 8-column rows), the WAL append per durability
//! mode, memstore insert, flush, HFile write and read, get hit and miss, and a prefix scan
//! of one car's day (86,400 rows of 8 columns, read from HFiles).
//!
//! Run with `cargo bench -p speedlayer-benches --bench storage` (optionally a filter such
//! as `-- wal/`). They compile in CI (`clippy --all-targets`) but are not run there. The
//! db_bench-style comparison with RocksDB is `benches/compare_rocksdb.sh`, not this file.

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use speedlayer_storage::cache::BlockCache;
use speedlayer_storage::hfile::{FileOptions, HFileReader, HFileWriter};
use speedlayer_storage::memstore::Memstore;
use speedlayer_storage::wal::{Wal, WalEntry, WalOptions};
use speedlayer_storage::{
    BloomType, Cell, CellKey, CellKind, Compression, Db, Durability, EngineOptions, FamilyOptions,
    Get, Mutation, MutationOp, Scan, TableSchema,
};

/// The telemetry family and the 8 driving-event columns of SPEC §1.
const FAMILY: &str = "cf1";
const COLUMNS: [&str; 8] = [
    "time", "car", "accel", "brake", "steer", "signal", "speed", "area",
];
/// Rows in one car's day at one event per second.
const DAY_ROWS: u64 = 86_400;
/// Cells in the HFile benches.
const FILE_CELLS: u64 = 10_000;
/// Rows per flush in the flush bench.
const FLUSH_ROWS: u64 = 10_000;

/// Row key = car number + event time (`yyyyMMddHHmmss`), as SPEC §3 describes.
fn car_row(car: u32, second_of_day: u64) -> Bytes {
    let (h, m, s) = (
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60,
    );
    Bytes::from(format!("V{car:04}20261122{h:02}{m:02}{s:02}"))
}

/// One driving event as a row of 8 columns.
fn event_row(car: u32, second_of_day: u64) -> Mutation {
    let values: [String; 8] = [
        format!("20261122{second_of_day:06}"),
        format!("V{car:04}"),
        (second_of_day % 10).to_string(),
        "0".into(),
        format!("-{}", second_of_day % 540),
        "N".into(),
        (second_of_day % 300).to_string(),
        "A07".into(),
    ];
    Mutation {
        row: car_row(car, second_of_day),
        ops: COLUMNS
            .iter()
            .zip(values)
            .map(|(q, v)| MutationOp::Put {
                family: Bytes::from_static(FAMILY.as_bytes()),
                qualifier: Bytes::from_static(q.as_bytes()),
                timestamp: None,
                value: Bytes::from(v),
            })
            .collect(),
    }
}

fn single_put(key: u64) -> Mutation {
    Mutation {
        row: Bytes::copy_from_slice(&key.to_be_bytes()),
        ops: vec![MutationOp::Put {
            family: Bytes::from_static(FAMILY.as_bytes()),
            qualifier: Bytes::from_static(b"v"),
            timestamp: None,
            value: Bytes::from_static(&[b'x'; 100]),
        }],
    }
}

fn open_db(dir: &Path, memstore_flush_bytes: usize) -> Db {
    let opts = EngineOptions {
        memstore_flush_bytes,
        ..EngineOptions::default()
    };
    let db = Db::open(dir, opts).expect("open db");
    db.create_table(TableSchema {
        name: "driving".into(),
        families: vec![FamilyOptions::new(FAMILY)],
    })
    .expect("create table");
    db
}

fn put_single(c: &mut Criterion) {
    let mut group = c.benchmark_group("db/put_single");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [
        ("skip_wal", Durability::SkipWal),
        ("async", Durability::Async),
        ("sync", Durability::Sync),
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = open_db(dir.path(), 64 << 20);
        let mut key = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                key += 1;
                db.write("driving", vec![single_put(key)], durability)
                    .expect("write");
            });
        });
        db.close().expect("close");
    }
    group.finish();
}

fn put_batch_8_columns(c: &mut Criterion) {
    const ROWS: u64 = 64;
    let mut group = c.benchmark_group("db/put_batch_8col_rows");
    group.throughput(Throughput::Elements(ROWS));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path(), 64 << 20);
    let mut second = 0u64;
    group.bench_function(BenchmarkId::new("async", format!("{ROWS}_rows")), |b| {
        b.iter_batched(
            || {
                let batch: Vec<Mutation> = (0..ROWS)
                    .map(|i| event_row(42, (second + i) % DAY_ROWS))
                    .collect();
                second += ROWS;
                batch
            },
            |batch| {
                db.write("driving", batch, Durability::Async)
                    .expect("write")
            },
            BatchSize::SmallInput,
        );
    });
    db.close().expect("close");
    group.finish();
}

fn wal_append(c: &mut Criterion) {
    let mut group = c.benchmark_group("wal/append_one_cell");
    group.throughput(Throughput::Elements(1));
    for (name, durability) in [("async", Durability::Async), ("sync", Durability::Sync)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (wal, _) = Wal::open(dir.path(), WalOptions::default()).expect("open wal");
        let mut seq = 0u64;
        group.bench_function(name, |b| {
            b.iter(|| {
                seq += 1;
                let mut cell = Cell::put(
                    Bytes::copy_from_slice(&seq.to_be_bytes()),
                    Bytes::from_static(FAMILY.as_bytes()),
                    Bytes::from_static(b"v"),
                    seq,
                    Bytes::from_static(&[b'x'; 100]),
                );
                cell.seq = seq;
                let entry = WalEntry {
                    seq,
                    cells: vec![cell],
                };
                wal.append(&entry, durability).expect("append");
            });
        });
    }
    group.finish();
}

fn key(n: u64) -> CellKey {
    CellKey {
        row: Bytes::copy_from_slice(&n.to_be_bytes()),
        qualifier: Bytes::from_static(b"v"),
        timestamp: 1,
        kind: CellKind::Put,
        seq: n + 1,
    }
}

fn memstore_insert(c: &mut Criterion) {
    let mut group = c.benchmark_group("memstore");
    group.throughput(Throughput::Elements(1));
    let mem = Memstore::new();
    let mut n = 0u64;
    group.bench_function("insert_random_key", |b| {
        b.iter(|| {
            // A cheap permutation of n, so inserts land all over the skiplist.
            n += 1;
            let k = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            black_box(mem.insert(key(k), Bytes::from_static(&[b'x'; 100])));
        });
    });
    group.finish();
}

fn flush(c: &mut Criterion) {
    let mut group = c.benchmark_group("db/flush");
    group.throughput(Throughput::Elements(FLUSH_ROWS * COLUMNS.len() as u64));
    group.sample_size(10);
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path(), 1 << 30);
    let mut round = 0u32;
    group.bench_function(format!("{FLUSH_ROWS}_rows_x8_cols"), |b| {
        b.iter_batched(
            || {
                // A different car per round, so every flush writes new rows.
                round += 1;
                for chunk in (0..FLUSH_ROWS).collect::<Vec<_>>().chunks(500) {
                    let batch = chunk.iter().map(|&s| event_row(round, s)).collect();
                    db.write("driving", batch, Durability::SkipWal)
                        .expect("write");
                }
            },
            |()| db.flush("driving").expect("flush"),
            BatchSize::PerIteration,
        );
    });
    db.close().expect("close");
    group.finish();
}

fn write_file(path: &Path, opts: FileOptions) {
    let mut w =
        HFileWriter::create(&speedlayer_storage::fs::RealFs, path, opts).expect("create hfile");
    let value = [b'x'; 100];
    for n in 0..FILE_CELLS {
        let k = key(n);
        w.push(k.as_ref(), &value).expect("push");
    }
    w.finish().expect("finish");
}

fn hfile(c: &mut Criterion) {
    let mut group = c.benchmark_group("hfile");
    group.throughput(Throughput::Elements(FILE_CELLS));
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = FileOptions::new(Compression::Lz4, BloomType::Row, 64 << 10);
    let mut file_no = 0u64;
    group.bench_function(format!("write_{FILE_CELLS}_cells_lz4"), |b| {
        b.iter(|| {
            file_no += 1;
            let path = dir.path().join(format!("w{file_no}.hfile"));
            write_file(&path, opts);
            std::fs::remove_file(&path).expect("remove");
        });
    });

    let path = dir.path().join("read.hfile");
    write_file(&path, opts);
    let cache = Arc::new(BlockCache::new(64 << 20));
    let reader = HFileReader::open(
        &speedlayer_storage::fs::RealFs,
        &path,
        1,
        Arc::clone(&cache),
    )
    .expect("open hfile");
    group.bench_function(format!("read_all_{FILE_CELLS}_cells_cached"), |b| {
        b.iter(|| {
            let mut n = 0u64;
            for cell in reader.iter() {
                black_box(cell.expect("cell"));
                n += 1;
            }
            assert_eq!(n, FILE_CELLS);
        });
    });
    group.throughput(Throughput::Elements(1));
    let mut n = 0u64;
    group.bench_function("seek_one_cell_cached", |b| {
        b.iter(|| {
            n = (n + 7919) % FILE_CELLS;
            let k = key(n);
            let mut it = reader.iter_from(k.as_ref()).expect("seek");
            black_box(it.next());
        });
    });
    group.finish();
}

fn get_hit_and_miss(c: &mut Criterion) {
    const ROWS: u64 = 100_000;
    let mut group = c.benchmark_group("db/get");
    group.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path(), 64 << 20);
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(1000) {
        // Even keys only, so odd keys inside the file's range are misses.
        let batch = chunk.iter().map(|&k| single_put(k * 2)).collect();
        db.write("driving", batch, Durability::SkipWal)
            .expect("write");
    }
    db.flush("driving").expect("flush");
    let mut n = 0u64;
    group.bench_function("hit_from_hfile", |b| {
        b.iter(|| {
            n = (n + 7919) % ROWS;
            let row = db
                .get(
                    "driving",
                    &Get::new(Bytes::copy_from_slice(&(n * 2).to_be_bytes())),
                )
                .expect("get");
            assert!(row.is_some());
        });
    });
    group.bench_function("miss_inside_key_range", |b| {
        b.iter(|| {
            n = (n + 7919) % ROWS;
            let row = db
                .get(
                    "driving",
                    &Get::new(Bytes::copy_from_slice(&(n * 2 + 1).to_be_bytes())),
                )
                .expect("get");
            assert!(row.is_none());
        });
    });
    db.close().expect("close");
    group.finish();
}

fn scan_car_day(c: &mut Criterion) {
    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Elements(DAY_ROWS));
    let dir = tempfile::tempdir().expect("tempdir");
    let db = open_db(dir.path(), 64 << 20);
    // Car 42's full day, with neighbouring cars before and after it in key order.
    for car in [41u32, 42, 43] {
        let rows = if car == 42 { DAY_ROWS } else { 3_600 };
        for chunk in (0..rows).collect::<Vec<_>>().chunks(500) {
            let batch = chunk.iter().map(|&s| event_row(car, s)).collect();
            db.write("driving", batch, Durability::SkipWal)
                .expect("write");
        }
    }
    db.flush("driving").expect("flush");
    let scan = Scan::new().prefix(Bytes::from_static(b"V004220261122"));
    group.bench_function("prefix_one_car_day_86400_rows_x8_cols", |b| {
        b.iter(|| {
            let mut rows = 0u64;
            for row in db.scan("driving", &scan).expect("scan") {
                let row = row.expect("row");
                assert_eq!(row.cells.len(), COLUMNS.len());
                rows += 1;
            }
            assert_eq!(rows, DAY_ROWS);
        });
    });
    db.close().expect("close");
    group.finish();
}

criterion_group!(
    storage,
    put_single,
    put_batch_8_columns,
    wal_append,
    memstore_insert,
    flush,
    hfile,
    get_hit_and_miss,
    scan_car_day
);
criterion_main!(storage);
