//! The server adopts a bulk load when its stream ends, so the loader must never end a
//! stream it could not finish: a spill file damaged after some chunks were sent makes the
//! loader abort the load (an `abort` chunk, then the call dropped), and the real server
//! adopts none of it. The same cells, sorted again, then load in full.

use std::sync::Arc;

use speedlayer_client::bulk::record::Column;
use speedlayer_client::bulk::{Sorter, load_sorted};
use speedlayer_tests::server::ServerProcess;

fn sorted(n: usize, spill: &std::path::Path) -> speedlayer_client::bulk::Sorted {
    let mut s = Sorter::new(1 << 20, spill);
    // Descending rows: every run is a real sort, and runs interleave in the merge.
    for i in (0..n).rev() {
        let value = [b'v'; 64];
        let mut cols = [Column {
            family: 0,
            qualifier: b"q",
            value: &value,
        }];
        s.push_row(format!("r{i:07}").as_bytes(), 1, &mut cols)
            .unwrap();
    }
    s.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_spill_file_cancels_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    server.cli(&["create-table", "t", "--family", "cf1"]).ok();
    let client = speedlayer_client::Client::connect(&server.url())
        .await
        .unwrap();
    let n = 60_000;
    let families = ["cf1".to_string()];

    let bad = sorted(n, dir.path());
    assert!(bad.runs() >= 3, "runs: {}", bad.runs());
    // Damage the last run near its end: the merge reads its first chunks (and sends many
    // cells) before meeting the damage.
    let last = bad.run_paths().last().unwrap().clone();
    let mut bytes = std::fs::read(&last).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0xff;
    std::fs::write(&last, bytes).unwrap();
    let err = load_sorted(&client, "t", &families, &Arc::new(bad))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("damaged"), "{err}");
    assert_eq!(
        server.cli(&["count", "t"]).ok().trim(),
        "0",
        "nothing adopted"
    );

    let good = sorted(n, dir.path());
    let (resp, dups) = load_sorted(&client, "t", &families, &Arc::new(good))
        .await
        .unwrap();
    assert_eq!((resp.cells, dups), (n as u64, 0));
    assert_eq!(server.cli(&["count", "t"]).ok().trim(), n.to_string());
}
