//! Differential tests: the same command scripts against Debian's `redis-server` and our
//! service; replies must be identical, with set-valued replies compared as sorted lists
//! (Redis leaves their order unspecified) and random picks compared by shape.

mod common;

use std::collections::BTreeSet;

use common::Raw;
use common::differential::{Cmp, Pair, run};
use speedlayer_server::resp::frame::Frame;

use Cmp::*;

const SETS: &[(Cmp, &str)] = &[
    (Exact, "SADD s1 a b c d"),
    (Exact, "SADD s1 a e"),
    (Exact, "SADD s2 c d e f"),
    (Exact, "SADD s3 x"),
    (Exact, "SADD"),
    (Exact, "SADD s1"),
    (Exact, "SCARD s1"),
    (Exact, "SCARD nokey"),
    (Sorted, "SMEMBERS s1"),
    (Sorted, "SMEMBERS nokey"),
    (Exact, "SISMEMBER s1 a"),
    (Exact, "SISMEMBER s1 z"),
    (Exact, "SISMEMBER nokey a"),
    (Exact, "SMISMEMBER s1 a z e"),
    (Exact, "SMISMEMBER nokey a"),
    (Exact, "SMISMEMBER s1"),
    (Sorted, "SINTER s1 s2"),
    (Sorted, "SINTER s1 nokey"),
    (Sorted, "SUNION s1 s2 s3 nokey"),
    (Sorted, "SDIFF s1 s2"),
    (Sorted, "SDIFF nokey s1"),
    (Sorted, "SDIFF s1 nokey"),
    (Exact, "SINTERCARD 2 s1 s2"),
    (Exact, "SINTERCARD 2 s1 s2 LIMIT 1"),
    (Exact, "SINTERCARD 2 s1 s2 LIMIT 0"),
    (Exact, "SINTERCARD 1 s1 LIMIT"),
    (Exact, "SINTERCARD 1 s1 FOO 1"),
    (Exact, "SINTERCARD x s1"),
    (Exact, "SINTERCARD 0 s1"),
    (Exact, "SINTERCARD 5 s1"),
    (Exact, "SINTERCARD 1 s1 LIMIT -3"),
    (Exact, "SINTERSTORE d1 s1 s2"),
    (Sorted, "SMEMBERS d1"),
    (Exact, "SUNIONSTORE d2 s1 s2"),
    (Exact, "SDIFFSTORE d3 s1 s2"),
    (Exact, "EXPIRE d1 1000"),
    (Exact, "SINTERSTORE d1 s1 s3"),
    (Exact, "EXISTS d1"),
    (Exact, "TTL d1"),
    (Exact, "SDIFFSTORE d2 s1 s1"),
    (Exact, "EXISTS d2"),
    (Exact, "SUNIONSTORE d4 s3"),
    (Exact, "EXPIRE d4 1000"),
    (Exact, "SUNIONSTORE d4 s3 s1"),
    (Exact, "TTL d4"),
    (Exact, "SREM s1 a z"),
    (Exact, "SREM s1 z"),
    (Exact, "SREM nokey a"),
    (Exact, "SREM s3 x"),
    (Exact, "EXISTS s3"),
    (Exact, "SMOVE s1 s3 b"),
    (Exact, "SMOVE s1 s3 b"),
    (Exact, "SMOVE s1 s1 c"),
    (Exact, "SMOVE s1 s1 zz"),
    (Exact, "SMOVE nokey s3 b"),
    (Sorted, "SMEMBERS s3"),
    (Exact, "SADD one only"),
    (Exact, "SMOVE one s3 only"),
    (Exact, "EXISTS one"),
    (Sorted, "SPOP s2 10"),
    (Exact, "EXISTS s2"),
    (Exact, "SPOP s2"),
    (Exact, "SPOP s2 0"),
    (Exact, "SPOP s3 0"),
    (Exact, "SPOP s3 -1"),
    (Exact, "SPOP s3 x"),
    (Exact, "SPOP s3 1 2"),
    (Shape, "SPOP s3"),
    (Shape, "SPOP s3 1"),
    (Shape, "SRANDMEMBER s1"),
    (Sorted, "SRANDMEMBER s1 100"),
    (Shape, "SRANDMEMBER s1 2"),
    (Shape, "SRANDMEMBER s1 -7"),
    (Exact, "SRANDMEMBER s1 0"),
    (Exact, "SRANDMEMBER nokey"),
    (Exact, "SRANDMEMBER nokey 3"),
    (Exact, "SRANDMEMBER nokey -3"),
    (Exact, "SRANDMEMBER s1 x"),
    (Exact, "SRANDMEMBER s1 -9223372036854775808"),
    (Exact, "SRANDMEMBER s1 1 2"),
    (Exact, "SSCAN s1 x"),
    (Exact, "SSCAN s1 0 COUNT 0"),
    (Exact, "SSCAN s1 0 COUNT x"),
    (Exact, "SSCAN s1 0 TYPE set"),
    (Exact, "SSCAN s1 0 MATCH"),
    (Exact, "SSCAN nokey 0"),
];

const KEYS: &[(Cmp, &str)] = &[
    (Exact, "SADD k1 a"),
    (Exact, "SADD k2 a b"),
    (Exact, "SADD other a"),
    (Exact, "DBSIZE"),
    (Exact, "EXISTS k1 k1 nokey k2"),
    (Exact, "TYPE k1"),
    (Exact, "TYPE nokey"),
    (Sorted, "KEYS k*"),
    (Sorted, "KEYS *"),
    (Sorted, "KEYS k[12]"),
    (Sorted, "KEYS ?1"),
    (Exact, "KEYS"),
    (Exact, "SCAN x"),
    (Exact, "SCAN 0 COUNT 0"),
    (Exact, "SCAN 0 FOO"),
    (Exact, "RENAME k1 k3"),
    (Exact, "RENAME k1 k3"),
    (Exact, "RENAME k3 k3"),
    (Exact, "EXPIRE k2 500"),
    (Exact, "RENAME k2 k4"),
    (Exact, "TTL k4"),
    (Exact, "TTL k2"),
    (Exact, "RENAME other k4"),
    (Exact, "TTL k4"),
    (Exact, "DEL k3 k4 nokey"),
    (Exact, "UNLINK k3"),
    (Exact, "DEL"),
    (Exact, "SADD k5 a"),
    (Exact, "UNLINK k5"),
    (Exact, "DBSIZE"),
    (Exact, "FLUSHDB"),
    (Exact, "DBSIZE"),
    (Exact, "SADD k6 a"),
    (Exact, "FLUSHALL SYNC"),
    (Exact, "FLUSHALL FOO"),
    (Exact, "FLUSHDB ASYNC"),
    (Exact, "DBSIZE"),
];

