//! The RDB reader: the sets of a Redis RDB file (`server/docs/rdb.md`), checked whole
//! before anything reaches a keyspace.

use std::collections::HashSet;
use std::path::Path;

use bytes::Bytes;

use super::{MAGIC, MAX_VERSION, crc64, lzf, op, ty, type_name};
use crate::error::ServerError;
use crate::resp::keyspace::{Keyspace, Set};

/// The largest key or member we accept (`proto-max-bulk-len`).
const MAX_STRING: u64 = 512 * 1024 * 1024;

/// What a file held: its keys (with absolute expiries in ms), and what was left out.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Every key with its members and expiry.
    pub keys: Vec<(Bytes, Set, Option<i64>)>,
    /// Keys not loaded because their expiry had passed (as Redis's master does).
    pub expired: u64,
    /// The aux fields (`redis-ver`, ...).
    pub aux: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Decoded {
    /// Puts every key into `ks` (an import replaces keys of the same name).
    pub fn load_into(self, ks: &mut Keyspace) {
        for (key, set, expire_at) in self.keys {
            ks.insert(&key, set, expire_at);
        }
    }
}

enum Fail {
    Corrupt(String),
    Unsupported { key: Vec<u8>, what: String },
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

type R<T> = Result<T, Fail>;

fn corrupt<T>(msg: impl Into<String>) -> R<T> {
    Err(Fail::Corrupt(msg.into()))
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: u64) -> R<&'a [u8]> {
        let left = (self.buf.len() - self.pos) as u64;
        if n > left {
            return corrupt(format!("{n} bytes needed, {left} left"));
        }
        let n = n as usize;
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> R<u8> {
        Ok(self.take(1)?[0])
    }

    fn fixed<const N: usize>(&mut self) -> R<[u8; N]> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N as u64)?);
        Ok(a)
    }

    /// A length, or `Err(special)` with the 6-bit special encoding of a string.
    fn length_or_special(&mut self) -> R<Result<u64, u8>> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Ok(u64::from(b & 0x3f)),
            1 => Ok((u64::from(b & 0x3f) << 8) | u64::from(self.u8()?)),
            2 => match b {
                0x80 => Ok(u64::from(u32::from_be_bytes(self.fixed()?))),
                0x81 => Ok(u64::from_be_bytes(self.fixed()?)),
                _ => return corrupt(format!("unknown length encoding {b:#04x}")),
            },
            _ => Err(b & 0x3f),
        })
    }

    fn length(&mut self) -> R<u64> {
        match self.length_or_special()? {
            Ok(n) => Ok(n),
            Err(_) => corrupt("an encoded string where a length belongs"),
        }
    }

    fn string(&mut self) -> R<Vec<u8>> {
        match self.length_or_special()? {
            Ok(n) => {
                if n > MAX_STRING {
                    return corrupt(format!("string of {n} bytes, past proto-max-bulk-len"));
                }
                Ok(self.take(n)?.to_vec())
            }
            Err(0) => Ok((self.u8()? as i8).to_string().into_bytes()),
            Err(1) => Ok(i16::from_le_bytes(self.fixed()?).to_string().into_bytes()),
            Err(2) => Ok(i32::from_le_bytes(self.fixed()?).to_string().into_bytes()),
            Err(3) => {
                let clen = self.length()?;
                let ulen = self.length()?;
                if ulen > MAX_STRING {
                    return corrupt(format!(
                        "LZF string of {ulen} bytes, past proto-max-bulk-len"
                    ));
                }
                let data = self.take(clen)?;
                lzf::decompress(data, ulen as usize).map_err(Fail::Corrupt)
            }
            Err(e) => corrupt(format!("unknown string encoding {e}")),
        }
    }
}

fn insert(set: &mut Set, m: &[u8]) -> R<()> {
    match set.insert(m) {
        Ok(true) => Ok(()),
        Ok(false) => corrupt("a set holds the same member twice"),
        Err(_) => corrupt("a set past 2^32-1 members"),
    }
}

