//! The console's JSON views refuse what they cannot answer with a status and a reason
//! (never a panic, never an empty success), take nothing but GET, and report an expired
//! key of the TTL set service as missing. In-process region server and RESP service on
//! `127.0.0.1:0`, real TCP HTTP requests.

use std::io::{Read, Write};
use std::net::SocketAddr;

use speedlayer_server::http::ConsoleConfig;
use speedlayer_server::resp::{RespConfig, RespServer};
use speedlayer_server::{RegionConfig, RegionServer};

fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_api_answers_bad_requests_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let resp = RespServer::start(RespConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        dir.path().join("resp"),
    ))
    .await
    .unwrap();
    let mut cfg = RegionConfig::new(dir.path().join("regions"));
    cfg.grpc_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    cfg.console = ConsoleConfig {
        resp: Some(resp.shared.clone()),
        ..ConsoleConfig::default()
    };
    let server = RegionServer::start(cfg).await.unwrap();
    let http = server.http_addr();

    let mut redis = redis::Client::open(format!("redis://{}", resp.local_addr()))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("20261122")
        .arg("V0042")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg("gone")
        .arg("x")
        .query_async(&mut redis)
        .await
        .unwrap();
    let _: () = redis::cmd("PEXPIRE")
        .arg("gone")
        .arg(1)
        .query_async(&mut redis)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await; // let "gone" expire

    let cases: [(&str, u16, &str); 7] = [
        (
            "/api/fleet/speed?car=bad&from=20261122000000&to=20261122010000",
            400,
            "not a car number",
        ),
        (
            "/api/fleet/speed?car=V0042&from=20261122010000&to=20261122000000",
            400,
            "range must be positive",
        ),
        (
            "/api/fleet/speed?car=V0042&from=20261122000000&to=20261124000000",
            400,
            "at most 86400 s",
        ),
        ("/api/fleet/flagged?day=2026-13-01", 400, "not a date"),
        ("/api/tables/nosuch/regions/1", 404, "no table"),
        ("/api/resp/key", 400, "missing ?key="),
        ("/api/nosuch", 404, ""),
    ];
    for (path, status, reason) in cases {
        let (got, body) = tokio::task::spawn_blocking(move || request(http, "GET", path))
            .await
            .unwrap();
        assert_eq!(got, status, "{path}: {body}");
        assert!(body.contains(reason), "{path}: {body}");
    }

    // A flagged day with no overspeed table yet: the car, no windows, the set's TTL.
    let (status, body) = tokio::task::spawn_blocking(move || {
        request(http, "GET", "/api/fleet/flagged?day=2026-11-22")
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["cars"][0]["car"], "V0042", "{body}");
    assert_eq!(v["set_pttl_ms"], -1, "no TTL: {body}");

    // An expired key reads as missing (the lookup only reads: `Keyspace::iter_get`).
    let (_, body) =
        tokio::task::spawn_blocking(move || request(http, "GET", "/api/resp/key?key=gone"))
            .await
            .unwrap();
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["exists"], false, "{body}");
    assert_eq!(v["pttl_ms"], -2, "{body}");

    // Nothing but GET.
    for path in ["/", "/api/tables", "/api/resp/key?key=gone", "/metrics"] {
        let (status, _) = tokio::task::spawn_blocking(move || request(http, "POST", path))
            .await
            .unwrap();
        assert_eq!(status, 405, "POST {path}");
    }

    server.shutdown().await.unwrap();
    resp.shutdown().await.unwrap();
}
