//! Stable-Rust companion of the `resp_frame` fuzz target: seeded random bytes and mutated
//! valid requests through both parsers. No panic, no over-consumption, and every strict
//! prefix of a valid request is `Incomplete`. `SPEEDLAYER_LONG=1` runs 20x more cases.

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_server::resp::config::Limits;
use speedlayer_server::resp::frame::{Frame, FrameError, parse_request};

fn iterations() -> usize {
    if std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1") {
        200_000
    } else {
        10_000
    }
}

fn limits() -> Limits {
    Limits {
        proto_max_bulk_len: 4096,
        max_multibulk_len: 64,
        inline_max: 1024,
        ..Limits::default()
    }
}

fn drain(data: &[u8], authed: bool) -> usize {
    let mut buf = BytesMut::from(data);
    let mut args = Vec::new();
    let mut n = 0;
    loop {
        let before = buf.len();
        match parse_request(&mut buf, &limits(), authed, &mut args) {
            Ok(true) => {
                assert!(buf.len() < before);
                n += 1;
            }
            Ok(false)
            | Err(FrameError::Incomplete)
            | Err(FrameError::Protocol(_))
            | Err(FrameError::QueryBufferLimit { .. }) => return n,
        }
    }
}

const SEEDS: &[&[u8]] = &[
    b"*3\r\n$4\r\nSADD\r\n$8\r\n20261122\r\n$5\r\nV0042\r\n",
    b"PING\r\n",
    b"SADD k \"a b\" 'c' \"\\x41\"\r\n",
    b"%2\r\n+a\r\n:1\r\n$1\r\nb\r\n~1\r\n#t\r\n",
    b"*2\r\n*1\r\n_\r\n>1\r\n=5\r\ntxt:x\r\n",
    b"|1\r\n+k\r\n+v\r\n,1.5\r\n",
];

#[test]
fn random_and_mutated_input_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    for i in 0..iterations() {
        let data: Vec<u8> = if i % 2 == 0 {
            let len = rng.random_range(0..64);
            let alphabet = b"*$:+-_%~#,=!|>\r\n0123456789-abcSADD \"'\\x";
            (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect()
        } else {
            let mut d = SEEDS[rng.random_range(0..SEEDS.len())].to_vec();
            for _ in 0..rng.random_range(1..4) {
                let pos = rng.random_range(0..d.len());
                match rng.random_range(0..3) {
                    0 => d[pos] = rng.random(),
                    1 => {
                        d.remove(pos);
                    }
                    _ => d.insert(pos, rng.random()),
                }
                if d.is_empty() {
                    break;
                }
            }
            d
        };
        drain(&data, true);
        drain(&data, false);
        if let Ok((_, used)) = Frame::parse(&data) {
            assert!(used <= data.len());
        }
    }
}

#[test]
fn every_strict_prefix_is_incomplete() {
    for seed in &SEEDS[..3] {
        for cut in 0..seed.len() {
            let mut buf = BytesMut::from(&seed[..cut]);
            let mut args = Vec::new();
            assert_eq!(
                parse_request(&mut buf, &limits(), true, &mut args),
                Ok(false),
                "cut {cut}"
            );
            assert_eq!(buf.len(), cut, "nothing consumed from a prefix");
        }
    }
    for seed in &SEEDS[3..] {
        for cut in 0..seed.len() {
            assert_eq!(
                Frame::parse(&seed[..cut]),
                Err(FrameError::Incomplete),
                "cut {cut}"
            );
        }
        assert!(Frame::parse(seed).is_ok());
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let data = b"*1\r\n".repeat(100_000);
    assert!(matches!(Frame::parse(&data), Err(FrameError::Protocol(_))));
}
