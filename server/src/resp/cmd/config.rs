//! CONFIG GET, SET, REWRITE and HELP (`server/docs/resp.md`, "CONFIG").
//!
//! GET answers from the resolved settings and the runtime ones. SET changes the settings
//! that can change while serving (`masterauth`, `masteruser`, `replica-priority` alias
//! `slave-priority`), all or none, with Redis 7.0's errors; every other setting GET shows
//! is refused as immutable. REWRITE writes what SET and REPLICAOF changed into the TOML
//! file the server was started with (`--config`): the `replicaof`, `masterauth`,
//! `masteruser` and `replica_priority` keys of its `[resp]` table, each line replaced in
//! place, added under `[resp]` when missing, or removed when the value is back to its
//! default; every other line, comments included, is kept. The new text must parse as TOML,
//! and replaces the old file atomically (a temporary file, fsynced, renamed).

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;

use bytes::Bytes;

use super::{ERR_SYNTAX, arg_i64, quoting};
use crate::resp::glob;
use crate::resp::state::{Client, RuntimeSettings, Shared};

fn config_pairs(s: &Shared) -> Vec<(&'static str, String)> {
    let cfg = &s.config;
    let rt = s.runtime.lock().clone();
    vec![
        ("appendfsync", cfg.appendfsync.as_str().to_owned()),
        ("appendonly", "yes".to_owned()),
        (
            "auto-aof-rewrite-min-size",
            cfg.auto_aof_rewrite_min_size.to_string(),
        ),
        (
            "auto-aof-rewrite-percentage",
            cfg.auto_aof_rewrite_percentage.to_string(),
        ),
        ("bind", s.local_addr.ip().to_string()),
        (
            "client-query-buffer-limit",
            cfg.limits.query_buffer_limit.to_string(),
        ),
        ("databases", "1".to_owned()),
        ("dir", cfg.dir.display().to_string()),
        ("hz", cfg.hz.to_string()),
        ("masterauth", rt.masterauth.clone().unwrap_or_default()),
        ("masteruser", rt.masteruser.clone().unwrap_or_default()),
        ("maxclients", cfg.maxclients.to_string()),
        ("port", s.local_addr.port().to_string()),
        (
            "protected-mode",
            if cfg.protected_mode { "yes" } else { "no" }.to_owned(),
        ),
        (
            "proto-max-bulk-len",
            cfg.limits.proto_max_bulk_len.to_string(),
        ),
        ("replica-priority", rt.replica_priority.to_string()),
        ("requirepass", cfg.requirepass.clone().unwrap_or_default()),
        ("save", String::new()),
        ("slave-priority", rt.replica_priority.to_string()),
    ]
}

/// CONFIG GET pattern [pattern ...]
pub fn config_get(s: &Shared, c: &mut Client, args: &[Bytes]) {
    // Redis 7.0's rules: an argument without `[`, `*` or `?` (before its first NUL) is
    // looked up by exact name, case-insensitively, and answered under the spelling asked;
    // any other is a case-insensitive glob (ending at its first NUL) answered under the
    // settings' own names. A setting asked for twice, by any route, is listed once, under
    // the first spelling that found it.
    let all = config_pairs(s);
    let mut found: Vec<(Vec<u8>, usize)> = Vec::new();
    let add = |name: &[u8], i: usize, found: &mut Vec<(Vec<u8>, usize)>| {
        if !found.iter().any(|(_, j)| *j == i) {
            found.push((name.to_vec(), i));
        }
    };
    for a in &args[2..] {
        let pattern = c_string(a);
        if !pattern.iter().any(|b| matches!(b, b'[' | b'*' | b'?')) {
            if let Some(i) = all
                .iter()
                .position(|(k, _)| k.as_bytes().eq_ignore_ascii_case(a))
            {
                add(a, i, &mut found);
            }
            continue;
        }
        for (i, (k, _)) in all.iter().enumerate() {
            if glob::matches(pattern, k.as_bytes(), true) {
                add(k.as_bytes(), i, &mut found);
            }
        }
    }
    c.out.map_len(found.len());
    for (name, i) in found {
        c.out.bulk(&name);
        c.out.bulk(all[i].1.as_bytes());
    }
}

/// `b` up to its first NUL byte, as C code sees an argument.
fn c_string(b: &[u8]) -> &[u8] {
    b.iter().position(|&x| x == 0).map_or(b, |n| &b[..n])
}

