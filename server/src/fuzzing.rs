//! The bodies of the cargo-fuzz targets in `server/fuzz/`, one function per target.
//!
//! They live in the library so that the fuzz targets (nightly, libFuzzer) and the stable
//! corpus replay test (`tests/fuzz_corpus_replays.rs`) run exactly the same code on the
//! same bytes. Each function panics only when a property it checks is broken; a decoder
//! that panics on its own is the bug the fuzzers look for. This is test support, not part
//! of the server's API.

use std::path::Path;
use std::sync::Arc;

use bytes::BytesMut;
use prost::Message;
use speedlayer_proto as pb;

use crate::grpc::convert;
use crate::resp::aof;
use crate::resp::clock::ManualClock;
use crate::resp::config::Limits;
use crate::resp::frame::{Frame, FrameError, RequestParser, parse_request};
use crate::resp::keyspace::Keyspace;
use crate::resp::rdb;
use crate::resp::snapshot;

/// Target `resp_frame`: the server's request parser (tight limits, authenticated and not)
/// and the general RESP3 frame parser. Neither may panic, consume more than it was given,
/// or disagree with itself when the input arrives in two pieces.
pub fn resp_frame(data: &[u8]) {
    let limits = Limits {
        proto_max_bulk_len: 4096,
        max_multibulk_len: 64,
        inline_max: 1024,
        ..Limits::default()
    };
    for authed in [true, false] {
        let mut buf = BytesMut::from(data);
        let mut args = Vec::new();
        let mut whole = Vec::new();
        loop {
            let before = buf.len();
            match parse_request(&mut buf, &limits, authed, &mut args) {
                Ok(true) => {
                    assert!(buf.len() < before, "a parsed request must consume bytes");
                    whole.push(args.clone());
                }
                Ok(false) | Err(FrameError::Incomplete) => break,
                Err(FrameError::Protocol(_) | FrameError::QueryBufferLimit { .. }) => break,
            }
        }
        // Feeding the same bytes in two pieces yields the same leading requests.
        let mid = data.len() / 2;
        let mut buf = BytesMut::from(&data[..mid]);
        let mut split = Vec::new();
        while let Ok(true) = parse_request(&mut buf, &limits, authed, &mut args) {
            split.push(args.clone());
        }
        assert!(split.len() <= whole.len());
        assert_eq!(&whole[..split.len()], &split[..]);
        // A resuming parser fed a few bytes at a time yields the same requests as the
        // stateless one fed everything at once.
        let mut parser = RequestParser::default();
        let mut buf = BytesMut::new();
        let mut pieces = Vec::new();
        let step = 1 + data.first().map_or(0, |&b| usize::from(b % 7));
        'feed: for chunk in data.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                match parser.parse(&mut buf, &limits, authed, &mut args) {
                    Ok(true) => pieces.push(args.clone()),
                    Ok(false) | Err(FrameError::Incomplete) => break,
                    Err(FrameError::Protocol(_) | FrameError::QueryBufferLimit { .. }) => {
                        break 'feed;
                    }
                }
            }
        }
        assert!(pieces.len() <= whole.len());
        assert_eq!(&whole[..pieces.len()], &pieces[..]);
    }
    if let Ok((_, used)) = Frame::parse(data) {
        assert!(used <= data.len());
    }
}

fn keyspace() -> Keyspace {
    Keyspace::new(Arc::new(ManualClock::new(1_000)))
}

