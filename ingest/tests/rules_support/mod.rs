//! Shared helpers of the `rules_*` tests: a compact event type, rule files, a driver that
//! runs events through an [`Engine`], and an independent reference computation.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rand::Rng;
use rand::seq::SliceRandom;
use speedlayer_ingest::rules::{Admission, Engine, EngineOptions, Firing, RuleSet, Sample};

/// One driving event as the tests build it.
#[derive(Debug, Clone, PartialEq)]
pub struct Ev {
    pub partition: i32,
    pub offset: i64,
    pub t_ms: i64,
    pub car: String,
    pub speed: f64,
}

impl Ev {
    pub fn sample(&self) -> Sample<'_> {
        Sample {
            partition: self.partition,
            offset: self.offset,
            time_ms: self.t_ms,
            car_number: &self.car,
            area_code: "A01",
            turn_signal: "N",
            numbers: [self.speed, 1.0, 0.0, 0.0],
        }
    }
}

/// The overspeed rule with this threshold and lateness (window 30 s).
pub fn overspeed(threshold: u32, lateness_s: u32) -> RuleSet {
    RuleSet::parse(
        &format!(
            "[[rule]]\nname = \"overspeed\"\nwindow = \"30s\"\ngroup_by = \"car_number\"\n\
             having = \"avg(speed) > {threshold}\"\nallowed_lateness = \"{lateness_s}s\"\n\
             set_key = \"{{window_date}}\"\nmember = \"{{car_number}}\"\nttl = \"7d\"\n"
        ),
        "test",
    )
    .unwrap()
}

pub const IDLE: Duration = Duration::from_secs(10);

pub fn engine(rules: &RuleSet) -> Engine {
    Engine::new(
        rules,
        EngineOptions {
            idle_timeout: IDLE,
            ..EngineOptions::default()
        },
    )
}

/// Result of a run: firings and the events reported late.
#[derive(Debug, Default)]
pub struct Run {
    pub firings: Vec<Firing>,
    pub late: Vec<Ev>,
    pub replayed: usize,
}

/// Feeds `events` in order at processing time `now` (no idleness), advancing after each.
pub fn feed(e: &mut Engine, events: &[Ev], now: Instant, run: &mut Run) {
    for ev in events {
        match e.observe(&ev.sample(), now) {
            Admission::Accepted => {}
            Admission::Late { .. } => run.late.push(ev.clone()),
            Admission::Replayed => run.replayed += 1,
        }
        run.firings.extend(e.advance(now));
    }
}

/// Lets every partition go idle so every open window fires.
pub fn flush(e: &mut Engine, now: Instant, run: &mut Run) {
    run.firings.extend(e.advance(now + IDLE * 2));
}

/// Firings keyed by (rule, car, window start) → (count, aggregate values).
pub type Outcome = BTreeMap<(String, String, i64), (u64, Vec<(String, f64)>)>;

pub fn outcome(firings: &[Firing]) -> Outcome {
    let mut out = Outcome::new();
    for f in firings {
        let prev = out.insert(
            (f.rule.clone(), f.group.clone(), f.window_start_ms),
            (f.count, f.values.clone()),
        );
        assert!(prev.is_none(), "window fired twice: {f:?}");
    }
    out
}

/// Independent reference: Esper time_batch over all events, grouped per car and window.
pub fn reference(events: &[Ev], threshold: f64) -> Outcome {
    let mut sums: BTreeMap<(String, i64), (u64, f64)> = BTreeMap::new();
    for e in events {
        let start = e.t_ms - e.t_ms.rem_euclid(30_000);
        let s = sums.entry((e.car.clone(), start)).or_default();
        s.0 += 1;
        s.1 += e.speed;
    }
    sums.into_iter()
        .filter(|(_, (n, sum))| sum / *n as f64 > threshold)
        .map(|((car, start), (n, sum))| {
            (
                ("overspeed".to_string(), car, start),
                (n, vec![("avg(speed)".to_string(), sum / n as f64)]),
            )
        })
        .collect()
}

/// Per-partition streams: `cars` cars over `seconds` s from `t0_ms`, one event per car per
/// second, speeds around 80 so both outcomes occur; car `i` lives on partition
/// `i % partitions`. Within a partition, events arrive in order of `t + jitter` with
/// jitter < `jitter_ms`, so no event is more than `jitter_ms` behind its predecessors.
pub fn streams(
    rng: &mut impl Rng,
    cars: usize,
    partitions: i32,
    seconds: i64,
    t0_ms: i64,
    jitter_ms: i64,
) -> Vec<Vec<Ev>> {
    let mut per: Vec<Vec<(i64, Ev)>> = vec![Vec::new(); partitions as usize];
    for c in 0..cars {
        let bias: f64 = rng.random_range(60.0..100.0);
        for s in 0..seconds {
            let t_ms = t0_ms + s * 1000 + rng.random_range(0..1000);
            let speed = (bias + rng.random_range(-20.0..20.0f64))
                .round()
                .clamp(0.0, 300.0);
            let p = (c as i32) % partitions;
            let key = t_ms
                + if jitter_ms > 0 {
                    rng.random_range(0..jitter_ms)
                } else {
                    0
                };
            per[p as usize].push((
                key,
                Ev {
                    partition: p,
                    offset: 0,
                    t_ms,
                    car: format!("V{c:04}"),
                    speed,
                },
            ));
        }
    }
    per.into_iter()
        .map(|mut v| {
            v.sort_by_key(|(k, e)| (*k, e.car.clone()));
            v.into_iter()
                .enumerate()
                .map(|(i, (_, mut e))| {
                    e.offset = i as i64;
                    e
                })
                .collect()
        })
        .collect()
}

/// Interleaves partition streams at random paces, keeping each partition's order.
pub fn interleave(rng: &mut impl Rng, streams: &[Vec<Ev>]) -> Vec<Ev> {
    let mut picks: Vec<usize> = streams
        .iter()
        .enumerate()
        .flat_map(|(i, s)| std::iter::repeat_n(i, s.len()))
        .collect();
    picks.shuffle(rng);
    let mut pos = vec![0usize; streams.len()];
    picks
        .into_iter()
        .map(|i| {
            let e = streams[i][pos[i]].clone();
            pos[i] += 1;
            e
        })
        .collect()
}
