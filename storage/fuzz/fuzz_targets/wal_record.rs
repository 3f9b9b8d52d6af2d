//! Fuzzes the WAL frame reader and record decoder: no input may panic, and a record that
//! decodes must re-encode to the same bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use speedlayer_storage::coding::{FrameRead, read_frame};
use speedlayer_storage::wal::{MAX_RECORD_BYTES, WalEntry};

fuzz_target!(|data: &[u8]| {
    if let FrameRead::Ok { payload, .. } = read_frame(data, 0, MAX_RECORD_BYTES) {
        let _ = WalEntry::decode(&Bytes::copy_from_slice(payload));
    }
    if let Ok(entry) = WalEntry::decode(&Bytes::copy_from_slice(data)) {
        let mut again = Vec::new();
        entry.encode_into(&mut again);
        // Varints have one canonical encoding only if minimal; compare decoded values.
        let back = WalEntry::decode(&Bytes::from(again)).expect("re-encoded record decodes");
        assert_eq!(back, entry);
    }
});
