//! Fuzzes the SPEC §1 CSV parsers: any bytes either parse into events that render back to
//! the same line, or give a typed error — never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use speedlayer_ingest::event::{Format, line_str, parse_driving, parse_status};

fuzz_target!(|data: &[u8]| {
    let _ = Format::Driving.validate(data);
    let _ = Format::Status.validate(data);
    if let Ok(s) = line_str(data) {
        if let Ok(e) = parse_driving(s) {
            assert_eq!(parse_driving(&e.to_csv()).as_ref(), Ok(&e));
        }
        if let Ok(e) = parse_status(s) {
            assert_eq!(parse_status(&e.to_csv()).as_ref(), Ok(&e));
        }
    }
});
