//! Fuzz target for the RESP parsers: the server's request parser (with tight limits, both
//! authenticated and not) and the general RESP3 frame parser. Neither may panic, consume
//! more than it was given, or disagree with itself when the input arrives in two pieces.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use speedlayer_server::resp::config::Limits;
use speedlayer_server::resp::frame::{Frame, FrameError, parse_request};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        proto_max_bulk_len: 4096,
        max_multibulk_len: 64,
        inline_max: 1024,
        ..Limits::default()
    };
    for authed in [true, false] {
        let mut buf = BytesMut::from(data);
        let mut args = Vec::new();
        let mut whole = Vec::new();
        loop {
            let before = buf.len();
            match parse_request(&mut buf, &limits, authed, &mut args) {
                Ok(true) => {
                    assert!(buf.len() < before, "a parsed request must consume bytes");
                    whole.push(args.clone());
                }
                Ok(false) | Err(FrameError::Incomplete) => break,
                Err(FrameError::Protocol(_)) => break,
            }
        }
        // Feeding the same bytes in two pieces yields the same leading requests.
        let mid = data.len() / 2;
        let mut buf = BytesMut::from(&data[..mid]);
        let mut split = Vec::new();
        while let Ok(true) = parse_request(&mut buf, &limits, authed, &mut args) {
            split.push(args.clone());
        }
        assert!(split.len() <= whole.len());
        assert_eq!(&whole[..split.len()], &split[..]);
    }
    if let Ok((_, used)) = Frame::parse(data) {
        assert!(used <= data.len());
    }
});
