//! The differential harness: our service in process and Debian's `redis-server`, the
//! same command scripts against both, replies compared exactly, as sorted lists (Redis
//! leaves set order unspecified) or by shape (random picks, the time).

use speedlayer_server::resp::frame::Frame;

use super::{Raw, RealRedis, config, start};

/// How to compare a reply.
#[derive(Clone, Copy)]
pub enum Cmp {
    /// Byte-for-byte the same frame.
    Exact,
    /// Aggregate reply compared as a sorted multiset.
    Sorted,
    /// Same frame type and length only (random picks).
    Shape,
    /// A SCAN-family reply `[cursor, page]` with the page compared as a sorted list.
    Scan,
    /// A map (or a RESP2 flat array of pairs) compared with its pairs sorted (CONFIG GET:
    /// Redis lists them in hash order).
    Pairs,
}

/// Our service (in process) and Debian's `redis-server`, side by side, optionally both
/// with a password.
pub struct Pair {
    pub rt: tokio::runtime::Runtime,
    pub ours: speedlayer_server::resp::RespHandle,
    pub redis: RealRedis,
    _dir: tempfile::TempDir,
}

impl Pair {
    pub fn start(requirepass: Option<&str>) -> Pair {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = config(dir.path());
        cfg.requirepass = requirepass.map(str::to_owned);
        let ours = rt.block_on(start(cfg));
        let redis = RealRedis::start(&[]);
        if let Some(pw) = requirepass {
            // Set after start: RealRedis waits for an unauthenticated PONG.
            let mut c = Raw::connect(redis.addr);
            let reply = c.cmd(&[b"CONFIG", b"SET", b"requirepass", pw.as_bytes()]);
            assert_eq!(reply, Frame::Simple("OK".into()));
        }
        Pair {
            rt,
            ours,
            redis,
            _dir: dir,
        }
    }

    /// Shuts ours down cleanly (its final snapshot must succeed).
    pub fn stop(self) {
        self.rt.block_on(self.ours.shutdown()).unwrap();
    }
}

pub fn norm(f: Frame, how: Cmp) -> Frame {
    match (how, f) {
        (Cmp::Sorted, Frame::Array(mut v)) => {
            v.sort_by_key(|x| format!("{x:?}"));
            Frame::Array(v)
        }
        (Cmp::Sorted, Frame::Set(mut v)) => {
            v.sort_by_key(|x| format!("{x:?}"));
            Frame::Set(v)
        }
        (Cmp::Shape, Frame::Array(v)) => Frame::Array(vec![Frame::Null; v.len()]),
        (Cmp::Shape, Frame::Set(v)) => Frame::Set(vec![Frame::Null; v.len()]),
        (Cmp::Shape, Frame::Bulk(_)) => Frame::Bulk("x".into()),
        (Cmp::Scan, Frame::Array(mut v)) if v.len() == 2 => {
            let page = norm(v.pop().unwrap_or(Frame::Null), Cmp::Sorted);
            v.push(page);
            Frame::Array(v)
        }
        (Cmp::Pairs, Frame::Array(v)) => {
            let mut pairs: Vec<Vec<Frame>> = v.chunks(2).map(<[Frame]>::to_vec).collect();
            pairs.sort_by_key(|p| format!("{p:?}"));
            Frame::Array(pairs.into_iter().flatten().collect())
        }
        (Cmp::Pairs, Frame::Map(mut v)) => {
            v.sort_by_key(|p| format!("{p:?}"));
            Frame::Map(v)
        }
        (_, f) => f,
    }
}

/// Runs `script` against both servers and asserts every reply matches. A line is a
/// command, sent on the first connection, or `#N command` to send it on connection N
/// (0..=2: other clients, e.g. to modify a watched key), or `SLEEP ms` to let time pass
/// (for expiry). With `resp3` every connection says `HELLO 3` first.
pub fn run(script: &[(Cmp, &str)], resp3: bool) {
    let pair = Pair::start(None);
    let (ours, redis) = (&pair.ours, &pair.redis);
    let mut conns: Vec<(Raw, Raw)> = (0..3)
        .map(|_| (Raw::connect(ours.local_addr()), Raw::connect(redis.addr)))
        .collect();
    if resp3 {
        for (a, b) in &mut conns {
            let _ = a.cmd(&[b"HELLO", b"3"]);
            let _ = b.cmd(&[b"HELLO", b"3"]);
        }
    }
    for (how, line) in script {
        if let Some(ms) = line.strip_prefix("SLEEP ") {
            std::thread::sleep(std::time::Duration::from_millis(ms.parse().unwrap()));
            continue;
        }
        let (n, cmd) = match line.strip_prefix('#') {
            Some(rest) => {
                let (n, cmd) = rest.split_once(' ').unwrap();
                (n.parse::<usize>().unwrap(), cmd)
            }
            None => (0, *line),
        };
        let args: Vec<&[u8]> = cmd
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::as_bytes)
            .collect();
        let (a, b) = &mut conns[n];
        let got = norm(a.cmd(&args), *how);
        let want = norm(b.cmd(&args), *how);
        assert_eq!(
            got, want,
            "reply to {line:?} (resp3={resp3}) differs: ours vs redis"
        );
    }
    let (a, b) = &mut conns[0];
    // Final state must match too.
    for c in [&mut *a, &mut *b] {
        let _ = c.cmd(&[b"HELLO", b"2"]);
    }
    let keys_a = norm(a.cmd(&[b"KEYS", b"*"]), Cmp::Sorted);
    assert_eq!(keys_a, norm(b.cmd(&[b"KEYS", b"*"]), Cmp::Sorted));
    if let Frame::Array(keys) = keys_a {
        for k in keys {
            let Frame::Bulk(k) = k else { panic!() };
            let ga = norm(a.cmd(&[b"SMEMBERS", &k]), Cmp::Sorted);
            assert_eq!(
                ga,
                norm(b.cmd(&[b"SMEMBERS", &k]), Cmp::Sorted),
                "members of {k:?}"
            );
            assert_eq!(a.cmd(&[b"TTL", &k]), b.cmd(&[b"TTL", &k]), "TTL of {k:?}");
        }
    }
    pair.stop();
}
