//! The smart-car log simulator: writes SPEC §1 driving events for N cars (one per car per
//! simulated second) to a log file that rotates daily or by size, and car status records
//! (every 3 s per car) into daily batch files dropped complete into a spool directory.
//!
//! Pacing: simulated time advances `speedup` times faster than wall time (`0` = as fast as
//! possible). Output is deterministic for a given `--seed` and `--start`.
//! Rotation: the live file is renamed to `<name>.<yyyyMMdd>` when the simulated day ends,
//! or `<name>.<n>` when it reaches `rotate_size` bytes, then a new live file is created.
//! Spool files are written as hidden `.status-<yyyyMMdd>.csv.tmp` and renamed to
//! `status-<yyyyMMdd>.csv` when the day (or the run) ends, so a spooldir source only sees
//! complete files.

pub mod car;

use std::fs::{self, File};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{NaiveDateTime, TimeDelta};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::error::{Error, Result};
use car::{Car, garble_last_line};

/// Simulator options (the `simulate` subcommand's flags).
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Number of cars (≤ 260,000: car numbers are a letter and 4 digits).
    pub cars: u32,
    /// Simulated seconds to run.
    pub duration_secs: u64,
    /// Simulated seconds per wall second; 0 = unpaced.
    pub speedup: f64,
    /// RNG seed.
    pub seed: u64,
    /// Fraction of driving lines replaced by malformed ones (0–1).
    pub garbage_rate: f64,
    /// The live driving log.
    pub driving_log: PathBuf,
    /// The status spool directory.
    pub status_spool: PathBuf,
    /// First simulated instant (local time as in SPEC §1).
    pub start: NaiveDateTime,
    /// Rotate the driving log at this size instead of daily.
    pub rotate_size: Option<u64>,
    /// Print a progress line to stderr (only when it is a terminal).
    pub progress: bool,
}

/// What a run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimSummary {
    /// Driving lines written (valid + garbage).
    pub driving_lines: u64,
    /// Of those, malformed.
    pub garbage_lines: u64,
    /// Status records written.
    pub status_records: u64,
    /// Driving log rotations.
    pub rotations: u64,
    /// Spool files dropped.
    pub spool_files: u64,
}

struct DrivingLog {
    path: PathBuf,
    file: File,
    len: u64,
    rotate_size: Option<u64>,
    seq: u64,
}

impl DrivingLog {
    fn open(path: &Path, rotate_size: Option<u64>) -> Result<DrivingLog> {
        if let Some(d) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(d).map_err(|e| Error::io("create dir", d, e))?;
        }
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| Error::io("open", path, e))?;
        let len = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        Ok(DrivingLog {
            path: path.to_owned(),
            file,
            len,
            rotate_size,
            seq: 0,
        })
    }

    fn write(&mut self, text: &str) -> Result<()> {
        self.file
            .write_all(text.as_bytes())
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.len += text.len() as u64;
        Ok(())
    }

    fn rotate(&mut self, suffix: &str) -> Result<()> {
        let mut to = self.path.as_os_str().to_owned();
        to.push(format!(".{suffix}"));
        fs::rename(&self.path, &to).map_err(|e| Error::io("rename", &self.path, e))?;
        *self = DrivingLog {
            seq: self.seq,
            ..DrivingLog::open(&self.path, self.rotate_size)?
        };
        Ok(())
    }
}

struct Spool {
    dir: PathBuf,
    day: String,
    file: Option<(File, PathBuf)>,
    dropped: u64,
}

impl Spool {
    fn write(&mut self, day: &str, text: &str) -> Result<()> {
        if self.day != day {
            self.drop_file()?;
            self.day = day.to_owned();
        }
        if self.file.is_none() {
            fs::create_dir_all(&self.dir).map_err(|e| Error::io("create dir", &self.dir, e))?;
            let tmp = self.dir.join(format!(".status-{day}.csv.tmp"));
            let f = File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
            self.file = Some((f, tmp));
        }
        if let Some((f, p)) = self.file.as_mut() {
            f.write_all(text.as_bytes())
                .map_err(|e| Error::io("write", &*p, e))?;
        }
        Ok(())
    }

    /// Completes the current day's file: synced, then renamed into view.
    fn drop_file(&mut self) -> Result<()> {
        if let Some((f, tmp)) = self.file.take() {
            f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
            let mut name = format!("status-{}.csv", self.day);
            let mut n = 1;
            while self.dir.join(&name).exists() || self.dir.join(format!("{name}.done")).exists() {
                n += 1;
                name = format!("status-{}-{n}.csv", self.day);
            }
            let to = self.dir.join(name);
            fs::rename(&tmp, &to).map_err(|e| Error::io("rename", &tmp, e))?;
            self.dropped += 1;
        }
        Ok(())
    }
}

