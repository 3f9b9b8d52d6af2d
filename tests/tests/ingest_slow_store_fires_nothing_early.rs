//! A store that is up but stalled (SIGSTOP, as a slow disk or a GC pause would do) for
//! longer than the idle timeout, while a batch from the middle of a window waits on it →
//! the worker's own wait must not make the partitions look idle: no window fires early,
//! no event is late, every window and flag is exactly the reference's.
//!
//! (CI once fired a window after 8 of its 30 s: the store was down for 10 s, part of that
//! wait was counted as partition silence, every partition looked idle, the half-filled
//! window fired and the next 660 events were dead-lettered as late.)

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_stalled_past_the_idle_timeout_fires_nothing_early() {
    let mut env = Env::start(80);
    let lines = driving_lines(30, 0, 120, 47);
    let half = lines.len() / 2; // the first 60 s: windows 14:30:00 and 14:30:30
    let brokers = env.tansu.brokers();
    let mut cfg = env.config();
    // Small batches: the stalled batch holds only part of a window, the rest is queued.
    cfg.batch_max_events = 100;
    let idle = cfg.idle_flush;
    produce(&brokers, &records(&lines[..half])).await;
    let w = env.worker_with(cfg).await;
    let first = expected_keys(&lines[..half]);
    env.wait_for("the first half stored", Duration::from_secs(60), || {
        env.driving_keys().is_superset(&first)
    })
    .await;

    // Let the worker finish with the first half (its windows fire once every partition is
    // idle, then the commit): frozen in the middle of that, it could not consume at all.
    let first_windows = reference_windows(&lines[..half], |_| 80);
    env.wait_for(
        "the first half's windows and commit",
        Duration::from_secs(60),
        || {
            env.overspeed_keys() == first_windows
                && w.metric("ingest_committed_offset") >= half as f64
        },
    )
    .await;

    env.server.freeze(); // gRPC and RESP accept nothing, but are not gone
    let consumed = w.metric("ingest_consumed_total");
    produce(&brokers, &records(&lines[half..])).await;
    env.wait_for(
        "a batch of the second half to wait on the store",
        Duration::from_secs(30),
        || w.metric("ingest_consumed_total") > consumed,
    )
    .await;
    tokio::time::sleep(idle + Duration::from_secs(2)).await;
    env.server.thaw();

    env.assert_caught_up_exactly(&w, &lines, 80).await;
    w.stop().await;
}
