//! The RDB writer: a keyspace as Redis 7.0 writes it (`server/docs/rdb.md`, "What we
//! write").

use super::{INTSET_MAX_ENTRIES, MAGIC, VERSION, crc64, op, ty};
use crate::resp::frame::parse_i64;
use crate::resp::keyspace::Keyspace;

fn length(out: &mut Vec<u8>, n: u64) {
    if n < 1 << 6 {
        out.push(n as u8);
    } else if n < 1 << 14 {
        out.push(0x40 | (n >> 8) as u8);
        out.push(n as u8);
    } else if n <= u64::from(u32::MAX) {
        out.push(0x80);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0x81);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    length(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn aux(out: &mut Vec<u8>, k: &str, v: &str) {
    out.push(op::AUX);
    string(out, k.as_bytes());
    string(out, v.as_bytes());
}

/// The members as an intset blob, when Redis 7.0 would keep them as one: at most
/// [`INTSET_MAX_ENTRIES`], all canonical decimal `i64`s.
fn intset<'a>(members: impl ExactSizeIterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    if members.len() > INTSET_MAX_ENTRIES {
        return None;
    }
    let mut ints = Vec::with_capacity(members.len());
    for m in members {
        ints.push(parse_i64(m)?);
    }
    ints.sort_unstable();
    let width: usize = if ints.iter().all(|&i| i16::try_from(i).is_ok()) {
        2
    } else if ints.iter().all(|&i| i32::try_from(i).is_ok()) {
        4
    } else {
        8
    };
    let mut blob = Vec::with_capacity(8 + width * ints.len());
    blob.extend_from_slice(&(width as u32).to_le_bytes());
    blob.extend_from_slice(&(ints.len() as u32).to_le_bytes());
    for i in ints {
        blob.extend_from_slice(&i.to_le_bytes()[..width]);
    }
    Some(blob)
}

/// Encodes every live key of `ks` as an RDB file; `ctime` (Unix seconds) and `used_mem`
/// go into the aux fields.
pub fn encode(ks: &Keyspace, ctime: i64, used_mem: u64) -> Vec<u8> {
    let now = ks.now_ms();
    let mut out = Vec::with_capacity(128 + ks.len() * 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(format!("{VERSION:04}").as_bytes());
    aux(&mut out, "redis-ver", "7.0.15");
    aux(&mut out, "redis-bits", "64");
    aux(&mut out, "ctime", &ctime.to_string());
    aux(&mut out, "used-mem", &used_mem.to_string());
    aux(&mut out, "aof-base", "0");
    let live: Vec<_> = ks.iter().filter(|(_, e)| ks.is_live_at(e, now)).collect();
    out.push(op::SELECTDB);
    length(&mut out, 0);
    out.push(op::RESIZEDB);
    length(&mut out, live.len() as u64);
    length(
        &mut out,
        live.iter().filter(|(_, e)| e.expire_at.is_some()).count() as u64,
    );
    for (key, e) in live {
        if let Some(at) = e.expire_at {
            out.push(op::EXPIRETIME_MS);
            out.extend_from_slice(&at.to_le_bytes());
        }
        match intset(e.set.iter().map(|m| m.as_bytes())) {
            Some(blob) => {
                out.push(ty::SET_INTSET);
                string(&mut out, key);
                string(&mut out, &blob);
            }
            None => {
                out.push(ty::SET);
                string(&mut out, key);
                length(&mut out, e.set.len() as u64);
                for m in &e.set {
                    string(&mut out, m.as_bytes());
                }
            }
        }
    }
    out.push(op::EOF);
    let crc = crc64::update(0, &out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_use_the_narrowest_form() {
        for (n, want) in [
            (0u64, &[0x00][..]),
            (63, &[0x3f]),
            (64, &[0x40, 0x40]),
            (16383, &[0x7f, 0xff]),
            (16384, &[0x80, 0, 0, 0x40, 0]),
            (1 << 32, &[0x81, 0, 0, 0, 1, 0, 0, 0, 0]),
        ] {
            let mut out = Vec::new();
            length(&mut out, n);
            assert_eq!(out, want, "{n}");
        }
    }

    #[test]
    fn intsets_only_for_small_canonical_integer_sets() {
        let blob = intset([&b"3"[..], b"-5", b"1", b"2"].into_iter()).unwrap();
        assert_eq!(blob, [2, 0, 0, 0, 4, 0, 0, 0, 0xfb, 0xff, 1, 0, 2, 0, 3, 0]);
        assert_eq!(intset([&b"70000"[..]].into_iter()).unwrap()[0], 4);
        assert_eq!(
            intset([&b"-9223372036854775808"[..]].into_iter()).unwrap()[0],
            8
        );
        for not_int in [
            &b"01"[..],
            b"+1",
            b"-0",
            b"1.0",
            b"a",
            b"9223372036854775808",
        ] {
            assert!(intset([not_int].into_iter()).is_none(), "{not_int:?}");
        }
        let many: Vec<Vec<u8>> = (0..513).map(|i: i32| i.to_string().into_bytes()).collect();
        assert!(intset(many.iter().map(Vec::as_slice)).is_none());
    }
}
