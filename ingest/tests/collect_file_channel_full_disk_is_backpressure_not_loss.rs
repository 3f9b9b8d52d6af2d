//! A full disk under the file channel, on the fault-injecting file system (`ENOSPC` from
//! appends, fsyncs and creates, then space again): a put fails with the typed
//! `Error::NoSpace` and leaves no partial record behind; the same batch put again once
//! space returns is stored once; a commit that cannot write its checkpoint can be retried;
//! and a whole agent holds the source's batch, counts the refusals and loses no line.

use std::fs;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use speedlayer_ingest::Error;
use speedlayer_ingest::collect::Event;
use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::channel::Channel;
use speedlayer_ingest::collect::channel::file::{FileChannel, FileChannelOptions, FsyncPolicy};
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::metrics::Registry;
use speedlayer_vfs::{CutMode, FaultFs, FaultRule, Op};

fn options(fs: &Arc<FaultFs>) -> FileChannelOptions {
    FileChannelOptions {
        capacity_bytes: 1 << 20,
        segment_bytes: 4096,
        fsync: FsyncPolicy::EveryPut,
        fs: fs.clone(),
    }
}

fn events(r: std::ops::Range<u32>) -> Vec<Event> {
    r.map(|i| Event::new(format!("line-{i:05}-{}", "y".repeat(40)).into_bytes()))
        .collect()
}

fn bodies(c: &FileChannel) -> Vec<String> {
    let got = c.take(100_000, Duration::ZERO).unwrap();
    c.rollback(Vec::new()).unwrap();
    got.iter()
        .map(|e| String::from_utf8(e.body.clone()).unwrap())
        .collect()
}

fn lines(r: std::ops::Range<u32>) -> Vec<String> {
    events(r)
        .into_iter()
        .map(|e| String::from_utf8(e.body).unwrap())
        .collect()
}

/// Bytes in the channel's segment files on disk.
fn segment_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("seg-"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

#[test]
fn a_put_on_a_full_disk_fails_typed_leaves_no_partial_record_and_resumes_with_space() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("chan");
    let fs = FaultFs::new(7);
    let c = FileChannel::open("c", &dir, options(&fs)).unwrap();
    c.put(events(0..5)).unwrap();
    let before = segment_bytes(&dir);

    // Appends fail (after writing part of the buffer, as a real full disk does).
    fs.inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("seg-"));
    for _ in 0..3 {
        let e = c.put(events(5..9)).unwrap_err();
        assert!(
            matches!(&e, Error::NoSpace { channel, .. } if channel == "c"),
            "not a typed no-space error: {e}"
        );
        assert!(e.is_no_space());
        assert!(e.to_string().contains("retry once space returns"), "{e}");
        assert_eq!(
            segment_bytes(&dir),
            before,
            "a partial record was left behind"
        );
    }
    assert!(fs.injected() >= 3);
    assert_eq!(c.len(), 5);

    // An fsync that fails for lack of space: the put is refused, and the bytes it wrote
    // are cut off again.
    fs.clear_faults();
    fs.inject(
        FaultRule::new(Op::Sync, libc::ENOSPC)
            .path_contains("seg-")
            .times(1),
    );
    assert!(c.put(events(5..9)).unwrap_err().is_no_space());
    assert_eq!(c.len(), 5);

    // Space again: the same batch is stored once, and writing goes on.
    fs.clear_faults();
    c.put(events(5..9)).unwrap();
    c.put(events(9..12)).unwrap();
    assert_eq!(bodies(&c), lines(0..12));

    // A commit whose checkpoint cannot be written fails typed and can be retried.
    let taken = c.take(3, Duration::ZERO).unwrap();
    assert_eq!(taken.len(), 3);
    fs.inject(FaultRule::new(Op::Create, libc::ENOSPC).path_contains("checkpoint"));
    assert!(c.commit().unwrap_err().is_no_space());
    fs.clear_faults();
    c.commit().unwrap();
    drop(c);

    // After a power cut the channel holds exactly the acknowledged, uncommitted lines.
    fs.power_cut(CutMode::Strict).unwrap();
    fs.power_on();
    let c = FileChannel::open("c", &dir, options(&fs)).unwrap();
    assert_eq!(bodies(&c), lines(3..12));
}

fn wait(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10)); // polling a counter / the archive
    }
}

fn archived(dir: &Path) -> Vec<String> {
    let mut got: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flat_map(|e| {
                fs::read_to_string(e.unwrap().path())
                    .unwrap()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
        })
        .unwrap_or_default();
    got.sort();
    got
}

#[test]
fn an_agent_holds_its_batch_while_the_disk_is_full_and_loses_no_line() {
    let d = tempfile::tempdir().unwrap();
    let spool = d.path().join("spool");
    let archive = d.path().join("archive");
    fs::create_dir_all(&spool).unwrap();
    let cfg = AgentConfig::parse(&format!(
        r#"
[[pipeline]]
name = "spool"
batch_size = 100
source = {{ type = "spooldir", dir = "{spool}", done_suffix = ".done", poll_interval = "10ms" }}
channel = {{ type = "file", dir = "{chan}", capacity_mb = 4 }}
sink = {{ type = "file_roll", dir = "{archive}", roll_size_mb = 1, roll_interval = "1h" }}
"#,
        spool = spool.display(),
        chan = d.path().join("chan").display(),
        archive = archive.display(),
    ))
    .unwrap();
    let fs = FaultFs::new(3);
    let reg = Registry::new();
    let refused = reg.counter(
        "speedlayer_collect_channel_put_no_space_total",
        "",
        &[("pipeline", "spool")],
    );
    let a = agent::start_with_fs(&cfg, &reg, fs.clone()).unwrap();

    fs.inject(FaultRule::new(Op::Append, libc::ENOSPC).path_contains("seg-"));
    let text: String = (0..1000).map(|i| format!("status-{i:06}\n")).collect();
    fs::write(spool.join(".a.csv.tmp"), text).unwrap();
    fs::rename(spool.join(".a.csv.tmp"), spool.join("a.csv")).unwrap();
    wait("a refused put", || refused.get() >= 3);
    assert!(a.failed().is_none(), "a component stopped on a full disk");
    assert!(
        !spool.join("a.csv.done").exists(),
        "the file was marked done while its lines were not stored"
    );

    fs.clear_faults();
    let want: Vec<String> = (0..1000).map(|i| format!("status-{i:06}")).collect();
    wait("every line archived", || archived(&archive) == want);
    wait("the file marked done", || spool.join("a.csv.done").exists());
    a.stop().unwrap();
    assert_eq!(archived(&archive), want, "a line was lost or duplicated");
    println!("puts refused for lack of space: {}", refused.get());
}
