//! `speedlayer scan` bounds, both directions, through the real binaries: forward scans read
//! `start <= key < stop`; reversed scans read `stop < key <= start` in descending order
//! (HBase style, as the proto and `--help` say). Every combination of no bound, start
//! only, stop only and both, with keys that extend a bound (`r3x` after `r3`) so an
//! off-by-one at either end shows.

use speedlayer_tests::server::ServerProcess;

const KEYS: [&str; 6] = ["r1", "r2", "r3", "r3x", "r4", "r5"];

fn scan_keys(server: &ServerProcess, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["scan", "bounds", "--json"];
    args.extend_from_slice(extra);
    server
        .cli(&args)
        .ok()
        .lines()
        .map(|l| {
            let v: serde_json::Value =
                serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}"));
            v["row"].as_str().expect("row is a string").to_string()
        })
        .collect()
}

#[test]
fn cli_scan_reversed_honours_start_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    server
        .cli(&["create-table", "bounds", "--family", "cf"])
        .ok();
    for k in KEYS {
        server.cli(&["put", "bounds", k, "cf:q", k]).ok();
    }

    let cases: [(&[&str], &[&str]); 12] = [
        // Forward: start inclusive, stop exclusive.
        (&[], &["r1", "r2", "r3", "r3x", "r4", "r5"]),
        (&["--start", "r3"], &["r3", "r3x", "r4", "r5"]),
        (&["--stop", "r3x"], &["r1", "r2", "r3"]),
        (&["--start", "r2", "--stop", "r4"], &["r2", "r3", "r3x"]),
        // Reversed: start is the highest row (inclusive), stop the lowest (exclusive).
        (&["--reversed"], &["r5", "r4", "r3x", "r3", "r2", "r1"]),
        (&["--reversed", "--start", "r3"], &["r3", "r2", "r1"]),
        (&["--reversed", "--stop", "r3"], &["r5", "r4", "r3x"]),
        (
            &["--reversed", "--start", "r3", "--stop", "r1"],
            &["r3", "r2"],
        ),
        (
            &["--reversed", "--start", "r4", "--stop", "r2"],
            &["r4", "r3x", "r3"],
        ),
        // Bounds that are not keys.
        (
            &["--reversed", "--start", "r3z", "--stop", "r0"],
            &["r3x", "r3", "r2", "r1"],
        ),
        // With a prefix and a limit.
        (&["--reversed", "--prefix", "r3", "--start", "r3"], &["r3"]),
        (
            &["--reversed", "--start", "r4", "--limit", "2"],
            &["r4", "r3x"],
        ),
    ];
    for (args, want) in cases {
        assert_eq!(scan_keys(&server, args), want, "scan {args:?}");
    }
    // A reversed range given in forward order is empty, not an error.
    assert!(scan_keys(&server, &["--reversed", "--start", "r1", "--stop", "r3"]).is_empty());
}
