//! Pub/sub against Debian's `redis-server`, side by side: SUBSCRIBE, UNSUBSCRIBE,
//! PSUBSCRIBE, PUNSUBSCRIBE, PUBLISH and PUBSUB CHANNELS|NUMSUB|NUMPAT, the messages
//! subscribers receive, a subscribed RESP2 connection's restrictions, RESP3 pushes, and
//! the slow subscriber both servers disconnect at the pub/sub output limit (32 MiB).

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::Raw;
use common::differential::{Cmp, Pair, norm};
use speedlayer_server::resp::frame::Frame;

/// One step: send `line` on connection `conn` and compare the next `replies` frames on
/// it (0: send only), or read `replies` frames from `conn` without sending (`line` "").
type Step = (usize, &'static str, usize, Cmp);

fn run(steps: &[Step], resp3: bool) {
    let pair = Pair::start(None);
    let mut conns: Vec<(Raw, Raw)> = (0..3)
        .map(|_| {
            (
                Raw::connect(pair.ours.local_addr()),
                Raw::connect(pair.redis.addr),
            )
        })
        .collect();
    if resp3 {
        for (a, b) in &mut conns {
            let _ = a.cmd(&[b"HELLO", b"3"]);
            let _ = b.cmd(&[b"HELLO", b"3"]);
        }
    }
    for &(n, line, replies, how) in steps {
        let (a, b) = &mut conns[n];
        if !line.is_empty() {
            let args: Vec<&[u8]> = line
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::as_bytes)
                .collect();
            let req = common::encode(&args);
            a.send(&req);
            b.send(&req);
        }
        for i in 0..replies {
            let got = norm(a.frame(), how);
            let want = norm(b.frame(), how);
            assert_eq!(
                got, want,
                "reply {i} on connection {n} to {line:?} (resp3={resp3}) differs: ours vs redis"
            );
        }
    }
    pair.stop();
}

use Cmp::{Exact, Sorted};

const PUBSUB: &[Step] = &[
    (0, "SUBSCRIBE news", 1, Exact),
    (0, "SUBSCRIBE news other", 2, Exact),
    (1, "PUBSUB NUMSUB news other nobody", 1, Exact),
    (1, "PUBSUB NUMSUB", 1, Exact),
    (1, "PUBSUB CHANNELS", 1, Sorted),
    (1, "PUBSUB CHANNELS n*", 1, Sorted),
    (1, "PUBSUB CHANNELS n* x", 1, Exact),
    (1, "PUBSUB NUMPAT", 1, Exact),
    (1, "PUBSUB NUMPAT x", 1, Exact),
    (1, "PUBSUB NOSUCH", 1, Exact),
    (1, "PUBSUB", 1, Exact),
    (1, "PUBLISH news hello", 1, Exact),
    (0, "", 1, Exact),
    (1, "PUBLISH nobody hello", 1, Exact),
    (1, "PUBLISH news", 1, Exact),
    (2, "PSUBSCRIBE n* [ab]?", 2, Exact),
    (2, "PSUBSCRIBE n*", 1, Exact),
    (1, "PUBSUB NUMPAT", 1, Exact),
    (1, "PUBLISH news two", 1, Exact),
    (0, "", 1, Exact),
    (2, "", 1, Exact),
    (1, "PUBLISH ax three", 1, Exact),
    (2, "", 1, Exact),
    // A subscribed RESP2 connection: only the pub/sub commands, PING, QUIT and RESET.
    (0, "SADD k a", 1, Exact),
    (0, "CLIENT LIST", 1, Exact),
    (0, "PUBSUB NUMPAT", 1, Exact),
    (0, "PING", 1, Exact),
    (0, "PING msg", 1, Exact),
    (0, "PING a b", 1, Exact),
    (0, "NOSUCH", 1, Exact),
    (0, "SUBSCRIBE", 1, Exact),
    (0, "UNSUBSCRIBE news", 1, Exact),
    (0, "UNSUBSCRIBE news", 1, Exact),
    (0, "UNSUBSCRIBE", 1, Exact),
    (0, "UNSUBSCRIBE", 1, Exact),
    (0, "SADD k a", 1, Exact),
    (2, "PUNSUBSCRIBE n*", 1, Exact),
    (2, "PUNSUBSCRIBE nothere", 1, Exact),
    (2, "PUNSUBSCRIBE", 1, Exact),
    (2, "PUNSUBSCRIBE", 1, Exact),
    (1, "PUBSUB NUMPAT", 1, Exact),
    (1, "PUBSUB CHANNELS", 1, Exact),
    (1, "PUBLISH news gone", 1, Exact),
    // RESET leaves pub/sub mode without replies for the channels.
    (2, "SUBSCRIBE c1", 1, Exact),
    (2, "RESET", 1, Exact),
    (2, "SADD k b", 1, Exact),
    (1, "PUBSUB NUMSUB c1", 1, Exact),
    // Inside MULTI a subscription is queued and runs in EXEC.
    (1, "MULTI", 1, Exact),
    (1, "SUBSCRIBE t", 1, Exact),
    (1, "EXEC", 1, Exact),
    (2, "PUBLISH t inexec", 1, Exact),
    (1, "", 1, Exact),
];

