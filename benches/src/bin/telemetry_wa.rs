//! `telemetry_wa`: write and space amplification of the storage engine on the telemetry
//! workload of issue 3 (Benchmarks), with date-tiered and exploring compaction.
//!
//! ```text
//! cargo run --release -p speedlayer-benches --bin telemetry_wa -- --cars 1000 --seconds 1800
//! ```
//!
//! Workload: `--cars` cars × `--seconds` seconds of SPEC §1 driving rows (the ingest
//! worker's own row layout: key `car#yyyyMMddHHmmss#crc`, 8 columns in family `cf1`, cell
//! timestamp = event time), written in time order (every car's row for second t, then
//! t + 1, ...), one `Db::write` per second. The engine's clock is a manual clock set to the
//! event time being written, so the family's TTL (`--ttl-s`) expires data within the run
//! and date-tiered compaction drops whole expired files. The full issue size (1,000 cars ×
//! 86,400 s with a 1-day TTL) is `--seconds 86400 --ttl-s 86400`; the default is a scaled
//! run (1,000 cars x 30 minutes, 5-minute TTL) stated in the output.
//!
//! Reported per policy: user bytes (row + qualifier + value of every flushed cell, the
//! engine's definition), bytes written to disk by flushes and compactions, write
//! amplification, space amplification (live file bytes / logical bytes of the rows still
//! inside the TTL), a series of files per store sampled over time, and get latency
//! (p50/p99/max) of random recent rows measured while background compactions run.
//! The last line per policy is machine-readable (`RESULT policy=... wa=...`), used by
//! `benches/compare_writeamp.sh`.
//!
//! This is a benchmark, not a test: it asserts nothing except that every get finds its row.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use speedlayer_benches::{BenchError, Result};
use speedlayer_ingest::event::parse_driving;
use speedlayer_ingest::worker::rows::{FAMILY, driving_row};
use speedlayer_storage::compaction::{CompactionOptions, CompactionStyle};
use speedlayer_storage::{
    Clock, Db, DbStats, Durability, EngineOptions, Error as StorageError, FamilyOptions, Get,
    Mutation, TableSchema,
};

const TABLE: &str = "driving";
/// 2026-11-22 00:00:00 as days since 1970-01-01 (the first simulated day).
const START_DAY: i64 = 20_779;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Policy {
    DateTiered,
    Exploring,
    Both,
}

