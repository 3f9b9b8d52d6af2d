//! The bodies of the cargo-fuzz targets in `ingest/fuzz/`, one function per target.
//!
//! They live in the library so that the fuzz targets (nightly, libFuzzer) and the stable
//! corpus replay test (`tests/fuzz_corpus_replays.rs`) run exactly the same code on the
//! same bytes. Each function panics only when a property it checks is broken; a decoder
//! that panics on its own is the bug the fuzzers look for. This is test support, not part
//! of the crate's API.

use crate::collect::channel::file::{decode_event, encode_event};
use crate::event::{Format, line_str, parse_driving, parse_status};

/// Target `parse_csv`: the SPEC §1 CSV parsers. Any bytes either parse into events that
/// render back to a line parsing to the same event, or give a typed error.
pub fn parse_csv(data: &[u8]) {
    let _ = Format::Driving.validate(data);
    let _ = Format::Status.validate(data);
    if let Ok(s) = line_str(data) {
        if let Ok(e) = parse_driving(s) {
            assert_eq!(parse_driving(&e.to_csv()).as_ref(), Ok(&e));
        }
        if let Ok(e) = parse_status(s) {
            assert_eq!(parse_status(&e.to_csv()).as_ref(), Ok(&e));
        }
    }
}

/// Target `file_channel_record`: the file channel's event decoder. Arbitrary payloads
/// decode or are refused, and whatever decodes re-encodes to the same payload.
pub fn file_channel_record(data: &[u8]) {
    if let Ok(e) = decode_event(data) {
        let mut out = Vec::new();
        encode_event(&e, &mut out).expect("a decoded event fits a record");
        assert_eq!(&out[8..], data);
    }
}
