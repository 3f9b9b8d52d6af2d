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
    // 30 cars x 120 s, split at t = 60 s: a window boundary, so the idle flush that fires
    // the first half's windows while nothing new arrives fires them whole.
    let lines = driving_lines(30, 0, 120, 61);
    let half = lines.len() / 2;
    assert_eq!(
        lines[half].t_ms % 30_000,
        0,
        "the halves split on a window boundary"
    );
    let brokers = env.tansu.brokers();
    produce(&brokers, &records(&lines[..half])).await;
    let a = env.worker().await;
    let some = expected_keys(&lines[..half / 4]);
    env.wait_for("a first part", Duration::from_secs(60), || {
        env.driving_keys().is_superset(&some)
    })
    .await;
    // B joins: the group rebalances while A consumes (cooperative: A keeps what it is not
    // asked to give up). The second half is produced once both own partitions, so B's
    // share of it is consumed by B, whatever the pace of the machine.
    let b = env.worker().await;
    env.wait_for(
        "the group to share the 4 partitions",
        Duration::from_secs(60),
        || {
            let (pa, pb) = (
                a.metric("ingest_partitions_owned"),
                b.metric("ingest_partitions_owned"),
            );
            pa > 0.0 && pb > 0.0 && pa + pb == 4.0
        },
    )
    .await;
    produce(&brokers, &records(&lines[half..])).await;

    let all = expected_keys(&lines);
    env.wait_for("all rows", Duration::from_secs(60), || {
        env.driving_keys() == all
    })
    .await;
    let want_windows = reference_windows(&lines, |_| 80);
    // Waits for every window to fire; the assertion below names any difference.
    env.settle(Duration::from_secs(30), || {
        env.overspeed_keys().len() >= want_windows.len()
    })
    .await;
    assert_same_keys("overspeed rows", &env.overspeed_keys(), &want_windows);
    assert_eq!(env.redis.sets(), reference_sets(&lines, |_| 80));
    assert!(a.metric("ingest_consumed_total") > 0.0);
    assert!(
        b.metric("ingest_consumed_total") > 0.0,
        "the second worker got partitions"
    );
    a.stop().await;
    b.stop().await;
}