/// CONFIG HELP
pub fn config_help(_: &Shared, c: &mut Client, _: &[Bytes]) {
    let lines = [
        "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET <pattern>",
        "    Return parameters matching the glob-like <pattern> and their values.",
        "SET <directive> <value>",
        "    Set the configuration <directive> to <value>.",
        "REWRITE",
        "    Rewrite the configuration file.",
        "HELP",
        "    Print this help.",
    ];
    c.out.help(&lines);
}

/// One parameter CONFIG SET can change, and how a value is applied.
enum Param {
    MasterAuth,
    MasterUser,
    ReplicaPriority,
}

fn settable(name: &[u8]) -> Option<Param> {
    let n = String::from_utf8_lossy(name).to_ascii_lowercase();
    match n.as_str() {
        "masterauth" => Some(Param::MasterAuth),
        "masteruser" => Some(Param::MasterUser),
        "replica-priority" | "slave-priority" => Some(Param::ReplicaPriority),
        _ => None,
    }
}

fn set_failed(name: &[u8], why: &str) -> Vec<u8> {
    quoting(
        "ERR CONFIG SET failed (possibly related to argument '",
        name,
        usize::MAX,
        &format!("') - {why}"),
    )
}

/// CONFIG SET parameter value [parameter value ...]: all applied, or none.
pub fn set(s: &Shared, c: &mut Client, args: &[Bytes]) {
    if !args.len().is_multiple_of(2) {
        c.out.error(ERR_SYNTAX);
        return;
    }
    let known = config_pairs(s);
    let mut next = s.runtime.lock().clone();
    let mut seen: Vec<Vec<u8>> = Vec::new();
    for pair in args[2..].chunks(2) {
        let (name, value) = (&pair[0], &pair[1]);
        let lower = name.to_ascii_lowercase();
        if seen.contains(&lower) {
            c.out.error_bytes(&set_failed(name, "duplicate parameter"));
            return;
        }
        seen.push(lower);
        let Some(param) = settable(name) else {
            if known
                .iter()
                .any(|(k, _)| k.as_bytes().eq_ignore_ascii_case(name))
            {
                c.out
                    .error_bytes(&set_failed(name, "can't set immutable config"));
            } else {
                c.out.error_bytes(&quoting(
                    "ERR Unknown option or number of arguments for CONFIG SET - '",
                    name,
                    usize::MAX,
                    "'",
                ));
            }
            return;
        };
        let text = || String::from_utf8_lossy(value).into_owned();
        match param {
            Param::MasterAuth => next.masterauth = Some(text()).filter(|v| !v.is_empty()),
            Param::MasterUser => next.masteruser = Some(text()).filter(|v| !v.is_empty()),
            Param::ReplicaPriority => match arg_i64(value) {
                Some(n) if (0..=i64::from(i32::MAX)).contains(&n) => {
                    next.replica_priority = n as u32;
                }
                Some(_) => {
                    c.out.error_bytes(&set_failed(
                        name,
                        "argument must be between 0 and 2147483647 inclusive",
                    ));
                    return;
                }
                None => {
                    c.out.error_bytes(&set_failed(
                        name,
                        "argument couldn't be parsed into an integer",
                    ));
                    return;
                }
            },
        }
    }
    *s.runtime.lock() = next;
    c.out.ok();
}

/// The keys CONFIG REWRITE owns in the `[resp]` table, with the values to write (`None`:
/// the default, the line goes).
fn owned_keys(s: &Shared) -> Vec<(&'static str, Option<String>)> {
    let rt: RuntimeSettings = s.runtime.lock().clone();
    let master = s.repl.master_of_us.borrow().clone();
    let quoted = |v: String| toml_string(&v);
    vec![
        ("replicaof", master.map(|(h, p)| quoted(format!("{h}:{p}")))),
        ("masterauth", rt.masterauth.map(quoted)),
        ("masteruser", rt.masteruser.map(quoted)),
        (
            "replica_priority",
            (rt.replica_priority != RuntimeSettings::DEFAULT_PRIORITY)
                .then(|| rt.replica_priority.to_string()),
        ),
    ]
}

