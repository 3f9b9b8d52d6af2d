//! SPEC §7 and issue 12: the gRPC server with TLS (tonic's rustls) and a bearer token, with
//! certificates generated at test time. The client library, the CLI and a cluster of two
//! servers (regions on both, reached through one) work with the CA and the token; a
//! request without a valid token gets UNAUTHENTICATED and changes nothing; a plaintext
//! client cannot talk to the TLS port; health checks stay open.

use speedlayer_client::proto::{Durability, GetRequest, ScanRequest};
use speedlayer_client::{Client, ClientError, ClientOptions, put_row};
use speedlayer_tests::certs::TestCerts;
use speedlayer_tests::etcd::Etcd;
use speedlayer_tests::server::{ServerProcess, run_cli};

fn opts(certs: &TestCerts, token: Option<&str>) -> ClientOptions {
    ClientOptions {
        tls_ca_pem: Some(std::fs::read(&certs.ca).unwrap()),
        token: token.map(str::to_owned),
        ..ClientOptions::default()
    }
}

fn schema(name: &str) -> speedlayer_client::proto::TableSchema {
    speedlayer_client::proto::TableSchema {
        name: name.into(),
        families: vec![speedlayer_client::proto::FamilySchema {
            name: "f".into(),
            ..Default::default()
        }],
    }
}

fn https(s: &ServerProcess) -> String {
    format!("https://{}", s.grpc)
}

