//! `speedlayer scan --column A --filter "B > x"` through the real binaries: the filter sees
//! column B even though only A was selected, and the output shows only A. Also with a
//! whole-family selection in another family, with `--limit`, and in the table output.

use speedlayer_client::cli::output::JsonRow;
use speedlayer_tests::server::ServerProcess;

fn rows(json_lines: &str) -> Vec<JsonRow> {
    json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

/// (row, qualifier, value) of every cell, in order.
fn cells(json_lines: &str) -> Vec<(String, String, String)> {
    rows(json_lines)
        .into_iter()
        .flat_map(|r| {
            r.cells.into_iter().map(move |c| {
                (
                    r.row.clone(),
                    format!("{}:{}", c.family, c.qualifier),
                    c.value,
                )
            })
        })
        .collect()
}

fn own(v: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    v.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[test]
fn cli_filter_on_unselected_column() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    server
        .cli(&["create-table", "cars", "--family", "cf1", "--family", "cf2"])
        .ok();
    for (row, speed, area, note) in [
        ("V1", "87", "A07", "fast"),
        ("V2", "60", "A07", "slow"),
        ("V3", "95", "B01", "fast"),
        ("V4", "81", "A07", "fast"),
    ] {
        for (col, v) in [("cf1:speed", speed), ("cf1:area", area), ("cf2:note", note)] {
            server.cli(&["put", "cars", row, col, v]).ok();
        }
    }

    // The filter column is not selected: rows still filtered, only cf1:area shown.
    let out = server
        .cli(&[
            "scan",
            "cars",
            "--column",
            "cf1:area",
            "--filter",
            "cf1:speed > 80",
            "--json",
        ])
        .ok();
    assert_eq!(
        cells(&out),
        own(&[
            ("V1", "cf1:area", "A07"),
            ("V3", "cf1:area", "B01"),
            ("V4", "cf1:area", "A07"),
        ])
    );

    // A selected family, a filter on another family, nested in AND/OR.
    let out = server
        .cli(&[
            "scan",
            "cars",
            "--column",
            "cf2",
            "--filter",
            "cf1:speed > 80 AND (cf1:area = 'A07' OR cf1:area = 'Z99')",
            "--json",
        ])
        .ok();
    assert_eq!(
        cells(&out),
        own(&[("V1", "cf2:note", "fast"), ("V4", "cf2:note", "fast")])
    );

    // Selected and unselected filter columns together; the selected one stays shown.
    let out = server
        .cli(&[
            "scan",
            "cars",
            "--column",
            "cf1:speed",
            "--filter",
            "cf1:speed < 90 AND cf2:note = 'fast'",
            "--json",
        ])
        .ok();
    assert_eq!(
        cells(&out),
        own(&[("V1", "cf1:speed", "87"), ("V4", "cf1:speed", "81")])
    );

    // --limit counts rows shown, reversed too.
    let out = server
        .cli(&[
            "scan",
            "cars",
            "--column",
            "cf1:area",
            "--filter",
            "cf1:speed > 80",
            "--limit",
            "2",
            "--reversed",
            "--json",
        ])
        .ok();
    assert_eq!(
        cells(&out),
        own(&[("V4", "cf1:area", "A07"), ("V3", "cf1:area", "B01")])
    );

    // Table output: the same rows, no cf1:speed column.
    let out = server
        .cli(&[
            "scan",
            "cars",
            "--column",
            "cf1:area",
            "--filter",
            "cf1:speed > 80",
        ])
        .ok();
    assert!(out.ends_with("3 row(s)\n"), "{out}");
    assert!(!out.contains("cf1:speed"), "{out}");
    assert_eq!(out.matches("cf1:area").count(), 3, "{out}");
}