const EXPIRY: &[(Cmp, &str)] = &[
    (Exact, "SADD e a"),
    (Exact, "TTL e"),
    (Exact, "PTTL e"),
    (Exact, "EXPIRETIME e"),
    (Exact, "PEXPIRETIME e"),
    (Exact, "EXPIRE e 100 XX"),
    (Exact, "EXPIRE e 100 GT"),
    (Exact, "EXPIRE e 100 LT"),
    (Exact, "TTL e"),
    (Exact, "EXPIRE e 50 NX"),
    (Exact, "EXPIRE e 200 LT"),
    (Exact, "EXPIRE e 200 GT"),
    (Exact, "TTL e"),
    (Exact, "EXPIRE e 20 lt"),
    (Exact, "TTL e"),
    (Exact, "EXPIREAT e 33177600000"),
    (Exact, "EXPIRETIME e"),
    (Exact, "PEXPIRETIME e"),
    (Exact, "PEXPIREAT e 33177600123456"),
    (Exact, "EXPIRETIME e"),
    (Exact, "PEXPIRETIME e"),
    (Exact, "PERSIST e"),
    (Exact, "PERSIST e"),
    (Exact, "PERSIST nokey"),
    (Exact, "TTL e"),
    (Exact, "SADD e b"),
    (Exact, "EXPIRE e 100"),
    (Exact, "SADD e c"),
    (Exact, "TTL e"),
    (Exact, "SREM e a b c"),
    (Exact, "TTL e"),
    (Exact, "EXPIRE nokey 100"),
    (Exact, "SADD e a"),
    (Exact, "EXPIRE e 0"),
    (Exact, "EXISTS e"),
    (Exact, "SADD e a"),
    (Exact, "EXPIRE e -5"),
    (Exact, "EXISTS e"),
    (Exact, "SADD e a"),
    (Exact, "PEXPIREAT e 1"),
    (Exact, "EXISTS e"),
    (Exact, "SADD e a"),
    (Exact, "EXPIREAT e 0"),
    (Exact, "EXISTS e"),
    (Exact, "SADD e a"),
    (Exact, "EXPIRE e x"),
    (Exact, "EXPIRE e 1.5"),
    (Exact, "EXPIRE e +5"),
    (Exact, "EXPIRE e 9223372036854775807"),
    (Exact, "PEXPIRE e 9223372036854775807"),
    (Exact, "EXPIREAT e 9223372036854775807"),
    (Exact, "EXPIRE e 10 NX XX"),
    (Exact, "EXPIRE e 10 NX GT"),
    (Exact, "EXPIRE e 10 GT LT"),
    (Exact, "EXPIRE e 10 FOO"),
    (Exact, "EXPIRE e"),
    (Exact, "TTL"),
    (Exact, "PEXPIRE e 100000 NX"),
    (Exact, "EXPIRE e 100000 GT"),
    (Exact, "TTL e"),
];

const CONNECTION: &[(Cmp, &str)] = &[
    (Exact, "PING"),
    (Exact, "PING hello"),
    (Exact, "PING a b"),
    (Exact, "ECHO x"),
    (Exact, "ECHO"),
    (Exact, "SELECT 0"),
    (Exact, "SELECT 1"),
    (Exact, "SELECT -1"),
    (Exact, "SELECT x"),
    (Exact, "SELECT 99999999999"),
    (Exact, "AUTH pw"),
    (Exact, "AUTH default pw"),
    (Exact, "AUTH bob pw"),
    (Exact, "AUTH a b c"),
    (Exact, "HELLO 4"),
    (Exact, "HELLO 1"),
    (Exact, "HELLO x"),
    (Exact, "HELLO 2 FOO"),
    (Exact, "HELLO 3 AUTH default"),
    (Exact, "CLIENT SETNAME my-app"),
    (Exact, "CLIENT GETNAME"),
    (Exact, "CLIENT SETNAME bad\tname"),
    (Exact, "CLIENT SETNAME"),
    (Exact, "CLIENT FOO"),
    (Exact, "CLIENT"),
    (Exact, "COMMAND FOO"),
    (Exact, "COMMAND DOCS nosuchcmd"),
    (Exact, "CONFIG FOO"),
    (Exact, "CONFIG GET"),
    (Exact, "CONFIG GET maxclients"),
    (Exact, "CONFIG GET save"),
    (Exact, "CONFIG GET databases"),
    (Exact, "NOPE a b"),
    (Exact, "NOPE"),
    (Exact, "DBSIZE x"),
    (Exact, "RESET"),
    (Exact, "CLIENT GETNAME"),
];

/// MULTI/EXEC/DISCARD on one connection: queueing, queue-time errors (EXECABORT),
/// run-time errors (kept in the array, nothing undone), nesting, and the errors of
/// EXEC/DISCARD/WATCH out of place.
const TRANSACTIONS: &[(Cmp, &str)] = &[
    (Exact, "EXEC"),
    (Exact, "DISCARD"),
    (Exact, "MULTI"),
    (Exact, "SADD t a b"),
    (Exact, "SCARD t"),
    (Exact, "EXPIRE t 100"),
    (Exact, "TTL t"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "MULTI"),
    (Exact, "WATCH t"),
    (Exact, "SADD t c"),
    (Exact, "SREM t x y z"),
    (Exact, "EXPIRE t notanumber"),
    (Exact, "SELECT 1"),
    (Exact, "SMOVE t t2 c"),
    (Exact, "SINTERSTORE t3 t t2"),
    (Exact, "EXEC"),
    (Sorted, "SMEMBERS t"),
    (Sorted, "SMEMBERS t3"),
    (Exact, "MULTI"),
    (Exact, "SADD t never"),
    (Exact, "NOPE 1 2"),
    (Exact, "SADD t never2"),
    (Exact, "EXEC"),
    (Exact, "SISMEMBER t never"),
    (Exact, "MULTI"),
    (Exact, "SADD t"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "CLIENT NOSUCH"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "SADD t discarded"),
    (Exact, "DISCARD"),
    (Exact, "SISMEMBER t discarded"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "PING"),
    (Exact, "ECHO hi"),
    (Exact, "EXEC"),
    (Exact, "WATCH"),
    (Exact, "UNWATCH"),
    (Exact, "UNWATCH x"),
    (Exact, "MULTI x"),
    (Exact, "WATCH t"),
    (Exact, "EXEC x"),
    (Exact, "#1 SADD t after-unwatch"),
    (Exact, "MULTI"),
    (Exact, "EXEC x"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "SADD t ok"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "DISCARD x"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "RESET"),
    (Exact, "EXEC"),
];

