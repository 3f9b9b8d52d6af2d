//! Every committed fuzz corpus file (`server/fuzz/corpus/<target>/`) and every crash
//! regression (`server/fuzz/regressions/<target>/`) through the same function its
//! cargo-fuzz target runs (`speedlayer_server::fuzzing`): the whole campaign's coverage,
//! replayed on stable Rust in seconds, without cargo-fuzz.
//!
//! The ignored test `write_seed_corpus` writes the seed corpus the campaign starts from:
//! round-trip encodings of real values. `scripts/fuzz.sh` runs it with `FUZZ_SEED_DIR`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use prost::Message;
use speedlayer_proto as pb;
use speedlayer_server::fuzzing;
use speedlayer_server::resp::ManualClock;
use speedlayer_server::resp::aof::dump_commands;
use speedlayer_server::resp::keyspace::{Keyspace, Set, encode_command};
use speedlayer_server::resp::rdb;
use speedlayer_server::resp::snapshot;

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
fn resp_frame_corpus_replays() {
    assert!(
        replay("resp_frame", fuzzing::resp_frame) > 0,
        "empty corpus"
    );
}

#[test]
fn resp_aof_corpus_replays() {
    assert!(replay("resp_aof", fuzzing::resp_aof) > 0, "empty corpus");
}

#[test]
fn resp_snapshot_corpus_replays() {
    assert!(
        replay("resp_snapshot", fuzzing::resp_snapshot) > 0,
        "empty corpus"
    );
}

#[test]
fn resp_rdb_corpus_replays() {
    assert!(replay("resp_rdb", fuzzing::resp_rdb) > 0, "empty corpus");
}

#[test]
fn grpc_request_corpus_replays() {
    assert!(
        replay("grpc_request", fuzzing::grpc_request) > 0,
        "empty corpus"
    );
}

#[test]
fn bulk_packed_corpus_replays() {
    assert!(
        replay("bulk_packed", fuzzing::bulk_packed) > 0,
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

fn sample_keyspace() -> Keyspace {
    let mut ks = Keyspace::new(Arc::new(ManualClock::new(1_000)));
    let mut flagged = Set::new();
    flagged.insert(b"V0042").unwrap();
    flagged.insert(b"V0007").unwrap();
    ks.insert(b"20261122", flagged, Some(604_801_000));
    let mut numbers = Set::new();
    numbers.insert(b"17").unwrap();
    numbers.insert(&[7u8; 30]).unwrap();
    ks.insert(b"other", numbers, None);
    ks
}

fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_command(&mut out, args);
    out
}

fn resp_frame_seeds() -> Vec<Vec<u8>> {
    let mut pipelined = command(&[b"SADD", b"20261122", b"V0042"]);
    pipelined.extend(command(&[b"EXPIRE", b"20261122", b"604800"]));
    vec![
        command(&[b"SADD", b"20261122", b"V0042"]),
        pipelined,
        b"PING\r\n".to_vec(),
        b"SMEMBERS 20261122\r\n".to_vec(),
        b"+OK\r\n".to_vec(),
        b"-ERR unknown command\r\n".to_vec(),
        b":-2\r\n".to_vec(),
        b"$5\r\nV0042\r\n".to_vec(),
        b"~2\r\n$5\r\nV0042\r\n$5\r\nV0007\r\n".to_vec(),
        b"%1\r\n+server\r\n+speedlayer\r\n".to_vec(),
        b"_\r\n".to_vec(),
        b",3.5\r\n#t\r\n".to_vec(),
    ]
}

fn resp_aof_seeds() -> Vec<Vec<u8>> {
    let mut base = b"SLAOF 1 00000000000000aa base\r\n".to_vec();
    dump_commands(&sample_keyspace(), &mut base);
    let mut incr = b"SLAOF 1 00000000000000bb incr\r\n".to_vec();
    for args in [
        &[&b"SADD"[..], b"k", b"a", b"b"][..],
        &[b"SREM", b"k", b"a"],
        &[b"PEXPIREAT", b"k", b"1700000000000"],
        &[b"PERSIST", b"k"],
        &[b"RENAME", b"k", b"k2"],
        &[b"SADD", b"k3", b"c"],
        &[b"SMOVE", b"k2", b"k3", b"b"],
        &[b"DEL", b"k3"],
        &[b"FLUSHALL"],
    ] {
        incr.extend(command(args));
    }
    let torn = base[..base.len() - 3].to_vec();
    vec![base, incr, torn, b"SLAOF 1 00".to_vec()]
}

fn resp_snapshot_seeds() -> Vec<Vec<u8>> {
    let file = snapshot::encode(&sample_keyspace(), 0xaa);
    // Without magic and checksum: the target also decodes its input framed as a snapshot.
    let inner = file[snapshot::MAGIC.len()..file.len() - 4].to_vec();
    vec![file, inner]
}

fn resp_rdb_seeds() -> Vec<Vec<u8>> {
    let file = rdb::encode(&sample_keyspace(), 1_795_000_000, 0);
    // Without magic and checksum: the target also decodes its input framed as an RDB.
    let inner = file[9..file.len() - 8].to_vec();
    vec![file, inner]
}

fn bulk_packed_seeds() -> Vec<Vec<u8>> {
    fn cell(
        family: u8,
        qualifier: &'static [u8],
        timestamp: u64,
        value: &'static [u8],
    ) -> pb::packed::Cell<'static> {
        pb::packed::Cell {
            family,
            qualifier,
            timestamp,
            value,
        }
    }
    let mut one = Vec::new();
    pb::packed::put_group_head(&mut one, &b"r1"[..], 1);
    pb::packed::put_cell(&mut one, cell(0, &b"q"[..], 5, &b"v"[..]));
    let mut status = Vec::new();
    pb::packed::put_group_head(&mut status, &b"V0042#20261122143015#1a2b3c4d"[..], 3);
    let columns: [(&'static [u8], &'static [u8]); 3] = [
        (&b"battery"[..], &b"2"[..]),
        (&b"car_number"[..], &b"V0042"[..]),
        (&b"door1"[..], &b"1"[..]),
    ];
    for (q, v) in columns {
        pb::packed::put_cell(&mut status, cell(0, q, 1_795_357_815_000, v));
    }
    pb::packed::put_group_head(&mut status, &b"V0042#20261122143018#00000000"[..], 1);
    pb::packed::put_cell(&mut status, cell(1, &b""[..], 0, &b""[..]));
    vec![one, status]
}

