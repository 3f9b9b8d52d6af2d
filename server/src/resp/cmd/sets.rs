//! Single-set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SSCAN, SPOP,
//! SRANDMEMBER and SMOVE.
//!
//! A missing key reads as an empty set; a set emptied by SREM/SPOP/SMOVE is deleted; SADD
//! keeps an existing TTL. Random picks (SPOP, SRANDMEMBER) walk the set once, so they are
//! O(N) rather than Redis's O(1) per element.

use bytes::Bytes;
use rand::Rng;
use rand::seq::IteratorRandom;

use super::{ERR_NOT_INT, ERR_SYNTAX, arg_i64, scan_opts, scan_page};
use crate::resp::connection::Client;
use crate::resp::glob;
use crate::resp::member::Member;
use crate::resp::server::Shared;

/// SADD key member [member ...]
pub fn sadd(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let added = ks.add_members(&args[1], args[2..].iter().map(|m| &m[..]));
    if added > 0 {
        let v: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        ks.propagate(&v);
    }
    drop(ks);
    c.out.int(added as i64);
}

/// SREM key member [member ...]
pub fn srem(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let mut removed = 0;
    if let Some(e) = ks.live_mut(&args[1]) {
        for m in &args[2..] {
            if e.set.remove(&m[..]) {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        ks.remove_if_empty(&args[1]);
        let v: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        ks.propagate(&v);
    }
    drop(ks);
    c.out.int(removed);
}

/// SMEMBERS key
pub fn smembers(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    match ks.live(&args[1]) {
        None => c.out.set_len(0),
        Some(e) => {
            c.out.set_len(e.set.len());
            for m in &e.set {
                c.out.bulk(m.as_bytes());
            }
        }
    }
}

/// SISMEMBER key member
pub fn sismember(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let found =
        s.ks.lock()
            .live(&args[1])
            .is_some_and(|e| e.set.contains(&args[2][..]));
    c.out.int(i64::from(found));
}

/// SMISMEMBER key member [member ...]
pub fn smismember(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let e = ks.live(&args[1]);
    c.out.array_len(args.len() - 2);
    for m in &args[2..] {
        c.out
            .int(i64::from(e.is_some_and(|e| e.set.contains(&m[..]))));
    }
}

/// SCARD key
pub fn scard(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let n = s.ks.lock().live(&args[1]).map_or(0, |e| e.set.len());
    c.out.int(n as i64);
}

/// SSCAN key cursor [MATCH pattern] [COUNT count]
pub fn sscan(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let Some((cursor, o)) = scan_opts(c, &args[2..], false) else {
        return;
    };
    let mut ks = s.ks.lock();
    let (next, page): (u64, Vec<Vec<u8>>) = match ks.live(&args[1]) {
        None => (0, Vec::new()),
        Some(e) => {
            let (next, page) = scan_page(
                e.set.iter().map(Member::as_bytes),
                e.set.len(),
                cursor,
                o.count,
            );
            let page = page
                .into_iter()
                .filter(|m| o.pattern.is_none_or(|p| glob::matches(p, m, false)))
                .map(<[u8]>::to_vec)
                .collect();
            (next, page)
        }
    };
    drop(ks);
    c.out.array_len(2);
    c.out.bulk(next.to_string().as_bytes());
    c.out.array_len(page.len());
    for m in page {
        c.out.bulk(&m);
    }
}

/// SPOP key [count]
pub fn spop(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        c.out.error(ERR_SYNTAX);
        return;
    }
    let count = if args.len() == 3 {
        match arg_i64(&args[2]) {
            Some(n) if n >= 0 => Some(n as usize),
            _ => {
                c.out.error("ERR value is out of range, must be positive");
                return;
            }
        }
    } else {
        None
    };
    let mut ks = s.ks.lock();
    let mut rng = rand::rng();
    let popped: Vec<Member> = match ks.live_mut(&args[1]) {
        None => Vec::new(),
        Some(e) => {
            let want = count.unwrap_or(1).min(e.set.len());
            let picked: Vec<Member> = if want == e.set.len() {
                e.set.drain().collect()
            } else {
                e.set.iter().cloned().choose_multiple(&mut rng, want)
            };
            for m in &picked {
                e.set.remove(m);
            }
            picked
        }
    };
    if !popped.is_empty() {
        ks.remove_if_empty(&args[1]);
        let mut v: Vec<&[u8]> = vec![b"SREM", &args[1]];
        v.extend(popped.iter().map(Member::as_bytes));
        ks.propagate(&v);
    }
    drop(ks);
    match count {
        None => match popped.first() {
            Some(m) => c.out.bulk(m.as_bytes()),
            None => c.out.null(),
        },
        Some(_) => {
            c.out.set_len(popped.len());
            for m in &popped {
                c.out.bulk(m.as_bytes());
            }
        }
    }
}

/// SRANDMEMBER key [count] (negative count: may repeat, exactly |count| elements)
pub fn srandmember(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if args.len() > 3 {
        c.out.error(ERR_SYNTAX);
        return;
    }
    let count = if args.len() == 3 {
        match arg_i64(&args[2]) {
            None => {
                c.out.error(ERR_NOT_INT);
                return;
            }
            Some(i64::MIN) => {
                c.out.error("ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807");
                return;
            }
            Some(n) => Some(n),
        }
    } else {
        None
    };
    let mut ks = s.ks.lock();
    let mut rng = rand::rng();
    let Some(e) = ks.live(&args[1]) else {
        drop(ks);
        match count {
            None => c.out.null(),
            Some(_) => c.out.array_len(0),
        }
        return;
    };
    let picked: Vec<Member> = match count {
        None => e.set.iter().choose(&mut rng).cloned().into_iter().collect(),
        Some(n) if n >= 0 => e.set.iter().cloned().choose_multiple(&mut rng, n as usize),
        Some(n) => {
            // Repeats allowed: written straight into the reply, stopping at the output
            // bound (the connection then closes, as Redis does past its limit).
            let all: Vec<&Member> = e.set.iter().collect();
            let want = n.unsigned_abs();
            let limit = s.config.limits.output_buffer_limit;
            c.out.array_len(usize::try_from(want).unwrap_or(usize::MAX));
            for _ in 0..want {
                c.out.bulk(all[rng.random_range(0..all.len())].as_bytes());
                if c.out.buf.len() > limit {
                    break;
                }
            }
            return;
        }
    };
    drop(ks);
    match count {
        None => match picked.first() {
            Some(m) => c.out.bulk(m.as_bytes()),
            None => c.out.null(),
        },
        Some(_) => {
            c.out.array_len(picked.len());
            for m in &picked {
                c.out.bulk(m.as_bytes());
            }
        }
    }
}

/// SMOVE source destination member
pub fn smove(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let moved = if args[1] == args[2] {
        ks.live(&args[1])
            .is_some_and(|e| e.set.contains(&args[3][..]))
    } else {
        let moved = ks.smove(&args[1], &args[2], &args[3]);
        if moved {
            ks.propagate(&[b"SMOVE", &args[1], &args[2], &args[3]]);
        }
        moved
    };
    drop(ks);
    c.out.int(i64::from(moved));
}