/// WATCH across connections (`#1` is another client): every kind of change of a watched
/// key aborts EXEC with a null reply, and nothing else does.
const WATCHES: &[(Cmp, &str)] = &[
    // Another client's write.
    (Exact, "SADD w a"),
    (Exact, "WATCH w"),
    (Exact, "#1 SADD w b"),
    (Exact, "MULTI"),
    (Exact, "SADD out 1"),
    (Exact, "EXEC"),
    // A write that changes nothing is no change.
    (Exact, "WATCH w"),
    (Exact, "#1 SADD w b"),
    (Exact, "#1 SREM w nothere"),
    (Exact, "#1 DEL nokey"),
    (Exact, "#1 RENAME w w"),
    (Exact, "#1 EXPIRE w 100 XX"),
    (Exact, "MULTI"),
    (Exact, "SADD out 2"),
    (Exact, "EXEC"),
    // DEL.
    (Exact, "WATCH w"),
    (Exact, "#1 DEL w"),
    (Exact, "MULTI"),
    (Exact, "SADD out 3"),
    (Exact, "EXEC"),
    // Creating a missing key.
    (Exact, "WATCH w"),
    (Exact, "#1 SADD w back"),
    (Exact, "MULTI"),
    (Exact, "SADD out 4"),
    (Exact, "EXEC"),
    // FLUSHALL changes the keys it removes, not the missing ones.
    (Exact, "WATCH w"),
    (Exact, "#1 FLUSHALL"),
    (Exact, "MULTI"),
    (Exact, "SADD out 5"),
    (Exact, "EXEC"),
    (Exact, "WATCH w"),
    (Exact, "#1 FLUSHDB"),
    (Exact, "MULTI"),
    (Exact, "SADD out 6"),
    (Exact, "EXEC"),
    // RENAME changes both keys; SPOP, SMOVE, EXPIRE, PERSIST, *STORE and COPY the ones
    // they write.
    (Exact, "SADD r a b c"),
    (Exact, "WATCH r2"),
    (Exact, "#1 RENAME r r2"),
    (Exact, "MULTI"),
    (Exact, "SADD out 7"),
    (Exact, "EXEC"),
    (Exact, "#1 SADD p a b"),
    (Exact, "WATCH p"),
    (Sorted, "#1 SPOP p 5"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "WATCH r2"),
    (Exact, "#1 EXPIRE r2 1000"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "WATCH r2"),
    (Exact, "#1 PERSIST r2"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "SADD r3 z"),
    (Exact, "WATCH r3"),
    (Exact, "#1 SMOVE r3 r4 z"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "WATCH d"),
    (Exact, "#1 SUNIONSTORE d r4"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "WATCH c"),
    (Exact, "#1 COPY d c"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "WATCH c"),
    (Exact, "#1 RENAMENX d c"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    // The watcher's own write counts too; UNWATCH forgets; EXEC and DISCARD unwatch.
    (Exact, "WATCH c"),
    (Exact, "SADD c mine"),
    (Exact, "MULTI"),
    (Exact, "EXEC"),
    (Exact, "WATCH c"),
    (Exact, "UNWATCH"),
    (Exact, "#1 SADD c other"),
    (Exact, "MULTI"),
    (Exact, "SADD out 8"),
    (Exact, "EXEC"),
    (Exact, "WATCH c"),
    (Exact, "MULTI"),
    (Exact, "DISCARD"),
    (Exact, "#1 SADD c again"),
    (Exact, "MULTI"),
    (Exact, "SADD out 9"),
    (Exact, "EXEC"),
    // A queue-time error wins over a changed key.
    (Exact, "WATCH c"),
    (Exact, "#1 SREM c again"),
    (Exact, "MULTI"),
    (Exact, "SADD"),
    (Exact, "EXEC"),
    // Expiry: a watched key that expires is changed (reclaimed or not)...
    (Exact, "SADD e a"),
    (Exact, "PEXPIRE e 50"),
    (Exact, "WATCH e"),
    (Exact, "SLEEP 150"),
    (Exact, "MULTI"),
    (Exact, "SADD out 10"),
    (Exact, "EXEC"),
    // ...but one that had already expired when watched is not changed by being
    // reclaimed, only by being written again.
    (Exact, "SADD e2 a"),
    (Exact, "PEXPIRE e2 20"),
    (Exact, "SLEEP 100"),
    (Exact, "WATCH e2"),
    (Exact, "#1 EXISTS e2"),
    (Exact, "MULTI"),
    (Exact, "SADD out 11"),
    (Exact, "EXEC"),
    (Exact, "SADD e3 a"),
    (Exact, "PEXPIRE e3 20"),
    (Exact, "SLEEP 100"),
    (Exact, "WATCH e3"),
    (Exact, "#1 SADD e3 new"),
    (Exact, "MULTI"),
    (Exact, "SADD out 12"),
    (Exact, "EXEC"),
    // Two watchers, one change: both abort.
    (Exact, "WATCH both"),
    (Exact, "#2 WATCH both"),
    (Exact, "#1 SADD both x"),
    (Exact, "MULTI"),
    (Exact, "#2 MULTI"),
    (Exact, "EXEC"),
    (Exact, "#2 EXEC"),
    (Sorted, "SMEMBERS out"),
];

/// The generic commands added for clients: COPY, RENAMENX, MOVE, RANDOMKEY, TOUCH, TIME.
const GENERIC: &[(Cmp, &str)] = &[
    (Exact, "RANDOMKEY"),
    (Exact, "SADD a x y"),
    (Exact, "RANDOMKEY"),
    (Exact, "EXPIRE a 1000"),
    (Exact, "COPY a a"),
    (Exact, "COPY a b DB 1"),
    (Exact, "COPY a b DB -1"),
    (Exact, "COPY a b DB x"),
    (Exact, "COPY a b DB 99999999999"),
    (Exact, "COPY a b DB"),
    (Exact, "COPY a b FOO"),
    (Exact, "COPY a b DB 1 FOO"),
    (Exact, "COPY a b FOO DB 1"),
    (Exact, "COPY a a DB 0 REPLACE"),
    (Exact, "COPY nokey b"),
    (Exact, "COPY a b DB 0"),
    (Sorted, "SMEMBERS b"),
    (Exact, "TTL b"),
    (Exact, "SADD a z"),
    (Exact, "COPY a b"),
    (Exact, "PERSIST a"),
    (Exact, "COPY a b replace"),
    (Exact, "TTL b"),
    (Sorted, "SMEMBERS b"),
    (Exact, "COPY"),
    (Exact, "COPY a"),
    (Exact, "RENAMENX a b"),
    (Exact, "RENAMENX a c"),
    (Exact, "RENAMENX a c"),
    (Exact, "RENAMENX c c"),
    (Exact, "RENAMENX nokey c"),
    (Exact, "RENAMENX nokey nokey"),
    (Exact, "RENAMENX c"),
    (Exact, "TTL c"),
    (Exact, "MOVE c 0"),
    (Exact, "MOVE c 1"),
    (Exact, "MOVE c x"),
    (Exact, "MOVE nokey 0"),
    (Exact, "MOVE c"),
    (Exact, "TOUCH b c nokey b"),
    (Exact, "TOUCH"),
    (Shape, "TIME"),
    (Exact, "TIME x"),
    (Exact, "MULTI"),
    (Exact, "TIME"),
    (Exact, "RANDOMKEY"),
    (Shape, "EXEC"),
    (Exact, "DEL b"),
    (Exact, "RANDOMKEY"),
    (Exact, "RANDOMKEY x"),
];

#[test]
fn transactions_match_redis_resp2() {
    run(TRANSACTIONS, false);
}

#[test]
fn transactions_match_redis_resp3() {
    run(TRANSACTIONS, true);
}

#[test]
fn watch_aborts_exec_like_redis_resp2() {
    run(WATCHES, false);
}

#[test]
fn watch_aborts_exec_like_redis_resp3() {
    run(WATCHES, true);
}

#[test]
fn generic_commands_match_redis() {
    run(GENERIC, false);
}

#[test]
fn sets_match_redis_resp2() {
    run(SETS, false);
}

#[test]
fn sets_match_redis_resp3() {
    run(SETS, true);
}

#[test]
fn keys_match_redis() {
    run(KEYS, false);
    run(KEYS, true);
}

#[test]
fn expiry_matches_redis() {
    run(EXPIRY, false);
}

/// CONFIG SET of what Sentinel-managed replicas use, and its errors; CONFIG REWRITE
/// without a config file (the differential servers have none).
const CONFIG_SET: &[(Cmp, &str)] = &[
    (Exact, "CONFIG SET replica-priority 7"),
    (Pairs, "CONFIG GET replica-priority"),
    (Pairs, "CONFIG GET slave-priority"),
    (Exact, "CONFIG SET slave-priority 0 replica-priority 9"),
    (Pairs, "CONFIG GET *priority"),
    (Exact, "CONFIG SET replica-priority 5 replica-priority 6"),
    (Exact, "CONFIG SET REPLICA-PRIORITY 5 replica-priority 6"),
    (Exact, "CONFIG SET replica-priority abc"),
    (Exact, "CONFIG SET replica-priority -1"),
    (Exact, "CONFIG SET replica-priority 2147483648"),
    (Pairs, "CONFIG GET replica-priority"),
    (Exact, "CONFIG SET masterauth secret"),
    (Pairs, "CONFIG GET masterauth"),
    (Exact, "CONFIG SET masteruser repl"),
    (Pairs, "CONFIG GET masteruser"),
    (Exact, "CONFIG SET masterauth"),
    (Exact, "CONFIG SET masterauth x replica-priority"),
    (Exact, "CONFIG SET nosuch 1"),
    (Exact, "CONFIG SET masterauth y nosuch 1"),
    (Pairs, "CONFIG GET masterauth"),
    (Exact, "CONFIG SET databases 1"),
    (Exact, "CONFIG REWRITE"),
    (Exact, "CONFIG REWRITE x"),
];

#[test]
fn config_set_matches_redis() {
    run(CONFIG_SET, false);
    run(CONFIG_SET, true);
}

#[test]
fn connection_commands_match_redis() {
    run(CONNECTION, false);
    run(CONNECTION, true);
}

/// SCAN and SSCAN: a full iteration yields the same elements on both servers.
#[test]
fn scan_iterations_cover_the_same_elements() {
    let pair = Pair::start(None);
    let (ours, redis) = (&pair.ours, &pair.redis);
    for addr in [ours.local_addr(), redis.addr] {
        let mut c = Raw::connect(addr);
        let mut req = Vec::new();
        for i in 0..300 {
            req.extend_from_slice(format!("SADD key:{i} m\r\nSADD big m{i}\r\n").as_bytes());
        }
        c.send(&req);
        for _ in 0..600 {
            c.expect(b":1\r\n");
        }
    }
    let collect = |addr, args: &[&str]| {
        let mut c = Raw::connect(addr);
        let mut seen = BTreeSet::new();
        let mut cursor = "0".to_string();
        loop {
            let mut a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
            let pos = a.iter().position(|x| *x == b"CURSOR").unwrap();
            a[pos] = cursor.as_bytes();
            let Frame::Array(v) = c.cmd(&a) else { panic!() };
            let (Frame::Bulk(next), Frame::Array(page)) = (&v[0], &v[1]) else {
                panic!()
            };
            for f in page {
                let Frame::Bulk(b) = f else { panic!() };
                seen.insert(b.clone());
            }
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                return seen;
            }
        }
    };
    for args in [
        &["SCAN", "CURSOR"][..],
        &["SCAN", "CURSOR", "MATCH", "key:1*", "COUNT", "7"],
        &["SCAN", "CURSOR", "TYPE", "set"],
        &["SCAN", "CURSOR", "TYPE", "string"],
        &["SSCAN", "big", "CURSOR", "COUNT", "5"],
        &["SSCAN", "big", "CURSOR", "MATCH", "m2?"],
    ] {
        assert_eq!(
            collect(ours.local_addr(), args),
            collect(redis.addr, args),
            "{args:?}"
        );
    }
    pair.stop();
}

