//! The append-only file loader (`aof::load`, as the server uses it at start): no
//! input may panic, and the commands before a torn tail load on their own.
//! The body is `speedlayer_server::fuzzing::resp_aof`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_server::fuzzing::resp_aof(data));
