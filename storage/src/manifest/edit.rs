//! Manifest edits and the state they build (`storage/docs/manifest_format.md` §3, §4):
//! [`VersionEdit`] with its tagged encoding, [`FileMeta`], and [`ManifestState`], whose
//! `apply` is a pure function of state and edit.
//!
//! This module does no I/O; `log` persists edits.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use crate::cell::{SeqNo, Timestamp};
use crate::coding::{DecodeError, Reader, put_bytes, put_u64, put_varint};
use crate::hfile::FileInfo;

/// Edit payload version (§3).
pub const EDIT_VERSION: u8 = 1;

const TAG_ADD_FILE: u64 = 1;
const TAG_REMOVE_FILE: u64 = 2;
const TAG_FLUSHED_SEQ: u64 = 3;
const TAG_NEXT_FILE_ID: u64 = 4;
const TAG_COMPACTION_BEGIN: u64 = 5;
const TAG_COMPACTION_END: u64 = 6;

/// What the manifest remembers about one HFile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMeta {
    /// File id (names the file: `hfile::file_name(id)`).
    pub id: u64,
    /// Size in bytes.
    pub size: u64,
    pub first_row: Bytes,
    pub last_row: Bytes,
    pub min_ts: Timestamp,
    pub max_ts: Timestamp,
    pub min_seq: SeqNo,
    pub max_seq: SeqNo,
    pub cell_count: u64,
    pub tombstone_count: u64,
}

impl FileMeta {
    /// The summary of a finished file.
    pub fn from_info(id: u64, size: u64, info: &FileInfo) -> FileMeta {
        FileMeta {
            id,
            size,
            first_row: info.first_key.row.clone(),
            last_row: info.last_key.row.clone(),
            min_ts: info.min_ts,
            max_ts: info.max_ts,
            min_seq: info.min_seq,
            max_seq: info.max_seq,
            cell_count: info.cell_count,
            tombstone_count: info.tombstone_count,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.id);
        put_varint(out, self.size);
        put_bytes(out, &self.first_row);
        put_bytes(out, &self.last_row);
        put_u64(out, self.min_ts);
        put_u64(out, self.max_ts);
        for v in [
            self.min_seq,
            self.max_seq,
            self.cell_count,
            self.tombstone_count,
        ] {
            put_varint(out, v);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<FileMeta, DecodeError> {
        Ok(FileMeta {
            id: r.varint("file id")?,
            size: r.varint("file size")?,
            first_row: Bytes::copy_from_slice(r.bytes("first row")?),
            last_row: Bytes::copy_from_slice(r.bytes("last row")?),
            min_ts: r.u64("min ts")?,
            max_ts: r.u64("max ts")?,
            min_seq: r.varint("min seq")?,
            max_seq: r.varint("max seq")?,
            cell_count: r.varint("cell count")?,
            tombstone_count: r.varint("tombstone count")?,
        })
    }
}

/// One atomic change to a region's file set (§3). Empty fields change nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VersionEdit {
    /// Files to add, with their family.
    pub add_files: Vec<(String, FileMeta)>,
    /// Files to remove: (family, id).
    pub remove_files: Vec<(String, u64)>,
    /// Every edit with a sequence number up to this is in a live file.
    pub flushed_seq: Option<SeqNo>,
    /// Lowest file id not yet used.
    pub next_file_id: Option<u64>,
    /// A compaction started: (output id, input ids).
    pub compaction_begin: Option<(u64, Vec<u64>)>,
    /// A compaction finished (its files were swapped in this or an earlier edit).
    pub compaction_end: Option<u64>,
}

fn field(out: &mut Vec<u8>, tag: u64, body: &[u8]) {
    put_varint(out, tag);
    put_bytes(out, body);
}

impl VersionEdit {
    /// Encodes the payload (§3).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![EDIT_VERSION];
        let mut body = Vec::new();
        for (family, meta) in &self.add_files {
            body.clear();
            put_bytes(&mut body, family.as_bytes());
            meta.encode(&mut body);
            field(&mut out, TAG_ADD_FILE, &body);
        }
        for (family, id) in &self.remove_files {
            body.clear();
            put_bytes(&mut body, family.as_bytes());
            put_varint(&mut body, *id);
            field(&mut out, TAG_REMOVE_FILE, &body);
        }
        let mut one = |tag, v: u64| {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            field(&mut out, tag, &b);
        };
        if let Some(s) = self.flushed_seq {
            one(TAG_FLUSHED_SEQ, s);
        }
        if let Some(n) = self.next_file_id {
            one(TAG_NEXT_FILE_ID, n);
        }
        if let Some(id) = self.compaction_end {
            one(TAG_COMPACTION_END, id);
        }
        if let Some((id, inputs)) = &self.compaction_begin {
            body.clear();
            put_varint(&mut body, *id);
            put_varint(&mut body, inputs.len() as u64);
            for i in inputs {
                put_varint(&mut body, *i);
            }
            field(&mut out, TAG_COMPACTION_BEGIN, &body);
        }
        out
    }