/// The members of a bulk-string array reply.
fn members(f: Frame) -> Vec<Vec<u8>> {
    let (Frame::Array(v) | Frame::Set(v)) = f else {
        panic!("not an array: {f:?}")
    };
    v.into_iter()
        .map(|m| match m {
            Frame::Bulk(b) => b.to_vec(),
            other => panic!("not a bulk string: {other:?}"),
        })
        .collect()
}

/// A set far past Redis's small-set encodings: SSCAN pages stay near COUNT and cover the
/// set, SRANDMEMBER and SPOP with counts give what Redis gives (distinct or repeated
/// members of the set, the right number), and SPOP leaves the same cardinality behind.
#[test]
fn big_sets_pick_pop_and_scan_like_redis() {
    const N: usize = 20_000;
    let pair = Pair::start(None);
    let all: BTreeSet<Vec<u8>> = (0..N).map(|i| format!("m{i}").into_bytes()).collect();
    for addr in [pair.ours.local_addr(), pair.redis.addr] {
        let mut c = Raw::connect(addr);
        let mut args: Vec<&[u8]> = vec![b"SADD", b"big"];
        args.extend(all.iter().map(Vec::as_slice));
        assert_eq!(c.cmd(&args), Frame::Integer(N as i64));

        // SSCAN COUNT 10: every member, pages of at most COUNT on ours.
        let (mut cursor, mut seen, mut calls, mut largest) =
            ("0".to_string(), BTreeSet::new(), 0, 0);
        loop {
            let Frame::Array(v) = c.cmd(&[b"SSCAN", b"big", cursor.as_bytes(), b"COUNT", b"10"])
            else {
                panic!()
            };
            let mut v = v.into_iter();
            let Some(Frame::Bulk(next)) = v.next() else {
                panic!()
            };
            let page = members(v.next().unwrap());
            largest = largest.max(page.len());
            seen.extend(page);
            calls += 1;
            cursor = String::from_utf8(next.to_vec()).unwrap();
            if cursor == "0" {
                break;
            }
        }
        assert_eq!(seen, all, "SSCAN on {addr}");
        assert!(
            (N / 20..=N / 5).contains(&calls),
            "SSCAN COUNT 10 over {N} members took {calls} calls on {addr}"
        );
        if addr == pair.ours.local_addr() {
            assert!(largest <= 10, "page of {largest} members for COUNT 10");
        }

        // SRANDMEMBER: distinct members for a positive count, |count| for a negative one.
        let distinct = members(c.cmd(&[b"SRANDMEMBER", b"big", b"100"]));
        assert_eq!(distinct.iter().collect::<BTreeSet<_>>().len(), 100);
        assert!(distinct.iter().all(|m| all.contains(m)));
        let whole = members(c.cmd(&[b"SRANDMEMBER", b"big", b"30000"]));
        assert_eq!(whole.into_iter().collect::<BTreeSet<_>>(), all);
        let repeated = members(c.cmd(&[b"SRANDMEMBER", b"big", b"-30000"]));
        assert_eq!(repeated.len(), 30_000);
        assert!(repeated.iter().all(|m| all.contains(m)));

        // SPOP: popped members are gone, the rest stay; popping past the end deletes.
        let popped = members(c.cmd(&[b"SPOP", b"big", b"5000"]));
        let popped: BTreeSet<Vec<u8>> = popped.into_iter().collect();
        assert_eq!(popped.len(), 5_000);
        assert_eq!(c.cmd(&[b"SCARD", b"big"]), Frame::Integer(15_000));
        let mut probe: Vec<&[u8]> = vec![b"SMISMEMBER", b"big"];
        probe.extend(popped.iter().take(100).map(Vec::as_slice));
        let Frame::Array(flags) = c.cmd(&probe) else {
            panic!()
        };
        assert!(flags.iter().all(|f| *f == Frame::Integer(0)));
        let rest: BTreeSet<Vec<u8>> = members(c.cmd(&[b"SPOP", b"big", b"20000"]))
            .into_iter()
            .collect();
        assert_eq!(rest.len(), 15_000);
        assert!(rest.is_disjoint(&popped));
        assert_eq!(rest.union(&popped).cloned().collect::<BTreeSet<_>>(), all);
        assert_eq!(c.cmd(&[b"EXISTS", b"big"]), Frame::Integer(0));
    }
    pair.stop();
}

/// Raw protocol input, including malformed requests: identical bytes back, and the same
/// decision to close the connection.
#[test]
fn raw_protocol_input_matches_redis() {
    let pair = Pair::start(None);
    let (ours, redis) = (&pair.ours, &pair.redis);
    let cases: &[&[u8]] = &[
        b"PING\r\n",
        b"ping\n",
        b"  ECHO   \"a\\x41\\n\\t\"  \r\n",
        b"ECHO 'it\\'s'\r\n",
        b"ECHO\t  x  \r\n",
        b"ECHO a\x0bb\r\n",
        b"FO\xff a\xfe\r\n",
        b"*3\r\n$3\r\nBAD\r\n$3\r\na\x00b\r\n$1\r\nc\r\n",
        b"SMISMEMBER  k\ta  b\n",
        b"\r\n\r\nPING\r\n",
        b"*0\r\nPING\r\n",
        b"*-1\r\nPING\r\n",
        b"*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$0\r\n\r\n",
        b"*1\r\n:3\r\n",
        b"*x\r\n",
        b"*1\r\n$-5\r\n",
        b"*1\r\n$x\r\n",
        b"ECHO \"unbalanced\r\n",
        b"ECHO \"a\"b\r\n",
        b"SADD k a\r\nSMISMEMBER k a b\r\nQUIT\r\n",
    ];
    for input in cases {
        let mut got = Vec::new();
        for addr in [ours.local_addr(), redis.addr] {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            std::io::Write::write_all(&mut s, input).unwrap();
            // Half-close: both servers answer everything they got, then we read to EOF.
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut out);
            got.push(out);
        }
        assert!(
            got[0] == got[1],
            "input {:?}: ours {:?} vs redis {:?}",
            String::from_utf8_lossy(input),
            String::from_utf8_lossy(&got[0]),
            String::from_utf8_lossy(&got[1])
        );
    }
    pair.stop();
}

