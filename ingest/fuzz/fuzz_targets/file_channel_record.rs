//! Fuzzes the file channel's event decoder: arbitrary payloads decode or are refused,
//! never panic, and whatever decodes re-encodes to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use speedlayer_ingest::collect::channel::file::{decode_event, encode_event};

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = decode_event(data) {
        let mut out = Vec::new();
        encode_event(&e, &mut out).expect("a decoded event fits a record");
        assert_eq!(&out[8..], data);
    }
});
