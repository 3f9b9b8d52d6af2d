//! `speedlayer shell` through the real binaries: lines read from a pipe run as the same
//! commands the command line has (quotes and escapes included), a failing command prints
//! its error and the shell goes on, `exit` ends it with status 0, and the lines are kept in
//! the history file, which the next session loads and extends.

use std::io::Write;
use std::process::{Command, Stdio};

use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;

/// One shell session fed `input`; (status ok, stdout, stderr).
fn session(
    server: &ServerProcess,
    history: &std::path::Path,
    input: &str,
) -> (bool, String, String) {
    let mut child = Command::new(bin_path("speedlayer"))
        .args(["--addr", &server.url(), "shell"])
        .env("SPEEDLAYER_HISTORY", history)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start speedlayer shell");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_shell_runs_commands_goes_on_after_errors_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    let history = dir.path().join("history");

    let (ok, out, err) = session(
        &server,
        &history,
        "create-table driving --family cf1:versions=3\n\
         put driving 'V0042#2026 11 22' cf1:speed 87\n\
         describe nosuch\n\
         bogus-command\n\
         \n\
         get driving 'V0042#2026 11 22'\n\
         scan driving --prefix V0042 --filter \"cf1:speed > 80\" --json\n\
         exit\n\
         create-table after_exit --family f\n",
    );
    assert!(ok, "the shell failed:\n{out}\n{err}");
    assert!(out.contains("created table driving"), "{out}");
    assert!(
        out.contains("V0042#2026 11 22"),
        "a quoted key with spaces: {out}"
    );
    assert!(out.contains("87"), "{out}");
    assert!(
        err.contains("error: table 'nosuch' does not exist"),
        "a failing command's error: {err}"
    );
    assert!(
        err.contains("bogus-command"),
        "an unknown command is named: {err}"
    );
    let json_rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("a JSON row"))
        .collect();
    assert_eq!(json_rows.len(), 1, "the scan ran after the errors: {out}");
    let tables = server.cli(&["tables"]).ok();
    assert!(
        !tables.contains("after_exit"),
        "a line after exit ran: {tables}"
    );

    let saved = std::fs::read_to_string(&history).expect("history written");
    let lines: Vec<&str> = saved.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(
        lines.contains(&"create-table driving --family cf1:versions=3")
            && lines.contains(&"bogus-command")
            && lines.contains(&"exit"),
        "{saved}"
    );
    assert!(!lines.contains(&""), "blank lines are not history: {saved}");

    // The next session loads the history and appends to it; end of input ends it too.
    let (ok, out, err) = session(&server, &history, "count driving\n");
    assert!(ok, "{out}\n{err}");
    assert!(out.contains('1'), "one row counted: {out}");
    let saved = std::fs::read_to_string(&history).unwrap();
    assert!(
        saved.contains("create-table driving") && saved.contains("count driving"),
        "{saved}"
    );
}
