//! The shutdown snapshot decoder (`snapshot::decode`, as the server uses it at
//! start): no input may panic, and a decoded snapshot re-encodes to one that decodes.
//! The body is `speedlayer_server::fuzzing::resp_snapshot`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_server::fuzzing::resp_snapshot(data));
