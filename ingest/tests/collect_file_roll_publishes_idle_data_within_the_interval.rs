//! Like Flume's `hdfs.rollInterval`, the file_roll sink's `roll_interval` is a timer: lines
//! written to an otherwise idle pipeline are published (rolled into a complete file) within
//! the interval plus a margin, while the real collector keeps running; not only at the next
//! batch or at shutdown.

mod collect_process;

use std::time::{Duration, Instant};

use collect_process::{Collector, rolled_files, tail_to_file_roll};

#[test]
fn idle_lines_are_rolled_within_interval_plus_margin() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.log"), "").unwrap();
    let config = tail_to_file_roll(dir.path(), "2s");
    let mut c = Collector::start(&config, &[], "info");
    let out = dir.path().join("out");

    let written = Instant::now();
    std::fs::write(dir.path().join("in.log"), "a\nb\nc\n").unwrap();
    // Interval 2 s; the margin covers the tail poll (50 ms), the idle take (100 ms) and a
    // slow CI machine. Before the timer existed nothing appeared until shutdown.
    let deadline = written + Duration::from_secs(2) + Duration::from_secs(3);
    let rolled = loop {
        let files = rolled_files(&out);
        if !files.is_empty() {
            break files;
        }
        assert!(
            Instant::now() < deadline,
            "no rolled file {:?} after the interval + margin",
            written.elapsed()
        );
        assert!(c.is_running(), "collector exited");
        std::thread::sleep(Duration::from_millis(50)); // polling the output directory
    };
    let elapsed = written.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1900),
        "rolled after {elapsed:?}: before the interval, so not by the timer"
    );
    assert_eq!(rolled.len(), 1, "{rolled:?}");
    let text = std::fs::read_to_string(out.join(&rolled[0])).unwrap();
    assert_eq!(text, "a\nb\nc\n");
    assert!(c.is_running(), "published while the collector still runs");
    c.stop();
}
