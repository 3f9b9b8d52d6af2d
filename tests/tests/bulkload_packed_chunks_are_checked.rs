//! The packed form of a bulk-load chunk (`storage/docs/bulk_load.md` §8, "Packed row
//! groups") against the real server: good groups over several chunks are adopted with
//! every cell readable; a torn field, a family index outside the table, rows out of order
//! and a chunk carrying two forms are each refused with `INVALID_ARGUMENT`, and nothing of
//! such a load is adopted.

use bytes::{Bytes, BytesMut};
use speedlayer_client::Client;
use speedlayer_client::proto::packed::{Cell, put_cell, put_group_head};
use speedlayer_client::proto::{BulkColumn, BulkLoadRequest, BulkRow};
use speedlayer_tests::server::ServerProcess;
use tonic::Code;

fn group(out: &mut BytesMut, row: &str, cells: &[(u8, &str, u64, &str)]) {
    put_group_head(out, row.as_bytes(), cells.len() as u32);
    for &(family, q, ts, v) in cells {
        put_cell(
            out,
            Cell {
                family,
                qualifier: q.as_bytes(),
                timestamp: ts,
                value: v.as_bytes(),
            },
        );
    }
}

fn chunk(first: bool, packed: BytesMut) -> BulkLoadRequest {
    BulkLoadRequest {
        table: if first { "t".into() } else { String::new() },
        families: if first {
            vec!["cf1".into(), "cf2".into()]
        } else {
            vec![]
        },
        packed: packed.freeze(),
        ..BulkLoadRequest::default()
    }
}

async fn load(client: &Client, chunks: Vec<BulkLoadRequest>) -> Result<u64, Code> {
    client
        .bulk_load_stream(futures::stream::iter(chunks))
        .await
        .map(|r| r.cells)
        .map_err(|e| e.code().unwrap_or(Code::Unknown))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packed_chunks_load_and_bad_ones_adopt_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    server
        .cli(&["create-table", "t", "--family", "cf1", "--family", "cf2"])
        .ok();
    let client = Client::connect(&server.url()).await.unwrap();
    let count = || server.cli(&["count", "t"]).ok().trim().to_string();

    // Refused: each leaves the table empty.
    let mut torn = BytesMut::new();
    group(&mut torn, "r1", &[(0, "a", 5, "x")]);
    torn.truncate(torn.len() - 1);
    assert_eq!(
        load(&client, vec![chunk(true, torn)]).await,
        Err(Code::InvalidArgument)
    );

    let mut bad_family = BytesMut::new();
    group(&mut bad_family, "r1", &[(0, "a", 5, "x")]);
    group(&mut bad_family, "r2", &[(2, "a", 5, "x")]);
    assert_eq!(
        load(&client, vec![chunk(true, bad_family)]).await,
        Err(Code::InvalidArgument)
    );

    let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
    group(&mut a, "r2", &[(0, "a", 5, "x")]);
    group(&mut b, "r1", &[(0, "a", 5, "x")]);
    assert_eq!(
        load(&client, vec![chunk(true, a), chunk(false, b)]).await,
        Err(Code::InvalidArgument),
        "rows out of order across chunks"
    );

    let mut unordered_cells = BytesMut::new();
    group(
        &mut unordered_cells,
        "r1",
        &[(0, "b", 5, "x"), (0, "a", 5, "y")],
    );
    assert_eq!(
        load(&client, vec![chunk(true, unordered_cells)]).await,
        Err(Code::InvalidArgument)
    );

    let mut two_forms = chunk(true, {
        let mut p = BytesMut::new();
        group(&mut p, "r1", &[(0, "a", 5, "x")]);
        p
    });
    two_forms.rows = vec![BulkRow {
        row: Bytes::from_static(b"r0"),
        columns: vec![BulkColumn {
            family: 0,
            qualifier: Bytes::from_static(b"a"),
            timestamp: 5,
            value: Bytes::from_static(b"x"),
        }],
    }];
    assert_eq!(
        load(&client, vec![two_forms]).await,
        Err(Code::InvalidArgument)
    );
    assert_eq!(count(), "0", "no refused load adopted anything");

    // Good: two chunks, a row with two families and two timestamps of one column.
    let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
    group(
        &mut a,
        "r1",
        &[
            (0, "a", 9, "new"),
            (0, "a", 5, "old"),
            (0, "b", 5, "x"),
            (1, "c", 5, "y"),
        ],
    );
    group(&mut a, "r2", &[(1, "c", 7, "z")]);
    group(&mut b, "r3", &[(0, "a", 1, "w")]);
    assert_eq!(
        load(&client, vec![chunk(true, a), chunk(false, b)]).await,
        Ok(6)
    );
    assert_eq!(count(), "3");
    let got = server.cli(&["get", "t", "r1"]).ok();
    for want in ["new", "x", "y"] {
        assert!(got.contains(want), "{want} in {got}");
    }
    assert!(!got.contains("old"), "the newer timestamp is read: {got}");
}
