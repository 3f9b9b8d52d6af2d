//! The packed row groups of a bulk-load chunk (`speedlayer_proto::packed`), walked as the
//! `BulkLoad` handler does: no panic, accepted groups cover their bytes and re-encode to
//! them. The body is `speedlayer_server::fuzzing::bulk_packed`, which the stable corpus
//! replay test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_server::fuzzing::bulk_packed(data));
