//! Expiry commands: EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT (NX/XX/GT/LT), TTL, PTTL,
//! EXPIRETIME, PEXPIRETIME and PERSIST.
//!
//! Semantics are Redis 7's `expireGenericCommand`: options are checked before the number,
//! overflow is `invalid expire time`, a time at or before now deletes the key, and the AOF
//! always receives an absolute `PEXPIREAT` (or a `DEL`).

use bytes::Bytes;

use super::{ERR_NOT_INT, arg_i64, is, quoting};
use crate::resp::state::Client;
use crate::resp::state::Shared;

const NX: u8 = 1;
const XX: u8 = 2;
const GT: u8 = 4;
const LT: u8 = 8;

fn generic(s: &Shared, c: &mut Client, args: &[Bytes], name: &str, relative: bool, seconds: bool) {
    let mut flags = 0u8;
    for opt in &args[3..] {
        flags |= if is(opt, "nx") {
            NX
        } else if is(opt, "xx") {
            XX
        } else if is(opt, "gt") {
            GT
        } else if is(opt, "lt") {
            LT
        } else {
            c.out
                .error_bytes(&quoting("ERR Unsupported option ", opt, usize::MAX, ""));
            return;
        };
    }
    if flags & NX != 0 && flags & (XX | GT | LT) != 0 {
        c.out
            .error("ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if flags & GT != 0 && flags & LT != 0 {
        c.out
            .error("ERR GT and LT options at the same time are not compatible");
        return;
    }
    let Some(mut when) = arg_i64(&args[2]) else {
        c.out.error(ERR_NOT_INT);
        return;
    };
    let invalid = format!("ERR invalid expire time in '{name}' command");
    if seconds {
        match when.checked_mul(1000) {
            Some(v) => when = v,
            None => {
                c.out.error(&invalid);
                return;
            }
        }
    }
    let mut ks = s.ks.lock();
    // One reading of the running clock for the base and the "already past" check.
    let now = ks.clock_ms();
    if relative {
        match when.checked_add(now) {
            Some(v) => when = v,
            None => {
                drop(ks);
                c.out.error(&invalid);
                return;
            }
        }
    }
    let key = &args[1][..];
    let Some(e) = ks.live_mut(key) else {
        drop(ks);
        c.out.int(0);
        return;
    };
    let current = e.expire_at;
    let refused = (flags & NX != 0 && current.is_some())
        || (flags & XX != 0 && current.is_none())
        || (flags & GT != 0 && current.is_none_or(|cur| when <= cur))
        || (flags & LT != 0 && current.is_some_and(|cur| when >= cur));
    if refused {
        drop(ks);
        c.out.int(0);
        return;
    }
    if when <= now {
        ks.remove(key);
        ks.propagate(&[b"DEL", key]);
    } else {
        ks.set_expire(key, Some(when));
        ks.propagate(&[b"PEXPIREAT", key, when.to_string().as_bytes()]);
    }
    drop(ks);
    c.out.int(1);
}

/// EXPIRE key seconds [NX|XX|GT|LT]
pub fn expire(s: &Shared, c: &mut Client, a: &[Bytes]) {
    generic(s, c, a, "expire", true, true);
}
/// PEXPIRE key milliseconds [NX|XX|GT|LT]
pub fn pexpire(s: &Shared, c: &mut Client, a: &[Bytes]) {
    generic(s, c, a, "pexpire", true, false);
}
/// EXPIREAT key unix-seconds [NX|XX|GT|LT]
pub fn expireat(s: &Shared, c: &mut Client, a: &[Bytes]) {
    generic(s, c, a, "expireat", false, true);
}
/// PEXPIREAT key unix-ms [NX|XX|GT|LT]
pub fn pexpireat(s: &Shared, c: &mut Client, a: &[Bytes]) {
    generic(s, c, a, "pexpireat", false, false);
}

/// `None` = missing key, `Some(None)` = no TTL, `Some(Some(t))` = expires at `t`.
fn lookup_expire(s: &Shared, key: &[u8]) -> (Option<Option<i64>>, i64) {
    let mut ks = s.ks.lock();
    let entry = ks.live(key).map(|e| e.expire_at);
    (entry, ks.clock_ms())
}

fn ttl_generic(s: &Shared, c: &mut Client, key: &[u8], ms: bool) {
    let reply = match lookup_expire(s, key) {
        (None, _) => -2,
        (Some(None), _) => -1,
        (Some(Some(t)), now) => {
            let left = (t - now).max(0);
            if ms { left } else { (left + 500) / 1000 }
        }
    };
    c.out.int(reply);
}

/// TTL key
pub fn ttl(s: &Shared, c: &mut Client, a: &[Bytes]) {
    ttl_generic(s, c, &a[1], false);
}
/// PTTL key
pub fn pttl(s: &Shared, c: &mut Client, a: &[Bytes]) {
    ttl_generic(s, c, &a[1], true);
}

fn expiretime_generic(s: &Shared, c: &mut Client, key: &[u8], ms: bool) {
    let reply = match lookup_expire(s, key).0 {
        None => -2,
        Some(None) => -1,
        Some(Some(t)) => {
            if ms {
                t
            } else {
                t / 1000
            }
        }
    };
    c.out.int(reply);
}

/// EXPIRETIME key
pub fn expiretime(s: &Shared, c: &mut Client, a: &[Bytes]) {
    expiretime_generic(s, c, &a[1], false);
}
/// PEXPIRETIME key
pub fn pexpiretime(s: &Shared, c: &mut Client, a: &[Bytes]) {
    expiretime_generic(s, c, &a[1], true);
}

/// PERSIST key
pub fn persist(s: &Shared, c: &mut Client, a: &[Bytes]) {
    let mut ks = s.ks.lock();
    let had = ks.live(&a[1]).is_some_and(|e| e.expire_at.is_some());
    if had {
        ks.set_expire(&a[1], None);
        ks.propagate(&[b"PERSIST", &a[1]]);
    }
    drop(ks);
    c.out.int(i64::from(had));
}
