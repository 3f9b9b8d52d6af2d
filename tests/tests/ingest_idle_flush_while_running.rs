//! A quiet stream's last window fires on the idle timeout while the worker keeps running:
//! its `SADD` becomes visible through a real Redis client on our RESP port and its
//! `overspeed` rows through the client and the `speedlayer` CLI, within the idle timeout
//! of the last row being stored, with no worker stop or restart involved.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_window_fires_on_idle_while_the_worker_runs() {
    let env = Env::start(80);
    let idle = Duration::from_secs(5);
    // Two 30 s windows across midnight: [23:59:30, 24:00) flags into set `20261122`, the
    // last one [00:00, 00:00:30) into `20261123`. Watermark = 00:00:29 − 5 s lateness: the
    // first window fires by watermark, the last one only by the idle timeout.
    let from_s = 9 * 3600 + 30 * 60 - 30; // 14:30:00 + this = 23:59:30
    let lines = driving_lines(30, from_s, 60, 71);
    let midnight = T0_MS + (from_s + 30) * 1000;
    let (early, last): (Vec<Line>, Vec<Line>) =
        lines.iter().cloned().partition(|l| l.t_ms < midnight);
    let last_windows = reference_windows(&last, |_| 80);
    assert!(
        !last_windows.is_empty(),
        "the data must flag the last window"
    );
    let want_early_sets = reference_sets(&early, |_| 80);
    let want_sets = reference_sets(&lines, |_| 80);
    assert_ne!(want_early_sets, want_sets, "the last window adds members");

    let mut cfg = env.config();
    cfg.idle_flush = idle;
    let w = env.worker_with(cfg).await;
    produce(&env.tansu.brokers(), &records(&lines)).await;
    let all = expected_keys(&lines);
    env.wait_for("all rows", Duration::from_secs(60), || {
        env.driving_keys() == all
    })
    .await;
    let stored_at = Instant::now();
    let consumed = w.metric("ingest_consumed_total");
    assert!(
        env.overspeed_keys().is_disjoint(&last_windows),
        "the last window must not fire before the idle timeout"
    );
    assert_eq!(
        env.redis.sets(),
        want_early_sets,
        "only the first window so far"
    );

    env.wait_for("the idle flush", idle + Duration::from_secs(10), || {
        env.overspeed_keys().is_superset(&last_windows) && env.redis.sets() == want_sets
    })
    .await;
    let took = stored_at.elapsed();
    // The idle clock starts at the last consumed record, before the rows were readable;
    // one batch cycle and the 100 ms polls are the slack.
    assert!(
        took <= idle + Duration::from_secs(2),
        "fired {took:?} after the last row was stored (idle timeout {idle:?})"
    );
    assert!(w.is_running(), "the worker is still running");
    assert_eq!(w.metric("ingest_consumed_total"), consumed, "no new input");
    assert_same_keys(
        "overspeed rows",
        &env.overspeed_keys(),
        &reference_windows(&lines, |_| 80),
    );
    assert!(want_sets.contains_key("20261123"), "{want_sets:?}");
    let ttl = env.redis.ttl("20261123");
    assert!(ttl > 604_000 && ttl <= 604_800, "ttl {ttl}");

    // The same row through the operator's CLI.
    let key = String::from_utf8(last_windows.iter().next().unwrap().clone()).unwrap();
    let shown = env.server.cli(&["get", "overspeed", &key]).ok();
    assert!(
        shown.contains(&key) && shown.contains("1 row(s)"),
        "{shown}"
    );
    assert!(w.is_running());
    w.stop().await;
}