    /// Decodes a payload.
    ///
    /// # Errors
    /// A [`DecodeError`] for a bad version, unknown tag, repeated single-valued field,
    /// non-UTF-8 family, or a body not consumed exactly.
    pub fn decode(buf: &[u8]) -> Result<VersionEdit, DecodeError> {
        let mut r = Reader::new(buf);
        let v = r.u8("edit version")?;
        if v != EDIT_VERSION {
            return Err(DecodeError::new(
                0,
                format!("unknown manifest edit version {v}"),
            ));
        }
        let mut e = VersionEdit::default();
        while !r.is_empty() {
            let at = r.pos();
            let tag = r.varint("field tag")?;
            let body = r.bytes("field body")?;
            let base = r.pos() - body.len();
            let mut b = Reader::new(body);
            let shift = |d: DecodeError| DecodeError::new(base + d.offset, d.reason);
            let dup = || DecodeError::new(at, format!("field {tag} repeated"));
            let family = |b: &mut Reader<'_>| -> Result<String, DecodeError> {
                let f = b.bytes("family")?;
                String::from_utf8(f.to_vec())
                    .map_err(|_| DecodeError::new(0, "family is not UTF-8"))
            };
            match tag {
                TAG_ADD_FILE => {
                    let f = family(&mut b).map_err(shift)?;
                    let m = FileMeta::decode(&mut b).map_err(shift)?;
                    e.add_files.push((f, m));
                }
                TAG_REMOVE_FILE => {
                    let f = family(&mut b).map_err(shift)?;
                    e.remove_files
                        .push((f, b.varint("file id").map_err(shift)?));
                }
                TAG_FLUSHED_SEQ => {
                    if e.flushed_seq
                        .replace(b.varint("flushed seq").map_err(shift)?)
                        .is_some()
                    {
                        return Err(dup());
                    }
                }
                TAG_NEXT_FILE_ID => {
                    if e.next_file_id
                        .replace(b.varint("next file id").map_err(shift)?)
                        .is_some()
                    {
                        return Err(dup());
                    }
                }
                TAG_COMPACTION_BEGIN => {
                    let id = b.varint("compaction id").map_err(shift)?;
                    let n = b
                        .varint_usize("input count", b.remaining())
                        .map_err(shift)?;
                    let inputs = (0..n)
                        .map(|_| b.varint("input id"))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(shift)?;
                    if e.compaction_begin.replace((id, inputs)).is_some() {
                        return Err(dup());
                    }
                }
                TAG_COMPACTION_END => {
                    if e.compaction_end
                        .replace(b.varint("compaction id").map_err(shift)?)
                        .is_some()
                    {
                        return Err(dup());
                    }
                }
                other => {
                    return Err(DecodeError::new(
                        at,
                        format!("unknown manifest field tag {other}"),
                    ));
                }
            }
            if !b.is_empty() {
                return Err(DecodeError::new(
                    base + b.pos(),
                    format!("field {tag}: trailing bytes"),
                ));
            }
        }
        Ok(e)
    }
}

