//! Runs db_bench workloads against a [`KvEngine`] and prints db_bench's report lines.
//!
//! Workloads follow RocksDB's db_bench: `fillseq` writes keys `0..num` in order,
//! `fillrandom` writes `num` keys drawn uniformly (with repeats) from `[0, num)`, both
//! into a freshly destroyed database; `overwrite` is `fillrandom` without the fresh
//! database; `readrandom` does `reads` gets of uniformly drawn keys and reports how many
//! were found; `readseq` iterates forward over at most `reads` entries; `seekrandom` does
//! `reads` seeks to uniformly drawn keys, each with a fresh scan that then steps
//! `--seek_nexts` entries forward, and reports how many seeks landed on their exact key;
//! `readwhilewriting` runs `readrandom` on `--threads` readers while one more thread writes
//! uniformly drawn keys until the readers are done, and reports the readers only (the
//! writer is excluded from the figures, as db_bench's `BGWriter` is). `readrandom` and
//! `seekrandom` with `--threads=N` run N threads that each do `reads` operations; the line
//! reports all of them over the wall-clock time of the whole benchmark. Every write call
//! carries one key, as db_bench's default (`--batch_size=1`). Each benchmark draws keys
//! from its own seeded generator (`seed + index`), so `readrandom` does not replay the
//! exact sequence `fillrandom` wrote.
//!
//! This module knows nothing of the storage engine; see [`crate::speedlayer`].

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// For `readrandom`, `seekrandom`, `readwhilewriting`: reads that found their key.
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
            Benchmark::ReadRandom => {
                let thread_seed = rng.random();
                threaded_reads(flags, &*engine, benchmark, thread_seed, None)?
            }
            Benchmark::SeekRandom => {
                let thread_seed = rng.random();
                threaded_reads(flags, &*engine, benchmark, thread_seed, None)?
            }
            Benchmark::ReadWhileWriting => {
                let thread_seed = rng.random();
                let writer_values = ValueGenerator::new(flags.compression_ratio, rng.random());
                threaded_reads(flags, &*engine, benchmark, thread_seed, Some(writer_values))?
            }
            Benchmark::ReadSeq => read_seq(flags, &*engine)?,
        };
        stats.finish();
        let line = stats.report_line();
        write_line(out, &line)?;
        if let Some(h) = stats.histogram_line() {
            write_line(out, &h)?;
        }
        let found = matches!(
            benchmark,
            Benchmark::ReadRandom | Benchmark::SeekRandom | Benchmark::ReadWhileWriting
        )
        .then(|| found_of(&line));
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

/// One reader thread's loop: `reads` gets (`readrandom`, `readwhilewriting`) or seeks
/// (`seekrandom`) of keys drawn from its own generator. Returns its stats and found count.
fn read_loop(
    flags: &DbBenchFlags,
    engine: &dyn KvEngine,
    benchmark: Benchmark,
    seed: u64,
) -> Result<(Stats, u64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let reads = flags.reads();
    let num = flags.num.max(1);
    let mut key = vec![0u8; flags.key_size];
    let mut found = 0u64;
    let mut stats = Stats::start(benchmark.name(), reads, flags.histogram);
    for _ in 0..reads {
        keys::write_key(rng.random_range(0..num), &mut key);
        if benchmark == Benchmark::SeekRandom {
            // db_bench: Seek, count a hit if the iterator is on the exact key, then up to
            // `seek_nexts` Next calls, adding each visited entry's bytes; one op per seek.
            let mut bytes = 0u64;
            let mut first = true;
            let limit = flags.seek_nexts.saturating_add(1);
            engine.scan(Some(&key), limit, &mut |k, value_len| {
                if first && k == &key[..] {
                    found += 1;
                }
                first = false;
                bytes += (k.len() + value_len) as u64;
            })?;
            stats.op_done(bytes);
            continue;
        }
        match engine.get(&key)? {
            Some(value_len) => {
                found += 1;
                stats.op_done((key.len() + value_len) as u64);
            }
            None => stats.op_done(0),
        }
    }
    Ok((stats, found))
}

/// Runs [`read_loop`] on `--threads` threads (each with its own seed) and merges them;
/// with `writer_values`, one more thread writes uniformly drawn keys until every reader
/// is done (`readwhilewriting`), and its writes are not counted.
fn threaded_reads(
    flags: &DbBenchFlags,
    engine: &dyn KvEngine,
    benchmark: Benchmark,
    seed: u64,
    writer_values: Option<ValueGenerator>,
) -> Result<Stats> {
    let threads = flags.threads.max(1) as u64;
    let total_reads = flags.reads().saturating_mul(threads);
    let mut total = Stats::start(benchmark.name(), total_reads, flags.histogram);
    let readers_done = AtomicBool::new(false);
    let (readers, writer) = std::thread::scope(|s| {
        let writer = writer_values.map(|mut values| {
            let readers_done = &readers_done;
            s.spawn(move || -> Result<u64> {
                let mut rng = StdRng::seed_from_u64(seed ^ 0x5752_4954_4552);
                let num = flags.num.max(1);
                let mut key = vec![0u8; flags.key_size];
                let mut written = 0u64;
                while !readers_done.load(Ordering::Relaxed) {
                    keys::write_key(rng.random_range(0..num), &mut key);
                    let value = values.next_value(flags.value_size);
                    engine.put(bytes::Bytes::copy_from_slice(&key), value)?;
                    written += 1;
                }
                Ok(written)
            })
        });
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || read_loop(flags, engine, benchmark, seed.wrapping_add(t))))
            .collect();
        let readers: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
        readers_done.store(true, Ordering::Relaxed);
        (readers, writer.map(|w| w.join()))
    });
    total.finish();
    let mut found = 0u64;
    for r in readers {
        let (stats, f) = r.map_err(|_| BenchError::ThreadPanicked("reader"))??;
        total.absorb(&stats);
        found += f;
    }
    let mut message = format!("({found} of {total_reads} found)");
    if let Some(w) = writer {
        let written = w.map_err(|_| BenchError::ThreadPanicked("writer"))??;
        message.push_str(&format!(" ({written} writes beside)"));
    }
    total.set_message(message);
    Ok(total)
}

