//! Binary keys, qualifiers and values through the real `speedlayer` binary: values from
//! `--value-file PATH` and from standard input (`--value-file -`), megabytes long and with
//! every byte value, come back byte for byte; the `\xNN` and `\\` escapes the output
//! prints are accepted as input, so any printed key can be typed back.

use std::io::Write;
use std::process::{Command, Stdio};

use speedlayer_client::cli::output::JsonRow;
use speedlayer_client::cli::spec::unescape;
use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;

fn one_row(json_lines: &str) -> JsonRow {
    let rows: Vec<JsonRow> = json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect();
    assert_eq!(rows.len(), 1, "{json_lines}");
    rows.into_iter().next().unwrap()
}

/// Deterministic bytes that contain every byte value.
fn binary(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|i| {
            if i < 256 {
                return i as u8;
            }
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn cli_binary_values_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    server.cli(&["create-table", "bin", "--family", "cf"]).ok();

    // A key with a zero byte, a non-UTF-8 byte and a literal backslash, typed escaped.
    let key_text = r"k\x00\xFF\\x";
    let key_bytes = b"k\x00\xff\\x";

    // From a file: 3 MiB with every byte value.
    let big = binary(3 * 1024 * 1024, 7);
    let file = dir.path().join("value.bin");
    std::fs::write(&file, &big).unwrap();
    let file_arg = file.to_str().unwrap();
    server
        .cli(&[
            "put",
            "bin",
            key_text,
            r"cf:q\x01",
            "--value-file",
            file_arg,
        ])
        .ok();
    let row = one_row(&server.cli(&["get", "bin", key_text, "--json"]).ok());
    assert_eq!(row.row, key_text, "the key prints as it was typed");
    assert_eq!(unescape("row", &row.row).unwrap(), &key_bytes[..]);
    assert_eq!(row.cells.len(), 1);
    assert_eq!(row.cells[0].qualifier, r"q\x01");
    let got = unescape("value", &row.cells[0].value).unwrap();
    assert!(
        got == big,
        "file value differs ({} vs {} bytes)",
        got.len(),
        big.len()
    );

    // From standard input: 1 MiB.
    let piped = binary(1024 * 1024, 11);
    let mut child = Command::new(bin_path("speedlayer"))
        .args(["--addr", &server.url(), "put", "bin", "stdin-row", "cf:q"])
        .args(["--value-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&piped).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = one_row(&server.cli(&["get", "bin", "stdin-row", "--json"]).ok());
    let got = unescape("value", &row.cells[0].value).unwrap();
    assert!(got == piped, "stdin value differs ({} bytes)", got.len());

    // Escaped values typed on the command line; a backslash prints as `\\`.
    server
        .cli(&["put", "bin", "typed", "cf:v", r"a\\b\x00\xC3\xA9"])
        .ok();
    let row = one_row(&server.cli(&["get", "bin", "typed", "--json"]).ok());
    assert_eq!(row.cells[0].value, r"a\\b\x00é");
    let table = server.cli(&["get", "bin", "typed"]).ok();
    assert!(table.contains(r"a\\b\x00é"), "{table}");

    // Every key a scan prints can be typed back: as a get, and as scan bounds.
    let scanned = server
        .cli(&["scan", "bin", "--json", "--column", "cf:v"])
        .ok();
    let printed = one_row(&scanned).row;
    assert_eq!(printed, "typed");
    let start_at_key = server
        .cli(&[
            "scan",
            "bin",
            "--start",
            key_text,
            "--stop",
            r"k\x00\xFF\\y",
            "--json",
        ])
        .ok();
    assert_eq!(one_row(&start_at_key).row, key_text);

    // A typo in an escape is refused, not stored.
    let err = server.cli(&["put", "bin", r"k\q", "cf:q", "v"]).err();
    assert!(err.contains(r"bad escape '\q'"), "{err}");
    // Exactly one of VALUE and --value-file.
    let err = server
        .cli(&["put", "bin", "r", "cf:q", "v", "--value-file", file_arg])
        .err();
    assert!(err.contains("cannot be used with"), "{err}");
}