/// Flags. Defaults are the scaled run; see the module doc for the full size.
#[derive(Parser, Debug)]
#[command(about = "Write/space amplification of the telemetry workload")]
struct Args {
    /// Cars (rows per simulated second).
    #[arg(long, default_value_t = 1000)]
    cars: u32,
    /// Simulated seconds written.
    #[arg(long, default_value_t = 1800)]
    seconds: u64,
    /// Family TTL in simulated seconds (the issue's 1 day scaled to the run length).
    #[arg(long, default_value_t = 300)]
    ttl_s: u64,
    /// Compaction policy to run; `both` runs date-tiered then exploring on fresh databases.
    #[arg(long, value_enum, default_value_t = Policy::Both)]
    policy: Policy,
    /// Date-tiered base window in simulated seconds (default: TTL / 8).
    #[arg(long)]
    base_window_s: Option<u64>,
    /// Date-tiered windows per tier (growth factor).
    #[arg(long, default_value_t = 4)]
    windows_per_tier: u64,
    /// Memstore flush size in MiB (the engine's default is 64; scaled with the TTL).
    #[arg(long, default_value_t = 8)]
    flush_mib: usize,
    /// Compaction output throttle in MiB/s (0 = unlimited).
    #[arg(long, default_value_t = 0)]
    throttle_mib: u64,
    /// Sample files/bytes and measure gets every this many simulated seconds.
    #[arg(long, default_value_t = 60)]
    sample_every_s: u64,
    /// Gets per sample, on random rows of the last `recent_s` simulated seconds.
    #[arg(long, default_value_t = 500)]
    gets_per_sample: u32,
    /// How far back (simulated seconds) a "recent" row may be.
    #[arg(long, default_value_t = 60)]
    recent_s: u64,
    /// Database directory (default: a temporary directory per policy, removed after).
    #[arg(long)]
    db: Option<std::path::PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match real_main(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("telemetry_wa: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main(args: &Args) -> Result<()> {
    if args.cars == 0 || args.cars > 10_000 || args.seconds == 0 || args.ttl_s == 0 {
        return Err(BenchError::InvalidFlag {
            flag: "cars/seconds/ttl-s".into(),
            value: format!("{}/{}/{}", args.cars, args.seconds, args.ttl_s),
            reason: "cars must be 1..=10000 (car numbers V0000..), seconds and ttl-s > 0".into(),
        });
    }
    let policies: &[Policy] = match args.policy {
        Policy::Both => &[Policy::DateTiered, Policy::Exploring],
        Policy::DateTiered => &[Policy::DateTiered],
        Policy::Exploring => &[Policy::Exploring],
    };
    let scale = if args.seconds == 86_400 && args.ttl_s == 86_400 {
        "full size".to_string()
    } else {
        format!(
            "scaled: issue size is 1000 cars x 86400 s with a 1-day TTL; here TTL = {:.2} day-equivalents of the run",
            args.ttl_s as f64 / args.seconds as f64
        )
    };
    println!(
        "telemetry_wa: {} cars x {} s = {} rows, TTL {} s, memstore flush {} MiB, lz4, 1 region ({scale})",
        args.cars,
        args.seconds,
        u64::from(args.cars) * args.seconds,
        args.ttl_s,
        args.flush_mib
    );
    for &p in policies {
        let tmp;
        let dir = match &args.db {
            Some(d) => d.join(policy_name(p)),
            None => {
                tmp = tempfile::tempdir().map_err(|e| BenchError::io("tempdir", e))?;
                tmp.path().to_path_buf()
            }
        };
        run_policy(args, p, &dir)?;
    }
    Ok(())
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::DateTiered => "date-tiered",
        Policy::Exploring => "exploring",
        Policy::Both => "both",
    }
}

/// The CSV line of car `car` at simulated second `t` (values a deterministic function of both).
fn driving_line(car: u32, t: u64) -> String {
    let secs = t as i64;
    let (y, m, d) = civil_from_days(START_DAY + secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let h = mix(u64::from(car), t);
    // Speed changes slowly per car (a smooth curve) plus noise, like real driving.
    let base = (u64::from(car) * 37 + t / 10) % 120;
    let speed = 20 + base + h % 15;
    let turn = ['N', 'N', 'N', 'N', 'L', 'R'][(h >> 8) as usize % 6];
    let steering = ((h >> 16) % 61) as i64 - 30;
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02},V{car:04},{},{},{steering},{turn},{speed},A{:02}",
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        (h >> 24) % 10,
        (h >> 28) % 3,
        car % 20,
    )
}

/// splitmix64 of (a, b): cheap deterministic pseudo-randomness.
fn mix(a: u64, b: u64) -> u64 {
    let mut z = a
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(b)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// One row as a mutation, plus its cell timestamp and its user bytes (engine definition).
fn row_mutation(car: u32, t: u64) -> Result<(Mutation, u64, u64)> {
    let line = driving_line(car, t);
    let ev = parse_driving(&line).map_err(|e| BenchError::InvalidFlag {
        flag: "generated line".into(),
        value: line.clone(),
        reason: e.to_string(),
    })?;
    let row = driving_row(&ev, line.as_bytes());
    let ts = u64::try_from(row.timestamp_ms).unwrap_or(0);
    let mut user = 0u64;
    let mut m = Mutation::new(row.key.clone());
    for (q, v) in row.cells {
        user += (row.key.len() + q.len() + v.len()) as u64;
        m = m.put(FAMILY, q, Some(ts), v);
    }
    Ok((m, ts, user))
}

/// Sum of one family's stats over every region of the table.
#[derive(Default, Debug, Clone, Copy)]
struct Totals {
    files: u64,
    max_files: u64,
    file_bytes: u64,
    flush_bytes: u64,
    compact_written: u64,
    compact_read: u64,
    user_bytes: u64,
    runs: u64,
    dropped_files: u64,
    failures: u64,
    too_busy: u64,
}

fn totals(stats: &DbStats) -> Totals {
    let mut t = Totals::default();
    for table in stats.tables.iter().filter(|t| t.name == TABLE) {
        for r in &table.regions {
            t.too_busy += r.too_busy;
            for s in &r.stores {
                t.files += s.files;
                t.max_files = t.max_files.max(s.files);
                t.file_bytes += s.file_bytes;
                t.flush_bytes += s.compaction.flush_bytes;
                t.compact_written += s.compaction.bytes_written;
                t.compact_read += s.compaction.bytes_read;
                t.user_bytes += s.compaction.user_bytes;
                t.runs += s.compaction.runs;
                t.dropped_files += s.compaction.dropped_files;
                t.failures += s.compaction.failures;
            }
        }
    }
    t
}

fn storage(during: &str) -> impl FnOnce(StorageError) -> BenchError + '_ {
    move |e| BenchError::storage(during, e)
}

