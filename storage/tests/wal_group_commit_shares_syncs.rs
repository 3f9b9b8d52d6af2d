//! Concurrent `Sync` appenders share fdatasyncs (group commit), and every acknowledged
//! record is replayed after reopening.

use std::sync::Arc;

use speedlayer_storage::Cell;
use speedlayer_storage::wal::{Durability, Wal, WalEntry, WalOptions};

const THREADS: u64 = 8;
const PER_THREAD: u64 = 200;

fn entry(seq: u64) -> WalEntry {
    let mut c = Cell::put(
        format!("car{:04}", seq % 97),
        "cf1",
        "speed",
        seq,
        seq.to_string(),
    );
    c.seq = seq;
    WalEntry {
        seq,
        cells: vec![c],
    }
}

#[test]
fn eight_threads_of_sync_appends_are_all_durable_with_fewer_syncs() {
    let d = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    let wal = Arc::new(wal);
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let wal = wal.clone();
            std::thread::spawn(move || {
                for i in 0..PER_THREAD {
                    wal.append(&entry(t * PER_THREAD + i + 1), Durability::Sync)
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let stats = wal.stats();
    assert_eq!(stats.appends, THREADS * PER_THREAD);
    assert!(
        stats.syncs < stats.appends,
        "group commit must share syncs: {stats:?}"
    );
    eprintln!("group commit: {stats:?}");
    drop(wal);
    let (_, mut got) = Wal::open(d.path(), WalOptions::default()).unwrap();
    got.sort_by_key(|e| e.seq);
    let want: Vec<_> = (1..=THREADS * PER_THREAD).map(entry).collect();
    assert_eq!(got, want);
}

#[test]
fn async_appends_are_written_and_synced_in_the_background() {
    let d = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 1 << 20,
        async_interval_ms: 5,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(d.path(), opts.clone()).unwrap();
    for s in 1..=50 {
        wal.append(&entry(s), Durability::Async).unwrap();
    }
    wal.append(&entry(51), Durability::SkipWal).unwrap();
    // Wait (with a deadline) for the background syncer to cover the writes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.stats().syncs == 0 {
        assert!(std::time::Instant::now() < deadline, "no background sync");
        std::thread::yield_now();
    }
    assert_eq!(wal.stats().appends, 50);
    drop(wal);
    let (_, got) = Wal::open(d.path(), opts.clone()).unwrap();
    assert_eq!(got, (1..=50).map(entry).collect::<Vec<_>>());
}
