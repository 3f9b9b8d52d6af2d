//! The tail source against real files: lines written, the file rotated (renamed and
//! recreated), truncated, then the agent stopped, the file rotated again while it is down,
//! and the agent restarted from its checkpoint. Every line arrives exactly once, in order,
//! in the file_roll sink's output.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::metrics::Registry;

fn append(path: &Path, lines: std::ops::Range<usize>) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    let text: String = lines.map(|i| format!("line-{i:05}\n")).collect();
    f.write_all(text.as_bytes()).unwrap();
}

fn out_count(reg: &Registry) -> u64 {
    reg.counter(
        "speedlayer_collect_events_out_total",
        "",
        &[("pipeline", "tail"), ("branch", "main")],
    )
    .get()
}

fn wait_out(reg: &Registry, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while out_count(reg) < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} delivered",
            out_count(reg)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(out_count(reg), n, "more delivered than written");
}

#[test]
fn every_line_once_across_rotation_truncation_and_restart() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fs::create_dir_all(dir.join("logs")).unwrap();
    let log = dir.join("logs/app.log");
    let toml = format!(
        r#"
[agent]
drain_timeout = "10s"
[[pipeline]]
name = "tail"
batch_size = 7
source = {{ type = "tail", path = "{log}", position_file = "{pos}", poll_interval = "10ms" }}
channel = {{ type = "memory", capacity = 50 }}
sink = {{ type = "file_roll", dir = "{arch}", roll_size_mb = 1, roll_interval = "1h" }}
"#,
        log = log.display(),
        pos = dir.join("state/app.pos").display(),
        arch = dir.join("archive").display()
    );
    let cfg = AgentConfig::parse(&toml).unwrap();

    append(&log, 0..100);
    let reg = Registry::new();
    let a = agent::start(&cfg, &reg).unwrap();
    wait_out(&reg, 100);

    // Rotation: the writer finishes the old file, renames it, starts a new one.
    append(&log, 100..150);
    fs::rename(&log, dir.join("logs/app.log.1")).unwrap();
    append(&log, 150..200);
    wait_out(&reg, 200);

    // Truncation (copytruncate style): the file shrinks, then grows again.
    OpenOptions::new()
        .write(true)
        .open(&log)
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log, 200..210);
    wait_out(&reg, 210);
    a.stop().unwrap();
    let text = reg.render();
    for want in [
        "speedlayer_collect_events_in_total{pipeline=\"tail\"} 210\n",
        "speedlayer_collect_events_out_total{pipeline=\"tail\",branch=\"main\"} 210\n",
        "speedlayer_collect_channel_events{pipeline=\"tail\",channel=\"tail.main\"} 0\n",
        "speedlayer_collect_sink_errors_total{pipeline=\"tail\",branch=\"main\"} 0\n",
        "speedlayer_collect_source_lag_bytes{pipeline=\"tail\"} 0\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    // While the agent is down: more lines, then another rotation.
    append(&log, 210..260);
    fs::rename(&log, dir.join("logs/app.log.2")).unwrap();
    append(&log, 260..300);

    let reg2: Arc<Registry> = Registry::new();
    let b = agent::start(&cfg, &reg2).unwrap();
    wait_out(&reg2, 90);
    b.stop().unwrap();

    let mut files: Vec<_> = fs::read_dir(dir.join("archive"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .all(|f| !f.to_string_lossy().contains("inprogress"))
    );
    let got: Vec<String> = files
        .iter()
        .flat_map(|f| {
            fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    let want: Vec<String> = (0..300).map(|i| format!("line-{i:05}")).collect();
    assert_eq!(got, want);
}