/// Writes with bounded retries on `TooBusy` (flush or compaction behind): at most ~60 s.
fn write_retrying(db: &Db, batch: Vec<Mutation>, retries: &mut u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match db.write(TABLE, batch.clone(), Durability::SkipWal) {
            Ok(()) => return Ok(()),
            Err(StorageError::TooBusy(_)) if Instant::now() < deadline => {
                *retries += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(BenchError::storage("write", e)),
        }
    }
}

fn run_policy(args: &Args, policy: Policy, dir: &Path) -> Result<()> {
    let ttl_ms = args.ttl_s * 1000;
    let style = match policy {
        Policy::DateTiered => CompactionStyle::DateTiered {
            base_window_ms: args.base_window_s.unwrap_or((args.ttl_s / 8).max(1)) * 1000,
            windows_per_tier: args.windows_per_tier,
            max_tier_age_ms: ttl_ms,
        },
        _ => CompactionStyle::Exploring,
    };
    let (_, first_ts, _) = row_mutation(0, 0)?;
    let now = Arc::new(AtomicU64::new(first_ts));
    let opts = EngineOptions {
        memstore_flush_bytes: args.flush_mib * 1024 * 1024,
        write_stall_ms: 1000,
        clock: Clock::manual(now.clone()),
        compaction: CompactionOptions {
            throttle_mb_per_sec: args.throttle_mib,
            ..CompactionOptions::default()
        },
        ..EngineOptions::default()
    };
    let db = Db::open(dir, opts).map_err(storage("open"))?;
    let mut family = FamilyOptions::new(FAMILY).ttl_ms(ttl_ms);
    family.compaction = style;
    db.create_table(TableSchema::new(TABLE, vec![family]))
        .map_err(storage("create_table"))?;

    println!("\n## policy {} ({style:?})", policy_name(policy));
    println!("| sim s | files | max/store | file MiB | compactions | dropped | get p99 us |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut hist = Histogram::<u64>::new(3).map_err(|e| BenchError::Unsupported(e.to_string()))?;
    let mut sample_hist =
        Histogram::<u64>::new(3).map_err(|e| BenchError::Unsupported(e.to_string()))?;
    let mut missing = 0u64;
    let mut retries = 0u64;
    let mut row_bytes = 0u64;
    let mut rng = 0x5EED_u64;
    let t0 = Instant::now();
    for t in 0..args.seconds {
        let mut batch = Vec::with_capacity(args.cars as usize);
        let mut ts = first_ts;
        for car in 0..args.cars {
            let (m, cell_ts, user) = row_mutation(car, t)?;
            if t == 0 && car == 0 {
                row_bytes = user;
            }
            ts = cell_ts;
            batch.push(m);
        }
        now.store(ts, Ordering::Relaxed);
        write_retrying(&db, batch, &mut retries)?;
        let sample = (t + 1) % args.sample_every_s == 0 || t + 1 == args.seconds;
        if sample {
            sample_hist.reset();
            for _ in 0..args.gets_per_sample {
                rng = mix(rng, t);
                let car = (rng % u64::from(args.cars)) as u32;
                let back = (rng >> 32) % args.recent_s.min(t + 1);
                let (m, _, _) = row_mutation(car, t - back)?;
                let start = Instant::now();
                let found = db.get(TABLE, &Get::new(m.row)).map_err(storage("get"))?;
                let us = start.elapsed().as_micros() as u64;
                if found.is_none() {
                    missing += 1;
                }
                hist.saturating_record(us.max(1));
                sample_hist.saturating_record(us.max(1));
            }
            let s = totals(&db.stats());
            println!(
                "| {} | {} | {} | {:.1} | {} | {} | {} |",
                t + 1,
                s.files,
                s.max_files,
                s.file_bytes as f64 / 1048576.0,
                s.runs,
                s.dropped_files,
                sample_hist.value_at_quantile(0.99)
            );
        }
    }
    let write_secs = t0.elapsed().as_secs_f64();
    db.flush(TABLE).map_err(storage("flush"))?;
    // Let queued background compactions finish (bounded): poll the counters until they
    // stop moving, so both policies are charged for the work their last flushes caused.
    let settle = Instant::now();
    let mut last = totals(&db.stats());
    while settle.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(500));
        let cur = totals(&db.stats());
        if cur.runs == last.runs && cur.compact_written == last.compact_written {
            break;
        }
        last = cur;
    }
    let s = totals(&db.stats());
    db.close().map_err(storage("close"))?;

    let rows = u64::from(args.cars) * args.seconds;
    let disk = s.flush_bytes + s.compact_written;
    let wa = disk as f64 / s.user_bytes.max(1) as f64;
    let live_rows = u64::from(args.cars) * args.ttl_s.min(args.seconds);
    let logical_live = live_rows * row_bytes;
    let sa = s.file_bytes as f64 / logical_live.max(1) as f64;
    println!(
        "\nwrote {} rows in {:.1} s ({:.0} rows/s), TooBusy retries {}, compaction failures {}",
        u64::from(args.cars) * args.seconds,
        write_secs,
        (u64::from(args.cars) * args.seconds) as f64 / write_secs,
        retries,
        s.failures
    );
    println!(
        "user bytes {:.1} MiB ({} B/row) | flush {:.1} MiB + compaction {:.1} MiB = {:.1} MiB to disk | write amplification {:.3}",
        s.user_bytes as f64 / 1048576.0,
        row_bytes,
        s.flush_bytes as f64 / 1048576.0,
        s.compact_written as f64 / 1048576.0,
        disk as f64 / 1048576.0,
        wa
    );
    println!(
        "live files {} ({:.1} MiB) / logical live {:.1} MiB ({} rows inside the TTL) = space amplification {:.3}",
        s.files,
        s.file_bytes as f64 / 1048576.0,
        logical_live as f64 / 1048576.0,
        live_rows,
        sa
    );
    println!(
        "gets during the run: {} (missing {}), p50 {} us, p99 {} us, max {} us",
        hist.len(),
        missing,
        hist.value_at_quantile(0.5),
        hist.value_at_quantile(0.99),
        hist.max()
    );
    println!(
        "RESULT policy={} rows={} row_bytes={} key_bytes={} user_bytes={} flush_bytes={} compact_bytes={} disk_bytes={} wa={:.3} sa={:.3} p99_us={} compactions={} dropped_files={}",
        policy_name(policy),
        rows,
        (s.user_bytes + rows / 2) / rows.max(1),
        row_mutation(0, 0)?.0.row.len(),
        s.user_bytes,
        s.flush_bytes,
        s.compact_written,
        disk,
        wa,
        sa,
        hist.value_at_quantile(0.99),
        s.runs,
        s.dropped_files
    );
    if missing > 0 {
        return Err(BenchError::Unsupported(format!(
            "{missing} gets of rows inside the TTL found nothing"
        )));
    }
    Ok(())
}
