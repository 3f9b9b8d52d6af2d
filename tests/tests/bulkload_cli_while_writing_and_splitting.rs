//! `speedlayer bulkload` through the real binaries while the table takes writes and
//! splits: a server with a tiny split size, one writer putting rows into the same key
//! space without pause, and the real loader loading status files one after another until
//! a split has happened while a load was in flight (the table had more regions when the
//! load ended than when it began). A load the server refused because the boundaries
//! changed is sent again by the loader (`retries` in its summary). Afterwards every
//! loaded row (13 cells each) and every acknowledged write is readable, and nothing else
//! is there.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use speedlayer_client::proto::{Durability, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::server::{ServerProcess, run_cli};

const TABLE: &str = "car_status";
/// Lines per status file (one load each).
const LINES: usize = 2_500;
/// Loads at most; the test fails if none of them saw a split.
const MAX_LOADS: usize = 8;

/// A status file for day `day`: 10 cars, one line per car every 3 s. Returns the
/// `car#time` prefixes of its rows.
fn status_file(path: &Path, day: usize) -> BTreeSet<String> {
    let mut s = String::new();
    let mut rows = BTreeSet::new();
    for i in 0..LINES {
        let car = i % 10;
        let t = (i / 10) * 3;
        let time = format!(
            "202611{day:02}{:02}{:02}{:02}",
            t / 3600 % 24,
            t / 60 % 60,
            t % 60
        );
        s.push_str(&format!(
            "{time},V{car:04},{},{},31,32,1,1,{},1,0,0,{}\n",
            30 + i % 7,
            29 + i % 5,
            i % 2,
            i % 4
        ));
        rows.insert(format!("V{car:04}#{time}"));
    }
    std::fs::write(path, s).unwrap();
    rows
}

/// A writer's row key: same cars as the loaded rows, so splits cut through both.
fn written_key(i: usize) -> String {
    format!("V{:04}#x{i:07}", i % 10)
}

/// About 200 bytes that do not compress away (the split size counts compressed files).
fn value(i: usize) -> String {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut s = format!("{i}:");
    while s.len() < 200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push_str(&format!("{x:016x}"));
    }
    s
}

async fn regions(c: &Client) -> usize {
    c.describe_table(TABLE).await.unwrap().regions.len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulkload_while_writing_and_splitting() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &[
            "--memstore-flush-bytes",
            "262144",
            "--region-split-bytes",
            "262144",
            "--split-check-millis",
            "50",
        ],
    );
    server.cli(&["create-table", TABLE, "--family", "cf1"]).ok();
    let c = Client::connect(&server.url()).await.unwrap();

    // The writer: batches of 20 rows, without pause, until the loads are done.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, stop) = (c.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let (mut acked, mut i) = (BTreeSet::new(), 0usize);
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (i..i + 20)
                    .map(|k| {
                        put_row(
                            written_key(k).as_bytes(),
                            &[("cf1", "v", value(k).as_bytes())],
                        )
                    })
                    .collect();
                c.mutate(TABLE, batch, Durability::Sync).await.unwrap();
                acked.extend((i..i + 20).map(written_key));
                i += 20;
            }
            (acked, i)
        })
    };

    // Loads, one file each, until one of them overlapped a split.
    let mut loaded = BTreeSet::new();
    let (mut overlapped, mut retries, mut loads) = (0, 0u64, 0);
    while loads < MAX_LOADS && overlapped == 0 {
        let file = dir.path().join(format!("status-{loads}.csv"));
        loaded.extend(status_file(&file, 10 + loads));
        let before = regions(&c).await;
        let url = server.url();
        let out = tokio::task::spawn_blocking(move || {
            run_cli(
                &url,
                &[
                    "bulkload",
                    TABLE,
                    file.to_str().unwrap(),
                    "--retries",
                    "20",
                    "--no-progress",
                ],
            )
            .ok()
        })
        .await
        .unwrap();
        let after = regions(&c).await;
        assert!(out.contains(&format!("{LINES} lines")), "{out}");
        assert!(out.contains(&format!("{} cells", LINES * 13)), "{out}");
        retries += out
            .split(" retries")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        if after > before {
            overlapped += 1;
        }
        loads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let (acked, attempted) = writer.await.unwrap();
    assert!(
        overlapped > 0,
        "no split happened during any of {loads} loads (regions now {})",
        regions(&c).await
    );
    eprintln!(
        "{loads} loads, {overlapped} overlapped a split, {retries} loads sent again, \
         {} rows written, {} regions",
        acked.len(),
        regions(&c).await
    );

    // Everything is readable: a full scan through the client.
    let mut stream = c
        .scan(ScanRequest {
            table: TABLE.into(),
            batch_rows: 1_000,
            ..Default::default()
        })
        .await
        .unwrap();
    let (mut got_loaded, mut got_written) = (BTreeSet::new(), BTreeSet::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Some(row) = stream.next().await.unwrap() {
        assert!(Instant::now() < deadline, "scan too slow");
        let key = String::from_utf8(row.row.to_vec()).unwrap();
        if key.as_bytes().get(6) == Some(&b'x') {
            assert!(got_written.insert(key));
        } else {
            // <car>#<yyyyMMddHHmmss>#<crc32>
            assert_eq!(row.cells.len(), 13, "loaded row {key}");
            assert!(got_loaded.insert(key[..20].to_string()), "{key} twice");
        }
    }
    assert_eq!(got_loaded, loaded, "every loaded row, once");
    assert!(
        acked.is_subset(&got_written),
        "{} acknowledged writes missing",
        acked.difference(&got_written).count()
    );
    assert!(
        got_written
            .iter()
            .all(|k| { k[7..].parse::<usize>().is_ok_and(|i| i < attempted) }),
        "only rows the writer wrote"
    );
    assert_eq!(
        run_cli(&server.url(), &["count", TABLE]).ok().trim(),
        (loaded.len() + got_written.len()).to_string()
    );
}
