//! The tail source finishes a rotated file before it reads the new one. Each test drives
//! the source one step at a time with its own clock, and changes the files between the
//! step that reads to the end and the step that looks for rotation: the window in which a
//! polling tailer used to switch files and drop the old file's last lines.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::source::tail::{Step, TailOptions, TailSource};
use speedlayer_ingest::metrics::Registry;

const QUIET: Duration = Duration::from_secs(1);

/// A tail source, the lines it sent, and the clock it is stepped with.
struct Tail {
    src: TailSource,
    got: Vec<String>,
    now: Instant,
}

impl Tail {
    fn new(dir: &Path, rotation_quiet: Duration) -> Tail {
        let opts = TailOptions {
            path: log(dir),
            position_file: dir.join("app.pos"),
            batch_lines: 3,
            poll_interval: Duration::from_millis(10),
            rotation_quiet,
            fs: speedlayer_vfs::real(),
        };
        let lag = Registry::new().gauge("lag", "", &[]);
        Tail {
            src: TailSource::new(opts, lag),
            got: Vec::new(),
            now: Instant::now(),
        }
    }

    /// Steps until the source has nothing to do at this instant.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            let got = &mut self.got;
            let step = self
                .src
                .step(self.now, &mut |batch| {
                    got.extend(batch.into_iter().map(|l| String::from_utf8(l).unwrap()));
                    Ok(())
                })
                .unwrap();
            if step == Step::Idle {
                return;
            }
        }
        panic!("the tail source never went idle");
    }

    /// The first half of a step only: read to the end of the open file.
    fn read_to_end(&mut self) {
        let got = &mut self.got;
        let step = self
            .src
            .read_batch(self.now, &mut |batch| {
                got.extend(batch.into_iter().map(|l| String::from_utf8(l).unwrap()));
                Ok(())
            })
            .unwrap();
        assert_eq!(step, Step::Idle, "expected to be at the end already");
    }

    /// The second half of a step only: look for rotation and truncation.
    fn look(&mut self) -> Step {
        let got = &mut self.got;
        self.src
            .at_end(self.now, &mut |batch| {
                got.extend(batch.into_iter().map(|l| String::from_utf8(l).unwrap()));
                Ok(())
            })
            .unwrap()
    }
}

fn log(dir: &Path) -> PathBuf {
    dir.join("app.log")
}

fn lines(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i:03}")).collect()
}

fn text(lines: &[String]) -> String {
    lines.iter().map(|l| format!("{l}\n")).collect()
}

fn append(path: &Path, s: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(s.as_bytes()).unwrap();
}

fn concat(parts: &[&[String]]) -> Vec<String> {
    parts.iter().flat_map(|p| p.iter().cloned()).collect()
}

#[test]
fn lines_appended_between_the_last_read_and_the_rotation_precede_the_new_file() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c) = (lines("a", 5), lines("b", 7), lines("c", 4));
    append(&log(d.path()), &text(&a));
    let mut t = Tail::new(d.path(), QUIET);
    t.settle();
    assert_eq!(t.got, a);

    // The tailer has found the end; before it looks at the path again the writer adds B,
    // rotates, and starts the new file with C.
    t.read_to_end();
    append(&log(d.path()), &text(&b));
    fs::rename(log(d.path()), d.path().join("app.log.1")).unwrap();
    append(&log(d.path()), &text(&c));
    assert_eq!(t.look(), Step::Progress, "the rotation is noticed");

    t.settle();
    assert_eq!(t.got, concat(&[&a, &b]), "the old file is drained first");
    t.now += QUIET;
    t.settle();
    assert_eq!(t.got, concat(&[&a, &b, &c]));
}

#[test]
fn without_a_quiet_interval_the_old_file_is_still_read_to_its_end() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c) = (lines("a", 4), lines("b", 4), lines("c", 4));
    append(&log(d.path()), &text(&a));
    let mut t = Tail::new(d.path(), Duration::ZERO);
    t.settle();
    t.read_to_end();
    append(&log(d.path()), &text(&b));
    fs::rename(log(d.path()), d.path().join("app.log.1")).unwrap();
    append(&log(d.path()), &text(&c));
    t.look();
    t.settle();
    assert_eq!(t.got, concat(&[&a, &b, &c]));
}

