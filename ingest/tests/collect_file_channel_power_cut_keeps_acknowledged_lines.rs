//! Power cuts at random points, on the fault-injecting file system that drops what a real
//! power failure drops (unsynced bytes, unsynced directory entries, unsynced pages out of
//! order): the file channel always opens again; every line whose put returned `Ok`
//! (acknowledged) and whose take was not committed (delivered) is still there, in order;
//! no line appears that was never put; a line comes back after its commit returned never.
//! The only extras allowed are the at-least-once ones: lines of a take whose commit had
//! not returned, and a prefix of the put that was in flight when the power failed.
//!
//! Each cycle opens the channel with a cut scheduled before the n-th next file-system
//! change (so it lands inside a put, a segment roll, a checkpoint rewrite, a segment
//! deletion, or the recovery of `open` itself), runs random puts, takes, commits and
//! rollbacks until the power fails, then powers on, reopens and compares with a model.
//! Segments are tiny, so rolls and deletions happen every few operations.
//!
//! CI: 3 seeds × `CUTS` cycles (default 300). Long mode: `SPEEDLAYER_LONG=1` (10×) or
//! `POWER_CUTS=<cycles>`; `POWER_CUT_SEED=<n>` replays one seed.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use speedlayer_ingest::collect::Event;
use speedlayer_ingest::collect::channel::Channel;
use speedlayer_ingest::collect::channel::file::{FileChannel, FileChannelOptions, FsyncPolicy};
use speedlayer_vfs::{CutMode, FaultFs};

/// A small deterministic generator (the test must replay from its seed alone).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn options(fs: &Arc<FaultFs>) -> FileChannelOptions {
    FileChannelOptions {
        capacity_bytes: 1 << 20,
        segment_bytes: 600,
        fsync: FsyncPolicy::EveryPut,
        fs: fs.clone(),
    }
}

/// Line `n`, with a body long enough that a few make a segment and a page.
fn line(n: u64) -> Vec<u8> {
    format!("line-{n:08}-{}", "x".repeat((n % 90) as usize)).into_bytes()
}

fn number(e: &Event) -> u64 {
    let s = std::str::from_utf8(&e.body).expect("bodies are ASCII");
    s[5..13].parse().expect("a line number")
}

/// What the channel must hold: acknowledged lines not committed, oldest first.
#[derive(Default)]
struct Model {
    pending: VecDeque<u64>,
    next: u64,
}

/// What happened while the power was on, for the check after the cut.
#[derive(Default)]
struct InFlight {
    /// Lines of the put that failed when the power went: any prefix may have survived.
    put: Vec<u64>,
    /// Lines of the take whose commit failed when the power went: the commit may or may
    /// not have become durable.
    commit: usize,
}

#[derive(Default, Debug)]
struct Tally {
    cuts: u64,
    opens_cut: u64,
    acked: u64,
    committed: u64,
    lines_checked: u64,
    acked_uncommitted_found: u64,
    in_flight_put_kept: u64,
    rolls_seen: u64,
}

fn segments(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("seg-"))
            })
            .count()
        })
        .unwrap_or(0)
}