fn intset(blob: &[u8]) -> R<Set> {
    if blob.len() < 8 {
        return corrupt("intset shorter than its header");
    }
    let width = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    let n = u32::from_le_bytes([blob[4], blob[5], blob[6], blob[7]]) as usize;
    if !matches!(width, 2 | 4 | 8) {
        return corrupt(format!("intset encoding {width}"));
    }
    if n.checked_mul(width).and_then(|b| b.checked_add(8)) != Some(blob.len()) {
        return corrupt(format!(
            "intset of {n} x {width} bytes in {} bytes",
            blob.len()
        ));
    }
    let mut set = Set::with_capacity(n);
    let mut prev: Option<i64> = None;
    for c in blob[8..].chunks_exact(width) {
        let v = match width {
            2 => i64::from(i16::from_le_bytes([c[0], c[1]])),
            4 => i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            _ => i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]),
        };
        if prev.is_some_and(|p| p >= v) {
            return corrupt("intset not in ascending order");
        }
        prev = Some(v);
        insert(&mut set, v.to_string().as_bytes())?;
    }
    Ok(set)
}

/// Bytes of a listpack entry's back-length for an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        2_097_152..=268_435_455 => 4,
        _ => 5,
    }
}

fn listpack(blob: &[u8]) -> R<Set> {
    if blob.len() < 7 || blob[blob.len() - 1] != 0xFF {
        return corrupt("listpack without its header or end byte");
    }
    let total = u32::from_le_bytes([blob[0], blob[1], blob[2], blob[3]]) as usize;
    if total != blob.len() {
        return corrupt(format!("listpack says {total} bytes, holds {}", blob.len()));
    }
    let declared = u16::from_le_bytes([blob[4], blob[5]]);
    let body = &blob[6..blob.len() - 1];
    let mut set = Set::new();
    let mut i = 0;
    let mut n = 0usize;
    while i < body.len() {
        let b = body[i];
        let need = |k: usize| -> R<&[u8]> {
            body.get(i..i + k)
                .ok_or(Fail::Corrupt("listpack entry past its end".into()))
        };
        let (member, size): (Vec<u8>, usize) = if b & 0x80 == 0 {
            ((b & 0x7f).to_string().into_bytes(), 1)
        } else if b & 0xC0 == 0x80 {
            let l = usize::from(b & 0x3f);
            (need(1 + l)?[1..].to_vec(), 1 + l)
        } else if b & 0xE0 == 0xC0 {
            let e = need(2)?;
            let raw = (u16::from(e[0] & 0x1f) << 8) | u16::from(e[1]);
            // 13-bit two's complement.
            let v = ((raw << 3) as i16) >> 3;
            (v.to_string().into_bytes(), 2)
        } else if b & 0xF0 == 0xE0 {
            let e = need(2)?;
            let l = (usize::from(e[0] & 0x0f) << 8) | usize::from(e[1]);
            (need(2 + l)?[2..].to_vec(), 2 + l)
        } else {
            match b {
                0xF0 => {
                    let e = need(5)?;
                    let l = u32::from_le_bytes([e[1], e[2], e[3], e[4]]) as usize;
                    (need(5 + l)?[5..].to_vec(), 5 + l)
                }
                0xF1 => {
                    let e = need(3)?;
                    (i16::from_le_bytes([e[1], e[2]]).to_string().into_bytes(), 3)
                }
                0xF2 => {
                    let e = need(4)?;
                    let v = i32::from_le_bytes([0, e[1], e[2], e[3]]) >> 8;
                    (v.to_string().into_bytes(), 4)
                }
                0xF3 => {
                    let e = need(5)?;
                    (
                        i32::from_le_bytes([e[1], e[2], e[3], e[4]])
                            .to_string()
                            .into_bytes(),
                        5,
                    )
                }
                0xF4 => {
                    let e = need(9)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&e[1..9]);
                    (i64::from_le_bytes(a).to_string().into_bytes(), 9)
                }
                _ => return corrupt(format!("listpack entry encoding {b:#04x}")),
            }
        };
        i += size + backlen_size(size);
        if i > body.len() {
            return corrupt("listpack back-length past its end");
        }
        insert(&mut set, &member)?;
        n += 1;
    }
    // 65535 means "count unknown" in a listpack header.
    if declared != u16::MAX && usize::from(declared) != n {
        return corrupt(format!("listpack says {declared} entries, holds {n}"));
    }
    Ok(set)
}

