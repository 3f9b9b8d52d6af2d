//! Single-set commands: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD, SSCAN, SPOP,
//! SRANDMEMBER and SMOVE.
//!
//! A missing key reads as an empty set; a set emptied by SREM/SPOP/SMOVE is deleted; SADD
//! keeps an existing TTL. Random picks (SPOP, SRANDMEMBER) cost O(1) per element and SSCAN
//! O(COUNT), as in Redis (see [`crate::resp::set`]).

use bytes::Bytes;

use super::{ERR_NOT_INT, ERR_SYNTAX, arg_i64, parse_cursor, scan_opts};
use crate::resp::glob;
use crate::resp::member::Member;
use crate::resp::state::Client;
use crate::resp::state::Shared;

/// SADD key member [member ...]
pub fn sadd(s: &Shared, c: &mut Client, args: &[Bytes]) {
    let mut ks = s.ks.lock();
    let added = ks.add_members(&args[1], args[2..].iter().map(|m| &m[..]));
    // A full set keeps the members added before the limit: the AOF gets the command, whose
    // replay meets the same limit at the same member.
    if !matches!(added, Ok(0)) {
        let v: Vec<&[u8]> = args.iter().map(|a| &a[..]).collect();
        ks.propagate(&v);
    }
    drop(ks);
    match added {
        Ok(n) => c.out.int(n as i64),
        Err(full) => c.out.error(&format!("ERR {full}")),
    }
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
    // Redis's order: the cursor, then a missing key (an empty scan, whatever the options
    // say), then the options.
    if parse_cursor(&args[2]).is_none() {
        c.out.error("ERR invalid cursor");
        return;
    }
    if !s.ks.lock().exists(&args[1]) {
        c.out.array_len(2);
        c.out.bulk(b"0");
        c.out.array_len(0);
        return;
    }
    let Some((cursor, o)) = scan_opts(c, &args[2..], false) else {
        return;
    };
    let mut ks = s.ks.lock();
    let (next, page): (u64, Vec<Vec<u8>>) = match ks.live(&args[1]) {
        None => (0, Vec::new()),
        Some(e) => {
            let (next, page) = e.set.scan_page(cursor, o.count);
            let page = page
                .iter()
                .map(Member::as_bytes)
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
            if want == e.set.len() {
                e.set.take_all()
            } else {
                (0..want)
                    .filter_map(|_| e.set.pop_random(&mut rng))
                    .collect()
            }
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
    let picked: Vec<&Member> = match count {
        None => e.set.random(&mut rng).into_iter().collect(),
        Some(n) if n >= 0 => e
            .set
            .sample(&mut rng, usize::try_from(n).unwrap_or(usize::MAX)),
        Some(n) => {
            // Repeats allowed: written straight into the reply, stopping at the output
            // bound (the connection then closes, as Redis does past its limit).
            let want = n.unsigned_abs();
            let limit = s.config.limits.output_buffer_limit;
            c.out.array_len(usize::try_from(want).unwrap_or(usize::MAX));
            for _ in 0..want {
                if let Some(m) = e.set.random(&mut rng) {
                    c.out.bulk(m.as_bytes());
                }
                if c.out.buf.len() > limit {
                    break;
                }
            }
            return;
        }
    };
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
        match ks.smove(&args[1], &args[2], &args[3]) {
            Ok(moved) => {
                if moved {
                    ks.propagate(&[b"SMOVE", &args[1], &args[2], &args[3]]);
                }
                moved
            }
            Err(full) => {
                drop(ks);
                c.out.error(&format!("ERR {full}"));
                return;
            }
        }
    };
    drop(ks);
    c.out.int(i64::from(moved));
}
