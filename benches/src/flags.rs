//! The db_bench flags this driver accepts, parsed the way db_bench spells them.
//!
//! db_bench uses gflags: `--name=value` or `-name=value`, underscores in names, booleans
//! as `0`/`1`/`true`/`false`. [`normalize_args`] turns single-dash flags into double-dash
//! ones so clap can parse them. Flags db_bench has but we do not implement are rejected by
//! clap (unknown argument), never silently ignored; the ones we accept but restrict (only
//! `--threads=1`) fail in [`DbBenchFlags::validate`].
//!
//! This module is not the workload runner; see [`crate::driver`].

use std::path::PathBuf;

use clap::{ArgAction, Parser};

use crate::error::{BenchError, Result};

/// A benchmark name db_bench knows and this driver implements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Benchmark {
    /// Write `num` values in sequential key order into a fresh database.
    FillSeq,
    /// Write `num` values with keys drawn uniformly from `[0, num)` into a fresh database.
    FillRandom,
    /// Like `fillrandom`, but into the existing database.
    Overwrite,
    /// `reads` point lookups of keys drawn uniformly from `[0, num)`; reports how many hit.
    ReadRandom,
    /// Forward iteration over the whole database (at most `reads` entries).
    ReadSeq,
    /// `reads` seeks to uniformly drawn keys, each followed by `--seek_nexts` steps
    /// forward (a fresh iterator per seek, db_bench's default); reports how many seeks
    /// landed exactly on their key.
    SeekRandom,
    /// `readrandom` on `--threads` reader threads while one more thread writes random
    /// keys until the readers finish; only the readers' operations are reported.
    ReadWhileWriting,
}

impl Benchmark {
    /// Every implemented benchmark name, for error messages.
    pub const NAMES: &'static [&'static str] = &[
        "fillseq",
        "fillrandom",
        "overwrite",
        "readrandom",
        "readseq",
        "seekrandom",
        "readwhilewriting",
    ];

    /// Parses one db_bench benchmark name.
    ///
    /// # Errors
    /// [`BenchError::Unsupported`] for a name this driver does not implement.
    pub fn parse(name: &str) -> Result<Benchmark> {
        Ok(match name {
            "fillseq" => Benchmark::FillSeq,
            "fillrandom" => Benchmark::FillRandom,
            "overwrite" => Benchmark::Overwrite,
            "readrandom" => Benchmark::ReadRandom,
            "readseq" => Benchmark::ReadSeq,
            "seekrandom" => Benchmark::SeekRandom,
            "readwhilewriting" => Benchmark::ReadWhileWriting,
            other => {
                return Err(BenchError::Unsupported(format!(
                    "benchmark '{other}' (implemented: {})",
                    Benchmark::NAMES.join(",")
                )));
            }
        })
    }

    /// The db_bench name.
    pub fn name(self) -> &'static str {
        match self {
            Benchmark::FillSeq => "fillseq",
            Benchmark::FillRandom => "fillrandom",
            Benchmark::Overwrite => "overwrite",
            Benchmark::ReadRandom => "readrandom",
            Benchmark::ReadSeq => "readseq",
            Benchmark::SeekRandom => "seekrandom",
            Benchmark::ReadWhileWriting => "readwhilewriting",
        }
    }

    /// True for benchmarks that db_bench runs on a freshly destroyed database.
    pub fn wants_fresh_db(self) -> bool {
        matches!(self, Benchmark::FillSeq | Benchmark::FillRandom)
    }

    /// True for the benchmarks that run on `--threads` threads here. The others run on
    /// one; db_bench would run each on every thread (a fill writing its keys once per
    /// thread), which the comparison never asks for, so they refuse `--threads` > 1.
    pub fn multi_threaded(self) -> bool {
        matches!(
            self,
            Benchmark::ReadRandom | Benchmark::SeekRandom | Benchmark::ReadWhileWriting
        )
    }
}

/// Compression of the benchmark family's HFile blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompressionFlag {
    /// `--compression_type=none`.
    None,
    /// `--compression_type=lz4`.
    Lz4,
}