fn body(r: &mut Reader<'_>, now_ms: i64) -> R<Decoded> {
    let mut out = Decoded::default();
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    let mut expire: Option<i64> = None;
    loop {
        let at = r.pos;
        let t = r.u8()?;
        match t {
            op::AUX => {
                let k = r.string()?;
                let v = r.string()?;
                out.aux.push((k, v));
            }
            op::SELECTDB => {
                let db = r.length()?;
                if db != 0 {
                    return Err(Fail::Unsupported {
                        key: Vec::new(),
                        what: format!("database {db}"),
                    });
                }
            }
            op::RESIZEDB => {
                r.length()?;
                r.length()?;
            }
            op::EXPIRETIME_MS => {
                expire = Some(i64::from_le_bytes(r.fixed()?));
            }
            op::EXPIRETIME => {
                expire = Some(i64::from(u32::from_le_bytes(r.fixed()?)) * 1000);
            }
            op::IDLE => {
                r.length()?;
            }
            op::FREQ => {
                r.u8()?;
            }
            op::MODULE_AUX | op::FUNCTION2 | op::FUNCTION_PRE_GA => {
                return Err(Fail::Unsupported {
                    key: Vec::new(),
                    what: if t == op::MODULE_AUX {
                        "module data"
                    } else {
                        "functions"
                    }
                    .into(),
                });
            }
            op::EOF => return Ok(out),
            ty::SET | ty::SET_INTSET | ty::SET_LISTPACK => {
                let key = r.string()?;
                let set = match t {
                    ty::SET => {
                        let n = r.length()?;
                        // Each member takes at least one byte: bounds the allocation.
                        if n > (r.buf.len() - r.pos) as u64 {
                            return corrupt(format!("set of {n} members in fewer bytes"));
                        }
                        // Reserved up to a bound: a forged count costs nothing up front.
                        let mut set = Set::with_capacity((n as usize).min(1 << 16));
                        for _ in 0..n {
                            let m = r.string()?;
                            insert(&mut set, &m)?;
                        }
                        set
                    }
                    ty::SET_INTSET => intset(&r.string()?)?,
                    _ => listpack(&r.string()?)?,
                };
                if !seen.insert(key.clone()) {
                    return corrupt(format!("key {:?} twice", String::from_utf8_lossy(&key)));
                }
                if set.is_empty() {
                    return corrupt("an empty set");
                }
                match expire.take() {
                    Some(ms) if ms <= now_ms => out.expired += 1,
                    e => out.keys.push((Bytes::from(key), set, e)),
                }
            }
            other => {
                // A value of another type: name its key if it can be read.
                let mut probe = Reader {
                    buf: r.buf,
                    pos: r.pos,
                };
                let key = probe.string().unwrap_or_default();
                r.pos = at;
                return Err(Fail::Unsupported {
                    key,
                    what: type_name(other).into(),
                });
            }
        }
    }
}

