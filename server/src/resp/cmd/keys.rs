//! Key commands: DEL/UNLINK, EXISTS, TYPE, KEYS, SCAN and RENAME.
//!
//! Every key is checked for expiry before it is reported (KEYS and SCAN skip expired keys
//! without deleting them in bulk; the active expiry loop reclaims them).

use bytes::Bytes;

use super::scan_opts;
use crate::resp::glob;
use crate::resp::state::Client;
use crate::resp::state::Shared;

/// DEL key [key ...] (also UNLINK)
pub fn del(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let mut deleted: Vec<&[u8]> = vec![b"DEL"];
    for k in &args[1..] {
        if ks.exists(k) && ks.remove(k).is_some() {
            deleted.push(k);
        }
    }
    let n = deleted.len() - 1;
    if n > 0 {
        ks.propagate(&deleted);
    }
    drop(ks);
    c.out.int(n as i64);
}

/// EXISTS key [key ...] (a key named twice counts twice)
pub fn exists(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let n = args[1..].iter().filter(|k| ks.exists(k)).count();
    drop(ks);
    c.out.int(n as i64);
}

/// TYPE key
pub fn type_(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let found = s.ks.lock().exists(&args[1]);
    c.out.simple(if found { "set" } else { "none" });
}

/// KEYS pattern
pub fn keys(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let ks = s.ks.lock();
    let now = ks.now_ms();
    let found: Vec<Bytes> = ks
        .iter()
        .filter(|(k, e)| ks.is_live_at(e, now) && glob::matches(&args[1], k, false))
        .map(|(k, _)| k.clone())
        .collect();
    drop(ks);
    c.out.array_len(found.len());
    for k in found {
        c.out.bulk(&k);
    }
}

/// SCAN cursor [MATCH pattern] [COUNT count] [TYPE type]
pub fn scan(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let Some((cursor, o)) = scan_opts(c, &args[1..], true) else {
        return;
    };
    let ks = s.ks.lock();
    let now = ks.now_ms();
    let (next, page) = ks.scan_keys(cursor, o.count);
    let keys: Vec<Bytes> = page
        .iter()
        .filter(|k| o.pattern.is_none_or(|p| glob::matches(p, k, false)))
        .filter(|_| o.type_.is_none_or(|t| t.eq_ignore_ascii_case(b"set")))
        .filter(|k| ks.iter_get(k).is_some_and(|e| ks.is_live_at(e, now)))
        .cloned()
        .collect();
    drop(ks);
    c.out.array_len(2);
    c.out.bulk(next.to_string().as_bytes());
    c.out.array_len(keys.len());
    for k in keys {
        c.out.bulk(&k);
    }
}

/// RENAME key newkey (the TTL moves with the value)
pub fn rename(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    if !ks.exists(&args[1]) {
        drop(ks);
        c.out.error("ERR no such key");
        return;
    }
    if args[1] != args[2] {
        ks.rename(&args[1], &args[2]);
        ks.propagate(&[b"RENAME", &args[1], &args[2]]);
    }
    drop(ks);
    c.out.ok();
}
