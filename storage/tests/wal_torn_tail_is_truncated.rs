//! A WAL cut at ANY byte replays exactly the whole records before the cut, truncates the
//! rest, and accepts new appends after it (wal_format.md §6).

use speedlayer_storage::Cell;
use speedlayer_storage::log::{FrameRead, read_frame};
use speedlayer_storage::wal::{
    Durability, HEADER_BYTES, MARKER_BYTES, MARKER_TAG, MAX_RECORD_BYTES, Wal, WalEntry, WalOptions,
};

/// The frames of a segment: (end offset, whether it is a sync marker).
fn frames(bytes: &[u8]) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    let mut off = HEADER_BYTES;
    while let FrameRead::Ok { payload, next } = read_frame(bytes, off, MAX_RECORD_BYTES) {
        out.push((
            next,
            payload.len() == MARKER_BYTES && payload[0] == MARKER_TAG,
        ));
        off = next;
    }
    out
}

fn entry(seq: u64) -> WalEntry {
    let mut c = Cell::put(
        format!("row{seq}"),
        "cf",
        "q",
        1000 + seq,
        vec![seq as u8; 3 + seq as usize],
    );
    c.seq = seq;
    WalEntry {
        seq,
        cells: vec![c],
    }
}

fn write_log(dir: &std::path::Path, n: u64) -> std::path::PathBuf {
    let (wal, replayed) = Wal::open(dir, WalOptions::default()).unwrap();
    assert!(replayed.is_empty());
    for s in 1..=n {
        wal.append(&entry(s), Durability::Sync).unwrap();
    }
    drop(wal);
    let segs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(segs.len(), 1);
    segs[0].clone()
}

#[test]
fn every_truncation_keeps_exactly_the_whole_records_before_the_cut() {
    let src = tempfile::tempdir().unwrap();
    let seg = write_log(src.path(), 6);
    let full = std::fs::read(&seg).unwrap();
    // Frame boundaries: records, and the sync markers between synced groups.
    let all = frames(&full);
    let ends: Vec<usize> = all.iter().filter(|f| !f.1).map(|f| f.0).collect();
    assert_eq!(ends.len(), 6);
    assert!(all.iter().any(|f| f.1), "Sync appends leave sync markers");
    assert_eq!(all.last().unwrap().0, full.len());

    for cut in 0..=full.len() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(seg.file_name().unwrap());
        std::fs::write(&p, &full[..cut]).unwrap();
        let (wal, got) = Wal::open(d.path(), WalOptions::default())
            .unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let whole = ends.iter().filter(|&&e| e <= cut).count() as u64;
        let want: Vec<_> = (1..=whole).map(entry).collect();
        assert_eq!(got, want, "cut at {cut}");
        if whole == 0 {
            assert!(
                !p.exists(),
                "cut at {cut}: an empty last segment is deleted"
            );
        } else {
            // Cut back to the last whole frame (a record or a marker) before the cut.
            let kept = all.iter().map(|f| f.0).filter(|&e| e <= cut).max().unwrap();
            assert_eq!(
                std::fs::metadata(&p).unwrap().len() as usize,
                kept,
                "cut at {cut}"
            );
        }
        // The log keeps working after recovery and the new record survives a reopen.
        wal.append(&entry(100), Durability::Sync).unwrap();
        drop(wal);
        let (_, again) = Wal::open(d.path(), WalOptions::default()).unwrap();
        let mut want2 = want.clone();
        want2.push(entry(100));
        assert_eq!(again, want2, "cut at {cut}, after re-append");
    }
}

#[test]
fn garbage_appended_after_the_last_record_is_truncated() {
    let d = tempfile::tempdir().unwrap();
    let seg = write_log(d.path(), 3);
    let good_len = std::fs::metadata(&seg).unwrap().len();
    for garbage in [
        vec![0u8; 100],
        vec![0xffu8; 7],
        (0..=255u8).collect::<Vec<_>>(),
    ] {
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.truncate(good_len as usize);
        bytes.extend_from_slice(&garbage);
        std::fs::write(&seg, &bytes).unwrap();
        let (_, got) = Wal::open(d.path(), WalOptions::default()).unwrap();
        assert_eq!(got, (1..=3).map(entry).collect::<Vec<_>>());
        assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    }
}

#[test]
fn a_large_random_tail_is_truncated_in_linear_time() {
    use rand::{Rng, SeedableRng};
    let d = tempfile::tempdir().unwrap();
    let seg = write_log(d.path(), 3);
    let good_len = std::fs::metadata(&seg).unwrap().len();
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes.extend((0..(8 << 20)).map(|_| rng.random::<u8>()));
    std::fs::write(&seg, &bytes).unwrap();
    let started = std::time::Instant::now();
    let (_, got) = Wal::open(d.path(), WalOptions::default()).unwrap();
    assert_eq!(got, (1..=3).map(entry).collect::<Vec<_>>());
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good_len);
    // A guard against quadratic resynchronisation, generous for a loaded debug build.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