fn grpc_request_seeds() -> Vec<Vec<u8>> {
    let b = |s: &'static str| Bytes::from_static(s.as_bytes());
    let put = pb::MutationOp {
        op: Some(pb::mutation_op::Op::Put(pb::Put {
            family: b("cf1"),
            qualifier: b("speed"),
            timestamp: Some(1000),
            value: b("87"),
        })),
    };
    let delete = pb::MutationOp {
        op: Some(pb::mutation_op::Op::DeleteColumn(pb::DeleteColumn {
            family: b("cf1"),
            qualifier: b("speed"),
            timestamp: Some(1000),
        })),
    };
    let mutation = pb::RowMutation {
        row: b("V004220261122143015"),
        ops: vec![put, delete],
    };
    let value_filter = pb::Filter {
        kind: Some(pb::filter::Kind::Value(pb::ValueFilter {
            family: b("cf1"),
            qualifier: b("speed"),
            op: pb::CompareOp::Gt as i32,
            value: b("80"),
        })),
    };
    let filter = pb::Filter {
        kind: Some(pb::filter::Kind::And(pb::FilterList {
            filters: vec![
                value_filter,
                pb::Filter {
                    kind: Some(pb::filter::Kind::RowPrefix(b("V0042"))),
                },
            ],
        })),
    };
    let column = pb::Column {
        family: b("cf1"),
        qualifier: Some(b("speed")),
    };
    let time_range = pb::TimeRange { min: 1, max: 2000 };
    vec![
        pb::MutateRequest {
            table: "driving".into(),
            mutations: vec![mutation.clone()],
            durability: pb::Durability::Sync as i32,
        }
        .encode_to_vec(),
        pb::GetRequest {
            table: "driving".into(),
            row: b("V004220261122143015"),
            columns: vec![column.clone()],
            time_range: Some(time_range),
            max_versions: Some(2),
            filter: Some(filter.clone()),
        }
        .encode_to_vec(),
        pb::ScanRequest {
            table: "driving".into(),
            prefix: Some(b("V0042")),
            reversed: true,
            columns: vec![column],
            time_range: Some(time_range),
            limit: Some(10),
            filter: Some(filter),
            ..Default::default()
        }
        .encode_to_vec(),
        pb::CheckAndMutateRequest {
            table: "driving".into(),
            row: b("V004220261122143015"),
            family: b("cf1"),
            qualifier: b("speed"),
            op: pb::CompareOp::Eq as i32,
            expected: Some(b("87")),
            mutation: Some(mutation),
            durability: pb::Durability::Async as i32,
        }
        .encode_to_vec(),
        pb::CreateTableRequest {
            schema: Some(pb::TableSchema {
                name: "driving".into(),
                families: vec![pb::FamilySchema {
                    name: "cf1".into(),
                    max_versions: 3,
                    ttl_ms: Some(604_800_000),
                    compression: pb::Compression::Lz4 as i32,
                    bloom: pb::BloomType::RowCol as i32,
                    block_size: 65_536,
                }],
            }),
            split_keys: vec![b("V0050")],
        }
        .encode_to_vec(),
        pb::CompactRequest {
            table: "driving".into(),
            kind: pb::CompactionKind::Major as i32,
        }
        .encode_to_vec(),
        pb::LocateRegionRequest {
            table: "driving".into(),
            row: b("V0042"),
        }
        .encode_to_vec(),
    ]
}

#[test]
#[ignore = "writes the fuzz seed corpus into $FUZZ_SEED_DIR; run by scripts/fuzz.sh"]
fn write_seed_corpus() {
    let root = PathBuf::from(std::env::var("FUZZ_SEED_DIR").expect("FUZZ_SEED_DIR is set"));
    write_seeds(&root, "resp_frame", &resp_frame_seeds());
    write_seeds(&root, "resp_aof", &resp_aof_seeds());
    write_seeds(&root, "resp_snapshot", &resp_snapshot_seeds());
    write_seeds(&root, "resp_rdb", &resp_rdb_seeds());
    write_seeds(&root, "grpc_request", &grpc_request_seeds());
    write_seeds(&root, "bulk_packed", &bulk_packed_seeds());
}
