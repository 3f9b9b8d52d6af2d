//! The RESP parsers: the server's request parser (tight limits, authenticated and
//! not) and the general RESP3 frame parser; no panic, no over-consumption, and the same
//! requests when the input arrives in two pieces.
//! The body is `speedlayer_server::fuzzing::resp_frame`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_server::fuzzing::resp_frame(data));
