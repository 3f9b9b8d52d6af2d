//! Edit the rule file while the worker runs: an invalid edit is refused (old rules stay),
//! then 80 → 100 applies to the windows that open after the reload.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_edit_applies_to_later_windows() {
    let env = Env::start(80);
    let first = driving_lines(30, 0, 90, 41);
    let second = driving_lines(30, 90, 90, 42);
    let brokers = env.tansu.brokers();
    produce(&brokers, &records(&first)).await;
    let w = env.worker().await;
    let first_windows = reference_windows(&first, |_| 80);
    // All first-half windows fire (the last one on the idle flush).
    env.wait_for("first half fired", Duration::from_secs(60), || {
        env.overspeed_keys() == first_windows
    })
    .await;

    std::fs::write(
        &env.rules,
        "[[rule]]\nname = \"overspeed\"\nwindow = \"soon\"\n",
    )
    .unwrap();
    env.wait_for(
        "the invalid edit to be refused",
        Duration::from_secs(10),
        || w.metric("ingest_rule_reloads_total{result=\"refused\"}") >= 1.0,
    )
    .await;
    write_rules(&env.rules, 100);
    env.wait_for("the reload", Duration::from_secs(10), || {
        w.metric("ingest_rule_reloads_total{result=\"applied\"}") >= 1.0
    })
    .await;

    produce(&brokers, &records(&second)).await;
    let all: Vec<Line> = first.iter().chain(&second).cloned().collect();
    let threshold = |start: i64| if start >= T0_MS + 90_000 { 100 } else { 80 };
    let want = reference_windows(&all, threshold);
    let old_rule_would_add = reference_windows(&second, |_| 80);
    assert!(
        !old_rule_would_add.is_subset(&want),
        "the data must tell the thresholds apart"
    );
    env.wait_for("all rows", Duration::from_secs(60), || {
        env.driving_keys().len() == all.len()
    })
    .await;
    env.wait_for("second half fired", Duration::from_secs(30), || {
        env.overspeed_keys().len() >= want.len()
    })
    .await;
    assert_same_keys("overspeed rows", &env.overspeed_keys(), &want);
    assert_eq!(env.redis.sets(), reference_sets(&all, threshold));
    w.stop().await;
}
