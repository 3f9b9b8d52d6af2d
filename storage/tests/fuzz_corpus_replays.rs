//! Every committed fuzz corpus file (`storage/fuzz/corpus/<target>/`) and every crash
//! regression (`storage/fuzz/regressions/<target>/`) through the same function its
//! cargo-fuzz target runs (`speedlayer_storage::fuzzing`): the whole campaign's coverage,
//! replayed on stable Rust in well under a second, without cargo-fuzz.
//!
//! The ignored test `write_seed_corpus` writes the seed corpus the campaign starts from:
//! round-trip encodings of real values. `scripts/fuzz.sh` runs it with `FUZZ_SEED_DIR`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use speedlayer_storage::bulk::commit::{CommitPart, CommitRecord};
use speedlayer_storage::coding::put_frame;
use speedlayer_storage::compaction::CompactionStyle;
use speedlayer_storage::db::catalog::{Catalog, RegionEntry, TableEntry};
use speedlayer_storage::fuzzing;
use speedlayer_storage::hfile::block::decode_block;
use speedlayer_storage::hfile::index::BlockIndex;
use speedlayer_storage::hfile::{
    BloomType, Compression, FileOptions, HFileWriter, TRAILER_BYTES, Trailer,
};
use speedlayer_storage::manifest::{FileMeta, VersionEdit};
use speedlayer_storage::wal::WalEntry;
use speedlayer_storage::{Cell, CellKey, CellKind, FamilyOptions, TableSchema};

/// Runs every file under `fuzz/{corpus,regressions}/<target>/` through `body`; returns how
/// many there were.
fn replay(target: &str, body: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn wal_record_corpus_replays() {
    assert!(
        replay("wal_record", fuzzing::wal_record) > 0,
        "empty corpus"
    );
}

#[test]
fn hfile_block_corpus_replays() {
    assert!(
        replay("hfile_block", fuzzing::hfile_block) > 0,
        "empty corpus"
    );
}

#[test]
fn manifest_edit_corpus_replays() {
    assert!(
        replay("manifest_edit", fuzzing::manifest_edit) > 0,
        "empty corpus"
    );
}

#[test]
fn catalog_corpus_replays() {
    assert!(replay("catalog", fuzzing::catalog) > 0, "empty corpus");
}

#[test]
fn bulk_commit_corpus_replays() {
    assert!(
        replay("bulk_commit", fuzzing::bulk_commit) > 0,
        "empty corpus"
    );
}

fn write_seeds(root: &Path, target: &str, seeds: &[Vec<u8>]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
    }
}

fn wal_seeds() -> Vec<Vec<u8>> {
    let mut put = Cell::put("V0042", "cf1", "speed", 1000, "87");
    put.seq = 9;
    let mut del = Cell::put("V0042", "cf1", "", 999, "");
    del.kind = CellKind::DeleteFamily;
    del.seq = 10;
    let mut payload = Vec::new();
    WalEntry {
        seq: 9,
        cells: vec![put, del],
    }
    .encode_into(&mut payload);
    let mut framed = Vec::new();
    put_frame(&mut framed, &payload);
    vec![payload, framed]
}

fn hfile_seeds() -> Vec<Vec<u8>> {
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
    let t = Trailer::decode(&file[file.len() - TRAILER_BYTES..], file.len() as u64).unwrap();
    let section = |off: u64, len: u64| file[off as usize..(off + len) as usize].to_vec();
    let index_block = section(t.index_off, t.index_len);
    let index = decode_block(&index_block).unwrap().to_vec();
    let first_len = BlockIndex::decode(&index, t.data_end()).unwrap().entries[0].length;
    let first_block = file[..first_len as usize].to_vec();
    let first_contents = decode_block(&first_block).unwrap().to_vec();
    let bloom_block = section(t.bloom_off, t.bloom_len);
    let bloom = decode_block(&bloom_block).unwrap().to_vec();
    let trailer = file[file.len() - TRAILER_BYTES..].to_vec();
    vec![
        first_block,
        first_contents,
        index_block,
        index,
        bloom,
        info.encode(),
        trailer,
    ]
}

fn manifest_seeds() -> Vec<Vec<u8>> {
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
    vec![edit.encode(), VersionEdit::default().encode()]
}

fn catalog_seeds() -> Vec<Vec<u8>> {
    let catalog = Catalog {
        next_region_id: 7,
        tables: vec![TableEntry {
            schema: TableSchema::new(
                "driving",
                vec![
                    FamilyOptions::new("cf1").max_versions(3).ttl_ms(1000),
                    FamilyOptions {
                        compression: Compression::None,
                        bloom: BloomType::RowCol,
                        ..FamilyOptions::new("cf2")
                    },
                    FamilyOptions {
                        compaction: CompactionStyle::DateTiered {
                            base_window_ms: 60_000,
                            windows_per_tier: 4,
                            max_tier_age_ms: 86_400_000,
                        },
                        ..FamilyOptions::new("cf3")
                    },
                ],
            ),
            regions: vec![
                RegionEntry {
                    id: 1,
                    start: Bytes::new(),
                    end: Bytes::from("m"),
                },
                RegionEntry {
                    id: 2,
                    start: Bytes::from("m"),
                    end: Bytes::new(),
                },
            ],
        }],
    };
    let file = catalog.encode();
    // The payload alone: the target also decodes its input behind a valid header.
    let payload = file[16..].to_vec();
    vec![file, payload]
}

fn bulk_commit_seeds() -> Vec<Vec<u8>> {
    let record = CommitRecord {
        table: "car_status".into(),
        parts: vec![
            CommitPart {
                index: 0,
                family: "cf1".into(),
                region: 1,
                file_id: 7,
            },
            CommitPart {
                index: 1,
                family: "cf1".into(),
                region: 4,
                file_id: 300,
            },
        ],
    };
    let file = record.encode();
    // The payload alone: the target also decodes its input behind a valid header.
    let payload = file[17..].to_vec();
    vec![file, payload, CommitRecord::default().encode()]
}

#[test]
#[ignore = "writes the fuzz seed corpus into $FUZZ_SEED_DIR; run by scripts/fuzz.sh"]
fn write_seed_corpus() {
    let root = PathBuf::from(std::env::var("FUZZ_SEED_DIR").expect("FUZZ_SEED_DIR is set"));
    write_seeds(&root, "wal_record", &wal_seeds());
    write_seeds(&root, "hfile_block", &hfile_seeds());
    write_seeds(&root, "manifest_edit", &manifest_seeds());
    write_seeds(&root, "catalog", &catalog_seeds());
    write_seeds(&root, "bulk_commit", &bulk_commit_seeds());
}
