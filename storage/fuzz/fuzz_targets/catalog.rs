//! The catalog file decoder (`Catalog::decode`, as `Catalog::load` uses it): no
//! input may panic, and a catalog that decodes must round-trip.
//! The body is `speedlayer_storage::fuzzing::catalog`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_storage::fuzzing::catalog(data));