fn parse_bool(s: &str) -> std::result::Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "t" | "y" => Ok(true),
        "0" | "false" | "no" | "f" | "n" => Ok(false),
        other => Err(format!("'{other}' is not a boolean (use 0/1/true/false)")),
    }
}

fn parse_compression(s: &str) -> std::result::Result<CompressionFlag, String> {
    match s.to_ascii_lowercase().as_str() {
        "none" | "no" | "knocompression" => Ok(CompressionFlag::None),
        "lz4" | "klz4compression" => Ok(CompressionFlag::Lz4),
        other => Err(format!(
            "'{other}' is not supported by the speedlayer engine (use none or lz4)"
        )),
    }
}

/// db_bench-compatible flags (names and defaults follow RocksDB's db_bench unless noted).
#[derive(Clone, Debug, Parser)]
#[command(
    name = "dbbench",
    about = "db_bench-compatible driver for the Speedlayer storage engine",
    long_about = "Runs RocksDB db_bench workloads (fillseq, fillrandom, overwrite, readrandom, \
                  readseq, seekrandom, readwhilewriting) against the Speedlayer storage engine: one table, one family, \
                  row = key, one qualifier, value = value, one mutation per write call."
)]
pub struct DbBenchFlags {
    /// Comma-separated benchmarks, run in order.
    #[arg(
        long = "benchmarks",
        default_value = "fillseq,fillrandom,readrandom,readseq"
    )]
    pub benchmarks: String,

    /// Number of key/values to place in the database.
    #[arg(long = "num", default_value_t = 1_000_000)]
    pub num: u64,

    /// Number of read operations; negative means `num`.
    #[arg(long = "reads", default_value_t = -1, allow_negative_numbers = true)]
    pub reads: i64,

    /// Size of each key in bytes.
    #[arg(long = "key_size", default_value_t = 16)]
    pub key_size: usize,

    /// Size of each value in bytes.
    #[arg(long = "value_size", default_value_t = 100)]
    pub value_size: usize,

    /// Values compress to about this fraction of their size.
    #[arg(long = "compression_ratio", default_value_t = 0.5)]
    pub compression_ratio: f64,

    /// Block compression: `none` or `lz4` (db_bench's default, snappy, is not supported;
    /// our default is lz4). `--compression` is accepted as an alias.
    #[arg(long = "compression_type", alias = "compression", default_value = "lz4",
          value_parser = parse_compression)]
    pub compression: CompressionFlag,

    /// Database directory; default: a temporary directory removed at exit.
    #[arg(long = "db")]
    pub db: Option<PathBuf>,

    /// Do not destroy the existing database (fill benchmarks then fail, as in db_bench).
    #[arg(long = "use_existing_db", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub use_existing_db: bool,

    /// fsync the WAL on every write (`Durability::Sync`).
    #[arg(long = "sync", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub sync: bool,

    /// Do not write the WAL (`Durability::SkipWal`).
    #[arg(long = "disable_wal", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub disable_wal: bool,

    /// Concurrent threads of readrandom, seekrandom and readwhilewriting (readers; the
    /// latter adds one writer); the other benchmarks need 1.
    #[arg(long = "threads", default_value_t = 1)]
    pub threads: u32,

    /// Steps forward after each seek of `seekrandom`.
    #[arg(long = "seek_nexts", default_value_t = 0)]
    pub seek_nexts: u64,

    /// Memstore size that triggers a flush (engine `memstore_flush_bytes`).
    #[arg(long = "write_buffer_size", default_value_t = 64 << 20)]
    pub write_buffer_size: u64,

    /// Memstores a region may hold, the one taking writes plus those frozen and waiting
    /// for their flush (engine `max_frozen_memstores` = this − 1). Default 2, RocksDB's
    /// `max_write_buffer_number` default: one memtable written while one is flushed. At the
    /// limit writes wait for the flush, as RocksDB's stall.
    #[arg(long = "max_write_buffer_number", default_value_t = 2)]
    pub max_write_buffer_number: u32,

    /// Uncompressed data block size of the family's HFiles (`FamilyOptions::block_size`).
    /// Default 4 KiB, db_bench's default; the engine's own default is 64 KiB.
    #[arg(long = "block_size", default_value_t = 4096)]
    pub block_size: u32,

    /// Block cache bytes (engine `block_cache_bytes`).
    #[arg(long = "cache_size", default_value_t = 8 << 20)]
    pub cache_size: u64,

    /// Seed for key choice and values; 0 derives it from the clock (as db_bench).
    #[arg(long = "seed", default_value_t = 0)]
    pub seed: u64,

    /// Print per-operation latency percentiles after each benchmark.
    #[arg(long = "histogram", action = ArgAction::Set, num_args = 0..=1,
          default_value = "false", default_missing_value = "true", value_parser = parse_bool)]
    pub histogram: bool,

    /// Speedlayer-only: background WAL sync interval for the default (no fsync per write)
    /// mode, i.e. `EngineOptions::wal_async_interval_ms`. Long by default so that, like
    /// db_bench with `--sync=0`, writes reach the WAL without waiting for an fsync.
    #[arg(long = "wal_sync_interval_ms", default_value_t = 1000)]
    pub wal_sync_interval_ms: u64,
}

