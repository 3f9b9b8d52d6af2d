//! Flip every byte of small HFiles (both compressions, with a bloom): opening and reading
//! either fails with an error naming the file, or returns exactly the original cells —
//! never different data, never a panic. Truncated files never open.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use speedlayer_storage::cache::BlockCache;
use speedlayer_storage::hfile::{BloomType, Compression, FileOptions, HFileReader, HFileWriter};
use speedlayer_storage::{CellKey, CellKind, Error, KeyRef, Result};

fn cells() -> Vec<(CellKey, Bytes)> {
    (0..24u64)
        .map(|i| {
            (
                CellKey {
                    row: Bytes::from(format!("V{:04}20261122", i / 3)),
                    qualifier: Bytes::from(format!("q{}", i % 3)),
                    timestamp: 1_000 + i,
                    kind: if i % 5 == 4 {
                        CellKind::DeleteColumn
                    } else {
                        CellKind::Put
                    },
                    seq: i + 1,
                },
                Bytes::from(format!("value-{i}-{}", "x".repeat(i as usize))),
            )
        })
        .collect()
}

/// Cells of a whole scan, `last_row_before` answers, and short seeks.
type Observed = (
    Vec<(CellKey, Bytes)>,
    Vec<Option<Bytes>>,
    Vec<Vec<(CellKey, Bytes)>>,
);

/// Everything a reader can say about the file, or the first error.
fn read_all(path: &Path, id: u64) -> Result<Observed> {
    let r = HFileReader::open(
        &speedlayer_storage::fs::RealFs,
        path,
        id,
        Arc::new(BlockCache::new(1 << 20)),
    )?;
    let all = r.iter().collect::<Result<Vec<_>>>()?;
    let rows = ["V000320261122", "V000720261122", "zz"];
    let mut before = Vec::new();
    let mut seeks = Vec::new();
    for row in rows {
        before.push(r.last_row_before(Some(row.as_bytes()))?);
        let it = r.iter_from(KeyRef::first_of_row(row.as_bytes()))?;
        seeks.push(it.take(2).collect::<Result<Vec<_>>>()?);
    }
    Ok((all, before, seeks))
}

fn assert_names_file(e: &Error, path: &Path) {
    match e {
        Error::ChecksumMismatch { file, .. } | Error::Corruption { file, .. } => {
            assert_eq!(file, path, "{e}")
        }
        other => panic!("unexpected error kind: {other}"),
    }
}

#[test]
fn every_byte_flip_errors_or_returns_the_original_data() {
    let dir = tempfile::tempdir().unwrap();
    for (n, compression) in [Compression::None, Compression::Lz4]
        .into_iter()
        .enumerate()
    {
        let path = dir.path().join(format!("orig{n}.hfile"));
        let mut w = HFileWriter::create(
            &speedlayer_storage::fs::RealFs,
            &path,
            FileOptions::new(compression, BloomType::RowCol, 128),
        )
        .unwrap();
        for (k, v) in cells() {
            w.push(k.as_ref(), &v).unwrap();
        }
        w.finish().unwrap();
        let original = read_all(&path, 1).unwrap();
        assert_eq!(original.0, cells());
        let bytes = std::fs::read(&path).unwrap();
        let bad = dir.path().join(format!("bad{n}.hfile"));
        let (mut detected, mut flips) = (0, 0);
        for i in 0..bytes.len() {
            // Every byte with a one-bit flip; every third also fully inverted.
            let masks: &[u8] = if i % 3 == 0 { &[0x01, 0xff] } else { &[0x01] };
            for &mask in masks {
                flips += 1;
                let mut m = bytes.clone();
                m[i] ^= mask;
                std::fs::write(&bad, &m).unwrap();
                match read_all(&bad, 2) {
                    Ok(got) => assert_eq!(
                        got, original,
                        "flip {mask:#x} at byte {i} returned different data"
                    ),
                    Err(e) => {
                        assert_names_file(&e, &bad);
                        detected += 1;
                    }
                }
            }
        }
        // CRC32 catches every single-byte change in blocks and trailer.
        assert_eq!(detected, flips, "{compression:?}");
    }
}

#[test]
fn truncated_files_never_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.hfile");
    let mut w = HFileWriter::create(
        &speedlayer_storage::fs::RealFs,
        &path,
        FileOptions::new(Compression::Lz4, BloomType::Row, 128),
    )
    .unwrap();
    for (k, v) in cells() {
        w.push(k.as_ref(), &v).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let cut = dir.path().join("cut.hfile");
    for n in 0..bytes.len() {
        std::fs::write(&cut, &bytes[..n]).unwrap();
        let e = HFileReader::open(
            &speedlayer_storage::fs::RealFs,
            &cut,
            1,
            Arc::new(BlockCache::new(0)),
        )
        .unwrap_err();
        assert_names_file(&e, &cut);
    }
}