/// The region's file set as the manifest knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ManifestState {
    /// Live files per family, by id.
    pub files: BTreeMap<String, BTreeMap<u64, FileMeta>>,
    /// Highest sequence number whose edits are all in live files (0: none).
    pub flushed_seq: SeqNo,
    /// Lowest file id never used.
    pub next_file_id: u64,
    /// Compactions begun and not ended: output id → input ids.
    pub pending_compactions: BTreeMap<u64, Vec<u64>>,
}

impl ManifestState {
    /// Applies `edit` (§4), or explains why it does not fit this state (then `self` is
    /// unchanged).
    ///
    /// # Errors
    /// A reason string: removing a file that is not live, adding one that is, beginning a
    /// pending compaction again, ending one that is not pending.
    pub fn apply(&mut self, edit: &VersionEdit) -> Result<(), String> {
        let mut s = self.clone();
        for (family, id) in &edit.remove_files {
            let removed = s.files.get_mut(family).and_then(|m| m.remove(id));
            if removed.is_none() {
                return Err(format!(
                    "cannot remove file {id} of family '{family}': not live"
                ));
            }
            if s.files.get(family).is_some_and(BTreeMap::is_empty) {
                s.files.remove(family);
            }
        }
        let live = s.live_file_ids();
        for (family, meta) in &edit.add_files {
            if live.contains(&meta.id)
                || s.files
                    .get(family)
                    .is_some_and(|m| m.contains_key(&meta.id))
            {
                return Err(format!(
                    "cannot add file {} to family '{family}': id already live",
                    meta.id
                ));
            }
            s.next_file_id = s.next_file_id.max(meta.id.saturating_add(1));
            s.files
                .entry(family.clone())
                .or_default()
                .insert(meta.id, meta.clone());
        }
        if let Some(seq) = edit.flushed_seq {
            s.flushed_seq = s.flushed_seq.max(seq);
        }
        if let Some(n) = edit.next_file_id {
            s.next_file_id = s.next_file_id.max(n);
        }
        if let Some((id, inputs)) = &edit.compaction_begin {
            if s.pending_compactions.insert(*id, inputs.clone()).is_some() {
                return Err(format!("compaction {id} already pending"));
            }
            s.next_file_id = s.next_file_id.max(id.saturating_add(1));
        }
        if let Some(id) = edit.compaction_end
            && s.pending_compactions.remove(&id).is_none()
        {
            return Err(format!("compaction {id} is not pending"));
        }
        *self = s;
        Ok(())
    }

    /// Ids of every live file.
    pub fn live_file_ids(&self) -> BTreeSet<u64> {
        self.files
            .values()
            .flat_map(|m| m.keys().copied())
            .collect()
    }

    /// One edit that rebuilds this state from an empty one (log compaction).
    pub fn snapshot_edit(&self) -> VersionEdit {
        VersionEdit {
            add_files: self
                .files
                .iter()
                .flat_map(|(f, m)| m.values().map(move |meta| (f.clone(), meta.clone())))
                .collect(),
            remove_files: Vec::new(),
            flushed_seq: Some(self.flushed_seq),
            next_file_id: Some(self.next_file_id),
            compaction_begin: None,
            compaction_end: None,
        }
    }