#[test]
fn a_writer_still_holding_the_rotated_file_is_read_until_the_file_is_quiet() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, c) = (lines("a", 4), lines("b", 5), lines("c", 3));
    let mut writer = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log(d.path()))
        .unwrap();
    writer.write_all(text(&a).as_bytes()).unwrap();
    let mut t = Tail::new(d.path(), QUIET);
    t.settle();

    // Rotated under a writer that has not reopened its file yet.
    fs::rename(log(d.path()), d.path().join("app.log.1")).unwrap();
    append(&log(d.path()), &text(&c));
    t.settle();
    assert_eq!(
        t.got, a,
        "the new file waits while the old one may still grow"
    );

    t.now += QUIET / 2;
    writer.write_all(text(&b).as_bytes()).unwrap();
    t.settle();
    assert_eq!(t.got, concat(&[&a, &b]));

    // Quiet is counted from the last growth, not from the rotation.
    t.now += QUIET / 2 + Duration::from_millis(1);
    t.settle();
    assert_eq!(t.got, concat(&[&a, &b]));
    t.now += QUIET / 2;
    t.settle();
    assert_eq!(t.got, concat(&[&a, &b, &c]));
}

#[test]
fn a_line_split_across_the_rotation_and_a_final_line_without_newline_arrive_whole() {
    let d = tempfile::tempdir().unwrap();
    let c = lines("c", 2);
    let mut writer = File::create(log(d.path())).unwrap();
    writer.write_all(b"a-000\npart").unwrap();
    let mut t = Tail::new(d.path(), QUIET);
    t.settle();
    assert_eq!(t.got, ["a-000"]);

    fs::rename(log(d.path()), d.path().join("app.log.1")).unwrap();
    append(&log(d.path()), &text(&c));
    t.settle();
    writer.write_all(b"ial\nno-newline").unwrap();
    t.settle();
    assert_eq!(t.got, ["a-000", "partial"]);

    t.now += QUIET;
    t.settle();
    let want = concat(&[&["a-000".into(), "partial".into(), "no-newline".into()], &c]);
    assert_eq!(t.got, want);
}

#[test]
fn a_truncated_file_is_read_again_from_its_start() {
    let d = tempfile::tempdir().unwrap();
    let (a, c) = (lines("a", 10), lines("c", 2));
    append(&log(d.path()), &text(&a));
    let mut t = Tail::new(d.path(), QUIET);
    t.settle();

    // copytruncate: copy away, shrink in place, the writer carries on in the same file.
    t.read_to_end();
    fs::copy(log(d.path()), d.path().join("app.log.1")).unwrap();
    OpenOptions::new()
        .write(true)
        .open(log(d.path()))
        .unwrap()
        .set_len(0)
        .unwrap();
    append(&log(d.path()), &text(&c));
    assert_eq!(t.look(), Step::Progress, "the truncation is noticed");
    t.settle();
    assert_eq!(
        t.got,
        concat(&[&a, &c]),
        "no quiet interval for a truncation"
    );
}

#[test]
fn a_restart_during_the_drain_finishes_the_old_file_before_the_new_one() {
    let d = tempfile::tempdir().unwrap();
    let (a, b, late, c) = (
        lines("a", 4),
        lines("b", 5),
        lines("late", 2),
        lines("c", 3),
    );
    append(&log(d.path()), &text(&a));
    let mut t = Tail::new(d.path(), QUIET);
    t.settle();
    t.read_to_end();
    append(&log(d.path()), &text(&b));
    fs::rename(log(d.path()), d.path().join("app.log.1")).unwrap();
    append(&log(d.path()), &text(&c));
    t.look();
    // Crash: the source goes away without its clean-stop checkpoint; the old file still grows.
    drop(t);
    append(&d.path().join("app.log.1"), &text(&late));

    let mut t = Tail::new(d.path(), QUIET);
    t.settle();
    assert_eq!(
        t.got,
        concat(&[&b, &late]),
        "the checkpointed file is finished first"
    );
    t.now += QUIET;
    t.settle();
    assert_eq!(t.got, concat(&[&b, &late, &c]));

    // The checkpoint now names the new file: a further restart repeats nothing.
    drop(t);
    let mut t = Tail::new(d.path(), QUIET);
    t.settle();
    assert!(t.got.is_empty(), "repeated {:?}", t.got);
}
