//! Key commands: DEL/UNLINK, EXISTS, TYPE, KEYS, SCAN, RENAME, RENAMENX, COPY, MOVE,
//! RANDOMKEY and TOUCH.
//!
//! Every key is checked for expiry before it is reported (KEYS and SCAN skip expired keys
//! without deleting them in bulk; the active expiry loop reclaims them). There is one
//! database: COPY ... DB and MOVE answer as Redis does for an index out of range, or for
//! the same database.

use bytes::Bytes;

use super::{ERR_NOT_INT, ERR_SYNTAX, arg_i64, is, scan_opts};
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

/// RENAMENX key newkey: 1 if renamed, 0 if `newkey` exists (or is `key`).
pub fn renamenx(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    if !ks.exists(&args[1]) {
        drop(ks);
        c.out.error("ERR no such key");
        return;
    }
    if args[1] == args[2] || ks.exists(&args[2]) {
        drop(ks);
        c.out.int(0);
        return;
    }
    ks.rename(&args[1], &args[2]);
    ks.propagate(&[b"RENAME", &args[1], &args[2]]);
    drop(ks);
    c.out.int(1);
}

const ERR_DB_RANGE: &str = "ERR DB index is out of range";
const ERR_SAME: &str = "ERR source and destination objects are the same";

/// Parses a database index as Redis's `getIntFromObjectOrReply` then `selectDb` do: only
/// database 0 exists. Writes the error reply and returns false otherwise.
fn db_zero(c: &mut Client, arg: &[u8]) -> bool {
    match arg_i64(arg).map(i32::try_from) {
        Some(Ok(0)) => true,
        Some(Ok(_)) => {
            c.out.error(ERR_DB_RANGE);
            false
        }
        Some(Err(_)) => {
            // Sic: Redis's text.
            c.out
                .error("ERR value is out of range, value must between -2147483648 and 2147483647");
            false
        }
        None => {
            c.out.error(ERR_NOT_INT);
            false
        }
    }
}

/// COPY source destination [DB destination-db] [REPLACE]: the set and its TTL.
pub fn copy(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut replace = false;
    let mut j = 3;
    while j < args.len() {
        if is(&args[j], "replace") {
            replace = true;
        } else if is(&args[j], "db") && j + 1 < args.len() {
            if !db_zero(c, &args[j + 1]) {
                return;
            }
            j += 1;
        } else {
            c.out.error(ERR_SYNTAX);
            return;
        }
        j += 1;
    }
    let (src, dst) = (&args[1][..], &args[2][..]);
    if src == dst {
        c.out.error(ERR_SAME);
        return;
    }
    let mut ks = s.ks.lock();
    let Some((set, expire_at)) = ks.live(src).map(|e| (e.set.clone(), e.expire_at)) else {
        drop(ks);
        c.out.int(0);
        return;
    };
    let existed = ks.exists(dst);
    if existed && !replace {
        drop(ks);
        c.out.int(0);
        return;
    }
    // Several AOF commands for one client command: applied whole or not at all.
    ks.begin_atomic();
    if existed {
        ks.remove(dst);
        ks.propagate(&[b"DEL", dst]);
    }
    let mut sadd: Vec<&[u8]> = Vec::with_capacity(set.len() + 2);
    sadd.push(b"SADD");
    sadd.push(dst);
    sadd.extend(set.iter().map(|m| m.as_bytes()));
    ks.propagate(&sadd);
    drop(sadd);
    ks.insert(dst, set, expire_at);
    if let Some(t) = expire_at {
        ks.propagate(&[b"PEXPIREAT", dst, t.to_string().as_bytes()]);
    }
    ks.end_atomic();
    drop(ks);
    c.out.int(1);
}

/// MOVE key db: with one database there is nowhere to move to.
pub fn move_(_: &Shared, c: &mut Client, args: &[Bytes]) {
    if db_zero(c, &args[2]) {
        c.out.error(ERR_SAME);
    }
}

/// RANDOMKEY: a live key chosen at random (expired picks are reclaimed and skipped).
pub fn randomkey(s: &Shared, c: &mut Client, _: &[Bytes]) {
    let key = s.ks.lock().random_key();
    match key {
        Some(k) => c.out.bulk(&k),
        None => c.out.null(),
    }
}

/// TOUCH key [key ...]: how many exist (there is no access time to update).
pub fn touch(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let n = args[1..].iter().filter(|k| ks.live(k).is_some()).count();
    drop(ks);
    c.out.int(n as i64);
}