/// Jedis (5.x) cannot run here (no JVM jar source: Maven Central is unreachable and Debian
/// packages no Jedis), so its connection handshake is replayed byte for byte as its
/// `Connection.initializeFromClientConfig` sends it, against Redis and against ours:
/// RESP3 with a user (`HELLO 3 AUTH user pw SETNAME name`), or `AUTH pw` then `HELLO n`,
/// then one pipelined write of `SELECT db` (only when db > 0), `CLIENT SETNAME`,
/// `CLIENT SETINFO LIB-NAME jedis`, `CLIENT SETINFO LIB-VER ...`, whose replies Jedis reads
/// together (it ignores errors containing UNKNOWN or NOAUTH and throws on any other).
#[test]
fn jedis_handshakes_match_redis() {
    let pair = Pair::start(Some("pw"));
    let (ours, redis) = (&pair.ours, &pair.redis);
    let pipeline = |db: Option<&str>| -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(db) = db {
            out.extend(common::encode(&[b"SELECT", db.as_bytes()]));
        }
        out.extend(common::encode(&[b"CLIENT", b"SETNAME", b"fleet-app"]));
        out.extend(common::encode(&[
            b"CLIENT",
            b"SETINFO",
            b"LIB-NAME",
            b"jedis",
        ]));
        out.extend(common::encode(&[
            b"CLIENT", b"SETINFO", b"LIB-VER", b"5.2.0",
        ]));
        out
    };
    // What Jedis accepts as a reply to a fire-and-forget command: OK, or an error it
    // ignores. Redis 7.0 (Debian's) predates CLIENT SETINFO (7.2) and answers "unknown
    // subcommand", which Jedis ignores; ours implements it and must say OK.
    let accepted = |f: &Frame, ours: bool| -> bool {
        match f {
            Frame::Simple(s) => s == "OK",
            Frame::Error(e) => !ours && e.to_uppercase().contains("UNKNOWN"),
            _ => false,
        }
    };
    for (addr, is_ours) in [(ours.local_addr(), true), (redis.addr, false)] {
        // 1. RESP3 with user and client name: one HELLO does it all.
        let mut c = Raw::connect(addr);
        c.send(&common::encode(&[
            b"HELLO",
            b"3",
            b"AUTH",
            b"default",
            b"pw",
            b"SETNAME",
            b"fleet-app",
        ]));
        let Frame::Map(fields) = c.frame() else {
            panic!("HELLO 3 AUTH: not a map from {addr}");
        };
        assert!(
            fields
                .iter()
                .any(|(k, v)| *k == Frame::Bulk("proto".into()) && *v == Frame::Integer(3)),
            "HELLO 3 AUTH from {addr}: {fields:?}"
        );
        c.send(&pipeline(None)[..]);
        // (SETNAME was in HELLO; Jedis then skips it, but sending it again is harmless)
        for _ in 0..3 {
            let f = c.frame();
            assert!(accepted(&f, is_ours), "{f:?} from {addr}");
        }
        assert_eq!(
            c.cmd(&[b"SADD", b"20261122", b"V0042"]),
            Frame::Integer(1),
            "from {addr}"
        );
        assert_eq!(
            c.cmd(&[b"SMEMBERS", b"20261122"]),
            Frame::Set(vec![Frame::Bulk("V0042".into())]),
            "RESP3 set from {addr}"
        );
        // 2. RESP2 default: AUTH, HELLO 2, then the pipelined batch, with database 1 asked
        //    for (the error is one Jedis throws, with Redis's text on both servers).
        let mut c = Raw::connect(addr);
        c.roundtrip(&common::encode(&[b"AUTH", b"pw"]), b"+OK\r\n");
        let Frame::Array(_) = c.cmd(&[b"HELLO", b"2"]) else {
            panic!("HELLO 2: not an array from {addr}");
        };
        c.send(&pipeline(Some("1"))[..]);
        assert_eq!(
            c.frame(),
            Frame::Error("ERR DB index is out of range".into()),
            "SELECT 1 from {addr}"
        );
        for _ in 0..3 {
            let f = c.frame();
            assert!(accepted(&f, is_ours), "{f:?} from {addr}");
        }
        // 3. RESP2, database 0, no name: AUTH then the two SETINFOs.
        let mut c = Raw::connect(addr);
        c.roundtrip(&common::encode(&[b"AUTH", b"pw"]), b"+OK\r\n");
        c.send(&pipeline(Some("0"))[..]);
        for _ in 0..4 {
            let f = c.frame();
            assert!(accepted(&f, is_ours), "{f:?} from {addr}");
        }
        assert_eq!(
            c.cmd(&[b"SMEMBERS", b"20261122"]),
            Frame::Array(vec![Frame::Bulk("V0042".into())]),
            "RESP2 set from {addr}"
        );
        assert_eq!(c.cmd(&[b"DEL", b"20261122"]), Frame::Integer(1));
    }
    pair.stop();
}

/// The fields of a CLIENT LIST/INFO line that a sets-only server reports exactly as Redis
/// (the rest are buffer sizes, file descriptors and 7.2's lib fields).
fn client_fields(f: &Frame) -> Vec<(String, String)> {
    let text = match f {
        Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
        Frame::Verbatim(_, b) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("not a client line: {other:?}"),
    };
    text.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter(|(k, _)| {
            [
                "name", "flags", "db", "sub", "psub", "ssub", "multi", "user", "resp",
            ]
            .contains(k)
        })
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// CLIENT LIST's `multi=` and `flags=`: -1 and `N` outside a transaction, the queued count
/// and `x` inside one (seen by another client, and by the transaction itself in EXEC).
#[test]
fn client_list_shows_transactions_like_redis() {
    let pair = Pair::start(None);
    let mut seen = Vec::new();
    for addr in [pair.ours.local_addr(), pair.redis.addr] {
        let mut tx = Raw::connect(addr);
        let mut other = Raw::connect(addr);
        let Frame::Integer(id) = tx.cmd(&[b"CLIENT", b"ID"]) else {
            panic!()
        };
        let id = id.to_string();
        let look = |c: &mut Raw| client_fields(&c.cmd(&[b"CLIENT", b"LIST", b"ID", id.as_bytes()]));
        let mut got = vec![look(&mut other)];
        assert_eq!(tx.cmd(&[b"MULTI"]), Frame::Simple("OK".into()));
        got.push(look(&mut other));
        assert_eq!(
            tx.cmd(&[b"SADD", b"k", b"a"]),
            Frame::Simple("QUEUED".into())
        );
        assert_eq!(
            tx.cmd(&[b"CLIENT", b"LIST", b"ID", id.as_bytes()]),
            Frame::Simple("QUEUED".into())
        );
        got.push(look(&mut other));
        let Frame::Array(replies) = tx.cmd(&[b"EXEC"]) else {
            panic!()
        };
        got.push(client_fields(&replies[1]));
        got.push(look(&mut other));
        assert_eq!(tx.cmd(&[b"MULTI"]), Frame::Simple("OK".into()));
        assert_eq!(tx.cmd(&[b"DISCARD"]), Frame::Simple("OK".into()));
        got.push(look(&mut other));
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1], "ours vs redis");
    assert!(
        seen[0][3].contains(&("multi".into(), "2".into())),
        "{:?}",
        seen[0]
    );
    pair.stop();
}

