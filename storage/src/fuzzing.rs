//! The bodies of the cargo-fuzz targets in `storage/fuzz/`, one function per target.
//!
//! They live in the library so that the fuzz targets (nightly, libFuzzer) and the stable
//! corpus replay test (`tests/fuzz_corpus_replays.rs`) run exactly the same code on the
//! same bytes. Each function panics only when a property it checks is broken (a decoded
//! value that does not round-trip); a decoder that panics on its own is the bug the fuzzers
//! look for. This is test support, not part of the engine's API.

use std::path::Path;

use bytes::Bytes;

use crate::KeyRef;
use crate::bulk::commit::{COMMIT_MAGIC, COMMIT_VERSION, CommitRecord};
use crate::coding::{FrameRead, read_frame};
use crate::db::catalog::{self, Catalog};
use crate::hfile::block::{DataBlock, decode_block};
use crate::hfile::bloom::Bloom;
use crate::hfile::index::BlockIndex;
use crate::hfile::{FileInfo, TRAILER_BYTES, Trailer};
use crate::manifest::{ManifestState, VersionEdit};
use crate::wal::{MAX_RECORD_BYTES, WalEntry};

/// Target `wal_record`: the WAL frame reader and record decoder; a record that decodes
/// must decode again, to the same value, after re-encoding.
pub fn wal_record(data: &[u8]) {
    if let FrameRead::Ok { payload, .. } = read_frame(data, 0, MAX_RECORD_BYTES) {
        let _ = WalEntry::decode(&Bytes::copy_from_slice(payload));
    }
    if let Ok(entry) = WalEntry::decode(&Bytes::copy_from_slice(data)) {
        let mut again = Vec::new();
        entry.encode_into(&mut again);
        // Varints have one canonical encoding only if minimal; compare decoded values.
        match WalEntry::decode(&Bytes::from(again)) {
            Ok(back) => assert_eq!(back, entry),
            Err(e) => panic!("re-encoded WAL record does not decode: {e:?}"),
        }
    }
}

/// Target `hfile_block`: block framing and every block-contents decoder (data block with
/// seeks on the checked and unchecked paths, index, bloom, file info, trailer).
pub fn hfile_block(data: &[u8]) {
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
}

/// Target `manifest_edit`: the version edit decoder (a decoded edit must round-trip) and
/// applying the edit to an empty manifest state.
pub fn manifest_edit(data: &[u8]) {
    if let Ok(edit) = VersionEdit::decode(data) {
        match VersionEdit::decode(&edit.encode()) {
            Ok(back) => assert_eq!(back, edit),
            Err(e) => panic!("re-encoded version edit does not decode: {e:?}"),
        }
        let mut state = ManifestState::default();
        let _ = state.apply(&edit);
    }
}

/// Target `catalog`: [`Catalog::decode`], the decoder `Catalog::load` uses, on the bytes
/// as given and on the bytes as a payload behind a valid header (so mutations reach the
/// payload parser instead of stopping at the checksum). A catalog that decodes must
/// decode again, to the same value, after re-encoding.
pub fn catalog(data: &[u8]) {
    let file = Path::new("catalog");
    for raw in [data.to_vec(), catalog::frame(data)] {
        if let Ok(c) = Catalog::decode(&raw, file) {
            match Catalog::decode(&c.encode(), file) {
                Ok(back) => assert_eq!(back, c),
                Err(e) => panic!("re-encoded catalog does not decode: {e}"),
            }
        }
    }
}

/// Target `bulk_commit`: the bulk-load commit record decoder (`CommitRecord::decode`, as
/// recovery uses it), on the bytes as given and as a payload behind a valid magic, version
/// and frame header (so mutations reach the payload parser). A record that decodes must
/// decode again, to the same value, after re-encoding.
pub fn bulk_commit(data: &[u8]) {
    let mut framed = COMMIT_MAGIC.to_vec();
    framed.push(COMMIT_VERSION);
    crate::coding::put_frame(&mut framed, data);
    for raw in [data, &framed[..]] {
        if let Ok(r) = CommitRecord::decode(raw) {
            match CommitRecord::decode(&r.encode()) {
                Ok(back) => assert_eq!(back, r),
                Err(e) => panic!("re-encoded commit record does not decode: {e:?}"),
            }
        }
    }
}
