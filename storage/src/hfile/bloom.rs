//! The bloom filter of an HFile (`hfile_format.md` §5): a cache-line-blocked bit array —
//! every probe of one key lands in the same 64-byte line, so a lookup costs one cache miss
//! instead of k — answering "is this row (or column) possibly in the file?" with no false
//! negatives and ~1% false positives at 10 bits per key.
//!
//! This module does not decide which keys to add; `writer` does (rows, columns, and rows
//! with family deletes).

use crate::coding::{DecodeError, Reader, put_u32};

/// Key tag: a row (§5).
const TAG_ROW: u8 = 1;
/// Key tag: a row and qualifier (§5).
const TAG_ROWCOL: u8 = 2;
/// Key tag: a row holding a DeleteFamily marker (§5).
const TAG_FAMILY_DELETE: u8 = 3;

/// Bits per cache line: every probe of a key stays inside one line (§5).
const LINE_BITS: u64 = 512;
/// Largest bloom (bits) a file may declare: the largest multiple of 512 below 2^32.
const MAX_BITS: u64 = (u32::MAX as u64 / LINE_BITS) * LINE_BITS;

const M: u64 = 0x9E37_79B9_7F4A_7C15;

fn mix(mut h: u64, s: &[u8]) -> u64 {
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h ^ u64::from_le_bytes(w)).wrapping_mul(M).rotate_left(29);
    }
    let rem = chunks.remainder();
    let mut w = [0u8; 8];
    w[..rem.len()].copy_from_slice(rem);
    h = (h ^ u64::from_le_bytes(w) ^ ((s.len() as u64) << 56)).wrapping_mul(M);
    h.rotate_left(31)
}

fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The 64-bit hash of a bloom key `tag ++ a ++ b` (with `a`'s length mixed in).
pub fn hash(tag: u8, a: &[u8], b: &[u8]) -> u64 {
    let h = mix(u64::from(tag).wrapping_mul(M) ^ (a.len() as u64), a);
    fmix(mix(h, b))
}

/// Hash of a row key.
pub fn row_hash(row: &[u8]) -> u64 {
    hash(TAG_ROW, row, &[])
}

/// Hash of a row+qualifier key.
pub fn rowcol_hash(row: &[u8], qualifier: &[u8]) -> u64 {
    hash(TAG_ROWCOL, row, qualifier)
}

/// Hash of a "row has a DeleteFamily marker" key.
pub fn family_delete_hash(row: &[u8]) -> u64 {
    hash(TAG_FAMILY_DELETE, row, &[])
}

/// Which keys a bloom holds; persisted as a byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BloomKind {
    /// Rows only.
    Row = 1,
    /// Rows, columns and family-delete rows.
    RowCol = 2,
}

/// A bloom filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bloom {
    kind: BloomKind,
    k: u8,
    num_bits: u64,
    bits: Vec<u8>,
}

impl Bloom {
    /// Builds a filter holding `hashes` with `bits_per_key` bits per key.
    pub fn build(kind: BloomKind, hashes: &[u64], bits_per_key: u32) -> Bloom {
        let bpk = u64::from(bits_per_key.clamp(1, 64));
        let lines = (hashes.len() as u64 * bpk).div_ceil(LINE_BITS).max(1);
        let num_bits = (lines * LINE_BITS).min(MAX_BITS);
        let k = ((bpk as f64) * 0.69).round().clamp(1.0, 30.0) as u8;
        let mut bloom = Bloom {
            kind,
            k,
            num_bits,
            bits: vec![0u8; (num_bits / 8) as usize],
        };
        for &h in hashes {
            bloom.insert(h);
        }
        bloom
    }

    /// The probed bit positions of hash `h` (§5): line from the high half, then `k` bits
    /// inside the line by repeated addition of a delta from the low half.
    fn probes(&self, h: u64) -> impl Iterator<Item = u64> + use<> {
        let lines = self.num_bits / LINE_BITS;
        let base = ((h >> 32) % lines) * LINE_BITS;
        let mut a = h as u32;
        let delta = a.rotate_left(15) | 1;
        (0..self.k).map(move |_| {
            let bit = base + u64::from(a) % LINE_BITS;
            a = a.wrapping_add(delta);
            bit
        })
    }

    fn insert(&mut self, h: u64) {
        for bit in self.probes(h) {
            self.bits[(bit / 8) as usize] |= 1u8 << (bit % 8);
        }
    }

