//! The Redis RDB reader (`rdb::decode`, as the import at start uses it): no input may
//! panic, and a decoded file re-encodes to one that decodes to the same keys. The body is
//! `speedlayer_server::fuzzing::resp_rdb`, which the stable corpus replay test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_server::fuzzing::resp_rdb(data));
