//! The packed chunk form of `Data.BulkLoad` (storage/docs/bulk_load.md §8) driven by hand
//! against the real server: well-formed groups over several chunks and two families are
//! adopted and read back; every violation of the packed grammar or of its invariants —
//! a torn group, trailing bytes, an empty row or group, a family index outside the table,
//! cells or rows out of order (within a group, across groups, across chunks), a chunk in
//! two forms — is `INVALID_ARGUMENT` after good chunks were already staged, and nothing of
//! that load is adopted or left in the staging area. The server keeps serving throughout.

use bytes::BytesMut;
use speedlayer_client::Client;
use speedlayer_proto::packed;
use speedlayer_proto::{BulkLoadRequest, BulkRow};
use speedlayer_tests::server::ServerProcess;
use tonic::Code;

const FAMILIES: [&str; 2] = ["cf1", "cf2"];

/// One well-formed group of row `row`: `a` and `b` in cf1 and `z` in cf2, timestamp `ts`.
fn group(out: &mut BytesMut, row: &str, ts: u64) {
    packed::put_group_head(out, row.as_bytes(), 3);
    for (family, qualifier) in [(0u8, &b"a"[..]), (0, b"b"), (1, b"z")] {
        let value = format!("{row}/{}", qualifier[0] as char);
        packed::put_cell(
            out,
            packed::Cell {
                family,
                qualifier,
                timestamp: ts,
                value: value.as_bytes(),
            },
        );
    }
}

/// Groups for rows `from..to` (`r000123`, …).
fn groups(from: usize, to: usize) -> BytesMut {
    let mut out = BytesMut::new();
    for i in from..to {
        group(&mut out, &format!("r{i:06}"), 1_000 + i as u64);
    }
    out
}

fn chunk(first: bool, packed: BytesMut) -> BulkLoadRequest {
    BulkLoadRequest {
        table: if first { "t".into() } else { String::new() },
        families: if first {
            FAMILIES.iter().map(|f| f.to_string()).collect()
        } else {
            Vec::new()
        },
        packed: packed.freeze(),
        ..BulkLoadRequest::default()
    }
}

async fn load(
    client: &Client,
    chunks: Vec<BulkLoadRequest>,
) -> Result<speedlayer_proto::BulkLoadResponse, speedlayer_client::ClientError> {
    client.bulk_load_stream(futures::stream::iter(chunks)).await
}

fn count(server: &ServerProcess) -> String {
    server.cli(&["count", "t"]).ok().trim().to_string()
}