/// Runs the simulation.
///
/// # Errors
/// Invalid options ([`Error::Config`]) or I/O errors on the outputs.
pub fn run(opts: &SimOptions) -> Result<SimSummary> {
    if opts.cars == 0 || opts.cars > 260_000 {
        return Err(Error::Config {
            path: "--cars".into(),
            reason: format!("{} is outside 1..=260000", opts.cars),
        });
    }
    if !(0.0..=1.0).contains(&opts.garbage_rate) {
        return Err(Error::Config {
            path: "--garbage-rate".into(),
            reason: format!("{} is outside 0..=1", opts.garbage_rate),
        });
    }
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let mut cars: Vec<Car> = (0..opts.cars).map(|i| Car::new(i, &mut rng)).collect();
    let mut log = DrivingLog::open(&opts.driving_log, opts.rotate_size)?;
    let mut spool = Spool {
        dir: opts.status_spool.clone(),
        day: String::new(),
        file: None,
        dropped: 0,
    };
    let mut sum = SimSummary::default();
    let wall0 = Instant::now();
    let mut last_progress = Instant::now();
    let progress = opts.progress && std::io::stderr().is_terminal();
    let mut buf = String::with_capacity(opts.cars as usize * 48);
    let mut status_buf = String::new();
    let mut day = opts.start.format("%Y%m%d").to_string();
    for s in 0..opts.duration_secs {
        let now = opts.start + TimeDelta::seconds(s as i64);
        let time = now.format("%Y%m%d%H%M%S").to_string();
        let today = &time[..8];
        if today != day {
            if opts.rotate_size.is_none() {
                log.rotate(&day)?;
                sum.rotations += 1;
            }
            day = today.to_owned();
        }
        buf.clear();
        status_buf.clear();
        for (i, car) in cars.iter_mut().enumerate() {
            car.driving_line(&time, &mut rng, &mut buf);
            sum.driving_lines += 1;
            if opts.garbage_rate > 0.0 && rand::Rng::random_bool(&mut rng, opts.garbage_rate) {
                garble_last_line(&mut buf, &mut rng);
                sum.garbage_lines += 1;
            }
            if (s + i as u64).is_multiple_of(3) {
                car.status_line(&time, &mut rng, &mut status_buf);
                sum.status_records += 1;
            }
        }
        log.write(&buf)?;
        if let Some(limit) = log.rotate_size
            && log.len >= limit
        {
            log.seq += 1;
            let seq = log.seq.to_string();
            log.rotate(&seq)?;
            sum.rotations += 1;
        }
        spool.write(today, &status_buf)?;
        if opts.speedup > 0.0 {
            let due = wall0 + Duration::from_secs_f64((s + 1) as f64 / opts.speedup);
            let wait = due.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait); // pacing simulated time to wall time
            }
        }
        if progress && last_progress.elapsed() >= Duration::from_secs(1) {
            last_progress = Instant::now();
            let rate = sum.driving_lines as f64 / wall0.elapsed().as_secs_f64();
            eprint!(
                "\rsimulate: {}/{} s, {} events, {rate:.0} events/s   ",
                s + 1,
                opts.duration_secs,
                sum.driving_lines
            );
        }
    }
    spool.drop_file()?;
    sum.spool_files = spool.dropped;
    if progress {
        eprintln!();
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(dir: &Path, seed: u64) -> SimOptions {
        SimOptions {
            cars: 20,
            duration_secs: 30,
            speedup: 0.0,
            seed,
            garbage_rate: 0.1,
            driving_log: dir.join("logs/driving.log"),
            status_spool: dir.join("spool"),
            start: NaiveDateTime::parse_from_str("20261122235950", "%Y%m%d%H%M%S").unwrap(),
            rotate_size: None,
            progress: false,
        }
    }

    #[test]
    fn deterministic_rotates_daily_and_drops_spool_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let sa = run(&opts(a.path(), 7)).unwrap();
        let sb = run(&opts(b.path(), 7)).unwrap();
        assert_eq!(sa, sb);
        assert_eq!(sa.driving_lines, 600);
        assert_eq!(sa.status_records, 200);
        assert_eq!(sa.rotations, 1);
        assert_eq!(sa.spool_files, 2);
        let read = |d: &Path, n: &str| fs::read(d.join(n)).unwrap();
        assert_eq!(
            read(a.path(), "logs/driving.log"),
            read(b.path(), "logs/driving.log")
        );
        assert_eq!(
            read(a.path(), "logs/driving.log.20261122"),
            read(b.path(), "logs/driving.log.20261122")
        );
        let old = String::from_utf8(read(a.path(), "logs/driving.log.20261122")).unwrap();
        assert_eq!(old.lines().count(), 200);
        assert!(a.path().join("spool/status-20261123.csv").exists());
        let bad = [
            old,
            String::from_utf8(read(a.path(), "logs/driving.log")).unwrap(),
        ]
        .concat()
        .lines()
        .filter(|l| crate::event::parse_driving(l).is_err())
        .count() as u64;
        assert_eq!(bad, sa.garbage_lines);
        let c = tempfile::tempdir().unwrap();
        let sc = run(&opts(c.path(), 8)).unwrap();
        assert_ne!(
            read(a.path(), "logs/driving.log"),
            read(c.path(), "logs/driving.log")
        );
        let _ = sc;
    }

    #[test]
    fn rotates_by_size_without_splitting_or_losing_lines() {
        let d = tempfile::tempdir().unwrap();
        let mut o = opts(d.path(), 3);
        o.start = NaiveDateTime::parse_from_str("20261122120000", "%Y%m%d%H%M%S").unwrap();
        o.rotate_size = Some(4096);
        let sum = run(&o).unwrap();
        assert!(sum.rotations >= 3, "{sum:?}");
        let mut total = 0;
        for n in 1..=sum.rotations {
            let rotated = fs::read(d.path().join(format!("logs/driving.log.{n}"))).unwrap();
            assert!(
                rotated.len() >= 4096,
                "file {n} rolled early: {}",
                rotated.len()
            );
            assert!(rotated.ends_with(b"\n"), "file {n} ends mid-line");
            total += rotated.iter().filter(|&&b| b == b'\n').count();
        }
        let live = fs::read(d.path().join("logs/driving.log")).unwrap();
        total += live.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(total as u64, sum.driving_lines);
    }
}