fn unauthenticated(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(
            e @ ClientError::Status {
                code: tonic::Code::Unauthenticated,
                ..
            },
        ) => e.to_string(),
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_and_a_bearer_token_guard_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("tls"));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "t0ken-for-tests-only\n").unwrap();
    let server = ServerProcess::start(
        &dir.path().join("data"),
        &[
            "--grpc-tls-cert",
            certs.cert.to_str().unwrap(),
            "--grpc-tls-key",
            certs.key.to_str().unwrap(),
            "--grpc-token-file",
            token_file.to_str().unwrap(),
        ],
    );
    let url = https(&server);

    // With the CA and the token: everything works.
    let c = Client::connect_with(&url, opts(&certs, Some("t0ken-for-tests-only")))
        .await
        .unwrap();
    c.create_table(schema("t")).await.unwrap();
    c.mutate(
        "t",
        vec![put_row(b"r1", &[("f", "q", b"v1")])],
        Durability::Sync,
    )
    .await
    .unwrap();
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);

    // Without a token, or with a wrong one: UNAUTHENTICATED, and nothing changed.
    let anonymous = Client::connect_with(&url, opts(&certs, None))
        .await
        .unwrap();
    let msg = unauthenticated(
        anonymous
            .mutate(
                "t",
                vec![put_row(b"r2", &[("f", "q", b"x")])],
                Durability::Sync,
            )
            .await,
    );
    assert!(msg.contains("token"), "{msg}");
    unauthenticated(anonymous.create_table(schema("u")).await);
    unauthenticated(anonymous.drop_table("t").await);
    unauthenticated(anonymous.list_tables().await);
    let wrong = Client::connect_with(&url, opts(&certs, Some("t0ken-for-tests-onlY")))
        .await
        .unwrap();
    unauthenticated(
        wrong
            .mutate(
                "t",
                vec![put_row(b"r1", &[("f", "q", b"overwritten")])],
                Durability::Sync,
            )
            .await,
    );
    unauthenticated(
        wrong
            .get(GetRequest {
                table: "t".into(),
                row: b"r1".to_vec().into(),
                ..GetRequest::default()
            })
            .await,
    );
    let tables: Vec<String> = c
        .list_tables()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(
        tables,
        ["t"],
        "an unauthenticated create or drop changed the tables"
    );
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "an unauthenticated put was applied");
    assert_eq!(
        &rows[0].cells[0].value[..],
        b"v1",
        "an unauthenticated put overwrote a row"
    );

    // A plaintext client cannot use the TLS port; https without the CA is refused up front.
    let plain = format!("http://{}", server.grpc);
    let plain_result = match Client::connect(&plain).await {
        Ok(c) => c.list_tables().await.map(|_| ()),
        Err(e) => Err(e),
    };
    assert!(plain_result.is_err(), "plaintext talked to the TLS port");
    let err = Client::connect(&url).await.unwrap_err().to_string();
    assert!(err.contains("CA certificate"), "{err}");

    // Health checks stay open (load balancers probe without credentials), over TLS.
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .tls_config(tonic::transport::ClientTlsConfig::new().ca_certificate(
            tonic::transport::Certificate::from_pem(std::fs::read(&certs.ca).unwrap()),
        ))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "speedlayer.v1.Data".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // The CLI with --tls-ca and --token-file; without the token it says why.
    let ca = certs.ca.to_str().unwrap();
    let tok = token_file.to_str().unwrap();
    let out = run_cli(
        &url,
        &[
            "--tls-ca",
            ca,
            "--token-file",
            tok,
            "put",
            "t",
            "r3",
            "f:q",
            "v3",
        ],
    )
    .ok();
    assert!(out.contains("ok"), "{out}");
    let out = run_cli(&url, &["--tls-ca", ca, "--token-file", tok, "count", "t"]).ok();
    assert!(out.contains('2'), "{out}");
    let err = run_cli(&url, &["--tls-ca", ca, "count", "t"]).err();
    assert!(err.contains("token"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_reports_https_locations_and_serves_through_any_server() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("tls"));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "cluster-token").unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let etcd_url = etcd.url();
    let shared = dir.path().join("shared");
    let flags = [
        "--etcd",
        &etcd_url,
        "--cluster",
        "c",
        "--lease-ttl-secs",
        "2",
        "--storage-root",
        shared.to_str().unwrap(),
        "--grpc-tls-cert",
        certs.cert.to_str().unwrap(),
        "--grpc-tls-key",
        certs.key.to_str().unwrap(),
        "--grpc-token-file",
        token_file.to_str().unwrap(),
    ];
    let servers: Vec<ServerProcess> = (0..2)
        .map(|i| ServerProcess::start(&dir.path().join(format!("s{i}")), &flags))
        .collect();
    let c = Client::connect_with(&https(&servers[0]), opts(&certs, Some("cluster-token")))
        .await
        .unwrap();
    c.create_table_split(schema("t"), vec![bytes::Bytes::from_static(b"m")])
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let d = c.describe_table("t").await.unwrap();
        let servers_now: std::collections::BTreeSet<_> =
            d.regions.iter().map(|r| r.server_addr.clone()).collect();
        if servers_now.len() == 2 {
            assert!(
                servers_now.iter().all(|a| a.starts_with("https://")),
                "{servers_now:?}"
            );
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "{servers_now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let rows: Vec<_> = [b"a", b"z"]
        .iter()
        .map(|k| put_row(&k[..], &[("f", "q", b"1")]))
        .collect();
    c.mutate("t", rows, Durability::Sync).await.unwrap();
    let rows = c
        .scan_all(ScanRequest {
            table: "t".into(),
            ..ScanRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "rows on both servers, read through one");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_and_the_cli_reach_etcd_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("tls"));
    let etcd = Etcd::start_tls(&dir.path().join("etcd"), &certs);
    let etcd_url = etcd.url();
    assert!(etcd_url.starts_with("https://"), "{etcd_url}");
    let shared = dir.path().join("shared");
    let ca = certs.ca.to_str().unwrap();
    let server = ServerProcess::start(
        &dir.path().join("s"),
        &[
            "--etcd",
            &etcd_url,
            "--etcd-ca",
            ca,
            "--cluster",
            "c",
            "--storage-root",
            shared.to_str().unwrap(),
        ],
    );
    let out = server.cli(&["create-table", "t", "--family", "f"]).ok();
    assert!(out.contains("created"), "{out}");
    let c = Client::connect(&server.url()).await.unwrap();
    let start = std::time::Instant::now();
    while c
        .mutate(
            "t",
            vec![put_row(b"r", &[("f", "q", b"1")])],
            Durability::Sync,
        )
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the region never opened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let status = run_cli(
        "http://127.0.0.1:1",
        &[
            "cluster",
            "status",
            "--etcd",
            &etcd_url,
            "--etcd-ca",
            ca,
            "--cluster",
            "c",
            "--json",
        ],
    )
    .ok();
    assert!(status.contains("\"master\""), "{status}");
    // Without the CA: refused by name before anything is tried.
    let err = run_cli(
        "http://127.0.0.1:1",
        &["cluster", "status", "--etcd", &etcd_url, "--cluster", "c"],
    )
    .err();
    assert!(err.contains("--etcd-ca"), "{err}");
}
