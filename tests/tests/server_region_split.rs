//! Region splits through the real binaries: a server with a tiny split size splits the
//! table while a writer keeps writing; afterwards `speedlayer stats --json` and
//! LocateRegion show several regions, and every row is readable exactly once by forward
//! and reversed scans (client library and CLI) and by get — again after kill -9 and a
//! restart.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use speedlayer_client::proto::{Durability, GetRequest, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::server::ServerProcess;

const TABLE: &str = "trips";
/// Rows per Mutate call.
const BATCH: usize = 50;
/// Rows written after the first split was seen.
const ROWS_AFTER_SPLIT: usize = 1_000;
/// The test fails if no split happened after this many rows (about 5 MB).
const MAX_ROWS: usize = 25_000;

fn key(i: usize) -> String {
    format!("car-{:05}-{:06}", (i * 7919) % 10_007, i)
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

/// Regions of the table according to `speedlayer stats TABLE --json`.
fn cli_regions(server: &ServerProcess) -> Vec<serde_json::Value> {
    let out = server.cli(&["stats", TABLE, "--json"]).ok();
    let doc: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    doc["regions"].as_array().unwrap().clone()
}

async fn check_everything(server: &ServerProcess, expected: &BTreeSet<String>) {
    let c = Client::connect(&server.url()).await.unwrap();
    // The splitter keeps running (every 50 ms) until every region is below the split size,
    // so wait until the layout is settled: DescribeTable and the CLI agree twice in a row.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut previous = None;
    let described = loop {
        let d = c.describe_table(TABLE).await.unwrap();
        let cli = cli_regions(server).len();
        if cli == d.regions.len() && previous == Some(cli) {
            break d;
        }
        previous = (cli == d.regions.len()).then_some(cli);
        assert!(Instant::now() < deadline, "regions never settled");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Several regions, adjacent, covering the whole key space.
    assert!(
        described.regions.len() >= 2,
        "expected a split, regions: {:?}\n{}",
        described.regions,
        server.log()
    );
    assert!(described.regions[0].start_key.is_empty());
    assert!(described.regions.last().unwrap().end_key.is_empty());
    for pair in described.regions.windows(2) {
        assert_eq!(
            pair[0].end_key, pair[1].start_key,
            "regions must be adjacent"
        );
    }
    let first = c
        .locate(TABLE, expected.first().unwrap().as_bytes())
        .await
        .unwrap();
    let last = c
        .locate(TABLE, expected.last().unwrap().as_bytes())
        .await
        .unwrap();
    assert_ne!(
        first.region_id, last.region_id,
        "first and last row in one region"
    );

    // Forward scan: every row once, in order, with its value.
    let rows = c
        .scan_all(ScanRequest {
            table: TABLE.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let keys: Vec<String> = rows
        .iter()
        .map(|r| String::from_utf8(r.row.to_vec()).unwrap())
        .collect();
    let want: Vec<String> = expected.iter().cloned().collect();
    let seen: BTreeSet<&String> = keys.iter().collect();
    let missing: Vec<&String> = want.iter().filter(|k| !seen.contains(k)).collect();
    assert!(
        missing.is_empty() && keys.len() == want.len(),
        "forward scan: {} rows, {} expected; {} missing, first {:?}; regions {:?}",
        keys.len(),
        want.len(),
        missing.len(),
        &missing[..missing.len().min(5)],
        described.regions
    );
    assert_eq!(keys, want, "forward scan rows");
    for r in &rows {
        assert_eq!(r.cells.len(), 1, "one cell per row");
        let k = String::from_utf8(r.row.to_vec()).unwrap();
        let i: usize = k.rsplit('-').next().unwrap().parse().unwrap();
        assert_eq!(r.cells[0].value, Bytes::from(value(i)));
    }
    // Reversed scan: the same rows backwards.
    let rev = c
        .scan_all(ScanRequest {
            table: TABLE.into(),
            reversed: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let rev_keys: Vec<String> = rev
        .iter()
        .map(|r| String::from_utf8(r.row.to_vec()).unwrap())
        .collect();
    let mut want_rev = want.clone();
    want_rev.reverse();
    assert_eq!(rev_keys, want_rev, "reversed scan rows");
    // Get: a sample spread over the whole key space (every 7th row, plus the last), so
    // both daughters are hit; the scans above already saw every row exactly once. Getting
    // all rows one by one costs minutes on a loaded 2-core machine.
    let sample = expected
        .iter()
        .step_by(7)
        .chain(expected.iter().next_back());
    for k in sample {
        let row = c
            .get(GetRequest {
                table: TABLE.into(),
                row: Bytes::from(k.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(row.is_some_and(|r| r.cells.len() == 1), "get {k}");
    }
    // The CLI sees the same rows, forward and reversed.
    for extra in [&[][..], &["--reversed"][..]] {
        let mut args = vec!["scan", TABLE, "--json"];
        args.extend_from_slice(extra);
        let out = server.cli(&args).ok();
        let cli_keys: Vec<String> = out
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["row"].as_str().unwrap().to_string()
            })
            .collect();
        let want_cli = if extra.is_empty() { &want } else { &want_rev };
        assert_eq!(&cli_keys, want_cli, "CLI scan {extra:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_region_split() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(
        dir.path(),
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

    // One writer keeps writing batches until the watcher below has seen a split, then
    // writes ROWS_AFTER_SPLIT more: writes go on before, during and after the split.
    let split_seen = Arc::new(AtomicBool::new(false));
    let writer = {
        let (c, split_seen) = (c.clone(), split_seen.clone());
        tokio::spawn(async move {
            let mut written = BTreeSet::new();
            let mut after_split = None;
            let mut start = 0;
            while after_split.is_none_or(|first| start < first + ROWS_AFTER_SPLIT) {
                assert!(start < MAX_ROWS, "no split after {MAX_ROWS} rows");
                let batch: Vec<_> = (start..start + BATCH)
                    .map(|i| put_row(key(i).as_bytes(), &[("cf1", "v", value(i).as_bytes())]))
                    .collect();
                c.mutate(TABLE, batch, Durability::Async).await.unwrap();
                written.extend((start..start + BATCH).map(key));
                start += BATCH;
                if after_split.is_none() && split_seen.load(Ordering::Relaxed) {
                    after_split = Some(start);
                }
            }
            written
        })
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while !writer.is_finished() {
        if c.describe_table(TABLE).await.unwrap().regions.len() >= 2 {
            split_seen.store(true, Ordering::Relaxed);
        }
        assert!(
            Instant::now() < deadline,
            "writer stalled:\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let expected = writer.await.unwrap();
    assert!(split_seen.load(Ordering::Relaxed));
    let (_, metrics) = server.http_get("/metrics");
    let splits: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("speedlayer_region_splits_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    assert!(splits >= 1, "{metrics}");
    let (_, status) = server.http_get("/");
    assert!(status.contains(TABLE));

    check_everything(&server, &expected).await;

    // kill -9 (async writes may sit in the WAL buffer: flush first so the test is about
    // the split state on disk, not about async durability) and read everything again.
    server.cli(&["flush", TABLE]).ok();
    server.kill9();
    server.restart();
    check_everything(&server, &expected).await;

    // Writes after the restart land in the daughters.
    let c = Client::connect(&server.url()).await.unwrap();
    c.mutate(
        TABLE,
        vec![put_row(b"zzz-after-restart", &[("cf1", "v", b"1")])],
        Durability::Sync,
    )
    .await
    .unwrap();
    let row = c
        .get(GetRequest {
            table: TABLE.into(),
            row: Bytes::from_static(b"zzz-after-restart"),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(row.is_some());
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
}
