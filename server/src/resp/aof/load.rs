//! Reading an AOF back: the header, replaying its commands into a keyspace, and the
//! recovery of a tail cut short by a crash or a power cut.
//!
//! Two kinds of damage are what a crash leaves and are repaired (the file is cut back to
//! the last whole command, durably, with a warning in the log): a tail that ends inside a
//! command, and a tail from which whole pages read back as zeros (appends that were not
//! fsynced when the power failed, whose pages the disk never wrote). Anything else that
//! does not parse is corruption and refuses to start. A `MULTI` ... `EXEC` block (what one
//! client command that writes several AOF commands propagates) is applied whole at its
//! `EXEC`; a block the file ends inside is cut off like a torn tail. This module does not
//! write commands; `super` does.

use std::io::Read;
use std::path::Path;

use bytes::{Bytes, BytesMut};
use speedlayer_vfs::{Fs, OpenMode, SeqReader, durable};

use super::io_err;
use crate::error::ServerError;
use crate::resp::config::Limits;
use crate::resp::frame::{FrameError, parse_i64, parse_request};
use crate::resp::keyspace::Keyspace;

/// The header line of an AOF with id `id`.
pub(super) fn header(id: u64, base: bool) -> Vec<u8> {
    format!(
        "SLAOF 1 {id:016x} {}\r\n",
        if base { "base" } else { "incr" }
    )
    .into_bytes()
}

fn parse_header(buf: &[u8]) -> Option<(u64, bool, usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&buf[..nl]).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    if parts.next()? != "SLAOF" || parts.next()? != "1" {
        return None;
    }
    let id = u64::from_str_radix(parts.next()?, 16).ok()?;
    let base = match parts.next()? {
        "base" => true,
        "incr" => false,
        _ => return None,
    };
    Some((id, base, nl + 1))
}

/// Whether `rest`, the unparsable bytes from the start of a command to what has been read
/// of the file, is what a power cut leaves of appends that were never fsynced: a valid but
/// unfinished command prefix, then a zero byte (the first byte of a page that never reached
/// the disk). A zero can sit inside a member, but never where the RESP framing is, so a
/// command whose framing breaks at a zero was cut by the power, not by a bug.
fn is_zero_filled_tail(rest: &[u8], limits: &Limits) -> bool {
    let Some(z) = rest.iter().position(|&b| b == 0) else {
        return false;
    };
    if z > 0 && rest[0] != b'*' {
        return false;
    }
    let mut prefix = BytesMut::from(&rest[..z]);
    let mut args = Vec::new();
    matches!(
        parse_request(&mut prefix, limits, true, &mut args),
        Ok(false) | Err(FrameError::Incomplete)
    )
}

/// Whether every bulk string of the command at the front of `buf` that is wholly there is
/// followed by CRLF. Clients get Redis's leniency (the two bytes are skipped unchecked); the
/// AOF, which only we write, is held to the grammar, so that a zeroed page that starts inside
/// a member cannot pass for the end of the command.
fn bulks_end_with_crlf(buf: &[u8]) -> bool {
    let line = |from: usize| -> Option<(i64, usize)> {
        let nl = from + buf.get(from..)?.windows(2).position(|w| w == b"\r\n")?;
        Some((parse_i64(buf.get(from + 1..nl)?)?, nl + 2))
    };
    let Some((count, mut pos)) = line(0) else {
        return true;
    };
    for _ in 0..count.max(0) {
        if buf.get(pos) != Some(&b'$') {
            return true;
        }
        let Some((len, start)) = line(pos) else {
            return true;
        };
        let Ok(len) = usize::try_from(len) else {
            return true;
        };
        let end = start.saturating_add(len);
        match buf.get(end..end.saturating_add(2)) {
            Some(b"\r\n") => pos = end + 2,
            Some(_) => return false,
            None => return true,
        }
    }
    true
}

/// Cuts the AOF at `path` back to `offset`, the end of its last whole command, durably.
fn cut_torn_tail(
    fs: &dyn Fs,
    path: &Path,
    offset: u64,
    dropped: u64,
    zeros: bool,
) -> Result<(), ServerError> {
    if zeros {
        tracing::warn!(path = %path.display(), offset, dropped,
            "AOF ends with zero-filled pages (appends not yet fsynced when the power failed); truncating the file to the last whole command");
    } else {
        tracing::warn!(path = %path.display(), offset, dropped,
            "AOF ends with a truncated command; truncating the file to the last whole command");
    }
    // IMPORTANT: the cut is durable before anything is appended after it.
    durable::truncate_synced(fs, path, offset)?;
    Ok(())
}

