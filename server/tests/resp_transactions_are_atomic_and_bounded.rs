//! Transactions under concurrency and at their bound, in process on a two-thread runtime:
//! no other client sees the keyspace between two commands of an EXEC, and a queue that
//! would pass the client query buffer limit dooms its transaction (EXECABORT) while the
//! connection and the server go on. Queued bytes count in `INFO memory`.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{Raw, config, start};
use speedlayer_server::resp::frame::Frame;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn no_other_client_sees_the_middle_of_an_exec() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let h = rt.block_on(start(config(dir.path())));
    let addr = h.local_addr();
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = Raw::connect(addr);
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) {
                // Inside every transaction `k` holds `m` and `other` is empty; outside,
                // the reverse.
                let Frame::Array(v) = c.cmd(&[b"SMISMEMBER", b"k", b"m"]) else {
                    panic!("SMISMEMBER reply")
                };
                assert_eq!(v, [Frame::Integer(0)], "saw the middle of a transaction");
                assert_eq!(c.cmd(&[b"SCARD", b"other"]), Frame::Integer(1));
                reads += 1;
            }
            reads
        })
    };
    let mut w = Raw::connect(addr);
    assert_eq!(w.cmd(&[b"SADD", b"other", b"o"]), Frame::Integer(1));
    let mut tx = Vec::new();
    tx.extend_from_slice(&common::encode(&[b"MULTI"]));
    tx.extend_from_slice(&common::encode(&[b"SADD", b"k", b"m"]));
    tx.extend_from_slice(&common::encode(&[b"SREM", b"other", b"o"]));
    for _ in 0..50 {
        tx.extend_from_slice(&common::encode(&[b"SCARD", b"k"]));
    }
    tx.extend_from_slice(&common::encode(&[b"SADD", b"other", b"o"]));
    tx.extend_from_slice(&common::encode(&[b"SREM", b"k", b"m"]));
    tx.extend_from_slice(&common::encode(&[b"EXEC"]));
    for _ in 0..300 {
        w.send(&tx);
        for _ in 0..55 {
            let _ = w.frame();
        }
        let Frame::Array(replies) = w.frame() else {
            panic!("EXEC reply")
        };
        assert_eq!(replies.len(), 54);
        assert_eq!(
            replies[2],
            Frame::Integer(1),
            "SCARD k inside the transaction"
        );
    }
    done.store(true, Ordering::SeqCst);
    let reads = reader.join().unwrap();
    assert!(reads > 0);
    rt.block_on(h.shutdown()).unwrap();
}

fn used_memory(c: &mut Raw) -> u64 {
    let text = match c.cmd(&[b"INFO", b"memory"]) {
        Frame::Bulk(b) => String::from_utf8(b.to_vec()).unwrap(),
        other => panic!("INFO reply {other:?}"),
    };
    text.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory")
}

#[test]
fn a_queue_past_the_query_buffer_limit_dooms_the_transaction_not_the_connection() {
    const LIMIT: usize = 64 * 1024;
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.limits.query_buffer_limit = LIMIT;
    let h = rt.block_on(start(cfg));
    let mut c = Raw::connect(h.local_addr());
    // INFO from another client: inside MULTI it would be queued.
    let mut m = Raw::connect(h.local_addr());
    let idle = used_memory(&mut m);
    assert_eq!(c.cmd(&[b"MULTI"]), Frame::Simple("OK".into()));
    let member = vec![b'm'; 1000];
    let mut queued = 0;
    let refusal = loop {
        match c.cmd(&[b"SADD", b"q", &member]) {
            Frame::Simple(s) if s == "QUEUED" => queued += 1,
            other => break other,
        }
        assert!(queued < 100, "the queue passed its limit");
    };
    // 1000-byte members with their keys and handles: about 60 fit in 64 KiB.
    assert!((55..=65).contains(&queued), "{queued} queued");
    assert_eq!(
        refusal,
        Frame::Error(format!(
            "ERR MULTI queue would exceed the client query buffer limit ({LIMIT} bytes)"
        ))
    );
    let holding = used_memory(&mut m);
    assert!(
        holding >= idle + (queued * 1000) as u64,
        "queued bytes count in INFO memory: {idle} then {holding}"
    );
    assert_eq!(
        c.cmd(&[b"EXEC"]),
        Frame::Error("EXECABORT Transaction discarded because of previous errors.".into())
    );
    assert_eq!(c.cmd(&[b"SCARD", b"q"]), Frame::Integer(0));
    assert!(
        used_memory(&mut m) < holding,
        "the queue's bytes are released"
    );
    // The connection goes on, and a transaction within the bound runs.
    assert_eq!(c.cmd(&[b"MULTI"]), Frame::Simple("OK".into()));
    assert_eq!(
        c.cmd(&[b"SADD", b"q", &member]),
        Frame::Simple("QUEUED".into())
    );
    assert_eq!(c.cmd(&[b"EXEC"]), Frame::Array(vec![Frame::Integer(1)]));
    rt.block_on(h.shutdown()).unwrap();
}
