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

    let all = expected_keys(&lines);
    env.wait_for("catch up", Duration::from_secs(90), || {
        env.driving_keys() == all
    })
    .await;
    assert!(stored_before < all.len());
    let want_windows = reference_windows(&lines, |_| 80);
    let fired = env
        .settle(Duration::from_secs(60), || {
            env.overspeed_keys().len() >= want_windows.len()
        })
        .await;
    if !fired {
        // Say what the worker saw before the diff. (CI failed here twice: part of the
        // outage was counted as partition silence, see ingest_slow_store_fires_nothing_early.)
        eprintln!(
            "not every window fired within 60 s: consumed {}, stored {}, late {}, firings {}, store retries {}",
            w.metric("ingest_consumed_total"),
            w.metric("ingest_stored_total"),
            w.metric("ingest_late_total"),
            w.metric("ingest_rule_firings_total"),
            w.metric("ingest_store_retries_total"),
        );
    }
    assert_eq!(
        w.metric("ingest_late_total"),
        0.0,
        "events dead-lettered as late: a window fired before the outage's backlog arrived"
    );
    assert_same_keys("overspeed rows", &env.overspeed_keys(), &want_windows);
    let want_sets = reference_sets(&lines, |_| 80);
    env.wait_for(
        "sets to match the reference",
        Duration::from_secs(30),
        || env.redis.try_sets().is_ok_and(|s| s == want_sets),
    )
    .await;
    env.wait_for("a commit after the outage", Duration::from_secs(30), || {
        w.metric("ingest_committed_offset") > committed_during
    })
    .await;
    w.stop().await;
}