/// Random operations until the power fails (or `ops` are done).
fn drive(c: &FileChannel, fs: &FaultFs, rng: &mut Rng, m: &mut Model, t: &mut Tally) -> InFlight {
    // Lines taken but not committed, as a count from the front of `pending`.
    let mut taken = 0usize;
    for _ in 0..300 {
        if fs.is_down() {
            break;
        }
        match rng.below(10) {
            0..=4 => {
                let n = 1 + rng.below(6);
                let nums: Vec<u64> = (m.next..m.next + n).collect();
                m.next += n;
                let events = nums.iter().map(|&i| Event::new(line(i))).collect();
                match c.put(events) {
                    Ok(()) => {
                        t.acked += n;
                        m.pending.extend(nums);
                    }
                    Err(e) => {
                        assert!(fs.is_down(), "a put failed with the power on: {e}");
                        return InFlight {
                            put: nums,
                            commit: 0,
                        };
                    }
                }
            }
            5..=8 => {
                let max = 1 + rng.below(12) as usize;
                let got = match c.take(max, Duration::ZERO) {
                    Ok(g) => g,
                    Err(e) => panic!("a take failed: {e}"),
                };
                let want: Vec<u64> = m
                    .pending
                    .iter()
                    .skip(taken)
                    .take(got.len())
                    .copied()
                    .collect();
                let nums: Vec<u64> = got.iter().map(number).collect();
                assert_eq!(
                    nums, want,
                    "a take returned other lines than the model's next ones"
                );
                taken += got.len();
                if rng.below(4) == 0 {
                    c.rollback(got).expect("rollback");
                    taken = 0;
                    continue;
                }
                match c.commit() {
                    Ok(()) => {
                        t.committed += taken as u64;
                        m.pending.drain(..taken);
                        taken = 0;
                    }
                    Err(e) => {
                        assert!(fs.is_down(), "a commit failed with the power on: {e}");
                        return InFlight {
                            put: Vec::new(),
                            commit: taken,
                        };
                    }
                }
            }
            _ => {
                // A take left uncommitted (the consumer died before delivering).
                let max = 1 + rng.below(5) as usize;
                if let Ok(got) = c.take(max, Duration::ZERO) {
                    taken += got.len();
                }
            }
        }
    }
    InFlight::default()
}

/// Every line in the channel, read without committing.
fn contents(c: &FileChannel) -> Vec<u64> {
    let mut all = Vec::new();
    loop {
        let got = c.take(10_000, Duration::ZERO).expect("take after reopen");
        if got.is_empty() {
            break;
        }
        all.extend(got.iter().map(number));
    }
    c.rollback(Vec::new()).expect("rollback");
    all
}

fn run(seed: u64, cycles: u64) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chan");
    let fs = FaultFs::new(seed);
    let mut rng = Rng(seed ^ 0xc4a2);
    let mut m = Model::default();
    let mut t = Tally::default();
    for cycle in 0..cycles {
        let mode = if rng.below(2) == 0 {
            CutMode::Strict
        } else {
            CutMode::Random
        };
        // Sometimes the cut lands while the channel is still opening (its recovery).
        let budget = if rng.below(6) == 0 {
            rng.below(12)
        } else {
            rng.below(250)
        };
        let ctx = format!("seed {seed} cycle {cycle} budget {budget} {mode:?}");
        let before = segments(&path);
        fs.schedule_cut(budget, mode);
        let inflight = match FileChannel::open("c", &path, options(&fs)) {
            Err(_) => {
                assert!(fs.is_down(), "{ctx}: open failed with the power on");
                t.opens_cut += 1;
                InFlight::default()
            }
            Ok(c) => drive(&c, &fs, &mut rng, &mut m, &mut t),
        };
        if segments(&path) != before {
            t.rolls_seen += 1;
        }
        if !fs.is_down() {
            fs.power_cut(mode).unwrap();
        }
        t.cuts += 1;
        fs.power_on();
        fs.cancel_cut(); // no cut while verifying
        let c = FileChannel::open("c", &path, options(&fs))
            .unwrap_or_else(|e| panic!("{ctx}: the channel must open after a power cut: {e}"));
        let got = contents(&c);
        assert_eq!(
            c.len(),
            got.len(),
            "{ctx}: len() disagrees with the contents"
        );
        // got = pending[k..] ++ a prefix of the in-flight put, k ∈ {0, in-flight commit}.
        let pending: Vec<u64> = m.pending.iter().copied().collect();
        let skip = [0, inflight.commit]
            .into_iter()
            .find(|&k| got.len() >= pending.len() - k && got[..pending.len() - k] == pending[k..]);
        let Some(skip) = skip else {
            let missing: Vec<_> = pending
                .iter()
                .filter(|n| !got.contains(n))
                .take(8)
                .collect();
            panic!(
                "{ctx}: recovered lines are not the acknowledged, uncommitted ones in order \
                 (pending {}, got {}); missing {missing:?}; got head {:?}",
                pending.len(),
                got.len(),
                &got[..got.len().min(8)]
            );
        };
        let extra = &got[pending.len() - skip..];
        assert!(
            extra.len() <= inflight.put.len() && extra == &inflight.put[..extra.len()],
            "{ctx}: lines that were never put (or out of order) after the acknowledged ones: {extra:?}"
        );
        t.lines_checked += got.len() as u64;
        t.acked_uncommitted_found += (pending.len() - skip) as u64;
        t.in_flight_put_kept += extra.len() as u64;
        t.committed += skip as u64;
        // The survivors of the in-flight put are in the channel now: acknowledged from here.
        m.pending = got.into_iter().collect();
        drop(c);
    }
    t
}

