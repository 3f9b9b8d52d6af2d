//! Redis's own COMMAND INFO and COMMAND DOCS entries for the commands we serve.
//!
//! `redis_commands.resp` holds what Debian's redis-server 7.0.15 answers (in RESP3) to
//! `COMMAND INFO <name>` and `COMMAND DOCS <name>` for each command and subcommand in our
//! table, captured by `server/tools/capture_redis_commands.py`: ACL categories, key specs,
//! tips, flags, history and arguments exactly as Redis reports them, so clients and tools
//! that read them (redis-cli hints, cluster-aware clients' key extraction) see Redis's
//! answers. It is data, parsed once; the table in `table` stays what dispatch uses, and a
//! test checks the two agree on arity, flags and key positions. A name Redis 7.0 does not
//! know (7.2's `client|setinfo`) has no entry: COMMAND then builds one from the table.
//! This module does not decide which commands exist; `table` does.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::resp::frame::Frame;
use crate::resp::reply::Out;

static DATA: &[u8] = include_bytes!("redis_commands.resp");

/// One command's captured entries.
#[derive(Debug)]
pub struct Entry {
    /// The COMMAND INFO element (an array of 10).
    pub info: Frame,
    /// The COMMAND DOCS map.
    pub docs: Frame,
}

fn parse(data: &[u8]) -> Option<HashMap<String, Entry>> {
    let (Frame::Map(pairs), _) = Frame::parse(data).ok()? else {
        return None;
    };
    let mut out = HashMap::with_capacity(pairs.len());
    for (k, v) in pairs {
        let (Frame::Bulk(name), Frame::Array(mut both)) = (k, v) else {
            return None;
        };
        let docs = both.pop()?;
        let info = both.pop()?;
        out.insert(String::from_utf8(name.to_vec()).ok()?, Entry { info, docs });
    }
    Some(out)
}

/// The captured entry of `fullname` (`sadd`, `client|list`), if Redis 7.0 has one.
pub fn get(fullname: &str) -> Option<&'static Entry> {
    static TABLE: OnceLock<HashMap<String, Entry>> = OnceLock::new();
    // The data is compiled in and checked by a test; were it unreadable, COMMAND would
    // fall back to the table's own entries rather than fail.
    TABLE
        .get_or_init(|| parse(DATA).unwrap_or_default())
        .get(fullname)
}

/// Writes `f` in the client's protocol (maps and sets flatten to arrays in RESP2).
pub fn write(o: &mut Out, f: &Frame) {
    match f {
        Frame::Simple(s) => o.simple(s),
        Frame::Error(e) => o.error(e),
        Frame::Integer(n) => o.int(*n),
        Frame::Bulk(b) => o.bulk(b),
        Frame::Array(v) | Frame::Push(v) => {
            o.array_len(v.len());
            v.iter().for_each(|x| write(o, x));
        }
        Frame::Set(v) => {
            o.set_len(v.len());
            v.iter().for_each(|x| write(o, x));
        }
        Frame::Map(pairs) => {
            o.map_len(pairs.len());
            for (k, v) in pairs {
                write(o, k);
                write(o, v);
            }
        }
        Frame::Verbatim(_, b) => o.bulk(b),
        Frame::Boolean(b) => o.int(i64::from(*b)),
        Frame::Double(s) | Frame::BigNumber(s) => o.bulk(s.as_bytes()),
        Frame::BulkError(b) => o.error_bytes(b),
        Frame::Null | Frame::Attribute(..) => o.null(),
    }
}

