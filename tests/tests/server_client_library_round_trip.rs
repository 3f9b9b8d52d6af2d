//! The Rust client library against the real server: the batching writer (count, bytes and
//! time triggers, errors surfaced, never swallowed), check-and-mutate, region location and
//! describe, and scans streamed in many chunks.

use std::time::Duration;

use bytes::Bytes;
use speedlayer_client::proto::{self, CompareOp, Durability, GetRequest, ScanRequest};
use speedlayer_client::{BatchWriter, Client, ClientError, WriterConfig, put_row};
use speedlayer_tests::server::ServerProcess;
use tonic::Code;

fn schema(name: &str) -> proto::TableSchema {
    proto::TableSchema {
        name: name.into(),
        families: vec![proto::FamilySchema {
            name: "cf1".into(),
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_client_library_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let c = Client::connect(&server.url()).await.unwrap();
    c.create_table(schema("driving")).await.unwrap();

    // Batching writer: 2,500 rows in batches of at most 1,000 rows.
    let writer = BatchWriter::new(
        c.clone(),
        "driving",
        WriterConfig {
            max_rows: 1_000,
            queue_rows: 64,
            ..WriterConfig::default()
        },
    );
    for i in 0..2_500u32 {
        let row = format!("V{:04}-{i:08}", i % 7);
        let speed = (i % 150).to_string();
        writer
            .write(put_row(
                row.as_bytes(),
                &[
                    ("cf1", "speed", speed.as_bytes()),
                    ("cf1", "area_number", b"A07"),
                ],
            ))
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();
    let stats = writer.stats();
    assert_eq!(stats.rows, 2_500);
    assert_eq!(stats.cells, 5_000);
    assert!(stats.batches >= 3, "{stats:?}");
    // A lone row goes out by time, without a flush.
    writer
        .write(put_row(b"late", &[("cf1", "speed", b"1")]))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while writer.stats().rows < 2_501 {
        assert!(
            std::time::Instant::now() < deadline,
            "time trigger never fired"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    writer.close().await.unwrap();

    // A scan streamed in small chunks sees every row, in order.
    let rows = c
        .scan_all(ScanRequest {
            table: "driving".into(),
            batch_rows: 7,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2_501);
    assert!(rows.windows(2).all(|w| w[0].row < w[1].row));

    // A writer whose batch fails stops and says why, on every later call.
    let bad = BatchWriter::new(c.clone(), "no_such_table", WriterConfig::default());
    bad.write(put_row(b"r", &[("cf1", "q", b"v")]))
        .await
        .unwrap();
    let e = bad.flush().await.unwrap_err();
    assert!(
        matches!(&e, ClientError::WriterFailed(m) if m.contains("no_such_table")),
        "{e}"
    );
    let e = bad
        .write(put_row(b"r2", &[("cf1", "q", b"v")]))
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::WriterFailed(_)), "{e}");
    assert!(bad.close().await.is_err());

    // Check-and-mutate: applied only when the check holds.
    let cam = |expected: Option<&'static [u8]>, op: CompareOp, value: &'static [u8]| {
        proto::CheckAndMutateRequest {
            table: "driving".into(),
            row: Bytes::from_static(b"cam"),
            family: Bytes::from_static(b"cf1"),
            qualifier: Bytes::from_static(b"state"),
            op: op as i32,
            expected: expected.map(Bytes::from_static),
            mutation: Some(put_row(b"cam", &[("cf1", "state", value)])),
            durability: Durability::Sync as i32,
        }
    };
    assert!(
        c.check_and_mutate(cam(None, CompareOp::Eq, b"1"))
            .await
            .unwrap()
    );
    assert!(
        !c.check_and_mutate(cam(None, CompareOp::Eq, b"2"))
            .await
            .unwrap()
    );
    assert!(
        !c.check_and_mutate(cam(Some(b"5"), CompareOp::Eq, b"2"))
            .await
            .unwrap()
    );
    assert!(
        c.check_and_mutate(cam(Some(b"1"), CompareOp::Eq, b"2"))
            .await
            .unwrap()
    );
    assert!(
        c.check_and_mutate(cam(Some(b"10"), CompareOp::Lt, b"3"))
            .await
            .unwrap()
    );
    let row = c
        .get(GetRequest {
            table: "driving".into(),
            row: Bytes::from_static(b"cam"),
            ..Default::default()
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.cells[0].value, Bytes::from_static(b"3"));
    let e = c
        .check_and_mutate(proto::CheckAndMutateRequest {
            op: CompareOp::Unspecified as i32,
            ..cam(Some(b"3"), CompareOp::Eq, b"4")
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument));

    // Region location: one region covering everything, on this server.
    let loc = c.locate("driving", b"V0003").await.unwrap();
    assert_eq!(loc.server_addr, server.url());
    assert!(loc.start_key.is_empty() && loc.end_key.is_empty());
    let desc = c.describe_table("driving").await.unwrap();
    assert_eq!(desc.regions.len(), 1);
    assert_eq!(desc.schema.unwrap().families[0].max_versions, 1);
    let e = c.locate("nope", b"x").await.unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound));

    assert!(server.terminate().success(), "{}", server.log());
}
