//! HFile block framing and every block-contents decoder (data block with seeks,
//! index, bloom, file info, trailer): no input may panic.
//! The body is `speedlayer_storage::fuzzing::hfile_block`, which the stable corpus replay
//! test runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| speedlayer_storage::fuzzing::hfile_block(data));