    /// False only if the key with this hash was certainly not added.
    pub fn may_contain_hash(&self, h: u64) -> bool {
        self.probes(h).all(|bit| {
            self.bits
                .get((bit / 8) as usize)
                .is_some_and(|b| b & (1u8 << (bit % 8)) != 0)
        })
    }

    /// What the filter holds.
    pub fn kind(&self) -> BloomKind {
        self.kind
    }

    /// Encodes the bloom block contents (§5).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + self.bits.len());
        out.push(self.kind as u8);
        out.push(self.k);
        put_u32(&mut out, self.num_bits as u32);
        out.extend_from_slice(&self.bits);
        out
    }

    /// Decodes bloom block contents.
    ///
    /// # Errors
    /// A [`DecodeError`] for an unknown kind, `k` outside 1..=30, zero bits, or a bit
    /// array of the wrong size.
    pub fn decode(buf: &[u8]) -> Result<Bloom, DecodeError> {
        let mut r = Reader::new(buf);
        let kind = match r.u8("bloom kind")? {
            1 => BloomKind::Row,
            2 => BloomKind::RowCol,
            other => return Err(DecodeError::new(0, format!("unknown bloom kind {other}"))),
        };
        let k = r.u8("bloom k")?;
        if !(1..=30).contains(&k) {
            return Err(DecodeError::new(1, format!("bloom k {k} outside 1..=30")));
        }
        let num_bits = u64::from(r.u32("bloom bits")?);
        if num_bits == 0 || num_bits % LINE_BITS != 0 || num_bits / 8 != r.remaining() as u64 {
            return Err(DecodeError::new(
                2,
                format!("bloom of {num_bits} bits with {} bytes", r.remaining()),
            ));
        }
        let bits = r.take(r.remaining(), "bloom bits")?.to_vec();
        Ok(Bloom {
            kind,
            k,
            num_bits,
            bits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the worked example of `hfile_format.md` §5: another reader implementing the
    /// documented hash and probe sequence gets these exact values.
    #[test]
    fn doc_example_hashes_and_probes() {
        assert_eq!(row_hash(b"r1"), 0xa5ca_3f4a_a107_25f5);
        assert_eq!(rowcol_hash(b"r1", b"q"), 0xedf7_b902_add0_c2f6);
        assert_eq!(family_delete_hash(b"r1"), 0xa822_e6d2_a493_6a27);
        let b = Bloom::build(BloomKind::Row, &[row_hash(b"r1")], 10);
        assert_eq!((b.num_bits, b.k), (512, 7));
        let probes: Vec<u64> = b.probes(row_hash(b"r1")).collect();
        assert_eq!(probes, [501, 120, 251, 382, 1, 132, 263]);
        let set: Vec<u64> = (0..512)
            .filter(|i| b.bits[(i / 8) as usize] & (1 << (i % 8)) != 0)
            .collect();
        assert_eq!(set, [1, 120, 132, 251, 263, 382, 501]);
    }

    #[test]
    fn no_false_negatives_and_about_one_percent_false_positives() {
        let keys: Vec<u64> = (0..10_000)
            .map(|i| row_hash(format!("V{i:04}20261122").as_bytes()))
            .collect();
        let b = Bloom::build(BloomKind::Row, &keys, 10);
        assert!(keys.iter().all(|&h| b.may_contain_hash(h)));
        let fp = (0..10_000)
            .filter(|i| b.may_contain_hash(row_hash(format!("X{i:04}20261122").as_bytes())))
            .count();
        assert!(fp < 200, "false positive rate {fp}/10000");
        eprintln!("bloom: {fp} false positives in 10000 at 10 bits/key");
        let d = Bloom::decode(&b.encode()).unwrap();
        assert_eq!(d, b);
    }

    #[test]
    fn tags_separate_key_spaces() {
        assert_ne!(row_hash(b"ab"), rowcol_hash(b"a", b"b"));
        assert_ne!(rowcol_hash(b"a", b"bc"), rowcol_hash(b"ab", b"c"));
        assert_ne!(row_hash(b"a"), family_delete_hash(b"a"));
    }

    #[test]
    fn garbage_never_panics() {
        let b = Bloom::build(BloomKind::RowCol, &[1, 2, 3], 10).encode();
        for n in 0..b.len() {
            assert!(Bloom::decode(&b[..n]).is_err());
        }
        for p in 0..b.len() {
            let mut m = b.clone();
            m[p] ^= 0xff;
            if let Ok(x) = Bloom::decode(&m) {
                let _ = x.may_contain_hash(12345);
            }
        }
    }
}
