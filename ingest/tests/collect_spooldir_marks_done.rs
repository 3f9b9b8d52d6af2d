//! The spooldir source against real files: completed files dropped into the directory are
//! sent whole and renamed `.done` afterwards; hidden (in-progress) files are ignored; a file
//! that keeps changing while it is read is refused with a clear error and not marked done.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::metrics::Registry;

fn config(dir: &Path) -> AgentConfig {
    AgentConfig::parse(&format!(
        r#"
[[pipeline]]
name = "spool"
batch_size = 500
source = {{ type = "spooldir", dir = "{spool}", done_suffix = ".done", poll_interval = "10ms" }}
channel = {{ type = "memory", capacity = 2000 }}
sink = {{ type = "file_roll", dir = "{arch}", roll_size_mb = 1, roll_interval = "1h" }}
"#,
        spool = dir.join("spool").display(),
        arch = dir.join("archive").display()
    ))
    .unwrap()
}

fn drop_file(spool: &Path, name: &str, lines: std::ops::Range<usize>) {
    let tmp = spool.join(format!(".{name}.tmp"));
    let text: String = lines.map(|i| format!("status-{i:06}\n")).collect();
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, spool.join(name)).unwrap();
}

fn wait(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn archived(dir: &Path) -> Vec<String> {
    let mut got: Vec<String> = fs::read_dir(dir.join("archive"))
        .unwrap()
        .flat_map(|e| {
            fs::read_to_string(e.unwrap().path())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    got
}

#[test]
fn completed_files_are_sent_whole_then_marked_done() {
    let d = tempfile::tempdir().unwrap();
    let spool = d.path().join("spool");
    fs::create_dir_all(&spool).unwrap();
    drop_file(&spool, "a.csv", 0..1500);
    drop_file(&spool, "b.csv", 1500..3000);
    fs::write(spool.join(".in-progress.csv.tmp"), "not yet\n").unwrap();
    let reg = Registry::new();
    let a = agent::start(&config(d.path()), &reg).unwrap();
    drop_file(&spool, "c.csv", 3000..4000);
    let done = reg.counter(
        "speedlayer_collect_spool_files_done_total",
        "",
        &[("pipeline", "spool")],
    );
    wait("3 files done", || done.get() == 3);
    a.stop().unwrap();
    for n in ["a.csv", "b.csv", "c.csv"] {
        assert!(
            spool.join(format!("{n}.done")).exists(),
            "{n} not marked done"
        );
        assert!(!spool.join(n).exists());
    }
    assert!(spool.join(".in-progress.csv.tmp").exists());
    let want: Vec<String> = (0..4000).map(|i| format!("status-{i:06}")).collect();
    assert_eq!(archived(d.path()), want);
}

#[test]
fn a_file_changed_while_read_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let spool = d.path().join("spool");
    fs::create_dir_all(&spool).unwrap();
    // Large enough that reading it takes a while; written in place (not via rename).
    let path = spool.join("growing.csv");
    drop_file(&spool, "growing.csv", 0..300_000);
    let reg = Registry::new();
    let refused = reg.counter(
        "speedlayer_collect_spool_refused_total",
        "",
        &[("pipeline", "spool")],
    );
    let a = agent::start(&config(d.path()), &reg).unwrap();
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut i = 0;
    while refused.get() == 0 {
        assert!(Instant::now() < deadline, "never refused");
        assert!(
            !spool.join("growing.csv.done").exists(),
            "a changing file was marked done"
        );
        writeln!(f, "late-{i}").unwrap();
        i += 1;
    }
    a.stop().unwrap();
    assert!(path.exists());
    assert!(!spool.join("growing.csv.done").exists());
}
