//! Stop the real region server (and its RESP service) for 10 s mid-stream, then restart it
//! on the same ports and data directory → the worker retries with capped backoff, commits
//! nothing meanwhile, and catches up afterwards with nothing lost and no duplicates.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ten_second_server_outage_is_caught_up_without_loss() {
    let mut env = Env::start(80);
    let lines = driving_lines(30, 0, 120, 31);
    let half = lines.len() / 2;
    let brokers = env.tansu.brokers();
    produce(&brokers, &records(&lines[..half])).await;
    let w = env.worker().await;
    let quarter = expected_keys(&lines[..half / 2]);
    env.wait_for("a quarter of the stream", Duration::from_secs(60), || {
        env.driving_keys().is_superset(&quarter)
    })
    .await;

    let stored_before = env.driving_keys().len();
    let retries_before = w.metric("ingest_store_retries_total");
    env.server.kill9(); // gRPC and RESP gone at once, mid-stream
    produce(&brokers, &records(&lines[half..])).await;
    env.wait_for(
        "the worker to hit the outage",
        Duration::from_secs(30),
        || w.metric("ingest_store_retries_total") > retries_before,
    )
    .await;
    let committed_during = w.metric("ingest_committed_offset");
    // The outage itself lasts 10 s (the scenario of the issue), not a readiness wait.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(
        w.metric("ingest_committed_offset"),
        committed_during,
        "nothing committed while the server is down"
    );
    assert!(w.is_running(), "the outage did not stop the worker");
    env.server.restart(); // same ports, same data directory

    // (CI failed here twice, a window firing before the outage's backlog arrived: part of
    // the outage was counted as partition silence; see ingest_slow_store_fires_nothing_early.)
    env.assert_caught_up_exactly(&w, &lines, 80).await;
    assert!(stored_before < expected_keys(&lines).len());
    env.wait_for("a commit after the outage", Duration::from_secs(30), || {
        w.metric("ingest_committed_offset") > committed_during
    })
    .await;
    w.stop().await;
}
