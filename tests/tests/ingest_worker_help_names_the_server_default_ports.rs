//! `speedlayer-ingest worker --help` shows addresses a newcomer can paste: the gRPC and RESP
//! ports in its examples are the ones `speedlayer-server` listens on by default (read from
//! the server's own `--help`), and no other loopback port is offered for the server.

use std::process::Command;

use speedlayer_tests::bins::bin_path;

fn help(bin: &str, args: &[&str]) -> String {
    let out = Command::new(bin_path(bin))
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(out.status.success(), "{bin} --help failed");
    String::from_utf8(out.stdout).expect("UTF-8 help")
}

/// The `(default `ADDR`)` of `flag` in the server's help.
fn server_default(server_help: &str, flag: &str) -> String {
    let after = &server_help[server_help.find(flag).expect("flag in help")..];
    let d = &after[after.find("(default `").expect("a default") + "(default `".len()..];
    d[..d.find('`').expect("closing backtick")].to_owned()
}

#[test]
fn worker_help_examples_use_the_server_default_ports() {
    let server = help("speedlayer-server", &[]);
    let grpc = server_default(&server, "--grpc-addr");
    let resp = server_default(&server, "--resp-addr");
    let worker = help("speedlayer-ingest", &["worker"]);
    assert!(
        worker.contains(&format!("--server http://{grpc}")),
        "no example with --server http://{grpc}:\n{worker}"
    );
    assert!(
        worker.contains(&format!("--resp {resp}")),
        "no example with --resp {resp}:\n{worker}"
    );
    // Every `http://127.0.0.1:PORT` offered for the region server is the real one.
    for (i, _) in worker.match_indices("http://127.0.0.1:") {
        let url: String = worker[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || ":/.".contains(*c))
            .collect();
        assert_eq!(url, format!("http://{grpc}"), "a stale port in:\n{worker}");
    }
}
