//! Random and mutated bytes fed to every on-disk decoder (WAL record and segment, HFile
//! block, data block, index, bloom, info, trailer and whole file, manifest edit, log and
//! CURRENT): each returns a value or a typed error, never panics, never allocates wildly.
//! The stable-Rust companion of the cargo-fuzz targets in `storage/fuzz/`.
//! `SPEEDLAYER_LONG=1` runs 20× more cases.

use std::sync::Arc;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_storage::cache::BlockCache;
use speedlayer_storage::coding::{put_frame, read_frame};
use speedlayer_storage::hfile::block::{DataBlock, decode_block};
use speedlayer_storage::hfile::bloom::Bloom;
use speedlayer_storage::hfile::index::BlockIndex;
use speedlayer_storage::hfile::{
    BloomType, Compression, FileInfo, FileOptions, HFileReader, HFileWriter, Trailer,
};
use speedlayer_storage::manifest::{FileMeta, Manifest, VersionEdit};
use speedlayer_storage::wal::{Wal, WalEntry, WalOptions, segment_header, segment_name};
use speedlayer_storage::{Cell, CellKey, CellKind};

fn rounds() -> usize {
    if std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1") {
        20_000
    } else {
        1_000
    }
}

/// `seed` with a few random byte edits, insertions, deletions or a truncation.
fn mutate(rng: &mut StdRng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..rng.random_range(1..4) {
        match rng.random_range(0..5) {
            0 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v[i] = rng.random();
            }
            1 => {
                let i = rng.random_range(0..=v.len());
                v.insert(i, rng.random());
            }
            2 if !v.is_empty() => {
                let i = rng.random_range(0..v.len());
                v.remove(i);
            }
            3 => {
                let n = rng.random_range(0..=v.len());
                v.truncate(n);
            }
            _ => {
                let n = rng.random_range(0..64);
                v.extend((0..n).map(|_| rng.random::<u8>()));
            }
        }
    }
    v
}

fn random_bytes(rng: &mut StdRng) -> Vec<u8> {
    let n = rng.random_range(0..200);
    (0..n).map(|_| rng.random()).collect()
}

fn inputs(rng: &mut StdRng, seeds: &[Vec<u8>]) -> Vec<Vec<u8>> {
    (0..rounds())
        .map(|i| {
            if i % 4 == 0 {
                random_bytes(rng)
            } else {
                mutate(rng, &seeds[i % seeds.len()])
            }
        })
        .collect()
}

fn sample_entry() -> WalEntry {
    let mut c = Cell::put("V0042", "cf1", "speed", 1000, "87");
    c.seq = 9;
    let mut d = Cell::put("V0042", "cf1", "", 999, "");
    d.kind = CellKind::DeleteFamily;
    d.seq = 10;
    WalEntry {
        seq: 9,
        cells: vec![c, d],
    }
}

#[test]
fn wal_decoders() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut payload = Vec::new();
    sample_entry().encode_into(&mut payload);
    let mut framed = Vec::new();
    put_frame(&mut framed, &payload);
    for input in inputs(&mut rng, &[payload.clone(), framed.clone()]) {
        let _ = WalEntry::decode(&Bytes::from(input.clone()));
        let _ = read_frame(&input, 0, 1 << 20);
    }
    // Whole segments through Wal::open (fewer rounds: it touches the filesystem).
    let mut seg = segment_header().to_vec();
    seg.extend_from_slice(&framed);
    seg.extend_from_slice(&framed);
    for input in inputs(&mut rng, &[seg]).into_iter().take(rounds() / 5) {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(segment_name(9)), &input).unwrap();
        let _ = Wal::open(d.path(), WalOptions::default());
    }
}

