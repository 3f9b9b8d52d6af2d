//! A failed fdatasync poisons the log: the failing append and every later one return
//! `Error::Poisoned` naming the original failure.

use speedlayer_storage::wal::{Durability, Wal, WalEntry, WalOptions};
use speedlayer_storage::{Cell, Error};

fn entry(seq: u64) -> WalEntry {
    let mut c = Cell::put("r", "cf", "q", seq, "v");
    c.seq = seq;
    WalEntry {
        seq,
        cells: vec![c],
    }
}

#[test]
fn failed_sync_poisons_every_later_append() {
    let d = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    wal.append(&entry(1), Durability::Sync).unwrap();
    wal.inject_sync_failure();
    let err = wal.append(&entry(2), Durability::Sync).unwrap_err();
    assert!(matches!(err, Error::Poisoned(_)), "{err}");
    assert!(
        err.to_string().contains("injected fdatasync failure"),
        "{err}"
    );
    for durability in [Durability::Sync, Durability::Async] {
        let err = wal.append(&entry(3), durability).unwrap_err();
        match err {
            Error::Poisoned(msg) => assert!(msg.contains("injected fdatasync failure"), "{msg}"),
            other => panic!("unexpected {other}"),
        }
    }
    assert!(matches!(wal.sync(), Err(Error::Poisoned(_))));
    assert!(wal.poisoned().is_some());
    drop(wal);
    // The acknowledged record is there after reopening; the new log is healthy.
    let (wal, got) = Wal::open(d.path(), WalOptions::default()).unwrap();
    assert_eq!(got.first(), Some(&entry(1)));
    wal.append(&entry(10), Durability::Sync).unwrap();
}

#[test]
fn failed_background_sync_poisons_async_writes() {
    let d = tempfile::tempdir().unwrap();
    let opts = WalOptions {
        segment_bytes: 1 << 20,
        async_interval_ms: 2,
        ..WalOptions::default()
    };
    let (wal, _) = Wal::open(d.path(), opts).unwrap();
    wal.inject_sync_failure();
    wal.append(&entry(1), Durability::Async).unwrap();
    // The background syncer hits the injected failure; wait for it with a deadline.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while wal.poisoned().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "background sync never failed"
        );
        std::thread::yield_now();
    }
    let err = wal.append(&entry(2), Durability::Async).unwrap_err();
    assert!(
        matches!(err, Error::Poisoned(ref m) if m.contains("injected")),
        "{err}"
    );
}

#[test]
fn failed_write_poisons_and_nothing_after_it_is_acknowledged() {
    let d = tempfile::tempdir().unwrap();
    let (wal, _) = Wal::open(d.path(), WalOptions::default()).unwrap();
    wal.append(&entry(1), Durability::Async).unwrap();
    wal.inject_write_failure();
    let err = wal.append(&entry(2), Durability::Async).unwrap_err();
    assert!(
        matches!(err, Error::Poisoned(ref m) if m.contains("injected write failure")),
        "{err}"
    );
    assert!(matches!(
        wal.append(&entry(3), Durability::Sync),
        Err(Error::Poisoned(_))
    ));
    drop(wal);
    let (_, got) = Wal::open(d.path(), WalOptions::default()).unwrap();
    assert_eq!(got, vec![entry(1)]);
}
