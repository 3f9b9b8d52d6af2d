//! Segments roll at `segment_bytes`, replay crosses them in order, and `mark_flushed`
//! deletes exactly the segments whose every record is flushed.

use speedlayer_storage::Cell;
use speedlayer_storage::wal::{Durability, Wal, WalEntry, WalOptions, parse_segment_name};

fn entry(seq: u64) -> WalEntry {
    // Two cells per batch: seq and seq+1.
    let cells = (0..2)
        .map(|i| {
            let mut c = Cell::put(format!("r{seq}"), "cf", format!("q{i}"), seq, vec![1u8; 40]);
            c.seq = seq + i;
            c
        })
        .collect();
    WalEntry { seq, cells }
}

fn seqs_of_segments(dir: &std::path::Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| parse_segment_name(e.unwrap().file_name().to_str()?))
        .collect();
    v.sort();
    v
}

#[test]
fn roll_replay_and_delete_flushed_segments() {
    let d = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 300,
        async_interval_ms: 50,
        ..WalOptions::default()
    };
    let seqs: Vec<u64> = (0..20).map(|i| 1 + 2 * i).collect();
    {
        let (wal, replayed) = Wal::open(d.path(), opts.clone()).unwrap();
        assert!(replayed.is_empty());
        for &s in &seqs {
            wal.append(&entry(s), Durability::Sync).unwrap();
        }
        assert!(wal.stats().segments >= 4, "{:?}", wal.stats());
    }
    let firsts = seqs_of_segments(d.path());
    assert!(firsts.len() >= 4);
    assert_eq!(firsts[0], 1);

    let (wal, got) = Wal::open(d.path(), opts.clone()).unwrap();
    assert_eq!(got, seqs.iter().map(|&s| entry(s)).collect::<Vec<_>>());

    // Flushed through the cells of the first two segments' batches (a batch's cells have
    // seq s and s+1): those two segments go, the rest stay.
    let flushed = firsts[2] - 1;
    let deleted = wal.mark_flushed(flushed).unwrap();
    assert_eq!(deleted, 2);
    assert_eq!(seqs_of_segments(d.path()), firsts[2..].to_vec());
    // A flush point inside a segment deletes nothing more.
    assert_eq!(wal.mark_flushed(firsts[2] + 1).unwrap(), 0);
    // New records go to a new segment named after their seq.
    wal.append(&entry(1000), Durability::Sync).unwrap();
    assert_eq!(*seqs_of_segments(d.path()).last().unwrap(), 1000);
    drop(wal);

    let (wal, got) = Wal::open(d.path(), opts.clone()).unwrap();
    let mut want: Vec<_> = seqs
        .iter()
        .filter(|&&s| s >= firsts[2])
        .map(|&s| entry(s))
        .collect();
    want.push(entry(1000));
    assert_eq!(got, want);
    // Everything flushed: every segment, including the one being written, goes away.
    wal.append(&entry(2000), Durability::Sync).unwrap();
    wal.mark_flushed(5000).unwrap();
    assert!(seqs_of_segments(d.path()).is_empty());
    wal.append(&entry(3000), Durability::Sync).unwrap();
    drop(wal);
    let (_, got) = Wal::open(d.path(), opts.clone()).unwrap();
    assert_eq!(got, vec![entry(3000)]);
}

#[test]
fn oversize_record_is_refused_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    let mut c = Cell::put(
        "r",
        "cf",
        "q",
        1,
        vec![0u8; speedlayer_storage::wal::MAX_RECORD_BYTES],
    );
    c.seq = 1;
    let big = WalEntry {
        seq: 1,
        cells: vec![c],
    };
    let err = wal.append(&big, Durability::Sync).unwrap_err();
    assert!(
        matches!(err, speedlayer_storage::Error::InvalidArgument(_)),
        "{err}"
    );
    assert_eq!(wal.stats().appends, 0);
    assert!(seqs_of_segments(d.path()).is_empty());
}