/// Entries left in the server's bulk staging area (none once a load is adopted or refused).
fn staged(data: &std::path::Path) -> Vec<String> {
    let mut left = Vec::new();
    let mut dirs = vec![data.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                if p.file_name().is_some_and(|n| n == "@bulkload") {
                    left.extend(
                        std::fs::read_dir(&p)
                            .into_iter()
                            .flatten()
                            .flatten()
                            .map(|e| e.path().display().to_string()),
                    );
                } else {
                    dirs.push(p);
                }
            }
        }
    }
    left
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_chunks_are_adopted_whole_or_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(&data, &[]);
    server
        .cli(&["create-table", "t", "--family", "cf1", "--family", "cf2"])
        .ok();
    let client = Client::connect(&server.url()).await.unwrap();

    // Well-formed: 3 chunks, 3,000 rows, 9,000 cells in two families.
    let resp = load(
        &client,
        vec![
            chunk(true, groups(0, 1_000)),
            chunk(false, groups(1_000, 2_000)),
            chunk(false, groups(2_000, 3_000)),
        ],
    )
    .await
    .unwrap();
    assert_eq!(resp.cells, 9_000);
    assert_eq!(count(&server), "3000");
    let row = server.cli(&["get", "t", "r001234", "--json"]).ok();
    for want in ["r001234/a", "r001234/b", "r001234/z", "cf2"] {
        assert!(row.contains(want), "{want} missing in {row}");
    }
    assert!(staged(&data).is_empty(), "{:?}", staged(&data));

    // Each bad load starts with a good chunk of new rows (so something is staged), then
    // the bad chunk. Rows r1xxxxx sort after everything loaded so far.
    let good_first = || chunk(true, groups(100_000, 100_500));
    // (what, a word the refusal must name, the bad chunk)
    let mut cases: Vec<(&str, &str, BulkLoadRequest)> = Vec::new();
    {
        let mut torn = groups(100_500, 100_510);
        torn.truncate(torn.len() - 3);
        cases.push(("a torn last group", "torn", chunk(false, torn)));
    }
    {
        let mut trailing = groups(100_500, 100_510);
        trailing.extend_from_slice(&[0]);
        cases.push(("a trailing byte", "torn", chunk(false, trailing)));
    }
    {
        let mut empty_group = groups(100_500, 100_510);
        packed::put_group_head(&mut empty_group, b"r100600", 1);
        // Rewrite n = 1 to n = 0 (the last 4 bytes): a group without cells.
        let at = empty_group.len() - 4;
        empty_group[at..].copy_from_slice(&0u32.to_le_bytes());
        cases.push((
            "a group with no cell",
            "without cells",
            chunk(false, empty_group),
        ));
    }
    {
        let mut bad_family = groups(100_500, 100_510);
        packed::put_group_head(&mut bad_family, b"r100600", 1);
        packed::put_cell(
            &mut bad_family,
            packed::Cell {
                family: 2,
                qualifier: b"q",
                timestamp: 1,
                value: b"v",
            },
        );
        cases.push((
            "family index 2 of 2",
            "family 2 of 2",
            chunk(false, bad_family),
        ));
    }
    {
        let mut cells_backwards = groups(100_500, 100_510);
        packed::put_group_head(&mut cells_backwards, b"r100600", 2);
        for q in [&b"b"[..], b"a"] {
            packed::put_cell(
                &mut cells_backwards,
                packed::Cell {
                    family: 0,
                    qualifier: q,
                    timestamp: 1,
                    value: b"v",
                },
            );
        }
        cases.push((
            "qualifiers out of order",
            "strictly increase",
            chunk(false, cells_backwards),
        ));
    }
    {
        let mut twice = groups(100_500, 100_510);
        packed::put_group_head(&mut twice, b"r100600", 2);
        for _ in 0..2 {
            packed::put_cell(
                &mut twice,
                packed::Cell {
                    family: 0,
                    qualifier: b"a",
                    timestamp: 7,
                    value: b"v",
                },
            );
        }
        cases.push(("one cell twice", "strictly increase", chunk(false, twice)));
    }
    {
        let mut rows_backwards = groups(100_500, 100_510);
        group(&mut rows_backwards, "r100505", 1);
        cases.push((
            "a row before its predecessor",
            "must not decrease",
            chunk(false, rows_backwards),
        ));
    }
    // Rows that sort before the first chunk's: out of order across chunks.
    cases.push((
        "a chunk behind the previous one",
        "must not decrease",
        chunk(false, groups(100_100, 100_110)),
    ));
    {
        let mut two_forms = chunk(false, groups(100_500, 100_510));
        two_forms.rows.push(BulkRow {
            row: b"r100600".to_vec().into(),
            ..BulkRow::default()
        });
        cases.push(("a chunk in two forms", "more than one form", two_forms));
    }

    for (what, word, bad) in cases {
        let err = load(&client, vec![good_first(), bad]).await.unwrap_err();
        assert_eq!(err.code(), Some(Code::InvalidArgument), "{what}: {err}");
        assert!(err.to_string().contains(word), "{what}: {err}");
        assert_eq!(
            count(&server),
            "3000",
            "{what}: nothing of the load adopted"
        );
        assert!(
            staged(&data).is_empty(),
            "{what}: staging left {:?}",
            staged(&data)
        );
    }

    // The same good chunk alone still loads: the server kept serving and nothing of the
    // refused loads was left behind to collide with.
    let resp = load(&client, vec![good_first()]).await.unwrap();
    assert_eq!(resp.cells, 1_500);
    assert_eq!(count(&server), "3500");
}
