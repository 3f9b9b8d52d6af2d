//! Replay gives identical output: a worker "killed" at any point, restarted from the
//! offsets the engine declared safe plus its checkpoint, produces exactly the firings of an
//! uninterrupted run — no window lost, none fired twice with a partial batch.

#[path = "rules_support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use support::*;

#[test]
fn replaying_the_same_input_gives_identical_firings() {
    let s = streams(
        &mut StdRng::seed_from_u64(3),
        20,
        3,
        200,
        1_795_357_800_000,
        3_000,
    );
    let order = interleave(&mut StdRng::seed_from_u64(4), &s);
    let now = Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let mut e = engine(&overspeed(80, 5));
            let mut run = Run::default();
            feed(&mut e, &order, now, &mut run);
            flush(&mut e, now, &mut run);
            run.firings
        })
        .collect();
    assert!(!runs[0].is_empty());
    assert_eq!(runs[0], runs[1]);
}

#[test]
fn a_crash_at_any_point_then_restart_from_safe_offsets_matches_the_full_run() {
    let s = streams(
        &mut StdRng::seed_from_u64(5),
        20,
        3,
        200,
        1_795_357_800_000,
        3_000,
    );
    let order = interleave(&mut StdRng::seed_from_u64(6), &s);
    let now = Instant::now();
    let mut full = Run::default();
    let mut e = engine(&overspeed(80, 5));
    feed(&mut e, &order, now, &mut full);
    flush(&mut e, now, &mut full);
    let expected = outcome(&full.firings);

    for crash_at in (0..order.len()).step_by(order.len() / 37) {
        // First life: process up to the crash, "commit" safe offsets with the checkpoint.
        let mut a = engine(&overspeed(80, 5));
        let mut first = Run::default();
        feed(&mut a, &order[..crash_at], now, &mut first);
        let committed: BTreeMap<i32, i64> =
            (0..3).map(|p| (p, a.safe_offset(p).unwrap_or(0))).collect();
        let checkpoint = a.checkpoint();

        // Second life: restore, replay everything from the committed offsets.
        let mut b = engine(&overspeed(80, 5));
        for p in 0..3 {
            b.assign(p, now);
            b.restore(p, &checkpoint);
        }
        let replay: Vec<Ev> = order
            .iter()
            .filter(|e| e.offset >= committed[&e.partition])
            .cloned()
            .collect();
        let mut second = Run::default();
        feed(&mut b, &replay, now, &mut second);
        flush(&mut b, now, &mut second);
        assert!(
            second.late.is_empty(),
            "crash at {crash_at}: replay saw late events"
        );

        // Sinks are idempotent (SADD, row overwrite): compare the union, and require any
        // window fired in both lives to have fired with the same full batch.
        let one = outcome(&first.firings);
        let two = outcome(&second.firings);
        let mut union = one.clone();
        for (k, v) in &two {
            if let Some(prev) = one.get(k) {
                assert_eq!(prev, v, "crash at {crash_at}: {k:?} re-fired differently");
            }
            union.insert(k.clone(), v.clone());
        }
        assert_eq!(union, expected, "crash at {crash_at}");
    }
}
