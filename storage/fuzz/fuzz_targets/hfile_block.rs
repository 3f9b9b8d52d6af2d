//! Fuzzes HFile block framing and every block-contents decoder (data block with seeks,
//! index, bloom, file info, trailer): no input may panic.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use speedlayer_storage::KeyRef;
use speedlayer_storage::hfile::block::{DataBlock, decode_block};
use speedlayer_storage::hfile::bloom::Bloom;
use speedlayer_storage::hfile::index::BlockIndex;
use speedlayer_storage::hfile::{FileInfo, TRAILER_BYTES, Trailer};

fuzz_target!(|data: &[u8]| {
    let _ = decode_block(data);
    let unchecked = DataBlock::from_verified(Bytes::copy_from_slice(data));
    let _ = unchecked.entries();
    let _ = unchecked.seek(KeyRef::first_of_row(b"m"));
    if let Ok(block) = DataBlock::new(Bytes::copy_from_slice(data)) {
        let _ = block.entries();
        let _ = block.seek(KeyRef::first_of_row(b"m"));
    }
    let _ = BlockIndex::decode(data, data.len() as u64);
    if let Ok(bloom) = Bloom::decode(data) {
        let _ = bloom.may_contain_hash(0x1234_5678_9abc_def0);
    }
    let _ = FileInfo::decode(data);
    if data.len() >= TRAILER_BYTES {
        let _ = Trailer::decode(&data[data.len() - TRAILER_BYTES..], data.len() as u64);
    }
});
