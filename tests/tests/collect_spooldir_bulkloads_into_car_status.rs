//! The collector's bulkload sink, with real binaries on loopback: a status file dropped into
//! a spooling directory flows spooldir → memory channel → bulkload sink, which rolls it into
//! a file and bulk-loads that file into `car_status` on a real `speedlayer-server`. Every
//! good line becomes a row queryable by car prefix; the lines the status format refuses are
//! in `<file>.bad` with their reason (counted, not dropped); a loaded file is deleted, so
//! nothing is left to load twice.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use speedlayer_tests::bins::bin_path;
use speedlayer_tests::server::ServerProcess;

struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_agent(config: &Path) -> Agent {
    let mut child = Command::new(bin_path("speedlayer-ingest"))
        .args(["collect", "--config"])
        .arg(config)
        .args(["--http-addr", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    // The agent prints one line when every pipeline runs.
    let first = lines.next().expect("agent output").unwrap();
    assert!(first.contains("ready"), "{first}");
    Agent(child)
}

fn count(server: &ServerProcess, prefix: &str) -> u64 {
    server
        .cli(&["count", "car_status", "--prefix", prefix])
        .ok()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn a_spooled_status_file_ends_up_queryable_in_car_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(&dir.path().join("data"), &[]);
    server
        .cli(&["create-table", "car_status", "--family", "cf1:ttl=31536000"])
        .ok();
    let spool = dir.path().join("spool");
    let out = dir.path().join("bulk");
    std::fs::create_dir_all(&spool).unwrap();
    let config = dir.path().join("agent.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[[pipeline]]
name = "status"
source = {{ type = "spooldir", dir = "spool", done_suffix = ".done", ignore_pattern = "^\\.", poll_interval = "50ms" }}
channel = {{ type = "memory", capacity = 10000 }}
sink = {{ type = "bulkload", dir = "bulk", server = "{}", table = "car_status", roll_interval = "300ms" }}
"#,
            server.url()
        ),
    )
    .unwrap();
    let _agent = start_agent(&config);

    let mut text = String::new();
    for i in 0..600 {
        let t = i / 6 * 3;
        text.push_str(&format!(
            "20261122{:02}{:02}{:02},V{:04},32,33,31,32,1,1,1,1,0,0,0\n",
            t / 3600,
            t / 60 % 60,
            t % 60,
            40 + i % 6
        ));
    }
    text.push_str("20261122000000,V0042,32,33\n");
    text.push_str("20261122000000,V0042,32,33,31,32,1,1,9,1,0,0,0\n");
    std::fs::write(spool.join(".status-20261122.csv.tmp"), &text).unwrap();
    std::fs::rename(
        spool.join(".status-20261122.csv.tmp"),
        spool.join("status-20261122.csv"),
    )
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&server, "V") < 600 {
        assert!(Instant::now() < deadline, "rows did not arrive");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(count(&server, "V"), 600);
    assert_eq!(count(&server, "V0042#"), 100);
    let scan = server
        .cli(&[
            "scan",
            "car_status",
            "--prefix",
            "V0042#",
            "--limit",
            "1",
            "--json",
        ])
        .ok();
    assert!(scan.contains("tyre_fl_psi"), "{scan}");

    // The loaded file is gone; its dead letters stay, with their reasons.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".log")),
        "loaded files are deleted: {names:?}"
    );
    let bad: Vec<&String> = names.iter().filter(|n| n.ends_with(".bad")).collect();
    assert_eq!(bad.len(), 1, "{names:?}");
    let bad = std::fs::read_to_string(out.join(bad[0])).unwrap();
    assert_eq!(bad.lines().count(), 2, "{bad}");
    assert!(bad.contains("expected 13 fields, got 4"), "{bad}");
    assert!(bad.contains("field 9 (lamp RL)"), "{bad}");
}
