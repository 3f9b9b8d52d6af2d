//! The same events in any arrival order within the allowed lateness, across partitions
//! consumed at different paces, give the same firings — equal to an independent Esper
//! `time_batch` reference — and no event is late.

#[path = "rules_support/mod.rs"]
mod support;

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::*;

fn run_in_order(order: &[Ev]) -> Run {
    let now = Instant::now();
    let mut e = engine(&overspeed(80, 5));
    let mut run = Run::default();
    feed(&mut e, order, now, &mut run);
    flush(&mut e, now, &mut run);
    assert_eq!(e.open_windows(), 0);
    run
}

#[test]
fn any_order_within_lateness_gives_the_reference_firings() {
    // 40 cars on 4 partitions for 5 minutes; inside each partition events arrive up to 4 s
    // out of order (allowed lateness 5 s); partitions interleave at random paces.
    let t0 = 1_795_357_800_000;
    let in_order = streams(&mut StdRng::seed_from_u64(7), 40, 4, 300, t0, 0);
    let all: Vec<Ev> = in_order.iter().flatten().cloned().collect();
    let expected = reference(&all, 80.0);
    assert!(expected.len() > 20, "the data must flag some windows");

    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(1000 + seed);
        let mut shuffled = in_order.clone();
        for part in &mut shuffled {
            // Swap neighbours less than 4 s apart: a displacement within the lateness.
            for i in 1..part.len() {
                if rng.random_bool(0.5) && (part[i].t_ms - part[i - 1].t_ms).abs() < 4_000 {
                    part.swap(i, i - 1);
                }
            }
            for (i, e) in part.iter_mut().enumerate() {
                e.offset = i as i64;
            }
        }
        let run = run_in_order(&interleave(&mut rng, &shuffled));
        assert!(
            run.late.is_empty(),
            "seed {seed}: late {:?}",
            run.late.first()
        );
        assert_eq!(outcome(&run.firings), expected, "seed {seed}");
    }

    // Another data set in the generator's own jittered order (each event < 4 s behind its
    // predecessors).
    let jittered = streams(&mut StdRng::seed_from_u64(7), 40, 4, 300, t0, 4_000);
    let run = run_in_order(&interleave(&mut StdRng::seed_from_u64(99), &jittered));
    assert!(run.late.is_empty());
    let all: Vec<Ev> = jittered.iter().flatten().cloned().collect();
    assert_eq!(outcome(&run.firings), reference(&all, 80.0));
}

#[test]
fn time_batch_outputs_one_row_per_car_with_events_and_the_batch_average() {
    let t0 = 1_795_357_800_000; // 2026-11-22 14:30:00, a multiple of 30 s
    let ev = |off: i64, s: i64, car: &str, speed: f64| Ev {
        partition: 0,
        offset: off,
        t_ms: t0 + s * 1000,
        car: car.into(),
        speed,
    };
    let events = vec![
        ev(0, 0, "V0001", 70.0),
        ev(1, 1, "V0002", 50.0),
        ev(2, 29, "V0001", 95.0), // V0001: (70 + 95) / 2 = 82.5 > 80
        ev(3, 30, "V0001", 81.0), // next batch: alone, 81 > 80
        ev(4, 31, "V0003", 80.0), // exactly 80 is not > 80
        ev(5, 95, "V0002", 10.0), // pushes the watermark past both batches
    ];
    let now = Instant::now();
    let mut e = engine(&overspeed(80, 5));
    let mut run = Run::default();
    feed(&mut e, &events, now, &mut run);
    let f = &run.firings;
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!((f[0].group.as_str(), f[0].count), ("V0001", 2));
    assert_eq!(f[0].values, vec![("avg(speed)".to_string(), 82.5)]);
    assert_eq!(f[0].set_key, "20261122");
    assert_eq!(f[0].member, "V0001");
    assert_eq!(f[0].ttl.as_secs(), 604_800);
    assert_eq!(
        (f[1].group.as_str(), f[1].window_start_ms),
        ("V0001", t0 + 30_000)
    );
    // The last batch only fires on the idle flush.
    assert_eq!(e.open_windows(), 1);
    flush(&mut e, now, &mut run);
    assert_eq!(e.open_windows(), 0);
    assert_eq!(run.firings.len(), 2, "V0002 at 10 km/h does not fire");
}
