//! Damage that is not a torn tail — a bad record with valid records after it, or any damage
//! in a segment that is not the last — fails `open` with an error naming file and offset.

use speedlayer_storage::log::{FrameRead, read_frame};
use speedlayer_storage::wal::{
    Durability, HEADER_BYTES, MARKER_BYTES, MARKER_TAG, MAX_RECORD_BYTES, Wal, WalEntry, WalOptions,
};

/// The record frames of a segment (sync markers left out): (start, end).
fn records(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = HEADER_BYTES;
    while let FrameRead::Ok { payload, next } = read_frame(bytes, off, MAX_RECORD_BYTES) {
        if !(payload.len() == MARKER_BYTES && payload[0] == MARKER_TAG) {
            out.push((off, next));
        }
        off = next;
    }
    out
}
use speedlayer_storage::{Cell, Error};

fn entry(seq: u64) -> WalEntry {
    let mut c = Cell::put(format!("row{seq}"), "cf", "q", seq, vec![7u8; 20]);
    c.seq = seq;
    WalEntry {
        seq,
        cells: vec![c],
    }
}

fn frame_len(seq: u64) -> usize {
    let mut p = Vec::new();
    entry(seq).encode_into(&mut p);
    8 + p.len()
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn a_flipped_byte_in_a_middle_record_names_file_and_offset() {
    let d = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    for s in 1..=5 {
        wal.append(&entry(s), Durability::Sync).unwrap();
    }
    drop(wal);
    let seg = segments(d.path()).remove(0);
    let (second, second_end) = records(&std::fs::read(&seg).unwrap())[1];
    assert_eq!(second_end - second, frame_len(2));
    // Flip every byte of record 2 in turn: the later sync markers prove it was synced, so
    // the damage is always refused, never cut or skipped.
    for i in second..second_end {
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes[i] ^= 0x20;
        let d2 = tempfile::tempdir().unwrap();
        let p2 = d2.path().join(seg.file_name().unwrap());
        std::fs::write(&p2, &bytes).unwrap();
        let err = Wal::open(d2.path(), WalOptions::default()).unwrap_err();
        match &err {
            Error::ChecksumMismatch { file, offset, .. }
            | Error::Corruption { file, offset, .. } => {
                assert_eq!(file, &p2);
                assert_eq!(*offset as usize, second, "flip at {i}: {err}");
            }
            other => panic!("flip at {i}: unexpected {other}"),
        }
        assert!(err.to_string().contains("wal-"), "{err}");
        // The file is left untouched for a human to inspect.
        assert_eq!(std::fs::read(&p2).unwrap(), bytes);
    }
}

#[test]
fn a_torn_non_last_segment_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 64,
        async_interval_ms: 100,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(d.path(), opts.clone()).unwrap();
    for s in 1..=6 {
        wal.append(&entry(s), Durability::Sync).unwrap();
    }
    drop(wal);
    let segs = segments(d.path());
    assert!(segs.len() >= 3, "{segs:?}");
    let first = &segs[0];
    let len = std::fs::metadata(first).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(first)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let err = Wal::open(d.path(), opts.clone()).unwrap_err();
    match err {
        Error::Corruption { file, offset, .. } => {
            assert_eq!(&file, first);
            assert_eq!(offset as usize, HEADER_BYTES);
        }
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn a_bad_segment_header_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    wal.append(&entry(1), Durability::Sync).unwrap();
    drop(wal);
    let seg = segments(d.path()).remove(0);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[0] = b'X';
    std::fs::write(&seg, &bytes).unwrap();
    assert!(matches!(
        Wal::open(d.path(), WalOptions::default()),
        Err(Error::Corruption { offset: 0, .. })
    ));
}
