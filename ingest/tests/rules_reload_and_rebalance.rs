//! Reload changes later windows only; a partition racing ahead does not make a slower one
//! late; idle partitions stop holding the watermark; revoked partitions leave it; safe
//! offsets hold back exactly the events of open windows.

#[path = "rules_support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use speedlayer_ingest::rules::Admission;
use support::*;

const T0: i64 = 1_795_357_800_000;

fn ev(p: i32, off: i64, s: i64, car: &str, speed: f64) -> Ev {
    Ev {
        partition: p,
        offset: off,
        t_ms: T0 + s * 1000,
        car: car.into(),
        speed,
    }
}

#[test]
fn reload_applies_to_windows_opened_after_it() {
    let now = Instant::now();
    let mut e = engine(&overspeed(80, 5));
    let mut run = Run::default();
    // Constant 90 km/h over four 30 s windows; reload to 100 while window 2 is open.
    let events: Vec<Ev> = (0..120).map(|s| ev(0, s, s, "V0001", 90.0)).collect();
    feed(&mut e, &events[..45], now, &mut run);
    assert_eq!(run.firings.len(), 1, "window 1 fired under the old rule");
    e.set_rules(&overspeed(100, 5));
    feed(&mut e, &events[45..], now, &mut run);
    flush(&mut e, now, &mut run);
    let starts: Vec<i64> = run.firings.iter().map(|f| f.window_start_ms).collect();
    assert_eq!(
        starts,
        vec![T0, T0 + 30_000],
        "windows 3 and 4 use the new threshold"
    );

    // And back: lowering the threshold flags later windows again.
    e.set_rules(&overspeed(80, 5));
    let more: Vec<Ev> = (120..160).map(|s| ev(0, s, s, "V0001", 90.0)).collect();
    let mut run2 = Run::default();
    feed(&mut e, &more, now, &mut run2);
    flush(&mut e, now, &mut run2);
    assert_eq!(run2.firings.len(), 2);
}

#[test]
fn a_fast_partition_does_not_make_a_slow_one_late_until_it_goes_idle() {
    let now = Instant::now();
    let mut e = engine(&overspeed(80, 5));
    e.assign(0, now);
    e.assign(1, now);
    let mut run = Run::default();
    // Partition 0 races 10 minutes ahead; partition 1 is at the start.
    feed(&mut e, &[ev(1, 0, 0, "V0002", 90.0)], now, &mut run);
    let fast: Vec<Ev> = (0..600).map(|s| ev(0, s, s, "V0001", 90.0)).collect();
    feed(&mut e, &fast, now, &mut run);
    assert!(
        run.firings.is_empty(),
        "partition 1 holds the watermark at t0"
    );
    feed(&mut e, &[ev(1, 1, 10, "V0002", 90.0)], now, &mut run);
    assert!(run.late.is_empty());
    assert_eq!(e.safe_offset(1), Some(0));
    assert_eq!(e.safe_offset(0), Some(0));

    // Partition 1 falls silent while partition 0 keeps delivering: after the idle timeout
    // partition 0 alone drives firings. (Had both gone quiet, the stream would have paused
    // and partition 1 would get a fresh idle timeout when events resume.)
    feed(
        &mut e,
        &[ev(0, 600, 600, "V0001", 90.0)],
        now + IDLE / 2,
        &mut run,
    );
    assert!(run.firings.is_empty(), "partition 1 is not idle yet");
    let later = now + IDLE + Duration::from_millis(1);
    feed(&mut e, &[ev(0, 601, 601, "V0001", 90.0)], later, &mut run);
    let cars: Vec<&str> = run.firings.iter().map(|f| f.group.as_str()).collect();
    assert!(cars.contains(&"V0002") && cars.iter().filter(|c| **c == "V0001").count() >= 19);
    assert!(
        e.safe_offset(0).unwrap() > 500,
        "fired windows release their offsets"
    );
    assert_eq!(e.safe_offset(1), Some(2));

    // Partition 1 resumes with an event of a window that fired: late, left out.
    let a = e.observe(&ev(1, 2, 20, "V0002", 200.0).sample(), later);
    assert_eq!(
        a,
        Admission::Late {
            rules: vec!["overspeed".into()]
        }
    );
    assert_eq!(e.late_events(), 1);
}

#[test]
fn revoked_partitions_leave_the_watermark_and_the_windows() {
    let now = Instant::now();
    let mut e = engine(&overspeed(80, 5));
    let mut run = Run::default();
    feed(
        &mut e,
        &[ev(0, 0, 0, "V0001", 90.0), ev(1, 0, 1, "V0002", 90.0)],
        now,
        &mut run,
    );
    feed(&mut e, &[ev(0, 1, 100, "V0001", 90.0)], now, &mut run);
    assert!(
        run.firings.is_empty(),
        "partition 1 at t0+1s holds the watermark"
    );
    e.revoke(1);
    assert_eq!(e.partitions(), vec![0]);
    assert_eq!(e.safe_offset(1), None);
    run.firings.extend(e.advance(now));
    let cars: Vec<&str> = run.firings.iter().map(|f| f.group.as_str()).collect();
    assert_eq!(
        cars,
        vec!["V0001"],
        "V0002's events went with its partition"
    );
}

#[test]
fn the_open_window_bound_fires_the_oldest_early() {
    let now = Instant::now();
    let mut e = speedlayer_ingest::rules::Engine::new(
        &overspeed(80, 5),
        speedlayer_ingest::rules::EngineOptions {
            idle_timeout: IDLE,
            max_open_windows: 3,
        },
    );
    e.assign(1, now); // silent partition: the watermark never moves
    let mut run = Run::default();
    let events: Vec<Ev> = (0..6).map(|i| ev(0, i, i * 30, "V0001", 90.0)).collect();
    feed(&mut e, &events, now, &mut run);
    assert_eq!(e.open_windows(), 3);
    assert_eq!(e.forced_firings(), 3);
    assert_eq!(run.firings.len(), 3);
}
