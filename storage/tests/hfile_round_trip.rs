//! HFiles written from random sorted cells read back exactly — whole iteration, seeks,
//! `last_row_before`, file info — for every compression and bloom type, and the bloom
//! filter never gives a false negative.

use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_storage::cache::BlockCache;
use speedlayer_storage::hfile::{BloomType, Compression, FileOptions, HFileReader, HFileWriter};
use speedlayer_storage::{CellKey, CellKind, Error, KeyRef};

fn random_cells(rng: &mut StdRng, n: usize) -> Vec<(CellKey, Bytes)> {
    let kinds = [
        CellKind::Put,
        CellKind::Put,
        CellKind::Put,
        CellKind::Delete,
        CellKind::DeleteColumn,
    ];
    let mut cells: Vec<(CellKey, Bytes)> = (0..n)
        .map(|_| {
            let row = format!("V{:04}{}", rng.random_range(0..150), rng.random_range(0..3));
            let mut kind = kinds[rng.random_range(0..kinds.len())];
            let qualifier = if rng.random_ratio(1, 40) {
                kind = CellKind::DeleteFamily;
                String::new()
            } else {
                ["acc", "brake", "speed", "area"][rng.random_range(0..4)].to_string()
            };
            let vlen = if kind == CellKind::Put {
                rng.random_range(0..300)
            } else {
                0
            };
            let value: Vec<u8> = (0..vlen).map(|i| (i % 7) as u8 + b'a').collect();
            (
                CellKey {
                    row: Bytes::from(row),
                    qualifier: Bytes::from(qualifier),
                    timestamp: rng.random_range(1_000..1_100),
                    kind,
                    seq: rng.random_range(1..1_000_000),
                },
                Bytes::from(value),
            )
        })
        .collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    cells.dedup_by(|a, b| a.0 == b.0);
    cells
}

fn write(path: &std::path::Path, cells: &[(CellKey, Bytes)], opts: FileOptions) {
    let mut w = HFileWriter::create(&speedlayer_storage::fs::RealFs, path, opts).unwrap();
    for (k, v) in cells {
        w.push(k.as_ref(), v).unwrap();
    }
    let info = w.finish().unwrap();
    assert_eq!(info.cell_count, cells.len() as u64);
    assert_eq!(info.first_key, cells[0].0);
    assert_eq!(info.last_key, cells.last().unwrap().0);
    assert_eq!(
        info.min_ts,
        cells.iter().map(|c| c.0.timestamp).min().unwrap()
    );
    assert_eq!(
        info.max_ts,
        cells.iter().map(|c| c.0.timestamp).max().unwrap()
    );
    assert_eq!(info.max_seq, cells.iter().map(|c| c.0.seq).max().unwrap());
    let tombstones = cells.iter().filter(|c| c.0.kind.is_delete()).count() as u64;
    assert_eq!(info.tombstone_count, tombstones);
    assert_eq!(info.put_count + info.tombstone_count, info.cell_count);
}

