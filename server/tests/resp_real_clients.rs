//! Real clients against the real binary: `redis-cli` (argument, stdin/inline and RESP3
//! modes), `redis-benchmark` (a short run whose data must be there afterwards) and the Rust
//! `redis` crate (RESP2 and RESP3, sync and async, pipelines).

mod common;

use std::collections::BTreeSet;
use std::process::Command;

use common::{Bin, redis_cli};
use redis::Commands;

#[test]
fn redis_cli_in_argument_stdin_and_resp3_modes() {
    let dir = tempfile::tempdir().unwrap();
    let s = Bin::start(&dir.path().join("data"), &[]);
    assert_eq!(redis_cli(s.addr, &["PING"], None), "PONG\n");
    assert_eq!(
        redis_cli(s.addr, &["SADD", "20261122", "V0042", "V0007"], None),
        "2\n"
    );
    assert_eq!(
        redis_cli(s.addr, &["EXPIRE", "20261122", "604800"], None),
        "1\n"
    );
    assert_eq!(redis_cli(s.addr, &["TTL", "20261122"], None), "604800\n");
    let members: BTreeSet<String> = redis_cli(s.addr, &["SMEMBERS", "20261122"], None)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        members,
        BTreeSet::from(["V0007".to_owned(), "V0042".to_owned()])
    );
    // Commands read from stdin, one per line, like a script or telnet session.
    let out = redis_cli(
        s.addr,
        &[],
        Some("SADD k a\nSCARD k\nSISMEMBER k a\nNOSUCH x\n"),
    );
    assert_eq!(
        out,
        // (redis-cli prints an empty line after an error here, against Redis too)
        "1\n1\n1\nERR unknown command 'NOSUCH', with args beginning with: 'x' \n\n"
    );
    // RESP3: the handshake is HELLO 3 and set replies are `~`.
    let out = redis_cli(s.addr, &["-3", "SMEMBERS", "k"], None);
    assert_eq!(out.trim(), "a");
    let out = redis_cli(s.addr, &["-3", "HELLO", "3"], None);
    assert!(out.contains("proto 3\n"), "{out}");
    let out = redis_cli(s.addr, &["INFO", "keyspace"], None);
    assert!(out.contains("db0:keys=2,expires=1"), "{out}");
    // --no-raw quoting and error formatting as users see them in a terminal.
    let out = redis_cli(s.addr, &["--no-raw", "SADD", "k"], None);
    assert_eq!(
        out,
        "(error) ERR wrong number of arguments for 'sadd' command\n"
    );
    assert!(s.stop());
}

#[test]
fn redis_cli_with_password() {
    let dir = tempfile::tempdir().unwrap();
    let s = Bin::start(&dir.path().join("data"), &["--requirepass", "pw"]);
    let out = redis_cli(s.addr, &["SCARD", "k"], None);
    assert!(out.contains("NOAUTH Authentication required."), "{out}");
    let out = redis_cli(
        s.addr,
        &["--no-auth-warning", "-a", "pw", "SCARD", "k"],
        None,
    );
    assert_eq!(out, "0\n");
    let out = redis_cli(
        s.addr,
        &["--no-auth-warning", "-3", "-a", "pw", "PING"],
        None,
    );
    assert_eq!(out, "PONG\n");
    assert!(s.stop());
}

#[test]
fn redis_benchmark_completes_and_data_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let s = Bin::start(&dir.path().join("data"), &[]);
    for pipeline in ["1", "16"] {
        let out = Command::new("redis-benchmark")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &s.port(),
                "-n",
                "2000",
                "-c",
                "10",
                "-P",
                pipeline,
            ])
            .args(["-r", "1000", "-t", "sadd,ping", "-q"])
            .output()
            .expect("redis-benchmark is installed");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        for t in ["PING_INLINE", "PING_MBULK", "SADD"] {
            assert!(text.contains(&format!("{t}: ")), "missing {t} in {text}");
        }
    }
    // redis-benchmark's SADD adds `element:__rand_int__` to `myset`.
    let card: i64 = redis_cli(s.addr, &["SCARD", "myset"], None)
        .trim()
        .parse()
        .unwrap();
    assert!(card > 0 && card <= 1000, "SCARD myset = {card}");
    // A custom command, as the comparison script uses.
    let out = Command::new("redis-benchmark")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &s.port(),
            "-n",
            "1000",
            "-q",
            "SISMEMBER",
            "myset",
            "x",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SISMEMBER myset x: "));
    assert!(s.stop());
}

