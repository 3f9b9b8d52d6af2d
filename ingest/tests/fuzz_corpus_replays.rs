//! Every committed fuzz corpus file (`ingest/fuzz/corpus/<target>/`) and every crash
//! regression (`ingest/fuzz/regressions/<target>/`) through the same function its
//! cargo-fuzz target runs (`speedlayer_ingest::fuzzing`): the whole campaign's coverage,
//! replayed on stable Rust in well under a second, without cargo-fuzz.
//!
//! The ignored test `write_seed_corpus` writes the seed corpus the campaign starts from:
//! round-trip encodings of real values. `scripts/fuzz.sh` runs it with `FUZZ_SEED_DIR`.

use std::path::{Path, PathBuf};

use speedlayer_ingest::collect::Event;
use speedlayer_ingest::collect::channel::file::encode_event;
use speedlayer_ingest::fuzzing;

/// Runs every file under `fuzz/{corpus,regressions}/<target>/` through `body`; returns how
/// many there were.
fn replay(target: &str, body: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut n = 0;
    for dir in [
        fuzz.join("corpus").join(target),
        fuzz.join("regressions").join(target),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target}: {} panicked", path.display());
            n += 1;
        }
    }
    n
}

#[test]
fn parse_csv_corpus_replays() {
    assert!(replay("parse_csv", fuzzing::parse_csv) > 0, "empty corpus");
}

#[test]
fn file_channel_record_corpus_replays() {
    assert!(
        replay("file_channel_record", fuzzing::file_channel_record) > 0,
        "empty corpus"
    );
}

fn write_seeds(root: &Path, target: &str, seeds: &[Vec<u8>]) {
    let dir = root.join(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (i, s) in seeds.iter().enumerate() {
        std::fs::write(dir.join(format!("seed-{i:02}")), s).unwrap();
    }
}

fn parse_csv_seeds() -> Vec<Vec<u8>> {
    [
        "20261122143015,V0042,3,0,-12,N,87,A07",
        "20261122143015,V0042,9,9,540,L,300,Z99\r\n",
        "20261122143015,V0042,32,33,31,32,1,1,0,1,0,0,2",
        "20240229235959,A0001,0,0,-540,R,0,A00",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn file_channel_seeds() -> Vec<Vec<u8>> {
    let payload = |e: &Event| {
        let mut out = Vec::new();
        encode_event(e, &mut out).expect("a seed event fits a record");
        out[8..].to_vec()
    };
    let plain = Event::new(b"20261122143015,V0042,3,0,-12,N,87,A07".to_vec());
    let mut headed = plain.clone();
    headed.headers = vec![
        ("timestamp".into(), "1763821815000".into()),
        ("host".into(), "collector-1".into()),
    ];
    let mut dead = Event::new(b"garbage,line".to_vec());
    dead.dead_letter = Some("expected 8 fields, found 2".into());
    vec![payload(&plain), payload(&headed), payload(&dead)]
}

#[test]
#[ignore = "writes the fuzz seed corpus into $FUZZ_SEED_DIR; run by scripts/fuzz.sh"]
fn write_seed_corpus() {
    let root = PathBuf::from(std::env::var("FUZZ_SEED_DIR").expect("FUZZ_SEED_DIR is set"));
    write_seeds(&root, "parse_csv", &parse_csv_seeds());
    write_seeds(&root, "file_channel_record", &file_channel_seeds());
}
