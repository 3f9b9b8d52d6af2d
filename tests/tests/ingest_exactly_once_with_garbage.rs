//! Real tansu + the real `speedlayer-server` (gRPC store, our RESP set service): N driving events with garbage mixed in → every
//! valid event stored exactly once (row count + key checksum), every garbage line in the
//! DLQ with a reason, flagged sets equal to an independent reference, metrics counted.

#[path = "ingest_support/mod.rs"]
mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_events_stored_once_garbage_dead_lettered_sets_match_reference() {
    let env = Env::start(80);
    let lines = driving_lines(40, 0, 150, 11);
    let bad = garbage(50);
    let mut records: Vec<(Option<String>, String)> = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        records.push((Some(l.car.clone()), l.text.clone()));
        if i % 120 == 0 && i / 120 < bad.len() {
            records.push((None, bad[i / 120].clone()));
        }
    }
    let bad_sent: Vec<String> = records
        .iter()
        .filter(|(k, _)| k.is_none())
        .map(|(_, t)| t.clone())
        .collect();
    produce(&env.tansu.brokers(), &records).await;

    let w = env.worker().await;
    let expected = expected_keys(&lines);
    env.wait_for("all rows", Duration::from_secs(60), || {
        env.driving_keys().len() >= expected.len()
    })
    .await;
    let want_sets = reference_sets(&lines, |_| 80);
    env.wait_for(
        "sets to match the reference",
        Duration::from_secs(30),
        || env.redis.sets() == want_sets,
    )
    .await;

    assert_eq!(
        env.driving_keys(),
        expected,
        "exactly the valid events, once each"
    );
    let table = env.table("driving");
    assert_eq!(table.len(), lines.len(), "scan count");
    let checksum: u64 = table
        .iter()
        .map(|(k, cols)| u64::from(crc32fast::hash(k)) + u64::from(crc32fast::hash(&cols["speed"])))
        .sum();
    let want: u64 = lines
        .iter()
        .zip(expected_keys_in_order(&lines))
        .map(|(l, k)| {
            u64::from(crc32fast::hash(&k))
                + u64::from(crc32fast::hash(l.speed.to_string().as_bytes()))
        })
        .sum();
    assert_eq!(checksum, want, "row contents checksum");
    let want_windows = reference_windows(&lines, |_| 80);
    assert!(!want_windows.is_empty());
    assert_eq!(
        env.overspeed_keys(),
        want_windows,
        "one overspeed row per flagged window"
    );
    let flagged = want_windows.len();
    let ttl = env.redis.ttl("20261122");
    assert!(ttl > 604_000 && ttl <= 604_800, "ttl {ttl}");

    let dead = env
        .tansu
        .consume_at_least(DLQ, bad_sent.len(), Duration::from_secs(30));
    let mut got: Vec<String> = dead
        .iter()
        .map(|r| {
            assert!(r.header("reason").is_some_and(|v| !v.is_empty()), "{r:?}");
            String::from_utf8(r.payload.clone()).unwrap()
        })
        .collect();
    got.sort();
    let mut want_dead = bad_sent.clone();
    want_dead.sort();
    assert_eq!(
        got, want_dead,
        "every garbage line, no valid one, in the DLQ"
    );

    assert_eq!(
        w.metric("ingest_dead_lettered_total"),
        bad_sent.len() as f64
    );

    // A late event (its window fired long ago): stored, left out of the rule, counted,
    // and copied to the DLQ with reason `late`.
    let late = driving_lines(1, 0, 1, 99).remove(0);
    let late_text = late.text.replace(&format!(",{},A", late.speed), ",250,A");
    produce(
        &env.tansu.brokers(),
        &[(Some(late.car.clone()), late_text.clone())],
    )
    .await;
    env.wait_for("the late event's row", Duration::from_secs(30), || {
        env.driving_keys().len() == expected.len() + 1
    })
    .await;
    let dead = env
        .tansu
        .consume_at_least(DLQ, bad_sent.len() + 1, Duration::from_secs(30));
    let late_dead: Vec<_> = dead
        .iter()
        .filter(|r| r.header("reason") == Some("late"))
        .collect();
    assert_eq!(late_dead.len(), 1, "one late copy");
    assert_eq!(late_dead[0].payload, late_text.as_bytes());
    assert_eq!(w.metric("ingest_late_total"), 1.0);
    assert_eq!(
        env.redis.sets(),
        want_sets,
        "the late event changed no result"
    );
    assert_same_keys("overspeed rows", &env.overspeed_keys(), &want_windows);
    assert_eq!(w.metric("ingest_stored_total"), lines.len() as f64 + 1.0);
    assert!(w.metric("ingest_rule_firings_total") >= flagged as f64);
    w.stop().await;
}

fn expected_keys_in_order(lines: &[Line]) -> Vec<Vec<u8>> {
    lines
        .iter()
        .map(|l| {
            expected_keys(std::slice::from_ref(l))
                .into_iter()
                .next()
                .unwrap()
        })
        .collect()
}
