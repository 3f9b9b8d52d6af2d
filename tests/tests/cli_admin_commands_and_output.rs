//! The `speedlayer` admin commands and output options through the real binaries: `count`
//! with a prefix and a range, `tables --json` and `describe --json`, `drop-table` refusing
//! without `--yes` when it cannot ask, `--time-format iso`, wide (Korean) keys aligned in
//! the table output, shell completions without a server, and help texts that describe the
//! CLI and every family option.

use speedlayer_tests::server::{ServerProcess, run_cli};

/// Terminal columns of the test's text: Hangul syllables take two, ASCII one.
fn width(s: &str) -> usize {
    s.chars().map(|c| if c >= '\u{1100}' { 2 } else { 1 }).sum()
}

/// The display column where `needle` starts in `line`.
fn column(line: &str, needle: &str) -> usize {
    let at = line
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in {line:?}"));
    width(&line[..at])
}

#[test]
fn cli_admin_commands_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    server
        .cli(&[
            "create-table",
            "driving",
            "--family",
            "cf1:versions=3:compression=none:bloom=rowcol:blocksize=4096",
            "--family",
            // A TTL only here: cf1's fixed 2025 timestamps would have expired under one.
            "cf2:ttl=604800",
        ])
        .ok();
    for (row, ts) in [
        ("V0001-1", "1763800000000"),
        ("V0001-2", "1763800000001"),
        ("V0002-1", "1763800000002"),
        ("차량-0003", "1763800000003"),
    ] {
        server
            .cli(&["put", "driving", row, "cf1:speed", "87", "--ts", ts])
            .ok();
    }

    // count: all, by prefix, by range.
    for (args, want) in [
        (&[][..], "4"),
        (&["--prefix", "V0001"][..], "2"),
        (&["--start", "V0001-2", "--stop", "V0002-2"][..], "2"),
        (&["--prefix", "nothing"][..], "0"),
    ] {
        let mut all = vec!["count", "driving"];
        all.extend_from_slice(args);
        assert_eq!(server.cli(&all).ok().trim(), want, "count {args:?}");
    }

    // tables --json and describe --json.
    let tables: serde_json::Value =
        serde_json::from_str(server.cli(&["tables", "--json"]).ok().trim()).unwrap();
    assert_eq!(tables["table"], "driving");
    assert_eq!(tables["families"][0]["name"], "cf1");
    assert_eq!(tables["families"][0]["versions"], 3);
    assert_eq!(
        tables["families"][0]["ttl_seconds"],
        serde_json::Value::Null
    );
    assert_eq!(tables["families"][0]["compression"], "none");
    assert_eq!(tables["families"][0]["bloom"], "rowcol");
    assert_eq!(tables["families"][0]["block_size"], 4096);
    assert_eq!(tables["families"][1]["ttl_seconds"], 604800);
    let desc: serde_json::Value =
        serde_json::from_str(server.cli(&["describe", "driving", "--json"]).ok().trim()).unwrap();
    assert_eq!(desc["table"], "driving");
    assert_eq!(desc["families"], tables["families"]);
    assert_eq!(desc["regions"].as_array().map(Vec::len), Some(1), "{desc}");

    // --time-format: ISO 8601 in the table and in JSON; milliseconds by default.
    let iso = server
        .cli(&["get", "driving", "V0001-1", "--time-format", "iso"])
        .ok();
    assert!(iso.contains("2025-11-22T08:26:40.000Z"), "{iso}");
    let iso = server
        .cli(&[
            "--time-format",
            "iso",
            "get",
            "driving",
            "V0001-2",
            "--json",
        ])
        .ok();
    let row: serde_json::Value = serde_json::from_str(iso.trim()).unwrap();
    assert_eq!(row["cells"][0]["timestamp"], "2025-11-22T08:26:40.001Z");
    let ms = server
        .cli(&["scan", "driving", "--prefix", "V0002", "--json"])
        .ok();
    let row: serde_json::Value = serde_json::from_str(ms.trim()).unwrap();
    assert_eq!(row["cells"][0]["timestamp"], 1763800000002u64);

    // Wide characters: every column starts at the same display column on every line.
    let table = server.cli(&["scan", "driving"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    let header = lines[0];
    for line in &lines[1..lines.len() - 1] {
        assert_eq!(
            column(line, "cf1:speed"),
            column(header, "COLUMN"),
            "{table}"
        );
        assert_eq!(
            column(line, "17638"),
            column(header, "TIMESTAMP"),
            "{table}"
        );
    }
    assert!(lines.iter().any(|l| l.starts_with("차량-0003")), "{table}");

    // drop-table: not a terminal and no --yes: refused, table kept.
    let err = server.cli(&["drop-table", "driving"]).err();
    assert_eq!(
        err.trim(),
        "error: drop-table 'driving' deletes all its data and standard input is not a \
         terminal to ask; pass --yes to drop it"
    );
    assert!(server.cli(&["tables"]).ok().contains("driving"));
    let out = server.cli(&["drop-table", "driving", "--yes"]).ok();
    assert_eq!(out.trim(), "dropped table driving");
    assert!(server.cli(&["tables"]).ok().contains("0 table(s)"));
    drop(server);

    // Completions need no server: the address is never dialled.
    for shell in ["bash", "zsh", "fish"] {
        let script = run_cli("127.0.0.1:1", &["completions", shell]).ok();
        assert!(script.contains("speedlayer"), "{shell}");
        assert!(script.contains("create-table"), "{shell}");
    }

    // Help describes the CLI and, for create-table, every family option.
    let help = run_cli("127.0.0.1:1", &["--help"]).ok();
    assert!(help.contains("The Speedlayer command line"), "{help}");
    assert!(!help.contains("client library"), "{help}");
    let help = run_cli("127.0.0.1:1", &["create-table", "--help"]).ok();
    for option in ["versions=", "ttl=", "compression=", "bloom=", "blocksize="] {
        assert!(help.contains(option), "{option}: {help}");
    }
}