fn cycles() -> u64 {
    if let Ok(n) = std::env::var("POWER_CUTS") {
        return n.parse().expect("POWER_CUTS is a number");
    }
    if std::env::var_os("SPEEDLAYER_LONG").is_some() {
        3000
    } else {
        300
    }
}

fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("POWER_CUT_SEED") {
        Ok(s) => vec![s.parse().expect("POWER_CUT_SEED is a number")],
        Err(_) => default.to_vec(),
    }
}

#[test]
fn random_power_cuts_keep_every_acknowledged_uncommitted_line_in_order() {
    for seed in seeds(&[1, 2, 3]) {
        let t = run(seed, cycles());
        println!(
            "seed {seed}: cuts {} (during open {}), acknowledged {}, committed {}, lines checked {}, \
             lost 0, acknowledged uncommitted found {}, in-flight put lines kept {}, cycles that rolled or deleted segments {}",
            t.cuts,
            t.opens_cut,
            t.acked,
            t.committed,
            t.lines_checked,
            t.acked_uncommitted_found,
            t.in_flight_put_kept,
            t.rolls_seen
        );
        assert!(t.acked > 0 && t.committed > 0 && t.rolls_seen > 0, "{t:?}");
    }
}

/// One scripted round — a put that rolls the segment, a take of everything and a commit
/// that deletes the fully committed segments — cut before each of its file-system changes
/// in turn, in both cut modes.
#[test]
fn a_cut_at_every_step_of_a_roll_and_a_deleting_commit_keeps_the_channel_whole() {
    let mut points = 0;
    for mode in [CutMode::Strict, CutMode::Random] {
        for n in 0.. {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("chan");
            let fs = FaultFs::new(n);
            // Before the cut: 12 acknowledged lines over several segments, 4 committed.
            let c = FileChannel::open("c", &path, options(&fs)).unwrap();
            for i in 0..12 {
                c.put(vec![Event::new(line(i))]).unwrap();
            }
            let first = c.take(4, Duration::ZERO).unwrap();
            assert_eq!(first.len(), 4);
            c.commit().unwrap();
            let ctx = format!("{mode:?} cut before change {n}");
            fs.schedule_cut(n, mode);
            let big: Vec<Event> = (12..20).map(|i| Event::new(line(i))).collect();
            let put_ok = c.put(big).is_ok();
            let mut committed_all = false;
            if put_ok {
                let all = c.take(100, Duration::ZERO).unwrap();
                assert_eq!(all.len(), 16, "{ctx}");
                committed_all = c.commit().is_ok();
            }
            let fired = fs.is_down();
            drop(c);
            if !fired {
                fs.power_cut(mode).unwrap();
            }
            fs.power_on();
            fs.cancel_cut();
            let c = FileChannel::open("c", &path, options(&fs))
                .unwrap_or_else(|e| panic!("{ctx}: reopen: {e}"));
            let got = contents(&c);
            let want: Vec<u64> = if committed_all {
                Vec::new()
            } else if put_ok {
                // The final commit failed part-way: before or after it, never in between.
                if got.is_empty() {
                    Vec::new()
                } else {
                    (4..20).collect()
                }
            } else {
                // The put failed: a prefix of it may have survived.
                (4..(12 + got.len().saturating_sub(8)) as u64).collect()
            };
            assert_eq!(got, want, "{ctx}");
            points += 1;
            if !fired {
                break;
            }
        }
    }
    println!("cut points tried: {points}");
    assert!(
        points > 20,
        "the scripted round has more steps than {points}"
    );
}
