//! The tail source's position file on the fault-injecting file system: a position saved
//! before a power cut is there after it (the restart repeats nothing); a cut at any step of
//! a save leaves the old or the new position, never an unreadable file; and a missing,
//! empty or garbled position file makes the source read the file again from its start
//! (at-least-once) instead of stopping.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::source::tail::{Step, TailOptions, TailSource};
use speedlayer_ingest::metrics::Registry;
use speedlayer_vfs::{CutMode, FaultFs, SharedFs};

fn log(dir: &Path) -> PathBuf {
    dir.join("app.log")
}

fn pos(dir: &Path) -> PathBuf {
    dir.join("state").join("app.pos")
}

fn tail(dir: &Path, fs: SharedFs, batch: usize) -> TailSource {
    fs::create_dir_all(dir.join("state")).unwrap();
    TailSource::new(
        TailOptions {
            path: log(dir),
            position_file: pos(dir),
            batch_lines: batch,
            poll_interval: Duration::from_millis(10),
            rotation_quiet: Duration::from_secs(1),
            fs,
        },
        Registry::new().gauge("lag", "", &[]),
    )
}

fn append(dir: &Path, lines: std::ops::Range<usize>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log(dir))
        .unwrap();
    for i in lines {
        writeln!(f, "line-{i:04}").unwrap();
    }
}

fn lines(r: std::ops::Range<usize>) -> Vec<String> {
    r.map(|i| format!("line-{i:04}")).collect()
}

/// Steps until idle, returning the lines sent; panics on an error.
fn settle(src: &mut TailSource) -> Vec<String> {
    let mut got = Vec::new();
    let now = Instant::now();
    for _ in 0..10_000 {
        let step = src
            .step(now, &mut |batch| {
                got.extend(batch.into_iter().map(|l| String::from_utf8(l).unwrap()));
                Ok(())
            })
            .unwrap();
        if step == Step::Idle {
            return got;
        }
    }
    panic!("the tail source never went idle");
}

#[test]
fn a_saved_position_survives_a_power_cut_and_the_restart_repeats_no_line() {
    for mode in [CutMode::Strict, CutMode::Random] {
        let d = tempfile::tempdir().unwrap();
        let fs = FaultFs::new(5);
        append(d.path(), 0..50);
        let mut a = tail(d.path(), fs.clone(), 7);
        assert_eq!(settle(&mut a), lines(0..50));
        drop(a);
        fs.power_cut(mode).unwrap();
        fs.power_on();
        let mut b = tail(d.path(), fs.clone(), 7);
        assert_eq!(
            settle(&mut b),
            Vec::<String>::new(),
            "{mode:?}: lines repeated"
        );
        append(d.path(), 50..60);
        assert_eq!(settle(&mut b), lines(50..60), "{mode:?}");
    }
}

#[test]
fn a_cut_at_every_step_of_a_save_leaves_the_old_or_the_new_position() {
    let mut points = 0;
    for mode in [CutMode::Strict, CutMode::Random] {
        for n in 0.. {
            let d = tempfile::tempdir().unwrap();
            let fs = FaultFs::new(n);
            append(d.path(), 0..30);
            let mut a = tail(d.path(), fs.clone(), 10);
            let mut sent = Vec::new();
            let mut emit = |batch: Vec<Vec<u8>>| {
                sent.extend(batch.into_iter().map(|l| String::from_utf8(l).unwrap()));
                Ok(())
            };
            assert_eq!(
                a.read_batch(Instant::now(), &mut emit).unwrap(),
                Step::Progress
            );
            // The second batch's save is cut before its n-th file-system change.
            fs.schedule_cut(n, mode);
            let saved = a.read_batch(Instant::now(), &mut emit).is_ok();
            let fired = fs.is_down();
            drop(a);
            if !fired {
                fs.power_cut(mode).unwrap();
            }
            fs.power_on();
            fs.cancel_cut();
            assert_eq!(sent, lines(0..20));
            let mut b = tail(d.path(), fs.clone(), 10);
            let got = settle(&mut b);
            let ctx = format!("{mode:?} cut before change {n} (save returned ok: {saved})");
            if saved {
                assert_eq!(got, lines(20..30), "{ctx}: a returned save was lost");
            } else {
                assert!(
                    got == lines(10..30) || got == lines(20..30),
                    "{ctx}: resumed neither at the old nor at the new position: {:?}",
                    got.first()
                );
            }
            points += 1;
            if !fired {
                break;
            }
        }
    }
    assert!(points >= 8, "a save has several steps; tried {points}");
}

#[test]
fn a_missing_empty_or_garbled_position_file_means_reading_again_not_stopping() {
    let real: SharedFs = Arc::new(speedlayer_vfs::RealFs);
    for content in [
        None,
        Some(""),
        Some("speedlayer-tail v1 1 2"),
        Some("\0\0\0\0\0\0"),
    ] {
        let d = tempfile::tempdir().unwrap();
        append(d.path(), 0..5);
        fs::create_dir_all(d.path().join("state")).unwrap();
        if let Some(c) = content {
            fs::write(pos(d.path()), c).unwrap();
        }
        let mut t = tail(d.path(), real.clone(), 100);
        assert_eq!(settle(&mut t), lines(0..5), "position file {content:?}");
    }
}
