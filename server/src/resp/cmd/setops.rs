//! Multi-set algebra: SINTER, SUNION, SDIFF, SINTERCARD and the *STORE variants.
//!
//! Missing keys are empty sets. *STORE replaces the destination (dropping its TTL, as
//! Redis's `setKey` does), deletes it when the result is empty, and goes to the AOF as
//! `DEL` + `SADD` of the result so that replay does not depend on the sources.

use std::collections::HashSet;

use bytes::Bytes;

use super::{ERR_SYNTAX, arg_i64, is};
use crate::resp::keyspace::{Keyspace, Set};
use crate::resp::member::Member;
use crate::resp::state::Client;
use crate::resp::state::Shared;

#[derive(Clone, Copy, PartialEq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// Computes the operation over `keys`, returning borrowed members.
fn compute<'a>(ks: &'a Keyspace, keys: &[Bytes], op: Op, limit: usize) -> Vec<&'a [u8]> {
    let now = ks.now_ms();
    let sets: Vec<Option<&Set>> = keys
        .iter()
        .map(|k| {
            ks.iter_get(k)
                .filter(|e| ks.is_live_at(e, now))
                .map(|e| &e.set)
        })
        .collect();
    match op {
        Op::Inter => {
            if sets.iter().any(Option::is_none) {
                return Vec::new();
            }
            let mut sets: Vec<&Set> = sets.into_iter().flatten().collect();
            sets.sort_by_key(|s| s.len());
            let mut out = Vec::new();
            for m in sets[0] {
                if sets[1..].iter().all(|s| s.contains(m.as_bytes())) {
                    out.push(m.as_bytes());
                    if limit > 0 && out.len() >= limit {
                        break;
                    }
                }
            }
            out
        }
        Op::Union => {
            let mut seen: HashSet<&[u8]> = HashSet::new();
            for s in sets.into_iter().flatten() {
                seen.extend(s.iter().map(Member::as_bytes));
            }
            seen.into_iter().collect()
        }
        Op::Diff => {
            let Some(Some(first)) = sets.first() else {
                return Vec::new();
            };
            first
                .iter()
                .filter(|m| {
                    sets[1..]
                        .iter()
                        .flatten()
                        .all(|s| !s.contains(m.as_bytes()))
                })
                .map(Member::as_bytes)
                .collect()
        }
    }
}

fn read(s: &Shared, c: &mut Client, keys: &[Bytes], op: Op) {
    let mut ks = s.ks.lock();
    for k in keys {
        ks.expire_if_needed(k);
    }
    let r = compute(&ks, keys, op, 0);
    c.out.set_len(r.len());
    for m in r {
        c.out.bulk(m);
    }
}

fn store(s: &Shared, c: &mut Client, args: &[Bytes], op: Op) {
    let mut ks = s.ks.lock();
    for k in &args[2..] {
        ks.expire_if_needed(k);
    }
    let members = compute(&ks, &args[2..], op, 0);
    let mut set = Set::with_capacity(members.len());
    for m in members {
        if let Err(full) = set.insert(m) {
            drop(ks);
            c.out.error(&format!("ERR {full}"));
            return;
        }
    }
    let n = set.len();
    let dst = &args[1][..];
    let existed = ks.exists(dst);
    let mut cmd: Vec<Vec<u8>> = Vec::new();
    if n > 0 {
        cmd.push(b"SADD".to_vec());
        cmd.push(dst.to_vec());
        cmd.extend(set.iter().map(|m| m.as_bytes().to_vec()));
    }
    ks.insert(dst, set, None);
    // Two AOF commands for one client command: an atomic block (MULTI ... EXEC in the
    // file), so that a crash between them replays neither.
    ks.begin_atomic();
    if existed {
        ks.propagate(&[b"DEL", dst]);
    }
    if n > 0 {
        let v: Vec<&[u8]> = cmd.iter().map(Vec::as_slice).collect();
        ks.propagate(&v);
    }
    ks.end_atomic();
    drop(ks);
    c.out.int(n as i64);
}

/// SINTER key [key ...]
pub fn sinter(s: &Shared, c: &mut Client, a: &[Bytes]) {
    read(s, c, &a[1..], Op::Inter);
}
/// SUNION key [key ...]
pub fn sunion(s: &Shared, c: &mut Client, a: &[Bytes]) {
    read(s, c, &a[1..], Op::Union);
}
/// SDIFF key [key ...]
pub fn sdiff(s: &Shared, c: &mut Client, a: &[Bytes]) {
    read(s, c, &a[1..], Op::Diff);
}
/// SINTERSTORE destination key [key ...]
pub fn sinterstore(s: &Shared, c: &mut Client, a: &[Bytes]) {
    store(s, c, a, Op::Inter);
}
/// SUNIONSTORE destination key [key ...]
pub fn sunionstore(s: &Shared, c: &mut Client, a: &[Bytes]) {
    store(s, c, a, Op::Union);
}
/// SDIFFSTORE destination key [key ...]
pub fn sdiffstore(s: &Shared, c: &mut Client, a: &[Bytes]) {
    store(s, c, a, Op::Diff);
}

/// SINTERCARD numkeys key [key ...] [LIMIT limit]
pub fn sintercard(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let numkeys = match arg_i64(&args[1]) {
        Some(n) if n >= 1 => n as usize,
        _ => {
            c.out.error("ERR numkeys should be greater than 0");
            return;
        }
    };
    if numkeys > args.len() - 2 {
        c.out
            .error("ERR Number of keys can't be greater than number of args");
        return;
    }
    let mut limit = 0usize;
    let mut i = 2 + numkeys;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "limit") && more >= 1 {
            match arg_i64(&args[i + 1]) {
                Some(n) if n >= 0 => limit = n as usize,
                _ => {
                    c.out.error("ERR LIMIT can't be negative");
                    return;
                }
            }
            i += 2;
        } else {
            c.out.error(ERR_SYNTAX);
            return;
        }
    }
    let keys = &args[2..2 + numkeys];
    let mut ks = s.ks.lock();
    for k in keys {
        ks.expire_if_needed(k);
    }
    let n = compute(&ks, keys, Op::Inter, limit).len();
    drop(ks);
    c.out.int(n as i64);
}