/// The last differences, text-only cases: SCAN-family cursors as `strtoul` reads them, SSCAN
/// checking a missing key before its options, CLIENT LIST and CONFIG GET argument edges.
const LAST_DIFFERENCES: &[(Cmp, &str)] = &[
    (Exact, "SADD s a b c"),
    (Scan, "SSCAN s +0"),
    (Scan, "SSCAN s 00"),
    (Scan, "SSCAN s 0 COUNT +5"),
    (Scan, "SSCAN s 0 COUNT 05"),
    (Exact, "SSCAN s +"),
    (Exact, "SSCAN s -"),
    (Exact, "SSCAN s 0x1"),
    (Exact, "SSCAN s 18446744073709551616"),
    (Exact, "SSCAN s -18446744073709551616"),
    (Shape, "SSCAN s -1"),
    (Shape, "SSCAN s 18446744073709551615"),
    (Exact, "SSCAN nokey 0 COUNT 0"),
    (Exact, "SSCAN nokey 0 FOO"),
    (Exact, "SSCAN nokey 0 TYPE set"),
    (Exact, "SSCAN nokey x FOO"),
    (Exact, "SSCAN s 0 FOO"),
    (Exact, "SSCAN s 0 TYPE set"),
    (Scan, "SCAN +0"),
    (Scan, "SCAN 000"),
    (Exact, "SCAN 1.5"),
    (Exact, "SCAN +"),
    (Exact, "SCAN 18446744073709551616"),
    (Shape, "SCAN -1"),
    (Exact, "CLIENT LIST TYPE master"),
    (Exact, "CLIENT LIST TYPE replica"),
    (Exact, "CLIENT LIST TYPE slave"),
    (Exact, "CLIENT LIST TYPE pubsub"),
    (Exact, "CLIENT LIST TYPE PubSub"),
    (Exact, "CLIENT LIST TYPE foo"),
    (Exact, "CLIENT LIST TYPE"),
    (Exact, "CLIENT LIST TYPE normal x"),
    (Exact, "CLIENT LIST ID"),
    (Exact, "CLIENT LIST ID 0"),
    (Exact, "CLIENT LIST ID -1"),
    (Exact, "CLIENT LIST ID 99999 0 -5"),
    (Exact, "CLIENT LIST ID 1 x"),
    (Exact, "CLIENT LIST ID +1"),
    (Exact, "CLIENT LIST FOO"),
    (Exact, "CLIENT LIST FOO bar"),
    (Exact, "CLIENT LIST id 99999 TYPE normal"),
    (Exact, "CONFIG GET MAXCLIENTS"),
    (Exact, "CONFIG GET HZ"),
    (Exact, "CONFIG GET maxclients MAXCLIENTS"),
    (Exact, "CONFIG GET MAXCLIENTS maxclients"),
    (Exact, "CONFIG GET maxclient? MAXCLIENTS"),
    (Exact, "CONFIG GET MaxClients maxclient?"),
    (Pairs, "CONFIG GET maxclients hz maxclients"),
    (Pairs, "CONFIG GET auto-aof-rewrite-* AppendFsync"),
    (Pairs, "CONFIG GET APPENDFSYN? appendfsync"),
    (Exact, "CONFIG GET h[y-z]"),
    (Exact, "CONFIG GET h?"),
    (Exact, "CONFIG GET nosuch"),
    (Exact, "CONFIG GET"),
];

#[test]
fn last_differences_match_redis_resp2() {
    run(LAST_DIFFERENCES, false);
}

#[test]
fn last_differences_match_redis_resp3() {
    run(LAST_DIFFERENCES, true);
}

/// Replies to raw requests whose arguments hold NUL or non-UTF-8 bytes, byte for byte:
/// arguments echoed in errors carry the client's bytes up to the first NUL (CR and LF as
/// spaces), keywords end at a NUL as C's `strcasecmp` sees them, cursors as `strtoul`
/// reads them, and glob ranges compare bytes above 0x7F as signed chars.
#[test]
fn binary_arguments_match_redis() {
    let pair = Pair::start(None);
    let cases: &[&[&[u8]]] = &[
        &[b"CLIENT", b"FO\xff\x00O"],
        &[b"CLIENT", b"FO\r\nO"],
        &[b"COMMAND", b"F\xffO"],
        &[b"CONFIG", b"\xfe\x00x"],
        &[b"HELLO", b"3", b"F\xff\x00O"],
        &[b"HELLO", b"\xff"],
        &[b"EXPIRE", b"k", b"1", b"\xff"],
        &[b"EXPIRE", b"k", b"1", b"a\x00\xff"],
        &[b"NO\xffPE", b"a\xff", b"b\x00c"],
        &[b"CLIENT", b"LIST", b"TYPE", b"f\xff\x00oo"],
        &[b"CLIENT", b"LIST", b"TYPE", b"f\r\noo"],
        &[b"SCAN", b"0", b"TYPE", b"\xff"],
        &[b"SELECT", b"\xff"],
        &[b"FLUSHALL", b"\xff"],
        &[b"SINTERCARD", b"1", b"k", b"\xff"],
        &[b"CONFIG", b"GET", b"hz\x00x"],
        &[b"CONFIG", b"GET", b"h\x00*"],
        &[b"CONFIG", b"GET", b"maxclient?\x00zz"],
        &[b"SADD", b"s", b"a"],
        &[b"SSCAN", b"s", b"0\x00zz"],
        &[b"SSCAN", b"s", b"0", b"COUNT\x00x", b"5"],
        &[b"SSCAN", b"s", b"0", b"count", b"5\x00"],
        &[b"SSCAN", b"s", b""],
        &[
            b"SADD", b"hi", b"\x80", b"\xff", b"A", b"b", b"\x00", b"\x7f",
        ],
        &[b"SSCAN", b"hi", b"0", b"MATCH", b"[a-\xff]"],
        &[b"SSCAN", b"hi", b"0", b"MATCH", b"[\x80-\xfe]"],
        &[b"SSCAN", b"hi", b"0", b"MATCH", b"[\xff-\x80]"],
        &[b"SSCAN", b"hi", b"0", b"MATCH", b"[\x00-\x7f]"],
        &[b"SSCAN", b"hi", b"0", b"MATCH", b"[^\x80-\xff]"],
        &[b"SADD", b"\x80key", b"m"],
        &[b"SADD", b"\xffkey", b"m"],
        &[b"KEYS", b"[\x01-\xff]key"],
        &[b"KEYS", b"[\x81-\xff]key"],
    ];
    for args in cases {
        let mut got = Vec::new();
        for addr in [pair.ours.local_addr(), pair.redis.addr] {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            std::io::Write::write_all(&mut s, &common::encode(args)).unwrap();
            s.shutdown(std::net::Shutdown::Write).unwrap();
            let mut out = Vec::new();
            let _ = std::io::Read::read_to_end(&mut s, &mut out);
            got.push(sorted_page(out));
        }
        assert!(
            got[0] == got[1],
            "{args:?}: ours {:?} vs redis {:?}",
            String::from_utf8_lossy(&got[0]),
            String::from_utf8_lossy(&got[1])
        );
    }
    pair.stop();
}

/// A reply's bytes, with the members of a scan page (`*2 $n cursor *m ...`) or of a KEYS
/// reply (`*m ...`) sorted, as Redis leaves their order unspecified; others unchanged.
fn sorted_page(out: Vec<u8>) -> Vec<u8> {
    let bulks = |f: &Frame| -> Option<Vec<Vec<u8>>> {
        let Frame::Array(items) = f else { return None };
        let mut v = Vec::new();
        for i in items {
            let Frame::Bulk(m) = i else { return None };
            v.push(m.to_vec());
        }
        v.sort();
        Some(v)
    };
    let encode = |head: Vec<u8>, members: Vec<Vec<u8>>| {
        let mut v = head;
        v.extend(format!("*{}\r\n", members.len()).as_bytes());
        for m in members {
            v.extend(format!("${}\r\n", m.len()).as_bytes());
            v.extend(m);
            v.extend(b"\r\n");
        }
        v
    };
    match Frame::parse(&out) {
        Ok((Frame::Array(v), used)) if used == out.len() => {
            if let [Frame::Bulk(cursor), page] = &v[..]
                && let Some(members) = bulks(page)
            {
                let head = format!(
                    "*2\r\n${}\r\n{}\r\n",
                    cursor.len(),
                    String::from_utf8_lossy(cursor)
                );
                return encode(head.into_bytes(), members);
            }
            match bulks(&Frame::Array(v)) {
                Some(members) => encode(Vec::new(), members),
                None => out,
            }
        }
        _ => out,
    }
}