#[test]
fn hfile_decoders() {
    let mut rng = StdRng::seed_from_u64(2);
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("seed.hfile");
    let mut w = HFileWriter::create(
        &speedlayer_storage::fs::RealFs,
        &path,
        FileOptions::new(Compression::Lz4, BloomType::RowCol, 256),
    )
    .unwrap();
    for i in 0..40u64 {
        let k = CellKey {
            row: Bytes::from(format!("V{:04}", i / 4)),
            qualifier: Bytes::from(format!("q{}", i % 4)),
            timestamp: 5,
            kind: CellKind::Put,
            seq: i,
        };
        w.push(k.as_ref(), b"value value value").unwrap();
    }
    let info = w.finish().unwrap();
    let file = std::fs::read(&path).unwrap();
    let t = Trailer::decode(&file[file.len() - 64..], file.len() as u64).unwrap();
    let index = file[t.index_off as usize..(t.index_off + t.index_len) as usize].to_vec();
    let index = decode_block(&index).unwrap().to_vec();
    let first_len = BlockIndex::decode(&index, t.data_end()).unwrap().entries[0].length;
    let first_block = file[..first_len as usize].to_vec();
    let first_contents = decode_block(&first_block).unwrap().to_vec();
    let bloom = file[t.bloom_off as usize..(t.bloom_off + t.bloom_len) as usize].to_vec();
    let bloom = decode_block(&bloom).unwrap().to_vec();
    let info_bytes = info.encode();

    for input in inputs(
        &mut rng,
        &[first_block, first_contents, index, bloom, info_bytes],
    ) {
        let _ = decode_block(&input);
        let unchecked = DataBlock::from_verified(Bytes::from(input.clone()));
        let _ = unchecked.entries();
        let _ = unchecked.seek(seek_key());
        if let Ok(b) = DataBlock::new(Bytes::from(input.clone())) {
            let _ = b.entries();
            let _ = b.seek(seek_key());
        }
        let _ = BlockIndex::decode(&input, 1 << 20);
        if let Ok(b) = Bloom::decode(&input) {
            let _ = b.may_contain_hash(42);
        }
        let _ = FileInfo::decode(&input);
        if input.len() >= 64 {
            let _ = Trailer::decode(&input[input.len() - 64..], input.len() as u64);
        }
    }
    // Whole files through HFileReader::open + full read.
    let bad = d.path().join("bad.hfile");
    for input in inputs(&mut rng, &[file]).into_iter().take(rounds() / 5) {
        std::fs::write(&bad, &input).unwrap();
        if let Ok(r) = HFileReader::open(
            &speedlayer_storage::fs::RealFs,
            &bad,
            2,
            Arc::new(BlockCache::new(1 << 20)),
        ) {
            let _ = r.iter().count();
            let _ = r.last_row_before(Some(b"V0005"));
            let _ = r.iter_from(seek_key()).map(|i| i.count());
        }
    }
}

fn seek_key() -> speedlayer_storage::KeyRef<'static> {
    speedlayer_storage::KeyRef::first_of_row(b"V0003")
}

#[test]
fn manifest_decoders() {
    let mut rng = StdRng::seed_from_u64(3);
    let edit = VersionEdit {
        add_files: vec![(
            "cf1".into(),
            FileMeta {
                id: 3,
                size: 10,
                first_row: Bytes::from_static(b"a"),
                last_row: Bytes::from_static(b"b"),
                min_ts: 1,
                max_ts: 2,
                min_seq: 1,
                max_seq: 2,
                cell_count: 1,
                tombstone_count: 0,
            },
        )],
        remove_files: vec![("cf1".into(), 1)],
        flushed_seq: Some(4),
        next_file_id: Some(5),
        compaction_begin: Some((6, vec![1, 2])),
        compaction_end: Some(7),
    };
    let enc = edit.encode();
    assert_eq!(VersionEdit::decode(&enc).unwrap(), edit);
    for input in inputs(&mut rng, &[enc]) {
        let _ = VersionEdit::decode(&input);
    }
    // Whole manifest directories: a log and CURRENT.
    let d = tempfile::tempdir().unwrap();
    {
        let (mut m, _) = Manifest::open(d.path()).unwrap();
        m.apply(&VersionEdit {
            add_files: edit.add_files.clone(),
            ..Default::default()
        })
        .unwrap();
        m.apply(&VersionEdit {
            flushed_seq: Some(9),
            ..Default::default()
        })
        .unwrap();
    }
    let log = std::fs::read(d.path().join("MANIFEST-000001")).unwrap();
    let current = std::fs::read(d.path().join("CURRENT")).unwrap();
    for (i, input) in inputs(&mut rng, &[log, current])
        .into_iter()
        .take(rounds() / 5)
        .enumerate()
    {
        let d = tempfile::tempdir().unwrap();
        let name = if i % 2 == 0 {
            "MANIFEST-000001"
        } else {
            "CURRENT"
        };
        if i % 2 == 0 {
            std::fs::write(d.path().join("CURRENT"), b"MANIFEST-000001 5a055f23\n").unwrap();
        }
        std::fs::write(d.path().join(name), &input).unwrap();
        let _ = Manifest::open(d.path());
    }
}
