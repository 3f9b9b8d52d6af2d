//! A torn manifest tail loses only the unfinished last edit; damage anywhere else — a
//! middle edit, the header, `CURRENT` — fails the open naming file and offset.

use bytes::Bytes;
use speedlayer_storage::Error;
use speedlayer_storage::manifest::{
    FileMeta, MANIFEST_HEADER_BYTES, Manifest, ManifestState, VersionEdit, manifest_name,
};

fn edit(i: u64) -> VersionEdit {
    VersionEdit {
        add_files: vec![(
            "cf1".into(),
            FileMeta {
                id: i,
                size: 100,
                first_row: Bytes::from_static(b"a"),
                last_row: Bytes::from_static(b"z"),
                min_ts: 1,
                max_ts: 2,
                min_seq: i,
                max_seq: i,
                cell_count: 1,
                tombstone_count: 0,
            },
        )],
        flushed_seq: Some(i * 10),
        ..VersionEdit::default()
    }
}

const EDITS: u64 = 5;

/// Writes EDITS edits; returns the log bytes and the end offset of each edit.
fn build(dir: &std::path::Path) -> (Vec<u8>, Vec<usize>) {
    let (mut m, _) = Manifest::open(dir).unwrap();
    let mut ends = Vec::new();
    for i in 1..=EDITS {
        m.apply(&edit(i)).unwrap();
        ends.push(m.log_bytes() as usize);
    }
    drop(m);
    (std::fs::read(dir.join(manifest_name(1))).unwrap(), ends)
}

fn state_after(n: u64) -> ManifestState {
    let mut s = ManifestState::default();
    for i in 1..=n {
        s.apply(&edit(i)).unwrap();
    }
    s
}

#[test]
fn every_truncation_keeps_the_whole_edits_before_the_cut() {
    let dir = tempfile::tempdir().unwrap();
    let (log, ends) = build(dir.path());
    let path = dir.path().join(manifest_name(1));
    for cut in MANIFEST_HEADER_BYTES..=log.len() {
        std::fs::write(&path, &log[..cut]).unwrap();
        let (mut m, state) =
            Manifest::open(dir.path()).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        assert_eq!(state, state_after(whole), "cut {cut}");
        // The log keeps working after the truncation.
        m.apply(&edit(100)).unwrap();
        drop(m);
        let (_, again) = Manifest::open(dir.path()).unwrap();
        let mut want = state_after(whole);
        want.apply(&edit(100)).unwrap();
        assert_eq!(again, want, "cut {cut} then append");
    }
}

#[test]
fn flipped_bytes_in_a_middle_edit_fail_with_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let (log, ends) = build(dir.path());
    let path = dir.path().join(manifest_name(1));
    let (start, end) = (ends[1], ends[2]); // the third edit
    for i in start..end {
        let mut m = log.clone();
        m[i] ^= 0x08;
        std::fs::write(&path, &m).unwrap();
        match Manifest::open(dir.path()).unwrap_err() {
            Error::ChecksumMismatch { file, offset, .. }
            | Error::Corruption { file, offset, .. } => {
                assert_eq!(file, path);
                assert_eq!(offset as usize, start, "flip at {i}");
            }
            other => panic!("flip at {i}: {other}"),
        }
        assert_eq!(
            std::fs::read(&path).unwrap(),
            m,
            "a refused log is left as it was"
        );
    }
    // A flip in the last edit is indistinguishable from a torn write: that edit is dropped.
    let mut m = log.clone();
    m[ends[3] + 10] ^= 0x08;
    std::fs::write(&path, &m).unwrap();
    let (_, state) = Manifest::open(dir.path()).unwrap();
    assert_eq!(state, state_after(EDITS - 1));
}

#[test]
fn a_damaged_header_or_current_fails_the_open() {
    let dir = tempfile::tempdir().unwrap();
    let (log, _) = build(dir.path());
    let path = dir.path().join(manifest_name(1));
    for i in 0..MANIFEST_HEADER_BYTES {
        let mut m = log.clone();
        m[i] ^= 0x01;
        std::fs::write(&path, &m).unwrap();
        assert!(matches!(
            Manifest::open(dir.path()),
            Err(Error::Corruption { offset: 0, .. })
        ));
    }
    std::fs::write(&path, &log).unwrap();
    let current = dir.path().join("CURRENT");
    let good = std::fs::read(&current).unwrap();
    assert_eq!(good, b"MANIFEST-000001 5a055f23\n");
    for i in 0..good.len() {
        let mut c = good.clone();
        c[i] ^= 0x01;
        std::fs::write(&current, &c).unwrap();
        let err = Manifest::open(dir.path()).unwrap_err();
        match &err {
            Error::Corruption { file, .. } => assert_eq!(file, &current),
            other => panic!("flip at {i} of CURRENT: {other}"),
        }
    }
    std::fs::write(&current, &good).unwrap();
    let (_, state) = Manifest::open(dir.path()).unwrap();
    assert_eq!(state, state_after(EDITS));
}