/// Rewrites gflags-style `-name=value` arguments to `--name=value` (argument 0 untouched).
pub fn normalize_args<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, arg)| {
            let single_dash_long = arg.starts_with('-')
                && !arg.starts_with("--")
                && arg.len() > 2
                && arg[1..].starts_with(|c: char| c.is_ascii_alphabetic());
            if i > 0 && single_dash_long {
                format!("-{arg}")
            } else {
                arg
            }
        })
        .collect()
}

impl DbBenchFlags {
    /// Parses db_bench-style arguments (argument 0 is the program name).
    ///
    /// # Errors
    /// [`BenchError::InvalidFlag`] with clap's message for unknown or malformed flags, then
    /// everything [`DbBenchFlags::validate`] rejects.
    pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<DbBenchFlags> {
        let flags = DbBenchFlags::try_parse_from(normalize_args(args)).map_err(|e| {
            BenchError::InvalidFlag {
                flag: "<command line>".into(),
                value: String::new(),
                reason: e.to_string(),
            }
        })?;
        flags.validate()?;
        Ok(flags)
    }

    /// Checks values clap cannot: thread count, sizes, conflicting modes.
    ///
    /// # Errors
    /// [`BenchError::Unsupported`] or [`BenchError::InvalidFlag`] naming the flag.
    pub fn validate(&self) -> Result<()> {
        if self.threads == 0 {
            return Err(BenchError::InvalidFlag {
                flag: "threads".into(),
                value: "0".into(),
                reason: "at least one thread".into(),
            });
        }
        if self.threads > 1
            && let Some(b) = self
                .benchmark_list()?
                .into_iter()
                .find(|b| !b.multi_threaded())
        {
            return Err(BenchError::Unsupported(format!(
                "--threads={} with {} (only readrandom, seekrandom and readwhilewriting \
                 run on several threads)",
                self.threads,
                b.name()
            )));
        }
        if self.key_size == 0 {
            return Err(BenchError::InvalidFlag {
                flag: "key_size".into(),
                value: "0".into(),
                reason: "rows must not be empty".into(),
            });
        }
        if self.max_write_buffer_number < 2 {
            return Err(BenchError::InvalidFlag {
                flag: "max_write_buffer_number".into(),
                value: self.max_write_buffer_number.to_string(),
                reason: "at least 2: one memstore taking writes and one being flushed".into(),
            });
        }
        if self.sync && self.disable_wal {
            return Err(BenchError::InvalidFlag {
                flag: "sync".into(),
                value: "1".into(),
                reason: "--sync=1 needs the WAL, but --disable_wal=1 was given".into(),
            });
        }
        self.benchmark_list().map(|_| ())
    }