/// Commands of more than a million arguments (bulk loaders send them): Redis 7 accepts
/// them, and so do we, with the same replies, also when they arrive in many pieces.
#[test]
fn commands_of_over_a_million_arguments_match_redis() {
    const N: usize = 1_100_000;
    let pair = Pair::start(None);
    let members: Vec<Vec<u8>> = (0..N).map(|i| format!("V{i:07}").into_bytes()).collect();
    let mut sadd: Vec<&[u8]> = vec![b"SADD", b"big"];
    sadd.extend(members.iter().map(Vec::as_slice));
    let sadd = common::encode(&sadd);
    let mut srem: Vec<&[u8]> = vec![b"SREM", b"big"];
    srem.extend(members.iter().step_by(2).map(Vec::as_slice));
    srem.push(b"nope");
    let srem = common::encode(&srem);
    let mut replies = Vec::new();
    for addr in [pair.ours.local_addr(), pair.redis.addr] {
        let mut c = Raw::connect(addr);
        for piece in sadd.chunks(64 * 1024) {
            c.send(piece);
        }
        let added = c.frame();
        c.send(&srem);
        replies.push((
            added,
            c.frame(),
            c.cmd(&[b"SCARD", b"big"]),
            c.cmd(&[b"SMISMEMBER", b"big", b"V0000000", b"V0000001", b"V1099999"]),
        ));
    }
    assert_eq!(replies[0], replies[1], "ours vs redis");
    assert_eq!(replies[0].0, Frame::Integer(N as i64));
    assert_eq!(replies[0].1, Frame::Integer((N / 2) as i64));
    pair.stop();
}

/// COMMAND INFO / DOCS / LIST against Redis: for every command and subcommand we serve,
/// the same ACL categories, key specs, flags, tips, history and arguments (Redis's
/// containers list more subcommands than we serve: its lists are cut to ours); unknown
/// names, subcommands by full name, and LIST's filters.
#[test]
fn command_info_and_docs_match_redis() {
    for resp3 in [false, true] {
        command_info_and_docs_match_redis_in(resp3);
    }
}

fn command_info_and_docs_match_redis_in(resp3: bool) {
    let pair = Pair::start(None);
    let mut ours = Raw::connect(pair.ours.local_addr());
    let mut redis = Raw::connect(pair.redis.addr);
    if resp3 {
        ours.cmd(&[b"HELLO", b"3"]);
        redis.cmd(&[b"HELLO", b"3"]);
    }
    let names: Vec<Vec<u8>> =
        members(ours.cmd(&[b"COMMAND", b"LIST", b"FILTERBY", b"PATTERN", b"*"]));
    assert!(names.len() > 70, "{}", names.len());
    // (7.2's client|setinfo is ours only: Debian's 7.0 does not have it.)
    let served: BTreeSet<Vec<u8>> = names
        .iter()
        .filter(|n| *n != b"client|setinfo")
        .cloned()
        .collect();
    // Cuts a container's subcommand list to the ones we serve, sorted.
    let cut_info = |f: Frame| -> Frame {
        let Frame::Array(mut v) = f else { return f };
        if let Some(Frame::Array(subs)) = v.get_mut(9) {
            subs.retain(|s| matches!(s, Frame::Array(e) if matches!(&e[0], Frame::Bulk(n) if served.contains(&n.to_vec()))));
            subs.sort_by_key(|s| format!("{s:?}"));
        }
        Frame::Array(v)
    };
    let cut_docs = |f: Frame| -> Frame {
        let keep = |n: &Frame| matches!(n, Frame::Bulk(n) if served.contains(&n.to_vec()));
        let cut_map = |m: Frame| -> Frame {
            match m {
                Frame::Map(mut pairs) => {
                    pairs.retain(|(k, _)| keep(k));
                    pairs.sort_by_key(|p| format!("{p:?}"));
                    Frame::Map(pairs)
                }
                Frame::Array(flat) => {
                    let mut pairs: Vec<Vec<Frame>> = flat
                        .chunks(2)
                        .map(<[Frame]>::to_vec)
                        .filter(|p| keep(&p[0]))
                        .collect();
                    pairs.sort_by_key(|p| format!("{p:?}"));
                    Frame::Array(pairs.into_iter().flatten().collect())
                }
                other => other,
            }
        };
        match f {
            Frame::Map(pairs) => Frame::Map(
                pairs
                    .into_iter()
                    .map(|(k, v)| {
                        let v = if k == Frame::Bulk("subcommands".into()) {
                            cut_map(v)
                        } else {
                            v
                        };
                        (k, v)
                    })
                    .collect(),
            ),
            Frame::Array(flat) => {
                let mut out = Vec::new();
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    let v = if k == Frame::Bulk("subcommands".into()) {
                        cut_map(v)
                    } else {
                        v
                    };
                    out.push(k);
                    out.push(v);
                }
                Frame::Array(out)
            }
            other => other,
        }
    };
    for name in &names {
        if name == b"client|setinfo" {
            continue; // Redis 7.2's; Debian's 7.0 does not have it.
        }
        let info = |c: &mut Raw| -> Frame {
            let Frame::Array(mut v) = c.cmd(&[b"COMMAND", b"INFO", name]) else {
                panic!()
            };
            cut_info(v.remove(0))
        };
        assert_eq!(
            info(&mut ours),
            info(&mut redis),
            "COMMAND INFO {}",
            String::from_utf8_lossy(name)
        );
        let docs = |c: &mut Raw| -> Frame {
            match c.cmd(&[b"COMMAND", b"DOCS", name]) {
                Frame::Map(mut pairs) => cut_docs(pairs.remove(0).1),
                Frame::Array(mut flat) => cut_docs(flat.remove(1)),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            docs(&mut ours),
            docs(&mut redis),
            "COMMAND DOCS {}",
            String::from_utf8_lossy(name)
        );
    }
    for cmd in [
        &[
            &b"COMMAND"[..],
            b"INFO",
            b"nosuch",
            b"SADD",
            b"Client|List",
            b"client|nosuch",
            b"client|",
        ][..],
        &[b"COMMAND", b"INFO", b"get|x"],
        &[b"COMMAND", b"DOCS", b"nosuch", b"EXEC", b"config|GET"],
        &[b"COMMAND", b"LIST", b"FILTERBY", b"MODULE", b"x"],
        &[b"COMMAND", b"LIST", b"FILTERBY", b"FOO", b"x"],
        &[b"COMMAND", b"LIST", b"FILTERBY", b"ACLCAT"],
        &[b"COMMAND", b"LIST", b"FOO"],
        &[
            b"COMMAND",
            b"LIST",
            b"FILTERBY",
            b"ACLCAT",
            b"nosuchcategory",
        ],
    ] {
        assert_eq!(ours.cmd(cmd), redis.cmd(cmd), "{cmd:?} resp3={resp3}");
    }
    for cmd in [
        &[&b"COMMAND"[..], b"LIST", b"FILTERBY", b"ACLCAT", b"set"][..],
        &[b"COMMAND", b"LIST", b"FILTERBY", b"ACLCAT", b"Transaction"],
        &[b"COMMAND", b"LIST", b"FILTERBY", b"PATTERN", b"sinter*"],
        &[b"COMMAND", b"LIST", b"FILTERBY", b"PATTERN", b"command|*"],
    ] {
        // Redis's lists name commands we do not serve (SORT is in @set): cut to ours.
        let mut a = members(ours.cmd(cmd));
        let mut b = members(redis.cmd(cmd));
        b.retain(|n| served.contains(n));
        a.sort();
        b.sort();
        assert_eq!(a, b, "{cmd:?}");
    }
    pair.stop();
}