#[test]
fn random_cells_round_trip_with_every_option() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let cells = random_cells(&mut rng, 3000);
    let rows: Vec<Bytes> = {
        let mut r: Vec<Bytes> = cells.iter().map(|c| c.0.row.clone()).collect();
        r.dedup();
        r
    };
    let dir = tempfile::tempdir().unwrap();
    let mut id = 0;
    for compression in [Compression::None, Compression::Lz4] {
        for bloom in [BloomType::None, BloomType::Row, BloomType::RowCol] {
            id += 1;
            let path = dir.path().join(format!("{id}.hfile"));
            let opts = FileOptions::new(compression, bloom, 1024);
            write(&path, &cells, opts);
            let cache = Arc::new(BlockCache::new(1 << 20));
            let r = HFileReader::open(&speedlayer_storage::fs::RealFs, &path, id, cache.clone())
                .unwrap();
            assert!(r.block_count() > 20, "small blocks: {}", r.block_count());

            let all: Vec<_> = r.iter().map(Result::unwrap).collect();
            assert_eq!(all, cells, "{compression:?} {bloom:?}");
            let misses = cache.stats().misses;
            let again: Vec<_> = r.iter().map(Result::unwrap).collect();
            assert_eq!(again, cells);
            assert_eq!(
                cache.stats().misses,
                misses,
                "second pass is served by the cache"
            );

            // Seeks to existing keys, to row starts, and to keys between cells.
            for _ in 0..300 {
                let probe = &cells[rng.random_range(0..cells.len())].0;
                let mut targets = vec![probe.clone()];
                targets.push(CellKey {
                    seq: 0,
                    ..probe.clone()
                });
                targets.push(KeyRef::first_of_row(&probe.row).to_owned_key());
                let mut row = probe.row.to_vec();
                row.push(0);
                targets.push(KeyRef::first_of_row(&row).to_owned_key());
                for t in targets {
                    let want = cells.partition_point(|c| c.0 < t);
                    let got: Vec<_> = r
                        .iter_from(t.as_ref())
                        .unwrap()
                        .take(3)
                        .map(Result::unwrap)
                        .collect();
                    let end = (want + 3).min(cells.len());
                    assert_eq!(got, cells[want..end].to_vec(), "seek {t:?}");
                }
            }
            let past = KeyRef::first_of_row(b"zzzz");
            assert!(r.iter_from(past).unwrap().next().is_none());
            let mut it = r.iter();
            it.seek(cells[10].0.as_ref()).unwrap();
            assert_eq!(it.next().unwrap().unwrap(), cells[10]);

            // last_row_before: greatest row strictly below.
            assert_eq!(r.last_row_before(None).unwrap(), rows.last().cloned());
            for (i, row) in rows.iter().enumerate() {
                let want = if i == 0 {
                    None
                } else {
                    Some(rows[i - 1].clone())
                };
                assert_eq!(r.last_row_before(Some(row)).unwrap(), want);
                let mut after = row.to_vec();
                after.push(0);
                assert_eq!(r.last_row_before(Some(&after)).unwrap(), Some(row.clone()));
            }
            assert_eq!(r.last_row_before(Some(b"A")).unwrap(), None);

            // Bloom: no false negatives, for rows and for columns (including rows whose
            // only relevant cell is a DeleteFamily marker).
            for (k, _) in &cells {
                assert!(r.may_contain_row(&k.row));
                assert!(r.may_contain(&k.row, &k.qualifier));
                if k.kind == CellKind::DeleteFamily {
                    assert!(r.may_contain(&k.row, b"any-column"));
                }
            }
            if bloom != BloomType::None {
                let fp = (0..2000)
                    .filter(|i| r.may_contain_row(format!("V{:04}x", i % 150).as_bytes()))
                    .count();
                assert!(fp < 100, "{bloom:?}: {fp}/2000 false positives");
            }
            assert!(!r.may_contain_row(b"A-before-first"));
        }
    }
}

#[test]
fn writer_refuses_out_of_order_duplicate_and_empty() {
    let dir = tempfile::tempdir().unwrap();
    let k = |row: &'static str, seq| CellKey {
        row: Bytes::from_static(row.as_bytes()),
        qualifier: Bytes::from_static(b"q"),
        timestamp: 5,
        kind: CellKind::Put,
        seq,
    };
    let mut w = HFileWriter::create(
        &speedlayer_storage::fs::RealFs,
        &dir.path().join("a.hfile"),
        FileOptions::default(),
    )
    .unwrap();
    w.push(k("b", 1).as_ref(), b"v").unwrap();
    assert!(matches!(
        w.push(k("b", 1).as_ref(), b"v"),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        w.push(k("a", 1).as_ref(), b"v"),
        Err(Error::InvalidArgument(_))
    ));
    // A higher seq at the same (row, qualifier, ts, kind) sorts first: out of order.
    assert!(matches!(
        w.push(k("b", 2).as_ref(), b"v"),
        Err(Error::InvalidArgument(_))
    ));
    w.push(k("c", 1).as_ref(), b"v").unwrap();
    w.finish().unwrap();

    let w = HFileWriter::create(
        &speedlayer_storage::fs::RealFs,
        &dir.path().join("empty.hfile"),
        FileOptions::default(),
    )
    .unwrap();
    assert!(matches!(w.finish(), Err(Error::InvalidArgument(_))));
    for block_size in [0, 65 << 20] {
        let opts = FileOptions::new(Compression::Lz4, BloomType::Row, block_size);
        let err = HFileWriter::create(
            &speedlayer_storage::fs::RealFs,
            &dir.path().join("bs.hfile"),
            opts,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err}");
    }
    // The existing file is never overwritten.
    assert!(
        HFileWriter::create(
            &speedlayer_storage::fs::RealFs,
            &dir.path().join("a.hfile"),
            FileOptions::default()
        )
        .is_err()
    );
}

#[test]
fn large_values_make_single_cell_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.hfile");
    let cells: Vec<(CellKey, Bytes)> = (0..5)
        .map(|i| {
            (
                CellKey {
                    row: Bytes::from(format!("r{i}")),
                    qualifier: Bytes::from_static(b"blob"),
                    timestamp: 1,
                    kind: CellKind::Put,
                    seq: 1,
                },
                Bytes::from(vec![i as u8; 200_000]),
            )
        })
        .collect();
    write(
        &path,
        &cells,
        FileOptions::new(Compression::Lz4, BloomType::Row, 4096),
    );
    let r = HFileReader::open(
        &speedlayer_storage::fs::RealFs,
        &path,
        1,
        Arc::new(BlockCache::new(0)),
    )
    .unwrap();
    assert_eq!(r.block_count(), 5);
    assert_eq!(r.iter().map(Result::unwrap).collect::<Vec<_>>(), cells);
}