#[test]
fn pubsub_matches_redis_resp2() {
    run(PUBSUB, false);
}

/// RESP3: replies and messages are pushes, and a subscribed connection runs any command.
const PUBSUB_RESP3: &[Step] = &[
    (0, "SUBSCRIBE news", 1, Exact),
    (0, "SADD k a", 1, Exact),
    (0, "PING", 1, Exact),
    (0, "PSUBSCRIBE n*", 1, Exact),
    (1, "PUBLISH news hi", 1, Exact),
    (0, "", 2, Exact),
    // The publisher subscribed itself: the message comes before PUBLISH's count.
    (0, "PUBLISH news self", 3, Exact),
    (0, "UNSUBSCRIBE", 1, Exact),
    (0, "UNSUBSCRIBE", 1, Exact),
    (0, "PUNSUBSCRIBE", 1, Exact),
    (0, "PUNSUBSCRIBE", 1, Exact),
    (1, "PUBSUB NUMSUB news", 1, Exact),
];

#[test]
fn pubsub_matches_redis_resp3() {
    run(PUBSUB_RESP3, true);
}

/// Reads until the server closes the connection; the bytes read, or `None` if it is
/// still open at `deadline`.
fn read_until_closed(c: &mut Raw, deadline: Instant) -> Option<usize> {
    c.s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0;
    while Instant::now() < deadline {
        match c.s.read(&mut buf) {
            Ok(0) => return Some(total),
            Ok(n) => total += n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(total),
        }
    }
    None
}

/// A subscriber that stops reading while 64 MiB are published to it: Redis disconnects
/// it at its pub/sub hard limit (32 MiB), and so do we (counted in INFO stats); the
/// publisher is never blocked, and another subscriber that reads gets every message.
#[test]
fn a_slow_subscriber_is_disconnected_at_the_output_limit_like_redis() {
    let pair = Pair::start(None);
    let big = vec![b'x'; 1024 * 1024];
    for (addr, ours) in [(pair.ours.local_addr(), true), (pair.redis.addr, false)] {
        let mut slow = Raw::connect(addr);
        let _ = slow.cmd(&[b"SUBSCRIBE", b"firehose"]);
        let mut publisher = Raw::connect(addr);
        let started = Instant::now();
        for _ in 0..64 {
            match publisher.cmd(&[b"PUBLISH", b"firehose", &big]) {
                Frame::Integer(0 | 1) => {}
                other => panic!("PUBLISH replied {other:?} (ours={ours})"),
            }
        }
        let publishing = started.elapsed();
        assert!(
            publishing < Duration::from_secs(20),
            "publishing took {publishing:?} (ours={ours})"
        );
        let got = read_until_closed(&mut slow, Instant::now() + Duration::from_secs(20))
            .unwrap_or_else(|| panic!("the slow subscriber was not disconnected (ours={ours})"));
        assert!(
            got < 60 * 1024 * 1024,
            "it received {got} bytes of 64 MiB (ours={ours})"
        );
        // The server is fine and forgot the subscriber.
        assert_eq!(
            publisher.cmd(&[b"PUBSUB", b"NUMSUB", b"firehose"]),
            Frame::Array(vec![Frame::Bulk("firehose".into()), Frame::Integer(0)]),
            "ours={ours}"
        );
        if ours {
            let Frame::Bulk(info) = publisher.cmd(&[b"INFO", b"stats"]) else {
                panic!("INFO")
            };
            let info = String::from_utf8_lossy(&info).into_owned();
            assert!(
                info.contains("client_output_buffer_limit_disconnections:1\r\n"),
                "{info}"
            );
        }
    }
    pair.stop();
}

/// CLIENT LIST shows a subscriber's `flags=P`, `sub=` and `psub=`, and CLIENT KILL TYPE
/// pubsub closes exactly the subscribers (what Sentinel sends in its failover
/// transaction), as Redis does.
#[test]
fn client_list_and_kill_see_subscribers_like_redis() {
    let pair = Pair::start(None);
    for (addr, ours) in [(pair.ours.local_addr(), true), (pair.redis.addr, false)] {
        let mut sub = Raw::connect(addr);
        let _ = sub.cmd(&[b"CLIENT", b"SETNAME", b"sub"]);
        let _ = sub.cmd(&[b"SUBSCRIBE", b"a", b"b"]);
        let _ = sub.frame();
        let _ = sub.cmd(&[b"PSUBSCRIBE", b"p*"]);
        let mut other = Raw::connect(addr);
        let Frame::Bulk(list) = other.cmd(&[b"CLIENT", b"LIST", b"TYPE", b"pubsub"]) else {
            panic!("CLIENT LIST")
        };
        let list = String::from_utf8_lossy(&list).into_owned();
        assert_eq!(list.lines().count(), 1, "ours={ours}: {list}");
        for field in [" name=sub ", " flags=P ", " sub=2 ", " psub=1 "] {
            assert!(list.contains(field), "ours={ours}: {field} in {list}");
        }
        assert_eq!(
            other.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"]),
            Frame::Integer(1),
            "ours={ours}"
        );
        sub.expect_closed();
        assert_eq!(
            other.cmd(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"]),
            Frame::Integer(0),
            "ours={ours}"
        );
    }
    pair.stop();
}
