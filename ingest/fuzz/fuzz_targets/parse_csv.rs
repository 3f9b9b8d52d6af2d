//! The SPEC §1 CSV parsers: any bytes either parse into events that render back to
//! the same event, or give a typed error; never a panic.
//! The body is `speedlayer_ingest::fuzzing::parse_csv`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_ingest::fuzzing::parse_csv(data));
