//! The db_bench driver against the real storage engine on real files: every workload runs,
//! reads find what the fills wrote, the data survives a reopen with `--use_existing_db`,
//! and a directory that is not a dbbench database is refused rather than wiped.

use speedlayer_benches::driver::run;
use speedlayer_benches::engine::KvEngine;
use speedlayer_benches::flags::{Benchmark, DbBenchFlags};
use speedlayer_benches::speedlayer::SpeedlayerEngine;

fn flags(args: &[&str]) -> DbBenchFlags {
    DbBenchFlags::parse_args(
        std::iter::once("dbbench")
            .chain(args.iter().copied())
            .map(String::from),
    )
    .unwrap()
}

#[test]
fn fillseq_readrandom_readseq_find_every_key_and_survive_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    // A small write buffer so the run crosses memstore flushes into HFiles.
    let f = flags(&[
        "--benchmarks=fillseq,readrandom,readseq",
        "--num=3000",
        "--key_size=24",
        "--value_size=100",
        "--write_buffer_size=65536",
    ]);
    let mut engine = SpeedlayerEngine::open(&dir, &f).unwrap();
    let mut out = Vec::new();
    let results = run(&f, 11, &mut engine, &mut out).unwrap();
    assert_eq!(results[0].ops, 3000);
    assert_eq!(results[1].found, Some(3000), "every fillseq key is found");
    assert_eq!(results[2].ops, 3000, "readseq sees every row once");
    let flushes = engine
        .db()
        .unwrap()
        .stats()
        .table("dbbench")
        .unwrap()
        .flushes();
    assert!(flushes > 0, "64 KiB write buffer must have flushed");
    engine.close().unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("(3000 of 3000 found)"), "{text}");

    let again = flags(&[
        "--benchmarks=readrandom,readseq",
        "--num=3000",
        "--key_size=24",
        "--use_existing_db=1",
    ]);
    let mut engine = SpeedlayerEngine::open(&dir, &again).unwrap();
    let results = run(&again, 12, &mut engine, &mut Vec::new()).unwrap();
    assert_eq!(results[0].found, Some(3000));
    assert_eq!(results[1].ops, 3000);
    engine.close().unwrap();
}

#[test]
fn fillrandom_replaces_the_previous_database() {
    let tmp = tempfile::tempdir().unwrap();
    let f = flags(&[
        "--benchmarks=fillseq,fillrandom,readseq",
        "--num=2000",
        "--key_size=16",
    ]);
    let mut engine = SpeedlayerEngine::open(&tmp.path().join("db"), &f).unwrap();
    let results = run(&f, 5, &mut engine, &mut Vec::new()).unwrap();
    assert_eq!(results[2].benchmark, Benchmark::ReadSeq);
    // Random keys with repeats: about 63% of 2000 distinct, and never all of them, which
    // fillseq's leftovers would give if the database were not destroyed.
    let distinct = results[2].ops;
    assert!((1150..1400).contains(&distinct), "{distinct}");
    engine.close().unwrap();
}

#[test]
fn refuses_to_wipe_a_directory_it_did_not_create() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("precious.txt"), b"keep me").unwrap();
    let f = flags(&["--benchmarks=fillseq", "--num=10"]);
    let err = match SpeedlayerEngine::open(tmp.path(), &f) {
        Ok(_) => panic!("must refuse a non-dbbench directory"),
        Err(e) => e,
    };
    assert!(err.to_string().contains("refusing to delete"), "{err}");
    assert!(tmp.path().join("precious.txt").exists());
}

#[test]
fn durability_modes_are_stated() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (vec!["--num=1"], "no fsync per write"),
        (vec!["--num=1", "--sync=1"], "fsync on every write"),
        (vec!["--num=1", "--disable_wal=1"], "SkipWal"),
    ];
    for (i, (args, expect)) in cases.into_iter().enumerate() {
        let f = flags(&args);
        let mut engine = SpeedlayerEngine::open(&tmp.path().join(format!("db{i}")), &f).unwrap();
        assert!(engine.durability_note().contains(expect), "{expect}");
        engine.close().unwrap();
    }
}

#[test]
fn extra_workloads_run_on_the_real_engine_with_two_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let fill = flags(&[
        "--benchmarks=fillseq",
        "--num=4000",
        "--key_size=24",
        "--write_buffer_size=65536",
    ]);
    let mut engine = SpeedlayerEngine::open(&dir, &fill).unwrap();
    run(&fill, 21, &mut engine, &mut Vec::new()).unwrap();
    engine.close().unwrap();

    let f = flags(&[
        "--benchmarks=readrandom,seekrandom,readwhilewriting",
        "--num=4000",
        "--key_size=24",
        "--reads=500",
        "--seek_nexts=100",
        "--threads=2",
        "--use_existing_db=1",
        "--write_buffer_size=65536",
    ]);
    let mut engine = SpeedlayerEngine::open(&dir, &f).unwrap();
    let mut out = Vec::new();
    let results = run(&f, 22, &mut engine, &mut out).unwrap();
    engine.close().unwrap();
    let text = String::from_utf8(out).unwrap();
    // Two threads × 500 reads each; fillseq wrote every key, so every get and every
    // seek finds its exact key, also while the writer overwrites keys.
    for r in &results {
        assert_eq!(r.ops, 1000, "{text}");
        assert_eq!(r.found, Some(1000), "{text}");
    }
    // seekrandom: each seek visits its key and up to 100 more entries of 124 bytes.
    let seek = &results[1];
    assert_eq!(seek.benchmark, Benchmark::SeekRandom);
    assert!(text.contains("writes beside)"), "{text}");
}