/// The ACL categories of a captured entry (`@write`, ...), in Redis's order.
pub fn categories(e: &Entry) -> Vec<&str> {
    match &e.info {
        Frame::Array(v) => match v.get(6) {
            Some(Frame::Set(c) | Frame::Array(c)) => c
                .iter()
                .filter_map(|f| match f {
                    Frame::Simple(s) => Some(s.as_str()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// Looks `key` up in a RESP3 map frame.
fn field<'a>(map: &'a Frame, key: &str) -> Option<&'a Frame> {
    let Frame::Map(pairs) = map else { return None };
    pairs
        .iter()
        .find(|(k, _)| matches!(k, Frame::Bulk(b) if b[..] == *key.as_bytes()))
        .map(|(_, v)| v)
}

fn int(f: Option<&Frame>) -> Option<i64> {
    match f {
        Some(Frame::Integer(n)) => Some(*n),
        _ => None,
    }
}

/// The keys of a command line `argv` (the command's name at 0) by Redis 7.0's key specs of
/// `e`, as `getKeysUsingKeySpecs` finds them: (position, the spec's flags). `None` when
/// the arguments do not fit a spec (Redis: "Invalid arguments specified for command").
pub fn keys_of<'e>(e: &'e Entry, argv: &[bytes::Bytes]) -> Option<Vec<(usize, &'e Frame)>> {
    let argc = argv.len() as i64;
    let specs = match &e.info {
        Frame::Array(v) => match v.get(8) {
            Some(Frame::Array(s) | Frame::Set(s)) => s.as_slice(),
            _ => &[],
        },
        _ => &[],
    };
    let mut out = Vec::new();
    for spec in specs {
        let flags = field(spec, "flags")?;
        let bs = field(spec, "begin_search")?;
        let bs_spec = field(bs, "spec")?;
        let mut first = match field(bs, "type") {
            Some(Frame::Bulk(t)) if t[..] == *b"index" => int(field(bs_spec, "index"))?,
            Some(Frame::Bulk(t)) if t[..] == *b"keyword" => {
                let Some(Frame::Bulk(kw)) = field(bs_spec, "keyword") else {
                    return None;
                };
                let from = int(field(bs_spec, "startfrom"))?;
                let start = if from > 0 { from } else { argc + from };
                let end = if from > 0 { argc - 1 } else { 0 };
                let mut found = 0;
                let mut i = start;
                while i != end && (0..argc).contains(&i) {
                    if super::is(&argv[i as usize], &String::from_utf8_lossy(kw)) {
                        found = i + 1;
                        break;
                    }
                    i += if start <= end { 1 } else { -1 };
                }
                if found == 0 {
                    continue;
                }
                found
            }
            _ => return None,
        };
        let fk = field(spec, "find_keys")?;
        let fk_spec = field(fk, "spec")?;
        let (last, step) = match field(fk, "type") {
            Some(Frame::Bulk(t)) if t[..] == *b"range" => {
                let lastkey = int(field(fk_spec, "lastkey"))?;
                let limit = int(field(fk_spec, "limit"))?;
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (last, int(field(fk_spec, "keystep"))?)
            }
            Some(Frame::Bulk(t)) if t[..] == *b"keynum" => {
                let idx = int(field(fk_spec, "keynumidx"))?;
                if idx >= argc - first {
                    return None;
                }
                let n = crate::resp::frame::parse_i64(&argv[(first + idx) as usize])
                    .filter(|&n| n >= 0)?;
                first += int(field(fk_spec, "firstkey"))?;
                (first + n - 1, int(field(fk_spec, "keystep"))?)
            }
            _ => return None,
        };
        if last >= argc || last < first || first >= argc || step < 1 {
            return None;
        }
        let mut i = first;
        while i <= last {
            out.push((i as usize, flags));
            i += step;
        }
    }
    Some(out)
}

/// Whether Redis's entry has key specs (`doesCommandHaveKeys`).
pub fn has_keys(e: &Entry) -> bool {
    matches!(&e.info, Frame::Array(v) if matches!(v.get(8), Some(Frame::Array(s) | Frame::Set(s)) if !s.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resp::cmd::COMMANDS;

    #[test]
    fn captured_entries_parse_and_agree_with_the_table() {
        let table = parse(DATA).expect("redis_commands.resp parses");
        let mut checked = 0;
        for top in COMMANDS {
            let mut specs = vec![(top.name.to_owned(), top)];
            specs.extend(
                top.subs
                    .iter()
                    .map(|s| (format!("{}|{}", top.name, s.name), s)),
            );
            for (name, spec) in specs {
                let Some(e) = table.get(&name) else {
                    assert_eq!(name, "client|setinfo", "{name} not captured");
                    continue;
                };
                let Frame::Array(v) = &e.info else {
                    panic!("{name}: info is not an array")
                };
                assert_eq!(v[0], Frame::Bulk(name.clone().into()), "{name}");
                assert_eq!(v[1], Frame::Integer(i64::from(spec.arity)), "{name} arity");
                let Frame::Set(flags) = &v[2] else {
                    panic!("{name}: flags")
                };
                let flags: Vec<_> = flags
                    .iter()
                    .map(|f| match f {
                        Frame::Simple(s) => s.as_str(),
                        _ => "",
                    })
                    .collect();
                assert_eq!(flags, spec.flags, "{name} flags");
                let keys = (spec.keys.0, spec.keys.1, spec.keys.2);
                assert_eq!(
                    (&v[3], &v[4], &v[5]),
                    (
                        &Frame::Integer(i64::from(keys.0)),
                        &Frame::Integer(i64::from(keys.1)),
                        &Frame::Integer(i64::from(keys.2))
                    ),
                    "{name} key positions"
                );
                assert!(matches!(e.docs, Frame::Map(_)), "{name}: docs");
                checked += 1;
            }
        }
        assert!(checked > 60, "{checked}");
    }
}
