//! Selectors in a running agent: a multiplexing selector routes by a header extracted from
//! the line (car number's letter) to two branches with their own channels and file_roll
//! sinks, unmapped values go to the default branch; a replicating selector copies every
//! line to both branches.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::metrics::Registry;

fn lines_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flat_map(|e| {
            fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    v.sort();
    v
}

fn run(dir: &Path, selector: &str, n: u64) {
    let toml = format!(
        r#"
[[pipeline]]
name = "p"
source = {{ type = "spooldir", dir = "{d}/spool", poll_interval = "10ms" }}
interceptors = [{{ type = "extract", regex = "^[0-9]{{14}},([A-Z])", header = "class" }}, {{ type = "host", value = "h1" }}]
selector = {selector}
[[pipeline.branch]]
name = "v"
channel = {{ type = "memory", capacity = 100 }}
sink = {{ type = "file_roll", dir = "{d}/v", roll_size_mb = 1 }}
[[pipeline.branch]]
name = "other"
channel = {{ type = "file", dir = "{d}/other-channel", capacity_mb = 4 }}
sink = {{ type = "file_roll", dir = "{d}/other", roll_size_mb = 1 }}
"#,
        d = dir.display()
    );
    let cfg = AgentConfig::parse(&toml).unwrap();
    fs::create_dir_all(dir.join("spool")).unwrap();
    let text: String = (0..300)
        .map(|i| format!("20261122143015,{}{i:04},1\n", ["V", "W", "X"][i % 3]))
        .collect();
    fs::write(dir.join("spool/a.csv"), text).unwrap();
    let reg = Registry::new();
    let a = agent::start(&cfg, &reg).unwrap();
    let out = |b: &str| {
        reg.counter(
            "speedlayer_collect_events_out_total",
            "",
            &[("pipeline", "p"), ("branch", b)],
        )
        .get()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while out("v") + out("other") < n {
        assert!(Instant::now() < deadline, "stuck");
        std::thread::sleep(Duration::from_millis(10));
    }
    a.stop().unwrap();
}

#[test]
fn multiplexing_routes_by_extracted_header() {
    let d = tempfile::tempdir().unwrap();
    run(
        d.path(),
        r#"{ type = "multiplexing", header = "class", mapping = { V = ["v"], W = ["v", "other"] }, default = ["other"] }"#,
        400,
    );
    let v = lines_in(&d.path().join("v"));
    let other = lines_in(&d.path().join("other"));
    assert_eq!(v.len(), 200);
    assert!(v.iter().all(|l| l.contains(",V") || l.contains(",W")));
    assert_eq!(other.len(), 200);
    assert!(other.iter().all(|l| l.contains(",W") || l.contains(",X")));
}

#[test]
fn replicating_copies_to_every_branch() {
    let d = tempfile::tempdir().unwrap();
    run(d.path(), r#"{ type = "replicating" }"#, 600);
    let v = lines_in(&d.path().join("v"));
    assert_eq!(v.len(), 300);
    assert_eq!(v, lines_in(&d.path().join("other")));
}
