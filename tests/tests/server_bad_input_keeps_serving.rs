//! Bad input never takes the region server down, and each refusal says what was wrong:
//! a malformed filter expression, an unknown table or family, an empty filter node, an
//! oversize request, an empty row, and raw garbage bytes on the gRPC port.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use speedlayer_client::proto::{self, Durability, Filter, ScanRequest};
use speedlayer_client::{Client, put_row};
use speedlayer_tests::server::ServerProcess;
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_bad_input_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &["--grpc-max-message-bytes", "1048576"]);
    let url = server.url();
    let c = Client::connect(&url).await.unwrap();
    server.cli(&["create-table", "t", "--family", "cf1"]).ok();

    // Malformed filter: refused by the CLI with the offset, non-zero exit.
    let err = server
        .cli(&["scan", "t", "--filter", "cf1:speed >> 80"])
        .err();
    assert!(err.contains("bad filter expression at byte"), "{err}");
    let err = server
        .cli(&["scan", "t", "--filter", "(cf1:speed > 80"])
        .err();
    assert!(err.contains("expected ')'"), "{err}");
    // Bad family spec.
    let err = server
        .cli(&["create-table", "u", "--family", "cf1:bloom=maybe"])
        .err();
    assert!(err.contains("bloom must be row, rowcol or none"), "{err}");

    // Unknown table and family: NOT_FOUND, naming them.
    let err = server.cli(&["get", "nope", "r"]).err();
    assert_eq!(err.trim(), "error: table 'nope' does not exist");
    let e = c
        .mutate(
            "t",
            vec![put_row(b"r", &[("nofam", "q", b"v")])],
            Durability::Sync,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::NotFound), "{e}");
    assert!(e.to_string().contains("nofam"), "{e}");

    // An empty filter node: INVALID_ARGUMENT.
    let e = c
        .scan_all(ScanRequest {
            table: "t".into(),
            filter: Some(Filter { kind: None }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");

    // Empty row key: INVALID_ARGUMENT.
    let e = c
        .mutate(
            "t",
            vec![put_row(b"", &[("cf1", "q", b"v")])],
            Durability::Sync,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::InvalidArgument), "{e}");

    // A request over the server's 1 MiB limit: refused before decoding.
    let big = vec![b'x'; 2 * 1024 * 1024];
    let e = c
        .mutate(
            "t",
            vec![put_row(b"big", &[("cf1", "q", &big)])],
            Durability::Sync,
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(Code::OutOfRange), "{e}");
    assert!(e.to_string().contains("too large"), "{e}");

    // Garbage on the gRPC port: plain junk, then an HTTP/2 preface followed by junk.
    for prefix in [&b""[..], &b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"[..]] {
        let mut s = TcpStream::connect(server.grpc).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut junk = prefix.to_vec();
        junk.extend((0..65_536u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8));
        let _ = s.write_all(&junk);
        // The server answers with a GOAWAY or just closes; either way it ends the stream.
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }

    // Still serving, with the same connection and a new one.
    c.mutate(
        "t",
        vec![put_row(b"ok", &[("cf1", "q", b"v")])],
        Durability::Sync,
    )
    .await
    .unwrap();
    let fresh = Client::connect(&url).await.unwrap();
    let row = fresh
        .get(proto::GetRequest {
            table: "t".into(),
            row: Bytes::from_static(b"ok"),
            ..Default::default()
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.cells[0].value, Bytes::from_static(b"v"));
    assert_eq!(server.http_get("/health").0, 200);
    let (_, metrics) = server.http_get("/metrics");
    let errors: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("speedlayer_grpc_requests_total{method=\"Mutate\",outcome=\"error\"} ")
        })
        .and_then(|v| v.parse().ok())
        .unwrap();
    // The unknown family (tried twice: the client refreshes its region cache on NOT_FOUND)
    // and the empty row; the oversize request never reached the service.
    assert!((2..=3).contains(&errors), "{errors}");

    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
}
