//! `make run ARGS="..."` hands the flags to the real server: it comes up on the addresses
//! given, keeps its data in the directory given, and by default (no `--data-dir` or
//! `--config` in ARGS) uses a directory outside the checkout that it prints.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use speedlayer_tests::tansu::free_port;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

#[test]
fn make_run_passes_args_to_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let grpc = format!("127.0.0.1:{}", free_port());
    let args = format!(
        "ARGS=--data-dir {} --grpc-addr {grpc} --http-addr 127.0.0.1:0 --resp-addr off",
        data.display()
    );
    let mut child = Command::new("make")
        .arg("-s")
        .arg("-C")
        .arg(repo())
        .args(["run", "RUN_PROFILE=dev", &args])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: make, cargo and the server all get the SIGTERM.
        .process_group(0)
        .spawn()
        .expect("make run");
    let pgid = child.id() as libc::pid_t;
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = loop {
        let line = lines
            .next()
            .expect("make run ended before READY")
            .expect("read stdout");
        if line.starts_with("READY") {
            break line;
        }
        assert!(
            !line.contains("data directory"),
            "the default directory is not used when ARGS names one: {line}"
        );
    };
    assert!(ready.contains(&format!("grpc={grpc}")), "{ready}");
    assert!(
        !ready.contains("resp="),
        "--resp-addr off reached the server: {ready}"
    );
    assert!(
        data.join("LOCK").exists(),
        "data not in the --data-dir given"
    );

    // SAFETY: kill(2) on the process group this test created.
    assert_eq!(unsafe { libc::kill(-pgid, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "make run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50)); // polling for the exit
    }
}

#[test]
fn make_run_defaults_to_a_data_dir_outside_the_checkout() {
    let plan = |extra: &[&str]| {
        let out = Command::new("make")
            .arg("-n")
            .arg("-C")
            .arg(repo())
            .arg("run")
            .args(extra)
            .env("XDG_DATA_HOME", "/xdg-data")
            .output()
            .expect("make -n run");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let default = plan(&[]);
    assert!(
        default.contains("--data-dir /xdg-data/speedlayer/data"),
        "{default}"
    );
    assert!(default.contains("make run: data directory /xdg-data/speedlayer/data"));
    let with_config = plan(&["ARGS=--config config/server.toml"]);
    assert!(
        !with_config.contains("--data-dir"),
        "a config file's data_dir must win over the default: {with_config}"
    );
}