/// What [`load_aof`] found.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// The AOF's id (0 without a valid header).
    pub id: u64,
    /// Whether it had a valid header (a torn one is started afresh).
    pub valid_header: bool,
    /// Whether it was skipped as already in the snapshot.
    pub superseded: bool,
}

/// Loads the AOF at `path` into `ks`, cutting a torn tail off the file (durably). An AOF
/// whose id is the snapshot's `supersedes` is already in the snapshot: it is read (to
/// check it and learn its id) but not applied. The server's start-up path; the `resp_aof`
/// fuzz target drives it on arbitrary bytes.
///
/// # Errors
/// [`ServerError::AofCorrupted`] naming the offset for anything but a torn tail;
/// [`ServerError::Io`].
pub fn load_aof(
    fs: &dyn Fs,
    path: &Path,
    snap_supersedes: Option<u64>,
    ks: &mut Keyspace,
) -> Result<Loaded, ServerError> {
    let f = fs
        .open(path, OpenMode::Read)
        .map_err(io_err("open", path))?;
    let len = f.len().map_err(io_err("stat", path))?;
    let mut reader = SeqReader::new(&*f, 0);
    let corrupted = |offset: u64, reason: String| ServerError::AofCorrupted {
        path: path.to_path_buf(),
        offset,
        len,
        reason,
    };
    let mut buf = BytesMut::with_capacity(1 << 20);
    let mut chunk = vec![0u8; 1 << 20];
    let mut eof = false;
    let mut fill = |buf: &mut BytesMut, eof: &mut bool| {
        let n = reader.read(&mut chunk).map_err(io_err("read", path))?;
        if n == 0 {
            *eof = true;
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok::<(), ServerError>(())
    };
    // Header.
    let (id, base, hlen) = loop {
        if let Some(h) = parse_header(&buf) {
            break h;
        }
        if eof || buf.len() > 256 {
            let is_torn_prefix =
                buf.len() < 64 && b"SLAOF 1 ".starts_with(&buf[..buf.len().min(8)]);
            if eof && is_torn_prefix {
                tracing::warn!(path = %path.display(), "AOF has only a torn header; starting it afresh");
                return Ok(Loaded {
                    id: 0,
                    valid_header: false,
                    superseded: false,
                });
            }
            return Err(corrupted(0, "missing or invalid SLAOF header".into()));
        }
        fill(&mut buf, &mut eof)?;
    };
    bytes::Buf::advance(&mut buf, hlen);
    let skip = snap_supersedes == Some(id);
    if base && !skip {
        ks.clear();
    }
    ks.loading = true;
    let limits = Limits {
        query_buffer_limit: usize::MAX,
        ..Limits::default()
    };
    let mut offset = hlen as u64;
    let mut args: Vec<Bytes> = Vec::new();
    let mut applied = 0u64;
    // Where a torn tail starts (and whether zeros tore it), once one is found.
    let mut torn: Option<bool> = None;
    // An open MULTI block: where it starts, and its commands, applied at its EXEC.
    let mut multi: Option<(u64, Vec<Vec<Bytes>>)> = None;
    loop {
        if !buf.is_empty() && buf[0] != b'*' {
            if is_zero_filled_tail(&buf, &limits) {
                torn = Some(true);
                break;
            }
            ks.loading = false;
            return Err(corrupted(
                offset,
                format!("expected '*', found byte {:#04x}", buf[0]),
            ));
        }
        if !bulks_end_with_crlf(&buf) {
            if is_zero_filled_tail(&buf, &limits) {
                torn = Some(true);
                break;
            }
            ks.loading = false;
            return Err(corrupted(
                offset,
                "a bulk string not followed by CRLF".into(),
            ));
        }
        let before = buf.len();
        match parse_request(&mut buf, &limits, true, &mut args) {
            Ok(true) => {
                let start = offset;
                offset += (before - buf.len()) as u64;
                let Some(first) = args.first() else {
                    // `*0` or `*-1`: the AOF never holds an empty command.
                    ks.loading = false;
                    return Err(corrupted(start, "empty command array".into()));
                };
                let name = first.to_ascii_uppercase();
                match (&name[..], multi.is_some()) {
                    (b"MULTI", false) if args.len() == 1 => {
                        multi = Some((start, Vec::new()));
                        continue;
                    }
                    (b"EXEC", true) if args.len() == 1 => {
                        let block = multi.take().map(|(_, b)| b).unwrap_or_default();
                        if !skip {
                            for cmd in &block {
                                if let Err(reason) = replay(ks, cmd) {
                                    ks.loading = false;
                                    return Err(corrupted(start, reason));
                                }
                            }
                            applied += block.len() as u64;
                        }
                        continue;
                    }
                    (b"MULTI" | b"EXEC", _) => {
                        ks.loading = false;
                        return Err(corrupted(start, "MULTI/EXEC out of order".into()));
                    }
                    _ => {}
                }
                if let Some((_, block)) = &mut multi {
                    block.push(std::mem::take(&mut args));
                    continue;
                }
                if skip {
                    continue;
                }
                if let Err(reason) = replay(ks, &args) {
                    ks.loading = false;
                    return Err(corrupted(start, reason));
                }
                applied += 1;
            }
            Ok(false) | Err(FrameError::Incomplete) => {
                if !eof {
                    fill(&mut buf, &mut eof)?;
                    continue;
                }
                if !buf.is_empty() {
                    torn = Some(false);
                }
                break;
            }
            Err(e @ FrameError::QueryBufferLimit { .. }) => {
                // Not with the unbounded limits above; kept as corruption if it ever were.
                ks.loading = false;
                return Err(corrupted(offset, e.to_string()));
            }
            Err(FrameError::Protocol(msg)) => {
                if is_zero_filled_tail(&buf, &limits) {
                    torn = Some(true);
                    break;
                }
                ks.loading = false;
                return Err(corrupted(offset, msg));
            }
        }
    }
    ks.loading = false;
    drop(f);
    // A block without its EXEC was cut by the crash: none of it happened.
    let end = multi.map_or(offset, |(start, _)| start);
    if torn.is_some() || end < len {
        cut_torn_tail(fs, path, end, len - end, torn.unwrap_or(false))?;
    }
    tracing::info!(path = %path.display(), commands = applied, skipped = skip, "AOF loaded");
    Ok(Loaded {
        id,
        valid_header: true,
        superseded: skip,
    })
}

/// Applies one AOF command to `ks` (no expiry while loading).
///
/// # Errors
/// A reason when the command is not one the AOF can contain, including an empty array
/// (`*0`), which the AOF never holds.
pub fn replay(ks: &mut Keyspace, args: &[Bytes]) -> Result<(), String> {
    let Some(first) = args.first() else {
        return Err("empty command array".into());
    };
    let name = first.to_ascii_uppercase();
    let bad = || {
        format!(
            "unexpected command {:?} with {} arguments",
            String::from_utf8_lossy(first),
            args.len()
        )
    };
    match (&name[..], args.len()) {
        (b"SADD", n) if n >= 3 => {
            // A full set: the original command met the same limit at the same member.
            let _ = ks.add_members(&args[1], args[2..].iter().map(|m| &m[..]));
        }
        (b"SREM", n) if n >= 3 => {
            if let Some(e) = ks.live_mut(&args[1]) {
                for m in &args[2..] {
                    e.set.remove(&m[..]);
                }
            }
            ks.remove_if_empty(&args[1]);
        }
        (b"DEL", n) if n >= 2 => {
            for k in &args[1..] {
                ks.remove(k);
            }
        }
        (b"PEXPIREAT", 3) => {
            let t = parse_i64(&args[2]).ok_or_else(bad)?;
            ks.set_expire(&args[1], Some(t));
        }
        (b"PERSIST", 2) => {
            ks.set_expire(&args[1], None);
        }
        (b"RENAME", 3) => {
            ks.rename(&args[1], &args[2]);
        }
        (b"SMOVE", 4) => {
            ks.smove(&args[1], &args[2], &args[3])
                .map_err(|full| format!("SMOVE into a full set: {full}"))?;
        }
        (b"FLUSHALL", _) => ks.clear(),
        _ => return Err(bad()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use speedlayer_vfs::RealFs;

    use super::*;
    use crate::resp::clock::ManualClock;
    use crate::resp::keyspace::encode_command;

    type State = BTreeMap<Vec<u8>, (Vec<Vec<u8>>, Option<i64>)>;

    fn state(ks: &Keyspace) -> State {
        ks.iter()
            .map(|(k, e)| {
                let mut ms: Vec<Vec<u8>> = e.set.iter().map(|m| m.as_bytes().to_vec()).collect();
                ms.sort();
                (k.to_vec(), (ms, e.expire_at))
            })
            .collect()
    }

    /// A base AOF and the end offset of each of its commands.
    fn sample() -> (Vec<u8>, Vec<usize>) {
        let mut file = header(7, true);
        let mut ends = vec![file.len()];
        let cmds: [&[&[u8]]; 6] = [
            &[b"SADD", b"20261122", b"V0042", b"V0007"],
            &[b"SREM", b"20261122", b"V0042"],
            &[b"SADD", b"20261121", b"V\x000\r\n1"],
            &[b"PEXPIREAT", b"20261121", b"1796342400000"],
            &[b"DEL", b"20261122"],
            &[b"SADD", b"last", b"x"],
        ];
        for c in cmds {
            encode_command(&mut file, c);
            ends.push(file.len());
        }
        (file, ends)
    }

    fn load(bytes: &[u8]) -> Result<(State, u64), ServerError> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("appendonly.aof");
        std::fs::write(&p, bytes).unwrap();
        let mut ks = Keyspace::new(Arc::new(ManualClock::new(0)));
        load_aof(&RealFs, &p, None, &mut ks)?;
        Ok((state(&ks), std::fs::metadata(&p).unwrap().len()))
    }

    /// Pins the worked example of `docs/resp_persistence.md`: its bytes are what the
    /// writer produces for `SADD 20261122 V0042` then `EXPIRE 20261122 604800` at
    /// 2026-11-22T00:00:00Z, and they load back to that state.
    #[test]
    fn doc_example_bytes() {
        let doc = include_str!("../../../docs/resp_persistence.md");
        let block = doc
            .split("Worked example")
            .nth(1)
            .and_then(|rest| rest.split("```").nth(1))
            .expect("the doc has a worked example block");
        let doc_bytes: Vec<u8> = block
            .lines()
            .filter(|l| !l.is_empty())
            .flat_map(|l| l.replace("\\r\\n", "\r\n").into_bytes())
            .collect();
        let start_ms: i64 = 1_795_305_600_000; // 2026-11-22T00:00:00Z
        let expire_at = start_ms + 604_800 * 1000;
        let mut want = header(0x9f3c_0a1b_2c3d_4e5f, false);
        encode_command(&mut want, &[b"SADD", b"20261122", b"V0042"]);
        encode_command(
            &mut want,
            &[b"PEXPIREAT", b"20261122", expire_at.to_string().as_bytes()],
        );
        assert_eq!(
            String::from_utf8_lossy(&doc_bytes),
            String::from_utf8_lossy(&want)
        );
        let (got, _) = load(&doc_bytes).unwrap();
        assert_eq!(
            got.get(&b"20261122"[..]),
            Some(&(vec![b"V0042".to_vec()], Some(expire_at)))
        );
    }

    /// The transaction example of `docs/resp_persistence.md` loads to the transaction's
    /// state, and cut anywhere inside its block, to the state before it, with the block
    /// removed from the file.
    #[test]
    fn doc_transaction_example_cut_anywhere_loads_without_it() {
        let doc = include_str!("../../../docs/resp_persistence.md");
        let block = doc
            .split("Transaction example")
            .nth(1)
            .and_then(|rest| rest.split("```").nth(1))
            .expect("the doc has a transaction example block");
        let bytes: Vec<u8> = block
            .lines()
            .filter(|l| !l.is_empty())
            .flat_map(|l| l.replace("\\r\\n", "\r\n").into_bytes())
            .collect();
        let mut want = header(0x9f3c_0a1b_2c3d_4e5f, false);
        encode_command(&mut want, &[b"SADD", b"20261121", b"V0042"]);
        let before = want.len();
        encode_command(&mut want, &[b"MULTI"]);
        encode_command(&mut want, &[b"SADD", b"20261122", b"V0042"]);
        encode_command(&mut want, &[b"SREM", b"20261121", b"V0042"]);
        encode_command(&mut want, &[b"EXEC"]);
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&want)
        );
        let day = |s: &State, k: &[u8]| s.get(k).map(|e| e.0.clone());
        let (after, _) = load(&bytes).unwrap();
        assert_eq!(day(&after, b"20261122"), Some(vec![b"V0042".to_vec()]));
        assert_eq!(day(&after, b"20261121"), None);
        for cut in before + 1..bytes.len() {
            let (got, len) = load(&bytes[..cut]).unwrap();
            assert_eq!(
                day(&got, b"20261121"),
                Some(vec![b"V0042".to_vec()]),
                "cut at {cut}"
            );
            assert_eq!(day(&got, b"20261122"), None, "cut at {cut}");
            assert_eq!(
                len, before as u64,
                "cut at {cut}: the open block is removed"
            );
        }
    }

    #[test]
    fn a_block_out_of_order_is_corruption() {
        let mut nested = header(7, false);
        encode_command(&mut nested, &[b"MULTI"]);
        encode_command(&mut nested, &[b"SADD", b"k", b"a"]);
        encode_command(&mut nested, &[b"MULTI"]);
        let mut stray = header(7, false);
        encode_command(&mut stray, &[b"SADD", b"k", b"a"]);
        encode_command(&mut stray, &[b"EXEC"]);
        for file in [nested, stray] {
            match load(&file).unwrap_err() {
                ServerError::AofCorrupted { reason, .. } => {
                    assert_eq!(reason, "MULTI/EXEC out of order");
                }
                other => panic!("expected AofCorrupted, got {other}"),
            }
        }
    }

    #[test]
    fn an_empty_command_array_is_corruption_not_a_panic() {
        // Found by the `resp_aof` fuzz target (kept in server/fuzz/regressions/resp_aof/).
        for tail in [&b"*0\r\n"[..], b"*-1\r\n"] {
            let mut aof = b"SLAOF 1 00000000000000bb incr\r\n*1\r\n$8\r\nFLUSHALL\r\n".to_vec();
            let at = aof.len() as u64;
            aof.extend_from_slice(tail);
            match load(&aof).unwrap_err() {
                ServerError::AofCorrupted { offset, reason, .. } => {
                    assert_eq!(offset, at, "the offset of the empty array");
                    assert_eq!(reason, "empty command array");
                }
                other => panic!("expected AofCorrupted, got {other}"),
            }
        }
    }

    #[test]
    fn every_truncation_keeps_exactly_the_whole_commands_before_the_cut() {
        let (file, ends) = sample();
        for cut in ends[0]..=file.len() {
            let whole = *ends.iter().rev().find(|&&e| e <= cut).unwrap();
            let (got, len) = load(&file[..cut]).unwrap();
            let (want, _) = load(&file[..whole]).unwrap();
            assert_eq!(got, want, "cut at {cut}");
            assert_eq!(len, whole as u64, "cut at {cut}: the torn tail is removed");
        }
    }

    #[test]
    fn zeros_where_unsynced_pages_were_lost_cut_the_file_like_a_torn_tail() {
        // What a power cut leaves of unsynced appends: from the last fsync (a command
        // boundary) or from any page boundary on, a page of zeros, then maybe a page that did
        // reach the disk. Everything from the zeros on is dropped.
        let (file, ends) = sample();
        let later = {
            let mut v = Vec::new();
            encode_command(&mut v, &[b"SADD", b"after", b"zeros"]);
            v
        };
        for cut in ends[0]..file.len() {
            let mut bytes = file[..cut].to_vec();
            let page = if ends.contains(&cut) { 100 } else { 4096 };
            bytes.resize(cut + page, 0);
            bytes.extend_from_slice(&later);
            let whole = *ends.iter().rev().find(|&&e| e <= cut).unwrap();
            let (got, len) = load(&bytes).unwrap();
            let (want, _) = load(&file[..whole]).unwrap();
            assert_eq!(got, want, "zeros at {cut}");
            assert_eq!(
                len, whole as u64,
                "zeros at {cut}: cut at the last whole command"
            );
        }
    }

    #[test]
    fn a_multi_block_cut_anywhere_replays_none_of_it() {
        let mut file = header(7, true);
        encode_command(&mut file, &[b"SADD", b"dst", b"old"]);
        let before = file.len();
        encode_command(&mut file, &[b"MULTI"]);
        encode_command(&mut file, &[b"DEL", b"dst"]);
        encode_command(&mut file, &[b"SADD", b"dst", b"new"]);
        let exec_at = file.len();
        encode_command(&mut file, &[b"EXEC"]);
        let (old, _) = load(&file[..before]).unwrap();
        for cut in before..file.len() {
            let (got, len) = load(&file[..cut]).unwrap();
            assert_eq!(got, old, "cut at {cut}");
            assert_eq!(
                len, before as u64,
                "cut at {cut}: the open block is removed"
            );
        }
        let (got, len) = load(&file).unwrap();
        assert_eq!(
            got.get(&b"dst"[..]).map(|e| e.0.clone()),
            Some(vec![b"new".to_vec()])
        );
        assert_eq!(len, file.len() as u64);
        assert!(exec_at > before);
    }

    #[test]
    fn a_non_zero_byte_that_breaks_the_framing_is_still_corruption() {
        let (file, ends) = sample();
        let mut bytes = file.clone();
        bytes[ends[2] + 1] = b'x';
        let r = load(&bytes);
        assert!(matches!(r, Err(ServerError::AofCorrupted { .. })), "{r:?}");
        let mut bytes = file[..ends[3]].to_vec();
        bytes.push(b'#');
        bytes.extend_from_slice(&[0u8; 8]);
        assert!(matches!(
            load(&bytes),
            Err(ServerError::AofCorrupted { .. })
        ));
    }
}
