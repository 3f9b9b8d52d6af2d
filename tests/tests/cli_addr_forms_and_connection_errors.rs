//! `speedlayer --addr` through the real binaries: `host:port` exactly as the server's
//! `READY` line prints it and `http://host:port` both reach the server; a port nothing
//! listens on fails with what happened and a hint, not a bare "transport error".

use speedlayer_tests::server::{ServerProcess, run_cli};

#[test]
fn cli_addr_forms_and_connection_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    server.cli(&["create-table", "t", "--family", "cf"]).ok();

    // `server.grpc` is the address parsed from the READY line.
    for addr in [
        server.grpc.to_string(),
        server.url(),
        format!("{}/", server.url()),
    ] {
        let out = run_cli(&addr, &["tables"]).ok();
        assert!(out.contains("1 table(s)"), "--addr {addr}: {out}");
    }

    // A loopback port that nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    for addr in [
        format!("127.0.0.1:{port}"),
        format!("http://127.0.0.1:{port}"),
    ] {
        let err = run_cli(&addr, &["tables"]).err();
        assert_eq!(
            err.trim(),
            format!("error: connection refused at 127.0.0.1:{port}: is speedlayer-server running?"),
            "--addr {addr}"
        );
    }

    let err = run_cli("http://bad host:1", &["tables"]).err();
    assert!(
        err.contains("invalid server address 'http://bad host:1'"),
        "{err}"
    );
}
