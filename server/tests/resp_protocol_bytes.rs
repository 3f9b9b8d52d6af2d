//! Exact bytes in, exact bytes out: RESP2 and RESP3 replies, inline commands, pipelining,
//! Redis's error strings, every protocol bound (with the connection closed and the server
//! still serving others), maxclients and authentication.

mod common;

use common::{Raw, config, start};
use speedlayer_server::resp::frame::Frame;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resp2_and_resp3_replies_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(config(dir.path())).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"PING\r\n", b"+PONG\r\n");
    c.roundtrip(b"*2\r\n$4\r\nPING\r\n$2\r\nhi\r\n", b"$2\r\nhi\r\n");
    c.roundtrip(b"ECHO \"a b\"\r\n", b"$3\r\na b\r\n");
    c.roundtrip(b"*3\r\n$4\r\nSADD\r\n$1\r\nk\r\n$1\r\na\r\n", b":1\r\n");
    c.roundtrip(b"SADD k a\r\n", b":0\r\n");
    c.roundtrip(b"SMEMBERS k\r\n", b"*1\r\n$1\r\na\r\n");
    c.roundtrip(b"SPOP nokey\r\n", b"$-1\r\n");
    c.roundtrip(b"SPOP nokey 2\r\n", b"*0\r\n");
    c.roundtrip(b"TTL k\r\n", b":-1\r\n");
    c.roundtrip(b"TTL nokey\r\n", b":-2\r\n");
    c.roundtrip(b"TYPE k\r\n", b"+set\r\n");
    c.roundtrip(b"TYPE nokey\r\n", b"+none\r\n");
    c.roundtrip(b"SMISMEMBER k a b\r\n", b"*2\r\n:1\r\n:0\r\n");
    c.roundtrip(b"SCAN 0\r\n", b"*2\r\n$1\r\n0\r\n*1\r\n$1\r\nk\r\n");

    // RESP3: sets are `~`, nulls are `_`, HELLO is a map.
    c.send(b"HELLO 3\r\n");
    match c.frame() {
        Frame::Map(pairs) => {
            assert_eq!(pairs.len(), 7);
            assert_eq!(
                pairs[0],
                (Frame::Bulk("server".into()), Frame::Bulk("redis".into()))
            );
            assert_eq!(pairs[2], (Frame::Bulk("proto".into()), Frame::Integer(3)));
        }
        other => panic!("HELLO 3 gave {other:?}"),
    }
    c.roundtrip(b"SMEMBERS k\r\n", b"~1\r\n$1\r\na\r\n");
    c.roundtrip(b"SPOP nokey\r\n", b"_\r\n");
    c.roundtrip(b"SPOP nokey 1\r\n", b"~0\r\n");
    c.roundtrip(b"CLIENT GETNAME\r\n", b"_\r\n");
    c.send(b"HELLO 2\r\n");
    match c.frame() {
        Frame::Array(v) => assert_eq!(v[5], Frame::Integer(2)),
        other => panic!("HELLO 2 gave {other:?}"),
    }
    c.roundtrip(b"SMEMBERS k\r\n", b"*1\r\n$1\r\na\r\n");
    c.roundtrip(b"HELLO 4\r\n", b"-NOPROTO unsupported protocol version\r\n");
    c.roundtrip(
        b"HELLO x\r\n",
        b"-ERR Protocol version is not an integer or out of range\r\n",
    );
    c.roundtrip(b"RESET\r\n", b"+RESET\r\n");
    c.roundtrip(b"QUIT\r\n", b"+OK\r\n");
    c.expect_closed();
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_commands_reply_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(config(dir.path())).await;
    let mut c = Raw::connect(h.local_addr());
    let mut req = Vec::new();
    let mut want = Vec::new();
    for i in 0..500 {
        req.extend_from_slice(format!("SADD p m{i}\r\n").as_bytes());
        want.extend_from_slice(b":1\r\n");
        req.extend_from_slice(b"SCARD p\r\n");
        want.extend_from_slice(format!(":{}\r\n", i + 1).as_bytes());
    }
    c.roundtrip(&req, &want);
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_strings_are_redis_exact() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(config(dir.path())).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(
        b"FOO a b\r\n",
        b"-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n",
    );
    c.roundtrip(
        b"SADD k\r\n",
        b"-ERR wrong number of arguments for 'sadd' command\r\n",
    );
    c.roundtrip(
        b"CLIENT SETNAME\r\n",
        b"-ERR wrong number of arguments for 'client|setname' command\r\n",
    );
    c.roundtrip(
        b"CLIENT FOO\r\n",
        b"-ERR unknown subcommand 'FOO'. Try CLIENT HELP.\r\n",
    );
    c.roundtrip(b"SELECT 1\r\n", b"-ERR DB index is out of range\r\n");
    c.roundtrip(
        b"SELECT x\r\n",
        b"-ERR value is not an integer or out of range\r\n",
    );
    c.roundtrip(b"SELECT 0\r\n", b"+OK\r\n");
    c.roundtrip(
        b"EXPIRE k 10 NX XX\r\n",
        b"-ERR NX and XX, GT or LT options at the same time are not compatible\r\n",
    );
    c.roundtrip(
        b"EXPIRE k 10 GT LT\r\n",
        b"-ERR GT and LT options at the same time are not compatible\r\n",
    );
    c.roundtrip(b"EXPIRE k 10 ZZ\r\n", b"-ERR Unsupported option ZZ\r\n");
    c.roundtrip(
        b"EXPIRE k 99999999999999999\r\n",
        b"-ERR invalid expire time in 'expire' command\r\n",
    );
    c.roundtrip(b"RENAME nokey x\r\n", b"-ERR no such key\r\n");
    c.roundtrip(
        b"SPOP k -1\r\n",
        b"-ERR value is out of range, must be positive\r\n",
    );
    c.roundtrip(
        b"SINTERCARD 0 a\r\n",
        b"-ERR numkeys should be greater than 0\r\n",
    );
    c.roundtrip(
        b"SINTERCARD 3 a\r\n",
        b"-ERR Number of keys can't be greater than number of args\r\n",
    );
    c.roundtrip(
        b"SINTERCARD 1 a LIMIT -1\r\n",
        b"-ERR LIMIT can't be negative\r\n",
    );
    c.roundtrip(b"SCAN x\r\n", b"-ERR invalid cursor\r\n");
    c.roundtrip(b"AUTH x\r\n", b"-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?\r\n");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_input_disconnects_only_the_offender() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.proto_max_bulk_len = 1024;
    cfg.limits.max_multibulk_len = 100;
    cfg.limits.inline_max = 256;
    cfg.limits.query_buffer_limit = 64 * 1024;
    cfg.limits.output_buffer_limit = 16 * 1024;
    let h = start(cfg).await;
    let mut good = Raw::connect(h.local_addr());
    good.roundtrip(b"PING\r\n", b"+PONG\r\n");

    let cases: [(&[u8], &[u8]); 6] = [
        (
            b"*1\r\n$1025\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
        (
            b"*101\r\n",
            b"-ERR Protocol error: invalid multibulk length\r\n",
        ),
        (
            b"*1\r\n:3\r\n",
            b"-ERR Protocol error: expected '$', got ':'\r\n",
        ),
        (
            b"SADD \"unbalanced\r\n",
            b"-ERR Protocol error: unbalanced quotes in request\r\n",
        ),
        (
            &[b'x'; 300],
            b"-ERR Protocol error: too big inline request\r\n",
        ),
        (
            b"*2\r\n$-5\r\n",
            b"-ERR Protocol error: invalid bulk length\r\n",
        ),
    ];
    for (input, reply) in cases {
        let mut bad = Raw::connect(h.local_addr());
        bad.roundtrip(input, reply);
        bad.expect_closed();
        good.roundtrip(b"PING\r\n", b"+PONG\r\n");
    }

    // Query buffer: a pipeline of many whole-but-unfinished bulk strings.
    let mut bad = Raw::connect(h.local_addr());
    let mut req = b"*100\r\n".to_vec();
    for _ in 0..99 {
        req.extend_from_slice(b"$1000\r\n");
        req.extend_from_slice(&[b'a'; 1000]);
        req.extend_from_slice(b"\r\n");
    }
    let _ = std::io::Write::write_all(&mut bad.s, &req);
    bad.expect_closed();
    good.roundtrip(b"PING\r\n", b"+PONG\r\n");

    // Output buffer: one reply bigger than the bound.
    let mut req = Vec::new();
    for i in 0..90 {
        req.extend_from_slice(&common::encode(&[
            b"SADD",
            b"big",
            format!("{i:0>200}").as_bytes(),
        ]));
    }
    good.send(&req);
    for _ in 0..90 {
        good.expect(b":1\r\n");
    }
    let mut bad = Raw::connect(h.local_addr());
    bad.send(b"SMEMBERS big\r\n");
    bad.expect_closed();
    good.roundtrip(b"SCARD big\r\n", b":90\r\n");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maxclients_refuses_with_redis_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.maxclients = 2;
    let h = start(cfg).await;
    let mut a = Raw::connect(h.local_addr());
    let mut b = Raw::connect(h.local_addr());
    a.roundtrip(b"PING\r\n", b"+PONG\r\n");
    b.roundtrip(b"PING\r\n", b"+PONG\r\n");
    let mut c = Raw::connect(h.local_addr());
    c.expect(b"-ERR max number of clients reached\r\n");
    c.expect_closed();
    a.roundtrip(b"PING\r\n", b"+PONG\r\n");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requirepass_needs_auth_or_hello_auth() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.requirepass = Some("s3cret".into());
    let h = start(cfg).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"SADD k a\r\n", b"-NOAUTH Authentication required.\r\n");
    c.roundtrip(
        b"FOO\r\n",
        b"-ERR unknown command 'FOO', with args beginning with: \r\n",
    );
    c.roundtrip(
        b"AUTH nope\r\n",
        b"-WRONGPASS invalid username-password pair or user is disabled.\r\n",
    );
    c.roundtrip(b"HELLO 3\r\n", b"-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time\r\n");
    c.roundtrip(
        b"*11\r\n",
        b"-ERR Protocol error: unauthenticated multibulk length\r\n",
    );
    c.expect_closed();
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(
        b"*1\r\n$16385\r\n",
        b"-ERR Protocol error: unauthenticated bulk length\r\n",
    );
    c.expect_closed();

    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"AUTH s3cret\r\n", b"+OK\r\n");
    c.roundtrip(b"SADD k a\r\n", b":1\r\n");
    c.roundtrip(b"RESET\r\n", b"+RESET\r\n");
    c.roundtrip(b"SCARD k\r\n", b"-NOAUTH Authentication required.\r\n");
    c.send(b"HELLO 3 AUTH default s3cret\r\n");
    assert!(matches!(c.frame(), Frame::Map(_)));
    c.roundtrip(b"SCARD k\r\n", b":1\r\n");
    h.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_names_and_info_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let h = start(config(dir.path())).await;
    let mut c = Raw::connect(h.local_addr());
    c.roundtrip(b"CLIENT SETNAME ingest-1\r\n", b"+OK\r\n");
    c.roundtrip(b"CLIENT SETINFO LIB-NAME redis-rs\r\n", b"+OK\r\n");
    c.roundtrip(b"CLIENT SETINFO LIB-VER 1.8.1\r\n", b"+OK\r\n");
    c.roundtrip(
        b"CLIENT SETINFO FOO x\r\n",
        b"-ERR Unrecognized option 'FOO'\r\n",
    );
    c.roundtrip(b"CLIENT GETNAME\r\n", b"$8\r\ningest-1\r\n");
    let Frame::Integer(id) = c.cmd(&[b"CLIENT", b"ID"]) else {
        panic!()
    };
    let Frame::Bulk(info) = c.cmd(&[b"CLIENT", b"INFO"]) else {
        panic!()
    };
    let info = String::from_utf8(info.to_vec()).unwrap();
    assert!(info.starts_with(&format!("id={id} ")), "{info}");
    assert!(
        info.contains(" name=ingest-1 ") && info.contains(" lib-name=redis-rs"),
        "{info}"
    );
    let mut other = Raw::connect(h.local_addr());
    let Frame::Bulk(list) = other.cmd(&[b"CLIENT", b"LIST"]) else {
        panic!()
    };
    let list = String::from_utf8(list.to_vec()).unwrap();
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(list.contains("name=ingest-1"));
    let Frame::Bulk(text) = other.cmd(&[b"INFO", b"clients", b"keyspace"]) else {
        panic!()
    };
    let text = String::from_utf8(text.to_vec()).unwrap();
    assert!(
        text.starts_with("# Clients\r\nconnected_clients:2\r\n"),
        "{text}"
    );
    assert!(
        text.contains("# Keyspace\r\n") && !text.contains("# Server"),
        "{text}"
    );
    let Frame::Integer(n) = other.cmd(&[b"COMMAND", b"COUNT"]) else {
        panic!()
    };
    assert!(n >= 46);
    let Frame::Array(info) = other.cmd(&[b"COMMAND", b"INFO", b"sadd", b"nosuch"]) else {
        panic!()
    };
    assert_eq!(info[1], Frame::Null);
    let Frame::Array(sadd) = &info[0] else {
        panic!()
    };
    assert_eq!(
        (&sadd[0], &sadd[1]),
        (&Frame::Bulk("sadd".into()), &Frame::Integer(-3))
    );
    // COMMAND DOCS (redis-cli's hints): name, then a flat key/value array in RESP2.
    let Frame::Array(docs) = other.cmd(&[b"COMMAND", b"DOCS", b"sadd", b"nosuch"]) else {
        panic!()
    };
    assert_eq!(docs.len(), 2, "one command known: name + docs");
    assert_eq!(docs[0], Frame::Bulk("sadd".into()));
    let Frame::Array(fields) = &docs[1] else {
        panic!("docs of sadd: {:?}", docs[1])
    };
    let field = |k: &str| {
        let i = fields
            .iter()
            .position(|f| *f == Frame::Bulk(k.to_owned().into()));
        i.map(|i| fields[i + 1].clone())
    };
    assert_eq!(field("group"), Some(Frame::Bulk("set".into())));
    for k in ["summary", "since", "complexity"] {
        assert!(
            matches!(field(k), Some(Frame::Bulk(b)) if !b.is_empty()),
            "{k} in {fields:?}"
        );
    }
    // INFO with no section: the six sections, in Redis's order, with their key fields.
    let Frame::Bulk(all) = other.cmd(&[b"INFO"]) else {
        panic!()
    };
    let all = String::from_utf8(all.to_vec()).unwrap();
    let mut at = 0;
    for (header, key) in [
        ("# Server", "redis_version:"),
        ("# Clients", "connected_clients:"),
        ("# Memory", "used_memory:"),
        ("# Persistence", "aof_enabled:1"),
        ("# Stats", "total_commands_processed:"),
        ("# Keyspace", ""),
    ] {
        let pos = all[at..]
            .find(header)
            .unwrap_or_else(|| panic!("{header} missing or out of order in {all}"));
        at += pos;
        assert!(all[at..].contains(key), "{key} after {header} in {all}");
    }
    h.shutdown().await.unwrap();
}

/// A request's memory is bounded by `client-query-buffer-limit`, counting each argument's
/// bookkeeping as well as its bytes: a request of 0.8 MB in 100,000 tiny arguments passes
/// a 1 MiB limit, and its client is disconnected as Redis disconnects a client whose query
/// buffer passes the limit (no reply); the server goes on serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_query_buffer_limit_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.query_buffer_limit = 1024 * 1024;
    let h = start(cfg).await;
    let addr = h.local_addr();
    let exists = tokio::task::spawn_blocking(move || {
        let mut c = Raw::connect(addr);
        let mut req = format!("*{}\r\n$4\r\nSADD\r\n$1\r\nk\r\n", 100_002).into_bytes();
        for _ in 0..100_000 {
            req.extend_from_slice(b"$1\r\nx\r\n");
        }
        assert!(req.len() < 1024 * 1024);
        let _ = std::io::Write::write_all(&mut c.s, &req);
        c.expect_closed();
        Raw::connect(addr).cmd(&[b"EXISTS", b"k"])
    })
    .await
    .unwrap();
    assert_eq!(exists, Frame::Integer(0));
    h.shutdown().await.unwrap();
}
