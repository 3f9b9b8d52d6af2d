//! The WAL frame reader and record decoder: no input may panic, and a record that
//! decodes must re-encode to the same value.
//! The body is `speedlayer_storage::fuzzing::wal_record`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_storage::fuzzing::wal_record(data));
