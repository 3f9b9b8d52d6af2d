//! The shutdown snapshot (`dump.snap`): the whole keyspace in one checksummed binary file.
//!
//! ```text
//! snapshot := magic:"SLSNAP01" supersedes:u64 nkeys:u64 key* crc32:u32
//!           | magic:"SLSNAP02" supersedes:u64 nkeys:u64 key* repl crc32:u32
//! key      := klen:u32 kbytes expire_ms:i64 (i64::MIN = none) nmembers:u32 member*
//! member   := mlen:u32 mbytes
//! repl     := master_replid:40 hex digits master_offset:u64  (a replica's: see the doc)
//! ```
//! Little-endian; the CRC-32 covers every byte before it. `supersedes` is the id of the AOF
//! whose content the snapshot already includes (see `aof`). Encoding and decoding only; the
//! file is written atomically by `aof`.

use std::path::Path;

use super::keyspace::{Keyspace, Set};
use crate::error::ServerError;

/// First bytes of a snapshot without replication state.
pub const MAGIC: &[u8; 8] = b"SLSNAP01";
/// First bytes of a replica's snapshot, which ends with its master's replid and offset.
pub const MAGIC_REPL: &[u8; 8] = b"SLSNAP02";
const NO_EXPIRE: i64 = i64::MIN;
/// Length of a Redis replication id.
const REPLID_LEN: usize = 40;

/// A replica's position in its master's stream: the master's replid and the offset up to
/// which the keyspace is that stream applied.
pub type ReplPosition = (String, u64);

/// Encodes every live key of `ks`.
pub fn encode(ks: &Keyspace, supersedes: u64) -> Vec<u8> {
    encode_with_repl(ks, supersedes, None)
}

