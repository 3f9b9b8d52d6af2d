//! Runs db_bench workloads against a [`KvEngine`] and prints db_bench's report lines.
//!
//! Workloads follow RocksDB's db_bench: `fillseq` writes keys `0..num` in order,
//! `fillrandom` writes `num` keys drawn uniformly (with repeats) from `[0, num)`, both
//! into a freshly destroyed database; `overwrite` is `fillrandom` without the fresh
//! database; `readrandom` does `reads` gets of uniformly drawn keys and reports how many
//! were found; `readseq` iterates forward over at most `reads` entries. Every write call
//! carries one key, as db_bench's default (`--batch_size=1`). Each benchmark draws keys
//! from its own seeded generator (`seed + index`), so `readrandom` does not replay the
//! exact sequence `fillrandom` wrote.
//!
//! This module knows nothing of the storage engine; see [`crate::speedlayer`].

use std::io::Write;
use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

use crate::engine::KvEngine;
use crate::error::{BenchError, Result};
use crate::flags::{Benchmark, DbBenchFlags};
use crate::keys;
use crate::stats::Stats;
use crate::values::ValueGenerator;

/// The outcome of one benchmark, for callers that want numbers rather than text.
#[derive(Clone, Debug)]
pub struct BenchResult {
    /// Which benchmark.
    pub benchmark: Benchmark,
    /// Operations done (writes, gets, or entries iterated).
    pub ops: u64,
    /// Wall-clock time of the timed loop.
    pub elapsed: Duration,
    /// `ops / elapsed`.
    pub ops_per_sec: f64,
    /// For `readrandom`: gets that found their key.
    pub found: Option<u64>,
    /// The db_bench report line that was printed.
    pub line: String,
}

fn write_line(out: &mut dyn Write, line: &str) -> Result<()> {
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| BenchError::io("<stdout>", e))
}

/// Resolves `--seed=0` to a clock-derived seed, as db_bench does.
pub fn effective_seed(flags: &DbBenchFlags) -> u64 {
    if flags.seed != 0 {
        return flags.seed;
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(1)
}

/// Runs every benchmark in `flags` in order, printing one report line each to `out`.
///
/// # Errors
/// A fill benchmark with `--use_existing_db=1` ([`BenchError::InvalidFlag`]), and any
/// engine or output error (the run stops at the first one).
pub fn run(
    flags: &DbBenchFlags,
    seed: u64,
    engine: &mut dyn KvEngine,
    out: &mut dyn Write,
) -> Result<Vec<BenchResult>> {
    let mut values = ValueGenerator::new(flags.compression_ratio, seed);
    let mut results = Vec::new();
    for (index, benchmark) in flags.benchmark_list()?.into_iter().enumerate() {
        if benchmark.wants_fresh_db() {
            if flags.use_existing_db {
                return Err(BenchError::InvalidFlag {
                    flag: "use_existing_db".into(),
                    value: "1".into(),
                    reason: format!("{} needs a fresh database", benchmark.name()),
                });
            }
            engine.destroy_and_reopen()?;
        }
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(index as u64 + 1));
        let mut stats = match benchmark {
            Benchmark::FillSeq => fill(flags, engine, &mut values, benchmark, |i| i)?,
            Benchmark::FillRandom | Benchmark::Overwrite => {
                let num = flags.num.max(1);
                fill(flags, engine, &mut values, benchmark, |_| {
                    rng.random_range(0..num)
                })?
            }
            Benchmark::ReadRandom => read_random(flags, engine, &mut rng)?,
            Benchmark::ReadSeq => read_seq(flags, engine)?,
        };
        stats.finish();
        let line = stats.report_line();
        write_line(out, &line)?;
        if let Some(h) = stats.histogram_line() {
            write_line(out, &h)?;
        }
        let found = (benchmark == Benchmark::ReadRandom).then(|| found_of(&line));
        results.push(BenchResult {
            benchmark,
            ops: stats.ops(),
            elapsed: stats.elapsed(),
            ops_per_sec: stats.ops_per_sec(),
            found: found.flatten(),
            line,
        });
    }
    Ok(results)
}

/// Writes `num` keys; `key_number(i)` picks the key number of the `i`-th write.
fn fill(
    flags: &DbBenchFlags,
    engine: &mut dyn KvEngine,
    values: &mut ValueGenerator,
    benchmark: Benchmark,
    mut key_number: impl FnMut(u64) -> u64,
) -> Result<Stats> {
    let mut key = vec![0u8; flags.key_size];
    let per_op = (flags.key_size + flags.value_size) as u64;
    let mut stats = Stats::start(benchmark.name(), flags.num, flags.histogram);
    for i in 0..flags.num {
        keys::write_key(key_number(i), &mut key);
        let value = values.next_value(flags.value_size);
        engine.put(bytes::Bytes::copy_from_slice(&key), value)?;
        stats.op_done(per_op);
    }
    Ok(stats)
}