/// Replication and persistence commands on a master without replicas: argument errors,
/// WAIT's answers (blocking the client for its timeout, then the next request), ROLE,
/// REPLICAOF NO ONE, and the no_multi commands refused inside MULTI.
const REPLICATION: &[(Cmp, &str)] = &[
    (Exact, "ROLE"),
    // Writes before any replica synced advance no offset (Redis has no backlog yet).
    (Exact, "SADD k a b"),
    (Exact, "EXPIRE k 100"),
    (Exact, "ROLE"),
    (Exact, "ROLE x"),
    (Exact, "REPLCONF"),
    (Exact, "REPLCONF a"),
    (Exact, "REPLCONF foo bar"),
    (Exact, "REPLCONF listening-port x"),
    (Exact, "REPLCONF listening-port 6380 capa eof capa psync2"),
    (Exact, "REPLCONF ip-address 1.2.3.4"),
    (Exact, "WAIT"),
    (Exact, "WAIT x 0"),
    (Exact, "WAIT 0 -1"),
    (Exact, "WAIT 0 x"),
    (Exact, "WAIT 0 0"),
    (Exact, "WAIT 1 50"),
    (Exact, "PING"),
    (Exact, "MULTI"),
    (Exact, "WAIT 1 0"),
    (Exact, "PSYNC ? -1"),
    (Exact, "SAVE"),
    (Exact, "EXEC"),
    (Exact, "MULTI"),
    (Exact, "SYNC"),
    (Exact, "EXEC"),
    (Exact, "REPLICAOF NO ONE"),
    (Exact, "SLAVEOF no one"),
    (Exact, "REPLICAOF no"),
    (Exact, "PSYNC"),
    (Exact, "PSYNC x"),
    (Exact, "LASTSAVE x"),
    (Exact, "SAVE x"),
    (Exact, "BGSAVE x"),
    (Exact, "BGSAVE SCHEDULE x"),
];

#[test]
fn replication_commands_match_redis() {
    run(REPLICATION, false);
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS by Redis's key specs, and their errors.
const GETKEYS: &[(Cmp, &str)] = &[
    (Exact, "COMMAND GETKEYS sadd k m"),
    (Exact, "COMMAND GETKEYS SADD k m"),
    (Exact, "COMMAND GETKEYS sdiffstore d a b"),
    (Exact, "COMMAND GETKEYS sintercard 2 a b LIMIT 3"),
    (Exact, "COMMAND GETKEYS sintercard 3 a b"),
    (Exact, "COMMAND GETKEYS sintercard x a b"),
    (Exact, "COMMAND GETKEYS sintercard 0 a"),
    (Exact, "COMMAND GETKEYS sintercard -1 a"),
    (Exact, "COMMAND GETKEYS ping"),
    (Exact, "COMMAND GETKEYS ping x"),
    (Exact, "COMMAND GETKEYS nosuch a"),
    (Exact, "COMMAND GETKEYS sadd k"),
    (Exact, "COMMAND GETKEYS smove a b m"),
    (Exact, "COMMAND GETKEYS smove a b"),
    (Exact, "COMMAND GETKEYS del a b c"),
    (Exact, "COMMAND GETKEYS client list"),
    (Exact, "COMMAND GETKEYS client nosuch"),
    (Exact, "COMMAND GETKEYS copy a b DB 1"),
    (Exact, "COMMAND GETKEYS watch a b"),
    (Exact, "COMMAND GETKEYS exists a b a"),
    (Exact, "COMMAND GETKEYS expire a 10 NX"),
    (Exact, "COMMAND GETKEYS sscan k 0 MATCH *"),
    (Exact, "COMMAND GETKEYS"),
    (Exact, "COMMAND GETKEYS config get x"),
    (Exact, "COMMAND GETKEYSANDFLAGS sdiffstore d a b"),
    (Exact, "COMMAND GETKEYSANDFLAGS sadd k m"),
    (Exact, "COMMAND GETKEYSANDFLAGS rename a b"),
    (Exact, "COMMAND GETKEYSANDFLAGS smove a b m"),
    (Exact, "COMMAND GETKEYSANDFLAGS sintercard 2 a b"),
    (Exact, "COMMAND GETKEYSANDFLAGS ping"),
    (Exact, "COMMAND HELP"),
];

#[test]
fn command_getkeys_matches_redis() {
    run(GETKEYS, false);
    run(GETKEYS, true);
}

/// CLIENT KILL's argument rules and replies (cases that kill nobody: the harness's own
/// connections must live; killing is shown by `client_kill_closes_the_connections_it_names`).
const CLIENT_KILL: &[(Cmp, &str)] = &[
    (Exact, "CLIENT KILL"),
    (Exact, "CLIENT KILL 1.2.3.4:5"),
    (Exact, "CLIENT KILL x"),
    (Exact, "CLIENT KILL ID"),
    (Exact, "CLIENT KILL ID 0"),
    (Exact, "CLIENT KILL ID x"),
    (Exact, "CLIENT KILL ID -1"),
    (Exact, "CLIENT KILL ID 99999"),
    (Exact, "CLIENT KILL TYPE foo"),
    (Exact, "CLIENT KILL TYPE pubsub"),
    (Exact, "CLIENT KILL TYPE master"),
    (Exact, "CLIENT KILL TYPE replica"),
    (Exact, "CLIENT KILL USER bob"),
    (Exact, "CLIENT KILL USER DEFAULT"),
    (Exact, "CLIENT KILL USER default ID 99999"),
    (Exact, "CLIENT KILL ADDR 1.2.3.4:5"),
    (Exact, "CLIENT KILL LADDR 1.2.3.4:5"),
    (Exact, "CLIENT KILL SKIPME maybe"),
    (Exact, "CLIENT KILL FOO bar"),
    (Exact, "CLIENT KILL ID 99999 TYPE"),
    (Exact, "CLIENT KILL MAXAGE 10"),
];

#[test]
fn client_kill_arguments_match_redis() {
    run(CLIENT_KILL, false);
}

/// CLIENT KILL closes what it names, on Redis and on ours alike: another client by ID
/// (an integer reply), by address in the old form (`+OK`), and the caller itself with
/// SKIPME no (after the reply).
#[test]
fn client_kill_closes_the_connections_it_names() {
    let pair = Pair::start(None);
    for addr in [pair.ours.local_addr(), pair.redis.addr] {
        let mut a = Raw::connect(addr);
        let mut b = Raw::connect(addr);
        let Frame::Integer(id) = b.cmd(&[b"CLIENT", b"ID"]) else {
            panic!()
        };
        let id = id.to_string();
        assert_eq!(
            a.cmd(&[b"CLIENT", b"KILL", b"ID", id.as_bytes()]),
            Frame::Integer(1),
            "{addr}"
        );
        b.expect_closed();
        let mut d = Raw::connect(addr);
        assert_eq!(d.cmd(&[b"PING"]), Frame::Simple("PONG".into()));
        let peer = d.s.local_addr().unwrap().to_string();
        assert_eq!(
            a.cmd(&[b"CLIENT", b"KILL", peer.as_bytes()]),
            Frame::Simple("OK".into()),
            "{addr}"
        );
        d.expect_closed();
        let Frame::Integer(me) = a.cmd(&[b"CLIENT", b"ID"]) else {
            panic!()
        };
        let me = me.to_string();
        assert_eq!(
            a.cmd(&[b"CLIENT", b"KILL", b"ID", me.as_bytes(), b"SKIPME", b"no"]),
            Frame::Integer(1),
            "{addr}"
        );
        a.expect_closed();
    }
    pair.stop();
}
