//! The bulk-load commit record decoder (`CommitRecord::decode`, as recovery uses it): no
//! input may panic, and a record that decodes must round-trip.
//! The body is `speedlayer_storage::fuzzing::bulk_commit`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_storage::fuzzing::bulk_commit(data));
