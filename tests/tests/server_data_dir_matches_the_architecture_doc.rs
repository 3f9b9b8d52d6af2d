//! The data-directory layout in `ARCHITECTURE.md` is what a real server leaves on disk:
//! every file of a server that stored rows and a set (listed while it runs and after a
//! clean stop) matches a documented entry, and every documented entry that always exists
//! is seen.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use speedlayer_tests::server::ServerProcess;

/// One documented entry: path components with `<placeholder>`s, and whether it can be
/// absent (the doc says "only while").
struct Entry {
    components: Vec<String>,
    transient: bool,
}

/// The entries of the `## Data directory` code block; an indented entry is relative to the
/// last directory entry above it, and `A, B` documents two files.
fn documented() -> Vec<Entry> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ARCHITECTURE.md"))
            .unwrap();
    let section = &doc[doc.find("## Data directory").expect("the section")..];
    let block = section.split("```").nth(1).expect("a code block");
    let mut out = Vec::new();
    let mut dir = String::new();
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let indent = line.len() - line.trim_start().len();
        if indent > 8 {
            continue; // a continued description
        }
        let (path, desc) = line.trim().split_once("  ").unwrap_or((line.trim(), ""));
        let path = path.trim();
        let full: Vec<String> = if indent == 0 {
            if path.ends_with('/') {
                dir = path.to_owned();
            }
            vec![path.to_owned()]
        } else {
            path.split(", ").map(|p| format!("{dir}{p}")).collect()
        };
        for f in full {
            if f.ends_with('/') {
                continue; // directories are implied by their files
            }
            let rel = f
                .strip_prefix("<data-dir>/")
                .expect("paths start at <data-dir>");
            out.push(Entry {
                components: rel.split('/').map(str::to_owned).collect(),
                transient: desc.contains("only while"),
            });
        }
    }
    assert!(out.len() >= 8, "too few entries parsed: {}", out.len());
    out
}

/// Whether a file name matches one pattern component (at most one `<placeholder>`:
/// `<...:020>` is 20 digits, `<nnnnnn>` 6, `<region>` a number, anything else non-empty).
fn component_matches(pattern: &str, name: &str) -> bool {
    let Some((prefix, rest)) = pattern.split_once('<') else {
        return pattern == name;
    };
    let (ph, suffix) = rest.split_once('>').expect("closed placeholder");
    let Some(mid) = name
        .strip_prefix(prefix)
        .and_then(|n| n.strip_suffix(suffix))
    else {
        return false;
    };
    let digits = |n: usize| mid.len() == n && mid.bytes().all(|b| b.is_ascii_digit());
    if ph.ends_with(":020") {
        digits(20)
    } else if ph == "nnnnnn" {
        digits(6)
    } else if ph == "region" {
        !mid.is_empty() && mid.bytes().all(|b| b.is_ascii_digit())
    } else {
        !mid.is_empty()
    }
}

fn entry_matches(e: &Entry, rel: &Path) -> bool {
    let names: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    names.len() == e.components.len()
        && e.components
            .iter()
            .zip(&names)
            .all(|(p, n)| component_matches(p, n))
}

fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_file_on_disk_is_documented_and_every_lasting_entry_is_on_disk() {
    let entries = documented();
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut server = ServerProcess::start_pinned(&data, &[]);
    server
        .cli(&["create-table", "driving", "--family", "cf1:versions=3"])
        .ok();
    server
        .cli(&["put", "driving", "V0042#20261122143015", "cf1:speed", "87"])
        .ok();
    let resp = server.resp.expect("RESP on");
    let mut c = redis::Client::open(format!("redis://{resp}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let added: i64 = redis::cmd("SADD")
        .arg("20261122")
        .arg("V0042")
        .query(&mut c)
        .unwrap();
    assert_eq!(added, 1);

    // The harness keeps the server's stderr in the data directory; the server does not.
    let harness_log = Path::new("server.log");
    let server_files = || -> Vec<PathBuf> {
        files(&data)
            .into_iter()
            .filter(|f| f != harness_log)
            .collect()
    };
    let running = server_files();
    assert!(server.terminate().success());
    let stopped = server_files();

    let mut seen = BTreeSet::new();
    for (when, list) in [("running", &running), ("stopped", &stopped)] {
        for f in list {
            let i = entries
                .iter()
                .position(|e| entry_matches(e, f))
                .unwrap_or_else(|| panic!("{when}: {} is not in ARCHITECTURE.md", f.display()));
            seen.insert(i);
        }
    }
    for (i, e) in entries.iter().enumerate() {
        assert!(
            e.transient || seen.contains(&i),
            "documented but never on disk: {}\nrunning: {running:?}\nstopped: {stopped:?}",
            e.components.join("/")
        );
    }
}
