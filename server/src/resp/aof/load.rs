//! Reading an AOF back: the header, replaying its commands into a keyspace, and the
//! recovery of a tail cut short by a crash or a power cut.
//!
//! Two kinds of damage are what a crash leaves and are repaired (the file is cut back to
//! the last whole command, durably, with a warning in the log): a tail that ends inside a
//! command, and a tail from which whole pages read back as zeros (appends that were not
//! fsynced when the power failed, whose pages the disk never wrote). Anything else that
//! does not parse is corruption and refuses to start. This module does not write commands;
//! `super` does.

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
    let mut prefix = BytesMut::from(&rest[..z]);
    let mut args = Vec::new();
    matches!(
        parse_request(&mut prefix, limits, true, &mut args),
        Ok(false) | Err(FrameError::Incomplete)
    )
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

/// Loads the AOF at `path` into `ks`. Returns its id and whether it had a valid header.
/// An AOF whose id is the snapshot's `supersedes` is already in the snapshot: it is read
/// (to check it and learn its id) but not applied.
pub(super) fn load_aof(
    fs: &dyn Fs,
    path: &Path,
    snap_supersedes: Option<u64>,
    ks: &mut Keyspace,
) -> Result<(u64, bool), ServerError> {
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
                return Ok((0, false));
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
        let before = buf.len();
        match parse_request(&mut buf, &limits, true, &mut args) {
            Ok(true) => {
                offset += (before - buf.len()) as u64;
                if skip {
                    continue;
                }
                if let Err(reason) = replay(ks, &args) {
                    ks.loading = false;
                    return Err(corrupted(offset - (before - buf.len()) as u64, reason));
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
    if let Some(zeros) = torn {
        cut_torn_tail(fs, path, offset, len - offset, zeros)?;
    }
    tracing::info!(path = %path.display(), commands = applied, skipped = skip, "AOF loaded");
    Ok((id, true))
}

/// Applies one AOF command to `ks` (no expiry while loading).
///
/// # Errors
/// A reason when the command is not one the AOF can contain.
pub fn replay(ks: &mut Keyspace, args: &[Bytes]) -> Result<(), String> {
    let name = args[0].to_ascii_uppercase();
    let bad = || {
        format!(
            "unexpected command {:?} with {} arguments",
            String::from_utf8_lossy(&args[0]),
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
