//! Two workers in one consumer group share the partitions (cooperative-sticky rebalance
//! while consuming): every row once, sets and overspeed rows equal to the reference, and
//! both workers did part of the work.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

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
    produce(&brokers, &records(&lines[half..])).await;

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