fn read_seq(flags: &DbBenchFlags, engine: &dyn KvEngine) -> Result<Stats> {
    let reads = flags.reads();
    let mut stats = Stats::start("readseq", reads, flags.histogram);
    engine.scan(None, reads, &mut |key, value_len| {
        stats.op_done((key.len() + value_len) as u64);
    })?;
    Ok(stats)
}

/// Extracts `found` from the `(found of reads found)` part of a report line.
fn found_of(line: &str) -> Option<u64> {
    let end = line.find(" found)")?;
    let start = line[..end].rfind('(')?;
    line[start + 1..end].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;
    use std::sync::atomic::AtomicU64;

    use bytes::Bytes;

    use super::*;

    /// The model engine: a map, and a count of fresh starts.
    #[derive(Default)]
    struct MapEngine {
        map: Mutex<BTreeMap<Vec<u8>, Bytes>>,
        puts: AtomicU64,
        fresh: u32,
    }

    impl MapEngine {
        fn len(&self) -> usize {
            self.map.lock().unwrap().len()
        }
    }

    impl KvEngine for MapEngine {
        fn durability_note(&self) -> String {
            "in memory".into()
        }
        fn destroy_and_reopen(&mut self) -> Result<()> {
            self.map.lock().unwrap().clear();
            self.fresh += 1;
            Ok(())
        }
        fn put(&self, key: Bytes, value: Bytes) -> Result<()> {
            self.puts.fetch_add(1, Ordering::Relaxed);
            self.map.lock().unwrap().insert(key.to_vec(), value);
            Ok(())
        }
        fn get(&self, key: &[u8]) -> Result<Option<usize>> {
            Ok(self.map.lock().unwrap().get(key).map(Bytes::len))
        }
        fn scan(
            &self,
            start: Option<&[u8]>,
            limit: u64,
            visit: &mut dyn FnMut(&[u8], usize),
        ) -> Result<()> {
            let map = self.map.lock().unwrap();
            let from = start.map_or(Vec::new(), <[u8]>::to_vec);
            for (k, v) in map.range(from..).take(limit as usize) {
                visit(k, v.len());
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
        assert_eq!(engine.len(), 1000);
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
        assert_eq!(
            engine.puts.load(Ordering::Relaxed),
            40_000,
            "one put per write call"
        );
        let distinct = engine.len() as f64 / 20_000.0;
        assert!((0.60..0.66).contains(&distinct), "{distinct}");
        let found = results[2].found.unwrap() as f64 / 20_000.0;
        assert!((0.60..0.66).contains(&found), "{found}");
        assert_eq!(results[3].ops, engine.len() as u64);
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
    fn seekrandom_lands_on_every_key_and_steps_forward() {
        let f = flags(&[
            "--benchmarks=fillseq,seekrandom",
            "--num=500",
            "--seek_nexts=10",
        ]);
        let results = run(&f, 3, &mut MapEngine::default(), &mut Vec::new()).unwrap();
        assert_eq!(results[1].ops, 500, "one op per seek");
        assert_eq!(results[1].found, Some(500));
    }

    #[test]
    fn two_reader_threads_each_do_the_reads() {
        let f = flags(&["--benchmarks=fillseq", "--num=300"]);
        let mut engine = MapEngine::default();
        run(&f, 3, &mut engine, &mut Vec::new()).unwrap();
        let f = flags(&[
            "--benchmarks=readrandom,seekrandom",
            "--num=300",
            "--threads=2",
            "--use_existing_db=1",
        ]);
        let results = run(&f, 4, &mut engine, &mut Vec::new()).unwrap();
        assert_eq!(results[0].ops, 600);
        assert_eq!(results[0].found, Some(600));
        assert_eq!(results[1].ops, 600);
    }

    #[test]
    fn readwhilewriting_counts_readers_only_while_the_writer_writes() {
        let f = flags(&["--benchmarks=fillseq", "--num=2000"]);
        let mut engine = MapEngine::default();
        run(&f, 3, &mut engine, &mut Vec::new()).unwrap();
        let before = engine.puts.load(Ordering::Relaxed);
        let f = flags(&[
            "--benchmarks=readwhilewriting",
            "--num=2000",
            "--use_existing_db=1",
        ]);
        let mut out = Vec::new();
        let results = run(&f, 4, &mut engine, &mut out).unwrap();
        assert_eq!(results[0].ops, 2000, "the writer's puts are not counted");
        assert_eq!(results[0].found, Some(2000));
        let written = engine.puts.load(Ordering::Relaxed) - before;
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(&format!("({written} writes beside)")),
            "{text}"
        );
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
        let written: Vec<_> = engine.map.lock().unwrap().keys().cloned().collect();
        assert_eq!(
            written,
            vec![keys::key(0, 16), keys::key(1, 16), keys::key(2, 16)]
        );
    }
}