    /// The benchmarks in order (empty names are skipped, as db_bench does).
    ///
    /// # Errors
    /// [`BenchError::Unsupported`] for an unknown name.
    pub fn benchmark_list(&self) -> Result<Vec<Benchmark>> {
        self.benchmarks
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Benchmark::parse)
            .collect()
    }

    /// Reads per read benchmark: `--reads`, or `--num` when negative.
    pub fn reads(&self) -> u64 {
        u64::try_from(self.reads).unwrap_or(self.num)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<DbBenchFlags> {
        DbBenchFlags::parse_args(
            std::iter::once("dbbench")
                .chain(args.iter().copied())
                .map(String::from),
        )
    }

    #[test]
    fn parses_the_comparison_command_line() {
        let f = parse(&[
            "--benchmarks=fillseq,fillrandom,readrandom,readseq",
            "--num=1000",
            "--key_size=24",
            "--value_size=100",
            "--compression_type=lz4",
            "--sync=0",
            "--disable_wal=0",
            "--db=/tmp/x",
        ])
        .unwrap();
        assert_eq!(f.num, 1000);
        assert_eq!(f.key_size, 24);
        assert_eq!(f.compression, CompressionFlag::Lz4);
        assert!(!f.sync && !f.disable_wal);
        assert_eq!(f.reads(), 1000);
        assert_eq!(
            f.benchmark_list().unwrap(),
            vec![
                Benchmark::FillSeq,
                Benchmark::FillRandom,
                Benchmark::ReadRandom,
                Benchmark::ReadSeq
            ]
        );
    }

    #[test]
    fn accepts_single_dash_and_compression_alias_and_bare_booleans() {
        let f = parse(&["-num=5", "--compression=none", "--sync", "-reads=3"]).unwrap();
        assert_eq!(f.num, 5);
        assert_eq!(f.reads(), 3);
        assert_eq!(f.compression, CompressionFlag::None);
        assert!(f.sync);
    }

    #[test]
    fn rejects_what_it_does_not_implement() {
        assert!(matches!(
            parse(&["--threads=4"]),
            Err(BenchError::Unsupported(m)) if m.contains("fillseq")
        ));
        assert!(parse(&["--threads=0", "--benchmarks=readrandom"]).is_err());
        assert!(matches!(
            parse(&["--benchmarks=fillseq,seekrandomx"]),
            Err(BenchError::Unsupported(m)) if m.contains("seekrandomx")
        ));
        assert!(parse(&["--compression_type=snappy"]).is_err());
        assert!(parse(&["--bloom_bits=10"]).is_err());
        assert!(parse(&["--sync=1", "--disable_wal=1"]).is_err());
        assert!(parse(&["--key_size=0"]).is_err());
        assert!(parse(&["--max_write_buffer_number=1"]).is_err());
    }

    #[test]
    fn defaults_follow_db_bench() {
        let f = parse(&[]).unwrap();
        assert_eq!(f.num, 1_000_000);
        assert_eq!(f.key_size, 16);
        assert_eq!(f.value_size, 100);
        assert_eq!(f.write_buffer_size, 64 << 20);
        assert_eq!(f.cache_size, 8 << 20);
        assert_eq!(f.max_write_buffer_number, 2);
        assert_eq!(f.block_size, 4096);
        assert_eq!(f.threads, 1);
        assert_eq!(f.seek_nexts, 0);
    }

    #[test]
    fn parses_the_extra_workloads() {
        let f = parse(&[
            "--benchmarks=readrandom,seekrandom,readwhilewriting",
            "--threads=2",
            "--seek_nexts=100",
            "--use_existing_db=1",
        ])
        .unwrap();
        assert_eq!(f.threads, 2);
        assert_eq!(f.seek_nexts, 100);
        assert_eq!(
            f.benchmark_list().unwrap(),
            vec![
                Benchmark::ReadRandom,
                Benchmark::SeekRandom,
                Benchmark::ReadWhileWriting
            ]
        );
    }
}
