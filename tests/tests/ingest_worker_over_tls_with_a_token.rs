//! The ingest worker writes to a region server that requires TLS and a bearer token
//! (issue 12, SPEC §7): with the CA and the token every event is stored; with the CA but
//! no token the server refuses the worker's first call (UNAUTHENTICATED).
//! Certificates are generated at test time; the broker is a real tansu.

#[path = "ingest_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use speedlayer_client::{ClientOptions, proto::ScanRequest};
use speedlayer_ingest::worker::{GrpcStore, Store, Worker, WorkerConfig};
use speedlayer_tests::certs::TestCerts;
use speedlayer_tests::server::ServerProcess;
use speedlayer_tests::tansu::Tansu;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_stores_through_tls_with_the_token_and_nothing_without() {
    let dir = tempfile::tempdir().unwrap();
    let certs = TestCerts::generate(&dir.path().join("tls"));
    let token = dir.path().join("token");
    std::fs::write(&token, "worker-token").unwrap();
    let server = ServerProcess::start_pinned(
        &dir.path().join("data"),
        &[
            "--grpc-tls-cert",
            certs.cert.to_str().unwrap(),
            "--grpc-tls-key",
            certs.key.to_str().unwrap(),
            "--grpc-token-file",
            token.to_str().unwrap(),
        ],
    );
    let url = format!("https://{}", server.grpc);
    let resp = server.resp.expect("RESP on").to_string();
    let tansu = Tansu::start();
    tansu.create_topic(TOPIC, 4);
    let rules = rules_file(dir.path(), 80);
    let ca = std::fs::read(&certs.ca).unwrap();

    // Without the token: the store refuses the worker at its first call.
    let anonymous = ClientOptions {
        tls_ca_pem: Some(ca.clone()),
        ..ClientOptions::default()
    };
    let store = GrpcStore::connect_with(&url, anonymous).await.unwrap();
    let refused = store
        .ensure_table("driving", "cf1")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("UNAUTHENTICATED") || refused.contains("token"),
        "{refused}"
    );
    let mut cfg = WorkerConfig::new(&tansu.brokers(), &url, &resp, &rules);
    cfg.backoff_max = Duration::from_millis(200);

    // With the token: every event is stored.
    let opts = ClientOptions {
        tls_ca_pem: Some(ca.clone()),
        token: Some("worker-token".into()),
        ..ClientOptions::default()
    };
    let store = GrpcStore::connect_with(&url, opts.clone()).await.unwrap();
    cfg.idle_flush = Duration::from_secs(3);
    cfg.batch_linger = Duration::from_millis(20);
    let worker = Worker::connect(cfg, store, speedlayer_ingest::metrics::Registry::new())
        .await
        .unwrap();
    let (stop, rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(worker.run(rx));
    let lines = driving_lines(8, 0, 30, 3);
    produce(&tansu.brokers(), &records(&lines)).await;
    let want = expected_keys(&lines);
    let c = speedlayer_client::Client::connect_with(&url, opts)
        .await
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        let got: BTreeSet<Vec<u8>> = c
            .scan_all(ScanRequest {
                table: "driving".into(),
                ..ScanRequest::default()
            })
            .await
            .map(|rows| rows.into_iter().map(|r| r.row.to_vec()).collect())
            .unwrap_or_default();
        if got == want {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{} of {} rows stored over TLS",
            got.len(),
            want.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
}