/// Target `resp_aof`: [`aof::load_aof`], the AOF loader used at start (which cuts a torn
/// tail off the file), on the bytes written to a scratch file, both as a file the snapshot
/// supersedes and not. A cut may only shorten the file, and the file it leaves must load
/// again, unchanged, to the same keyspace.
pub fn resp_aof(data: &[u8]) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let fs = speedlayer_vfs::RealFs;
    let path = std::env::temp_dir().join(format!(
        "speedlayer-fuzz-aof-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    for supersedes in [None, Some(0)] {
        std::fs::write(&path, data).expect("write the scratch AOF");
        let mut ks = keyspace();
        if aof::load_aof(&fs, &path, supersedes, &mut ks).is_ok() {
            assert!(!ks.loading, "loading flag left set");
            let cut = std::fs::read(&path).expect("read the scratch AOF");
            assert!(
                cut.len() <= data.len() && data.starts_with(&cut),
                "a cut only shortens"
            );
            let mut again = keyspace();
            match aof::load_aof(&fs, &path, supersedes, &mut again) {
                Ok(_) => {
                    let after = std::fs::read(&path).expect("read the scratch AOF");
                    assert_eq!(after, cut, "a loaded file needs no second cut");
                    assert_eq!(again.len(), ks.len(), "the same keys load again");
                }
                Err(e) => panic!("the whole commands before a torn tail do not load: {e}"),
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// Target `resp_snapshot`: [`snapshot::decode_with_repl`], the snapshot loader used at
/// start, on the bytes as given and on the bytes behind each magic (`SLSNAP01`, and the
/// replica's `SLSNAP02`) with a valid checksum appended (so mutations reach the structure
/// parser). A snapshot that decodes must re-encode to one that decodes, superseding the
/// same AOF and holding the same replication position.
pub fn resp_snapshot(data: &[u8]) {
    let path = Path::new("dump.snap");
    let framed = |magic: &[u8]| {
        let mut f = magic.to_vec();
        f.extend_from_slice(data);
        let crc = crc32fast::hash(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    };
    let (plain, repl) = (framed(snapshot::MAGIC), framed(snapshot::MAGIC_REPL));
    for raw in [data, &plain[..], &repl[..]] {
        let mut ks = keyspace();
        if let Ok((supersedes, pos)) = snapshot::decode_with_repl(raw, path, &mut ks) {
            let mut again = keyspace();
            let bytes = snapshot::encode_with_repl(&ks, supersedes, pos.as_ref());
            match snapshot::decode_with_repl(&bytes, path, &mut again) {
                Ok(got) => assert_eq!(got, (supersedes, pos)),
                Err(e) => panic!("re-encoded snapshot does not decode: {e}"),
            }
            assert!(again.len() <= ks.len());
        }
    }
}

/// Target `resp_rdb`: [`rdb::decode`], the Redis RDB reader of the import at start, on the
/// bytes as given and on the bytes behind `REDIS0010` with a valid CRC-64 appended (so
/// mutations reach the structure parser). A file that decodes must load into a keyspace
/// and re-encode to one that decodes to the same keys, members and expiry times.
pub fn resp_rdb(data: &[u8]) {
    let path = Path::new("dump.rdb");
    let mut framed = b"REDIS0010".to_vec();
    framed.extend_from_slice(data);
    let crc = rdb::crc64::update(0, &framed);
    framed.extend_from_slice(&crc.to_le_bytes());
    for raw in [data, &framed[..]] {
        // As the import at start does: keys already expired at the keyspace's clock are
        // dropped by the decoder (decoding at time 0 would load keys the keyspace already
        // sees as expired, which the re-encoding then rightly leaves out).
        let mut ks = keyspace();
        let Ok(decoded) = rdb::decode(raw, path, ks.clock_ms()) else {
            continue;
        };
        let n = decoded.keys.len();
        decoded.load_into(&mut ks);
        assert_eq!(ks.len(), n, "every decoded key loads (no duplicates)");
        let again = match rdb::decode(&rdb::encode(&ks, 0, 0), path, 0) {
            Ok(d) => d,
            Err(e) => panic!("a re-encoded RDB does not decode: {e}"),
        };
        assert_eq!(again.keys.len(), n, "the same keys come back");
        for (key, set, expire) in &again.keys {
            let Some(e) = ks.iter_get(key) else {
                panic!("a key came back that was not there")
            };
            assert_eq!(e.expire_at, *expire, "the same expiry comes back");
            assert_eq!(e.set.len(), set.len(), "the same members come back");
            assert!(set.iter().all(|m| e.set.contains(m.as_bytes())));
        }
    }
}

/// Target `grpc_request`: the bytes decoded as each request message of the `Data` and
/// `Admin` services, and every decoded request through the conversions into storage types
/// its handler applies. Invalid requests are `INVALID_ARGUMENT` statuses, never panics.
pub fn grpc_request(data: &[u8]) {
    if let Ok(r) = pb::MutateRequest::decode(data) {
        let _ = convert::durability_from_pb(r.durability);
        for m in r.mutations {
            let _ = convert::mutation_from_pb(m);
        }
    }
    if let Ok(r) = pb::GetRequest::decode(data) {
        let _ = convert::get_from_pb(r);
    }
    if let Ok(r) = pb::ScanRequest::decode(data) {
        let _ = convert::scan_from_pb(r);
    }
    if let Ok(r) = pb::CheckAndMutateRequest::decode(data) {
        let _ = convert::compare_op_from_pb(r.op);
        let _ = convert::durability_from_pb(r.durability);
        if let Some(m) = r.mutation {
            let _ = convert::mutation_from_pb(m);
        }
    }
    if let Ok(r) = pb::CreateTableRequest::decode(data)
        && let Ok(schema) = convert::schema_from_pb(r.schema)
    {
        // The engine checks the schema before creating the table.
        let _ = schema.validate();
        // What DescribeTable answers must convert back to the same schema.
        let back = convert::schema_from_pb(Some(convert::schema_to_pb(&schema)));
        assert_eq!(back.ok().as_ref(), Some(&schema));
    }
    let _ = pb::DeleteTableRequest::decode(data);
    let _ = pb::ListTablesRequest::decode(data);
    let _ = pb::DescribeTableRequest::decode(data);
    let _ = pb::FlushRequest::decode(data);
    if let Ok(r) = pb::CompactRequest::decode(data) {
        let _ = pb::CompactionKind::try_from(r.kind);
    }
    let _ = pb::RegionStatsRequest::decode(data);
    let _ = pb::LocateRegionRequest::decode(data);
    // BulkLoad chunks: the stage checks each cell (order, sizes, family) as it arrives.
    let _ = pb::BulkLoadRequest::decode(data);
}

/// Target `bulk_packed`: the packed row groups of a bulk-load chunk
/// (`speedlayer_proto::packed`, bulk_load.md §8), as the bulk-load handler walks them.
/// No panic; every group it accepts has a row and at least one cell, the groups before an
/// error cover the field's bytes up to it, and a field decoded without error is covered
/// exactly, and re-encodes to the same bytes.
pub fn bulk_packed(data: &[u8]) {
    let mut again = Vec::with_capacity(data.len());
    let mut clean = true;
    for group in pb::packed::groups(data) {
        let Ok(group) = group else {
            clean = false;
            break;
        };
        assert!(!group.row.is_empty() && group.n >= 1);
        let cells: Vec<_> = group.cells().collect();
        assert_eq!(
            cells.len(),
            group.n as usize,
            "a checked group yields all its cells"
        );
        pb::packed::put_group_head(&mut again, group.row, group.n);
        for c in cells {
            pb::packed::put_cell(&mut again, c);
        }
    }
    assert!(again.len() <= data.len());
    assert_eq!(
        &again[..],
        &data[..again.len()],
        "the groups re-encode to their bytes"
    );
    if clean {
        assert_eq!(again.len(), data.len(), "a clean field is covered exactly");
    }
}