    /// Edits that rebuild this state, including pending compactions (one edit each).
    pub fn snapshot_edits(&self) -> Vec<VersionEdit> {
        let mut v = vec![self.snapshot_edit()];
        for (id, inputs) in &self.pending_compactions {
            v.push(VersionEdit {
                compaction_begin: Some((*id, inputs.clone())),
                ..VersionEdit::default()
            });
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn meta(id: u64) -> FileMeta {
        FileMeta {
            id,
            size: 4096,
            first_row: Bytes::from_static(b"V0001"),
            last_row: Bytes::from_static(b"V0009"),
            min_ts: 1000,
            max_ts: 2000,
            min_seq: 1,
            max_seq: 42,
            cell_count: 100,
            tombstone_count: 3,
        }
    }

    fn full_edit() -> VersionEdit {
        VersionEdit {
            add_files: vec![("cf1".into(), meta(5)), ("cf2".into(), meta(6))],
            remove_files: vec![("cf1".into(), 2)],
            flushed_seq: Some(42),
            next_file_id: Some(9),
            compaction_begin: Some((7, vec![2, 3])),
            compaction_end: Some(4),
        }
    }

    #[test]
    fn doc_example_bytes() {
        let e = VersionEdit {
            add_files: vec![("cf1".into(), meta(5))],
            flushed_seq: Some(42),
            ..VersionEdit::default()
        };
        let mut framed = Vec::new();
        crate::coding::put_frame(&mut framed, &e.encode());
        let hex: Vec<String> = framed.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex.join(" "),
            "2c ca 69 09 2d 00 00 00 01 01 27 03 63 66 31 05 80 20 05 56 30 30 30 31 05 56 30 30 \
             30 39 e8 03 00 00 00 00 00 00 d0 07 00 00 00 00 00 00 01 2a 64 03 03 01 2a"
        );
    }

    #[test]
    fn round_trip_and_flips_never_panic() {
        let e = full_edit();
        let enc = e.encode();
        assert_eq!(VersionEdit::decode(&enc).unwrap(), e);
        assert_eq!(
            VersionEdit::decode(&VersionEdit::default().encode()).unwrap(),
            VersionEdit::default()
        );
        for n in 1..enc.len() {
            let _ = VersionEdit::decode(&enc[..n]);
        }
        for p in 0..enc.len() {
            let mut m = enc.clone();
            m[p] ^= 0xff;
            let _ = VersionEdit::decode(&m);
        }
    }

    #[test]
    fn apply_rules() {
        let mut s = ManifestState::default();
        let add = |f: &str, id| VersionEdit {
            add_files: vec![(f.into(), meta(id))],
            ..VersionEdit::default()
        };
        s.apply(&add("cf1", 1)).unwrap();
        s.apply(&add("cf1", 2)).unwrap();
        assert_eq!(s.next_file_id, 3);
        assert!(
            s.apply(&add("cf2", 2)).is_err(),
            "id live in another family"
        );
        let before = s.clone();
        let bad = VersionEdit {
            add_files: vec![("cf1".into(), meta(3))],
            remove_files: vec![("cf1".into(), 99)],
            ..VersionEdit::default()
        };
        assert!(s.apply(&bad).is_err());
        assert_eq!(s, before, "a refused edit changes nothing");
        s.apply(&VersionEdit {
            flushed_seq: Some(10),
            ..VersionEdit::default()
        })
        .unwrap();
        s.apply(&VersionEdit {
            flushed_seq: Some(5),
            ..VersionEdit::default()
        })
        .unwrap();
        assert_eq!(s.flushed_seq, 10, "flushed seq never decreases");
        s.apply(&VersionEdit {
            compaction_begin: Some((7, vec![1, 2])),
            ..VersionEdit::default()
        })
        .unwrap();
        assert_eq!(s.next_file_id, 8);
        let swap = VersionEdit {
            add_files: vec![("cf1".into(), meta(7))],
            remove_files: vec![("cf1".into(), 1), ("cf1".into(), 2)],
            compaction_end: Some(7),
            ..VersionEdit::default()
        };
        s.apply(&swap).unwrap();
        assert!(s.pending_compactions.is_empty());
        assert_eq!(s.live_file_ids().into_iter().collect::<Vec<_>>(), vec![7]);
        let mut rebuilt = ManifestState::default();
        for e in s.snapshot_edits() {
            rebuilt.apply(&e).unwrap();
        }
        assert_eq!(rebuilt, s);
    }
}