/// Decodes a whole RDB file; keys whose expiry is at or before `now_ms` are left out.
///
/// # Errors
/// [`ServerError::RdbCorrupted`] for a bad magic, version, structure or checksum;
/// [`ServerError::RdbUnsupported`] for anything but sets in database 0. Nothing is
/// returned on error: a file is loaded whole or not at all.
pub fn decode(bytes: &[u8], path: &Path, now_ms: i64) -> Result<Decoded, ServerError> {
    let corrupted = |offset: usize, reason: String| ServerError::RdbCorrupted {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason,
    };
    if bytes.len() < 9 || &bytes[..5] != MAGIC {
        return Err(corrupted(0, "not an RDB file (no REDIS magic)".into()));
    }
    let version = std::str::from_utf8(&bytes[5..9])
        .ok()
        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(v) if (1..=MAX_VERSION).contains(&v) => {}
        _ => {
            return Err(corrupted(
                5,
                format!(
                    "RDB version {:?} (we read 1 to {MAX_VERSION})",
                    String::from_utf8_lossy(&bytes[5..9])
                ),
            ));
        }
    }
    let mut r = Reader { buf: bytes, pos: 9 };
    let decoded = match body(&mut r, now_ms) {
        Ok(d) => d,
        Err(Fail::Corrupt(reason)) => return Err(corrupted(r.pos, reason)),
        Err(Fail::Unsupported { key, what }) => {
            return Err(ServerError::RdbUnsupported {
                path: path.to_path_buf(),
                offset: r.pos as u64,
                key: String::from_utf8_lossy(&key).into_owned(),
                what,
            });
        }
    };
    // Version 5 and later end with a CRC-64 of everything before it (0: not computed).
    let end = r.pos;
    let rest = &bytes[end..];
    if version.unwrap_or(0) >= 5 {
        if rest.len() != 8 {
            return Err(corrupted(
                end,
                format!("{} bytes after EOF, 8 expected", rest.len()),
            ));
        }
        let mut a = [0u8; 8];
        a.copy_from_slice(rest);
        let stored = u64::from_le_bytes(a);
        let computed = crc64::update(0, &bytes[..end]);
        if stored != 0 && stored != computed {
            return Err(corrupted(
                end,
                format!("checksum {stored:#018x}, computed {computed:#018x}"),
            ));
        }
    } else if !rest.is_empty() {
        return Err(corrupted(end, "bytes after EOF".into()));
    }
    Ok(decoded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listpack set as Redis 7.2 writes one (type 20): every entry encoding we read.
    pub(crate) fn listpack_rdb() -> Vec<u8> {
        let mut lp = Vec::new();
        lp.extend_from_slice(&[0x81, b'a', 2]); // 6-bit string "a"
        lp.extend_from_slice(&[0x05, 1]); // 7-bit uint 5
        lp.extend_from_slice(&[0xDF, 0x9C, 2]); // 13-bit int -100
        lp.extend_from_slice(&[0xF2, 0x70, 0x11, 0x01, 4]); // int24 70000
        lp.extend_from_slice(&[0xF1, 0x00, 0x80, 3]); // int16 -32768
        lp.extend_from_slice(&[0xE0, 100]); // 12-bit string of 100 bytes
        lp.extend_from_slice(&[b'z'; 100]);
        lp.push(102); // back-length of a 102-byte entry
        let mut blob = Vec::new();
        blob.extend_from_slice(&((6 + lp.len() + 1) as u32).to_le_bytes());
        blob.extend_from_slice(&6u16.to_le_bytes());
        blob.extend_from_slice(&lp);
        blob.push(0xFF);
        let mut f = b"REDIS0011".to_vec();
        f.extend_from_slice(&[op::SELECTDB, 0, ty::SET_LISTPACK, 2, b'l', b'p']);
        f.push(0x40 | (blob.len() >> 8) as u8);
        f.push(blob.len() as u8);
        f.extend_from_slice(&blob);
        f.push(op::EOF);
        let crc = crc64::update(0, &f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    }

    #[test]
    fn listpack_sets_of_redis_7_2_are_read() {
        let d = decode(&listpack_rdb(), Path::new("lp.rdb"), 0).unwrap();
        let (key, set, expire) = &d.keys[0];
        assert_eq!((&key[..], *expire), (&b"lp"[..], None));
        let mut got: Vec<Vec<u8>> = set.iter().map(|m| m.as_bytes().to_vec()).collect();
        got.sort();
        let mut want: Vec<Vec<u8>> = ["-100", "-32768", "5", "70000", "a"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
        want.push(vec![b'z'; 100]);
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn wrong_counts_and_encodings_are_corruption() {
        let good = listpack_rdb();
        // The listpack's declared entry count (6) at its offset: say 5 instead.
        let at = 9 + 6 + 2 + 4;
        let mut bad = good[..good.len() - 8].to_vec();
        bad[at] = 5;
        let crc = crc64::update(0, &bad);
        bad.extend_from_slice(&crc.to_le_bytes());
        let e = decode(&bad, Path::new("x"), 0).unwrap_err();
        assert!(
            e.to_string().contains("listpack says 5 entries, holds 6"),
            "{e}"
        );
        // A version we do not know.
        let mut v = good.clone();
        v[5..9].copy_from_slice(b"0012");
        assert!(decode(&v, Path::new("x"), 0).is_err());
    }
}