#[test]
fn rust_redis_crate_resp2_and_resp3() {
    let dir = tempfile::tempdir().unwrap();
    let s = Bin::start(&dir.path().join("data"), &[]);
    for proto in ["", "?protocol=resp3"] {
        let client =
            redis::Client::open(format!("redis://127.0.0.1:{}/{proto}", s.port())).unwrap();
        let mut con = client.get_connection().unwrap();
        let key = format!("day{proto}");
        let added: i64 = con.sadd(&key, &["V0042", "V0007", "V0042"]).unwrap();
        assert_eq!(added, 2);
        let _: bool = con.expire(&key, 604_800).unwrap();
        let ttl: i64 = con.ttl(&key).unwrap();
        assert_eq!(ttl, 604_800);
        let members: BTreeSet<String> = con.smembers(&key).unwrap();
        assert_eq!(
            members,
            BTreeSet::from(["V0007".to_owned(), "V0042".to_owned()])
        );
        let yes: bool = con.sismember(&key, "V0042").unwrap();
        assert!(yes);
        let (card, missing): (i64, i64) = redis::pipe()
            .scard(&key)
            .ttl("nokey")
            .query(&mut con)
            .unwrap();
        assert_eq!((card, missing), (2, -2));
        let err = con
            .sadd::<_, _, i64>(&key, Vec::<String>::new())
            .unwrap_err();
        assert!(
            err.to_string().contains("wrong number of arguments"),
            "{err}"
        );
    }
    // Async multiplexed connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", s.port())).unwrap();
        let mut con = client.get_multiplexed_async_connection().await.unwrap();
        let n: i64 = redis::cmd("SADD")
            .arg("async")
            .arg("m")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(n, 1);
        let n: i64 = redis::cmd("SCARD")
            .arg("async")
            .query_async(&mut con)
            .await
            .unwrap();
        assert_eq!(n, 1);
    });
    assert!(s.stop());
}

/// Runs the redis-py script against `addr` with password `pw`.
fn redis_py(addr: std::net::SocketAddr) -> Result<String, String> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/redis_py_client.py"
    );
    let out = Command::new("python3")
        .args([
            script,
            &addr.ip().to_string(),
            &addr.port().to_string(),
            "pw",
        ])
        .output()
        .expect("python3 runs (make test installs it with redis-py)");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && stdout.starts_with("OK redis-py") {
        Ok(stdout)
    } else {
        Err(format!(
            "{}:\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// redis-py (PyPI `redis`, installed by `make test`), unchanged: RESP2 and RESP3 with a
/// password, pipelines, scan iterators, set algebra, expiry and its error mapping. The
/// script (`tests/clients/redis_py_client.py`) is first run against Debian's
/// `redis-server`, so its expectations are the client's real behaviour, then against ours.
#[test]
fn redis_py_works_unchanged() {
    let real = common::RealRedis::start(&[]);
    redis_cli(real.addr, &["CONFIG", "SET", "requirepass", "pw"], None);
    if let Err(e) = redis_py(real.addr) {
        panic!("the script does not hold against redis-server itself: {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Bin::start(&dir.path().join("data"), &["--requirepass", "pw"]);
    if let Err(e) = redis_py(s.addr) {
        panic!("redis-py against speedlayer: {e}");
    }
    assert!(s.stop());
}
