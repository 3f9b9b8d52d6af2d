//! `speedlayer` error messages through the real binaries: one line in the user's words,
//! naming what they typed with quotes around names, and no RPC names, gRPC codes or proto
//! enum names. Comparing a number column with a bare word is refused, not an empty result.

use speedlayer_tests::server::ServerProcess;

/// Runs a failing command and returns its one-line message.
fn error(server: &ServerProcess, args: &[&str]) -> String {
    let err = server.cli(args).err();
    assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    for internal in [
        "failed:",
        "Describe",
        "Mutate",
        "Scan",
        "NOT_FOUND",
        "INVALID_ARGUMENT",
        "ALREADY_EXISTS",
        "COMPARE_OP",
        "transport error",
    ] {
        assert!(!err.contains(internal), "{args:?} says {internal:?}: {err}");
    }
    err.trim().to_string()
}

#[test]
fn cli_errors_in_user_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(dir.path(), &[]);
    server
        .cli(&["create-table", "driving", "--family", "cf1"])
        .ok();
    server
        .cli(&["put", "driving", "V1", "cf1:speed", "87"])
        .ok();

    let cases: [(&[&str], &str); 8] = [
        (&["describe", "nope"], "error: table 'nope' does not exist"),
        (
            &["create-table", "driving", "--family", "cf1"],
            "error: table 'driving' already exists",
        ),
        (
            &["scan", "driving", "--column", "nofam:q"],
            "error: unknown column family 'nofam' in table 'driving'",
        ),
        (
            &["get", "driving", "V1", "--column", "nofam"],
            "error: unknown column family 'nofam' in table 'driving'",
        ),
        (
            &["put", "driving", "V1", "nofam:q", "v"],
            "error: unknown column family 'nofam' in table 'driving'",
        ),
        (
            &["scan", "driving", "--filter", "cf1:speed >> 80"],
            "error: bad filter expression at byte 11: expected a value, found operator '>'",
        ),
        (
            &["scan", "driving", "--filter", "cf1:speed <> <= 80"],
            "error: bad filter expression at byte 13: expected a value, found operator '<='",
        ),
        (
            &["scan", "driving", "--filter", "cf1:speed > fast"],
            "error: bad filter expression at byte 12: 'cf1:speed > fast' compares with a word \
             that is not a number; write a number, or quote it ('fast') to compare bytes",
        ),
    ];
    for (args, want) in cases {
        assert_eq!(error(&server, args), want, "{args:?}");
    }
    // Quoted, the same comparison is a deliberate bytewise one: "87" < "fast".
    let out = server
        .cli(&[
            "scan",
            "driving",
            "--filter",
            "cf1:speed < 'fast'",
            "--json",
        ])
        .ok();
    assert_eq!(out.lines().count(), 1, "{out}");
}