/// Encodes every live key of `ks`, and `repl` if given (a `SLSNAP02` file; a replid that
/// is not 40 hex digits is not written, as it could not be read back).
pub fn encode_with_repl(ks: &Keyspace, supersedes: u64, repl: Option<&ReplPosition>) -> Vec<u8> {
    let repl = repl.filter(|(id, _)| valid_replid(id.as_bytes()));
    let now = ks.now_ms();
    let mut out = Vec::with_capacity(64 + ks.len() * 64);
    out.extend_from_slice(if repl.is_some() { MAGIC_REPL } else { MAGIC });
    out.extend_from_slice(&supersedes.to_le_bytes());
    let count_at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    let mut n = 0u64;
    for (key, e) in ks.iter() {
        if !ks.is_live_at(e, now) {
            continue;
        }
        n += 1;
        out.extend_from_slice(&(key.len() as u32).to_le_bytes());
        out.extend_from_slice(key);
        out.extend_from_slice(&e.expire_at.unwrap_or(NO_EXPIRE).to_le_bytes());
        out.extend_from_slice(&(e.set.len() as u32).to_le_bytes());
        for m in &e.set {
            let b = m.as_bytes();
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
    }
    out[count_at..count_at + 8].copy_from_slice(&n.to_le_bytes());
    if let Some((id, offset)) = repl {
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.buf.len() - self.pos < n {
            return Err(format!("truncated at byte {}", self.pos));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

fn valid_replid(id: &[u8]) -> bool {
    id.len() == REPLID_LEN && id.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Decodes a snapshot into `ks`; returns the id of the AOF it supersedes.
///
/// # Errors
/// [`ServerError::SnapshotCorrupted`] for a bad magic, checksum or structure.
pub fn decode(bytes: &[u8], path: &Path, ks: &mut Keyspace) -> Result<u64, ServerError> {
    decode_with_repl(bytes, path, ks).map(|(supersedes, _)| supersedes)
}

/// [`decode`], also returning a replica snapshot's position in its master's stream.
///
/// # Errors
/// As [`decode`]; also a replication id that is not 40 lower-case hex digits.
pub fn decode_with_repl(
    bytes: &[u8],
    path: &Path,
    ks: &mut Keyspace,
) -> Result<(u64, Option<ReplPosition>), ServerError> {
    let err = |reason: String| ServerError::SnapshotCorrupted {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() < MAGIC.len() + 20 {
        return Err(err("bad magic or too short".into()));
    }
    let with_repl = match &bytes[..8] {
        m if m == MAGIC => false,
        m if m == MAGIC_REPL => true,
        _ => return Err(err("bad magic or too short".into())),
    };
    let (body, tail) = bytes.split_at(bytes.len() - 4);
    let want = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    let got = crc32fast::hash(body);
    if want != got {
        return Err(err(format!(
            "checksum mismatch: stored {want:#010x}, computed {got:#010x}"
        )));
    }
    let mut r = Reader { buf: body, pos: 8 };
    let supersedes = r.u64().map_err(err)?;
    let n = r.u64().map_err(err)?;
    for _ in 0..n {
        let klen = r.u32().map_err(err)? as usize;
        let key = r.take(klen).map_err(err)?;
        let exp = i64::from_le_bytes(
            r.take(8)
                .map_err(err)?
                .try_into()
                .map_err(|_| err("expire".into()))?,
        );
        let count = r.u32().map_err(err)? as usize;
        let mut set = Set::with_capacity(count.min(body.len()));
        for _ in 0..count {
            let mlen = r.u32().map_err(err)? as usize;
            set.insert(r.take(mlen).map_err(err)?)
                .map_err(|full| err(full.to_string()))?;
        }
        ks.insert(key, set, (exp != NO_EXPIRE).then_some(exp));
    }
    let repl = if with_repl {
        let id = r.take(REPLID_LEN).map_err(err)?;
        if !valid_replid(id) {
            return Err(err(format!(
                "replication id at byte {} is not 40 hex digits",
                r.pos - REPLID_LEN
            )));
        }
        let offset = r.u64().map_err(err)?;
        Some((String::from_utf8_lossy(id).into_owned(), offset))
    } else {
        None
    };
    if r.pos != body.len() {
        return Err(err(format!("{} trailing bytes", body.len() - r.pos)));
    }
    Ok((supersedes, repl))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::clock::ManualClock;
    use std::sync::Arc;

    fn sample() -> Keyspace {
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(1000)));
        let mut s = Set::new();
        s.insert(b"V0042").unwrap();
        s.insert(&[7u8; 30]).unwrap();
        ks.insert(b"20261122", s.clone(), Some(5000));
        ks.insert(b"other", s, None);
        ks
    }

    #[test]
    fn round_trip() {
        let bytes = encode(&sample(), 77);
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(1000)));
        assert_eq!(decode(&bytes, Path::new("x"), &mut ks).unwrap(), 77);
        assert_eq!(ks.len(), 2);
        let e = ks.live(b"20261122").unwrap();
        assert_eq!(e.expire_at, Some(5000));
        assert!(e.set.contains(&b"V0042"[..]));
    }

    /// The worked example of `server/docs/resp_persistence.md` ("Snapshot"), byte for byte.
    #[test]
    fn doc_example_bytes() {
        let doc = "53 4c 53 4e 41 50 30 31 03 00 00 00 00 00 00 00 \
                   01 00 00 00 00 00 00 00 08 00 00 00 32 30 32 36 \
                   31 31 32 32 00 f8 99 24 a2 01 00 00 01 00 00 00 \
                   05 00 00 00 56 30 30 34 32 ce e1 37 f8";
        let want: Vec<u8> = doc
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(1_795_300_000_000)));
        let mut s = Set::new();
        s.insert(b"V0042").unwrap();
        ks.insert(b"20261122", s, Some(1_795_910_400_000));
        assert_eq!(encode(&ks, 3), want);
        let mut back = Keyspace::new(Arc::new(ManualClock::new(1_795_300_000_000)));
        assert_eq!(decode(&want, Path::new("x"), &mut back).unwrap(), 3);
        let e = back.live(b"20261122").unwrap();
        assert_eq!(e.expire_at, Some(1_795_910_400_000));
        assert!(e.set.contains(&b"V0042"[..]));
    }

    /// The `SLSNAP02` example of `server/docs/resp_persistence.md`, byte for byte.
    #[test]
    fn doc_example_with_replication() {
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(1_795_300_000_000)));
        let mut s = Set::new();
        s.insert(b"V0042").unwrap();
        ks.insert(b"20261122", s, Some(1_795_910_400_000));
        let pos = ("a".repeat(40), 7);
        let bytes = encode_with_repl(&ks, 3, Some(&pos));
        assert_eq!(bytes.len(), 109);
        assert_eq!(&bytes[..8], b"SLSNAP02");
        let plain = encode(&ks, 3);
        assert_eq!(
            &bytes[8..57],
            &plain[8..57],
            "same body as the SLSNAP01 example"
        );
        assert_eq!(&bytes[57..97], "a".repeat(40).as_bytes());
        assert_eq!(&bytes[97..105], &7u64.to_le_bytes());
        assert_eq!(&bytes[105..], &crc32fast::hash(&bytes[..105]).to_le_bytes());
        let mut back = Keyspace::new(Arc::new(ManualClock::new(1_795_300_000_000)));
        let (sup, got) = decode_with_repl(&bytes, Path::new("x"), &mut back).unwrap();
        assert_eq!((sup, got), (3, Some(pos)));
        assert_eq!(back.len(), 1);
        // A replid that could not be read back is not written.
        let bad = ("not hex".to_owned(), 1);
        assert_eq!(encode_with_repl(&ks, 3, Some(&bad)), plain);
    }

    #[test]
    fn a_replica_snapshot_with_a_bad_replid_is_refused() {
        let pos = ("b".repeat(40), 9);
        let mut bytes = encode_with_repl(&sample(), 1, Some(&pos));
        let at = bytes.len() - 4 - 8 - 40;
        bytes[at] = b'G';
        let n = bytes.len() - 4;
        let crc = crc32fast::hash(&bytes[..n]);
        bytes[n..].copy_from_slice(&crc.to_le_bytes());
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(0)));
        let e = decode_with_repl(&bytes, Path::new("x"), &mut ks).unwrap_err();
        assert!(e.to_string().contains("not 40 hex digits"), "{e}");
    }

    #[test]
    fn every_flipped_or_cut_byte_of_a_replica_snapshot_is_detected() {
        let pos = ("c".repeat(40), u64::MAX);
        let bytes = encode_with_repl(&sample(), 1, Some(&pos));
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let mut ks = Keyspace::new(Arc::new(ManualClock::new(0)));
            assert!(
                decode_with_repl(&b, Path::new("x"), &mut ks).is_err(),
                "flip at {i} not detected"
            );
            let mut ks = Keyspace::new(Arc::new(ManualClock::new(0)));
            assert!(
                decode_with_repl(&bytes[..i], Path::new("x"), &mut ks).is_err(),
                "cut at {i} not detected"
            );
        }
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = encode(&sample(), 1);
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let mut ks = Keyspace::new(Arc::new(ManualClock::new(0)));
            assert!(
                decode(&b, Path::new("x"), &mut ks).is_err(),
                "flip at {i} not detected"
            );
        }
    }
}
