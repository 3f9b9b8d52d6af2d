//! Fuzzes the manifest edit decoder and state application: no input may panic, and an
//! edit that decodes must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use speedlayer_storage::manifest::{ManifestState, VersionEdit};

fuzz_target!(|data: &[u8]| {
    if let Ok(edit) = VersionEdit::decode(data) {
        let back = VersionEdit::decode(&edit.encode()).expect("re-encoded edit decodes");
        assert_eq!(back, edit);
        let mut state = ManifestState::default();
        let _ = state.apply(&edit);
    }
});