fn read_random(flags: &DbBenchFlags, engine: &mut dyn KvEngine, rng: &mut StdRng) -> Result<Stats> {
    let reads = flags.reads();
    let num = flags.num.max(1);
    let mut key = vec![0u8; flags.key_size];
    let mut found = 0u64;
    let mut stats = Stats::start("readrandom", reads, flags.histogram);
    for _ in 0..reads {
        keys::write_key(rng.random_range(0..num), &mut key);
        match engine.get(&key)? {
            Some(value_len) => {
                found += 1;
                stats.op_done((key.len() + value_len) as u64);
            }
            None => stats.op_done(0),
        }
    }
    stats.set_message(format!("({found} of {reads} found)"));
    Ok(stats)
}

fn read_seq(flags: &DbBenchFlags, engine: &mut dyn KvEngine) -> Result<Stats> {
    let reads = flags.reads();
    let mut stats = Stats::start("readseq", reads, flags.histogram);
    engine.scan(reads, &mut |key_len, value_len| {
        stats.op_done((key_len + value_len) as u64);
    })?;
    Ok(stats)
}

/// Extracts `found` from a line ending in `(found of reads found)`.
fn found_of(line: &str) -> Option<u64> {
    let start = line.rfind('(')?;
    line[start + 1..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bytes::Bytes;

    use super::*;

    /// The model engine: a map, and a count of fresh starts.
    #[derive(Default)]
    struct MapEngine {
        map: BTreeMap<Vec<u8>, Bytes>,
        puts: u64,
        fresh: u32,
    }

    impl KvEngine for MapEngine {
        fn durability_note(&self) -> String {
            "in memory".into()
        }
        fn destroy_and_reopen(&mut self) -> Result<()> {
            self.map.clear();
            self.fresh += 1;
            Ok(())
        }
        fn put(&mut self, key: Bytes, value: Bytes) -> Result<()> {
            self.puts += 1;
            self.map.insert(key.to_vec(), value);
            Ok(())
        }
        fn get(&mut self, key: &[u8]) -> Result<Option<usize>> {
            Ok(self.map.get(key).map(Bytes::len))
        }
        fn scan(&mut self, limit: u64, visit: &mut dyn FnMut(usize, usize)) -> Result<()> {
            for (k, v) in self.map.iter().take(limit as usize) {
                visit(k.len(), v.len());
            }
            Ok(())
        }
        fn close(&mut self) -> Result<()> {
            Ok(())
        }
    }

    fn flags(args: &[&str]) -> DbBenchFlags {
        DbBenchFlags::parse_args(
            std::iter::once("dbbench")
                .chain(args.iter().copied())
                .map(String::from),
        )
        .unwrap()
    }

    #[test]
    fn fillseq_then_reads_find_every_key() {
        let f = flags(&[
            "--benchmarks=fillseq,readrandom,readseq",
            "--num=1000",
            "--key_size=24",
        ]);
        let mut engine = MapEngine::default();
        let mut out = Vec::new();
        let results = run(&f, 42, &mut engine, &mut out).unwrap();
        assert_eq!(engine.map.len(), 1000);
        assert_eq!(engine.fresh, 1);
        assert_eq!(results[1].found, Some(1000));
        assert_eq!(results[2].ops, 1000);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("(1000 of 1000 found)"), "{text}");
        assert!(text.lines().all(|l| l.contains(" micros/op ")), "{text}");
    }

    #[test]
    fn fillrandom_starts_fresh_and_leaves_about_63_percent_distinct_keys() {
        let f = flags(&[
            "--benchmarks=fillseq,fillrandom,readrandom,readseq",
            "--num=20000",
        ]);
        let mut engine = MapEngine::default();
        let results = run(&f, 7, &mut engine, &mut Vec::new()).unwrap();
        assert_eq!(engine.fresh, 2, "both fills destroy the database");
        assert_eq!(engine.puts, 40_000, "one put per write call");
        let distinct = engine.map.len() as f64 / 20_000.0;
        assert!((0.60..0.66).contains(&distinct), "{distinct}");
        let found = results[2].found.unwrap() as f64 / 20_000.0;
        assert!((0.60..0.66).contains(&found), "{found}");
        assert_eq!(results[3].ops, engine.map.len() as u64);
    }

    #[test]
    fn reads_flag_bounds_readseq_and_readrandom() {
        let f = flags(&[
            "--benchmarks=fillseq,readseq,readrandom",
            "--num=100",
            "--reads=10",
        ]);
        let results = run(&f, 1, &mut MapEngine::default(), &mut Vec::new()).unwrap();
        assert_eq!(results[1].ops, 10);
        assert_eq!(results[2].ops, 10);
        assert_eq!(results[2].found, Some(10));
    }

    #[test]
    fn fill_with_use_existing_db_is_refused() {
        let f = flags(&["--benchmarks=fillseq", "--num=10", "--use_existing_db=1"]);
        let err = run(&f, 1, &mut MapEngine::default(), &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("fresh database"), "{err}");
    }

    #[test]
    fn keys_written_are_db_bench_keys() {
        let f = flags(&["--benchmarks=fillseq", "--num=3", "--key_size=16"]);
        let mut engine = MapEngine::default();
        run(&f, 1, &mut engine, &mut Vec::new()).unwrap();
        let written: Vec<_> = engine.map.keys().cloned().collect();
        assert_eq!(
            written,
            vec![keys::key(0, 16), keys::key(1, 16), keys::key(2, 16)]
        );
    }
}
