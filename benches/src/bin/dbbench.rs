//! `dbbench`: RocksDB db_bench's workloads against the Speedlayer storage engine.
//!
//! ```text
//! cargo run --release -p speedlayer-benches --bin dbbench -- \
//!   --benchmarks=fillseq,fillrandom,readrandom,readseq --num=1000000 \
//!   --key_size=24 --value_size=100 --compression=lz4
//! ```
//!
//! Prints a db_bench-style header, one db_bench report line per benchmark, then the
//! engine's counters and the process's peak RSS. Everything else lives in the library.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use speedlayer_benches::driver::{effective_seed, run};
use speedlayer_benches::engine::KvEngine;
use speedlayer_benches::flags::{CompressionFlag, DbBenchFlags};
use speedlayer_benches::rss::peak_rss_kib;
use speedlayer_benches::speedlayer::{SpeedlayerEngine, TABLE};
use speedlayer_benches::{BenchError, Result};

fn main() -> ExitCode {
    match real_main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dbbench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args
        .iter()
        .skip(1)
        .any(|a| matches!(a.as_str(), "--help" | "-help" | "-h"))
    {
        println!("{}", DbBenchFlags::command().render_long_help());
        return Ok(());
    }
    let flags = DbBenchFlags::parse_args(args)?;
    let seed = effective_seed(&flags);
    if flags.seed == 0 {
        eprintln!("Set seed to {seed} because --seed was 0");
    }

    // Without --db, a temporary directory that is removed when `_tmp` drops.
    let (_tmp, dir) = match &flags.db {
        Some(dir) => (None, dir.clone()),
        None => {
            let tmp = tempfile::Builder::new()
                .prefix("dbbench-")
                .tempdir()
                .map_err(|e| BenchError::io(std::env::temp_dir(), e))?;
            let dir = tmp.path().join("db");
            (Some(tmp), dir)
        }
    };
    let mut engine = SpeedlayerEngine::open(&dir, &flags)?;

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let compressed = (flags.value_size as f64 * flags.compression_ratio) as usize;
    let header = format!(
        "Speedlayer:  storage engine, db_bench-compatible driver\n\
         Keys:       {} bytes each\n\
         Values:     {} bytes each ({compressed} bytes after compression)\n\
         Entries:    {}\n\
         Compression: {}\n\
         Block size: {} bytes (uncompressed)\n\
         WAL:        {}\n\
         Writes:     one mutation (one row, one cell) per write call\n\
         DB path:    [{}]\n\
         ------------------------------------------------",
        flags.key_size,
        flags.value_size,
        flags.num,
        match flags.compression {
            CompressionFlag::None => "none",
            CompressionFlag::Lz4 => "LZ4",
        },
        flags.block_size,
        engine.durability_note(),
        dir.display()
    );
    writeln!(out, "{header}").map_err(|e| BenchError::io("<stdout>", e))?;

    run(&flags, seed, &mut engine, &mut out)?;

    let stats = engine.db().map(|db| db.stats());
    if let Some(s) = stats.as_ref()
        && let Some(table) = s.table(TABLE)
    {
        writeln!(
            out,
            "Engine:     {} regions, {} flushes, {} files, {} cells written, {} TooBusy retries\n\
             Reads:      block cache {} hits, {} misses; {} file reads skipped by bloom or range",
            table.regions.len(),
            table.flushes(),
            table.files(),
            table.cells_written(),
            engine.busy_retries(),
            s.block_cache_hits,
            s.block_cache_misses,
            table.bloom_skipped_files(),
        )
        .map_err(|e| BenchError::io("<stdout>", e))?;
    }
    engine.close()?;
    let rss = match peak_rss_kib()? {
        Some(kib) => format!("{kib} kB ({:.1} MiB)", kib as f64 / 1024.0),
        None => "n/a".into(),
    };
    writeln!(out, "Peak RSS (VmHWM): {rss}").map_err(|e| BenchError::io("<stdout>", e))?;
    Ok(())
}
