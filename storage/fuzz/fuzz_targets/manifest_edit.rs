//! The manifest edit decoder and state application: no input may panic, and an
//! edit that decodes must round-trip.
//! The body is `speedlayer_storage::fuzzing::manifest_edit`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_storage::fuzzing::manifest_edit(data));