/// A TOML basic string holding `v`.
fn toml_string(v: &str) -> String {
    let mut out = String::from("\"");
    for ch in v.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The key a `key = value` line sets, if it is one.
fn line_key(line: &str) -> Option<&str> {
    let t = line.trim_start();
    if t.starts_with('#') || t.starts_with('[') {
        return None;
    }
    let (k, _) = t.split_once('=')?;
    Some(k.trim().trim_matches('"'))
}

/// The table a `[name]` line opens, if it is one.
fn table_header(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix('[')?.split(']').next()?;
    (!t.starts_with("[[")).then(|| inner.trim())
}

/// `text` with the owned keys of its `[resp]` table set to `values`.
pub fn rewrite_text(text: &str, values: &[(&str, Option<String>)]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut table: Option<String> = None;
    let mut resp_header: Option<usize> = None;
    let mut written: Vec<&str> = Vec::new();
    for line in text.lines() {
        if let Some(t) = table_header(line) {
            table = Some(t.to_owned());
            out.push(line.to_owned());
            if t == "resp" {
                resp_header = Some(out.len() - 1);
            }
            continue;
        }
        if table.as_deref() == Some("resp")
            && let Some(k) = line_key(line)
            && let Some((key, value)) = values.iter().find(|(n, _)| *n == k)
        {
            if let Some(v) = value
                && !written.contains(key)
            {
                out.push(format!("{key} = {v}"));
                written.push(key);
            }
            continue;
        }
        out.push(line.to_owned());
    }
    let missing: Vec<String> = values
        .iter()
        .filter(|(k, v)| v.is_some() && !written.contains(k))
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {v}")))
        .collect();
    if !missing.is_empty() {
        match resp_header {
            Some(at) => {
                for (i, l) in missing.into_iter().enumerate() {
                    out.insert(at + 1 + i, l);
                }
            }
            None => {
                out.push(String::new());
                out.push("# Generated by CONFIG REWRITE".to_owned());
                out.push("[resp]".to_owned());
                out.extend(missing);
            }
        }
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

fn replace_file(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir
        .map_or_else(|| Path::new(".").to_path_buf(), Path::to_path_buf)
        .join(format!(".{name}.rewrite.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(d) = dir {
        std::fs::File::open(d)?.sync_all()?;
    }
    Ok(())
}

/// CONFIG REWRITE
pub fn rewrite(s: &Shared, c: &mut Client, _: &[Bytes]) {
    let Some(path) = s.config.config_file.clone() else {
        c.out
            .error("ERR The server is running without a config file");
        return;
    };
    let result = std::fs::read_to_string(&path)
        .map_err(|e| e.to_string())
        .and_then(|old| {
            let new = rewrite_text(&old, &owned_keys(s));
            toml::from_str::<toml::Table>(&new)
                .map_err(|e| format!("the rewritten file would not parse: {e}"))?;
            replace_file(&path, &new).map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            tracing::info!(file = %path.display(), "CONFIG REWRITE executed with success");
            c.out.ok();
        }
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "CONFIG REWRITE failed");
            c.out.error(&format!("ERR Rewriting config file: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rewrite_replaces_adds_and_removes_only_the_owned_keys() {
        let old = "# top\ndata_dir = \"d\"\n\n[resp]\naddr = \"127.0.0.1:1\"\n# keep me\nreplicaof = \"h:1\"\nmasterauth = \"old\"\n\n[grpc]\nreplicaof_like = 1\n";
        let new = rewrite_text(
            old,
            &[
                ("replicaof", Some("\"h2:2\"".into())),
                ("masterauth", None),
                ("masteruser", Some("\"u\"".into())),
            ],
        );
        assert_eq!(
            new,
            "# top\ndata_dir = \"d\"\n\n[resp]\nmasteruser = \"u\"\naddr = \"127.0.0.1:1\"\n# keep me\nreplicaof = \"h2:2\"\n\n[grpc]\nreplicaof_like = 1\n"
        );
        assert!(toml::from_str::<toml::Table>(&new).is_ok());
    }

    #[test]
    fn rewrite_adds_a_resp_table_when_there_is_none() {
        let new = rewrite_text(
            "only_resp = true\n",
            &[("replicaof", Some("\"h:1\"".into()))],
        );
        let t: toml::Table = toml::from_str(&new).unwrap();
        assert_eq!(t["resp"]["replicaof"].as_str(), Some("h:1"));
        assert_eq!(t["only_resp"].as_bool(), Some(true));
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        let v = "a\"b\\c\nd";
        let t: toml::Table = toml::from_str(&format!("k = {}", toml_string(v))).unwrap();
        assert_eq!(t["k"].as_str(), Some(v));
    }
}
