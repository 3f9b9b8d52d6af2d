//! The file channel's event decoder: arbitrary payloads decode or are refused,
//! never panic, and whatever decodes re-encodes to the same payload.
//! The body is `speedlayer_ingest::fuzzing::file_channel_record`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_ingest::fuzzing::file_channel_record(data));
