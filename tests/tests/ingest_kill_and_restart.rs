//! Kill the worker mid-stream at several points (no graceful commit) and restart it in the
//! same group → the same rows, the same flagged sets and overspeed rows as the reference:
//! nothing lost, no window fired twice with a partial batch.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_and_restarted_workers_produce_the_same_rows_and_sets() {
    let env = Env::start(80);
    let lines = driving_lines(30, 0, 120, 21);
    let third = lines.len() / 3;
    let brokers = env.tansu.brokers();

    produce(&brokers, &records(&lines[..third])).await;
    let w = env.worker().await;
    let first = expected_keys(&lines[..third / 2]);
    env.wait_for("part of the first third", Duration::from_secs(60), || {
        env.driving_keys().is_superset(&first)
    })
    .await;
    w.kill().await; // 1: mid-batch, windows open, offsets held

    produce(&brokers, &records(&lines[third..2 * third])).await;
    let w = env.worker().await;
    let second = expected_keys(&lines[..third + third / 2]);
    env.wait_for("half of the stream", Duration::from_secs(60), || {
        env.driving_keys().is_superset(&second)
    })
    .await;
    w.kill().await; // 2

    produce(&brokers, &records(&lines[2 * third..])).await;
    let w = env.worker().await;
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
    assert_eq!(env.driving_keys(), all);
    assert_eq!(
        env.overspeed_keys(),
        want_windows,
        "no partial window re-fired"
    );
    assert_eq!(env.redis.sets(), reference_sets(&lines, |_| 80));
    w.stop().await;

    // Every committed offset has the rule checkpoint it relies on stored beside it (the
    // store's `ingest_checkpoints` table: tansu does not keep commit metadata), which lets
    // a restarted worker skip replayed events of already-fired windows.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "speedlayer-ingest")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..4 {
        tpl.add_partition(TOPIC, p);
    }
    let committed = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    let checkpoints = env.table("ingest_checkpoints");
    for e in committed.elements() {
        let Offset::Offset(off) = e.offset() else {
            panic!("partition {} has no committed offset", e.partition());
        };
        let key = format!("speedlayer-ingest#{TOPIC}#{}", e.partition()).into_bytes();
        let row = &checkpoints[&key];
        assert_eq!(
            row["offset"],
            off.to_string().into_bytes(),
            "checkpoint of the commit"
        );
        assert!(row["checkpoint"].starts_with(b"overspeed="), "{row:?}");
    }
}
