//! The fault-injecting file system keeps exactly what a power cut would keep: synced bytes
//! and directory entries made durable by a directory sync; unsynced ones vanish (or, in
//! random mode, survive page by page as written bytes or zeros). Injected faults fire as
//! configured, and handles from before a cut stay dead.

use std::sync::Arc;

use speedlayer_vfs::{CutMode, FaultFs, FaultRule, Fs, Op, OpenMode, durable};

fn setup() -> (tempfile::TempDir, Arc<FaultFs>) {
    (tempfile::tempdir().unwrap(), FaultFs::new(7))
}

#[test]
fn unsynced_bytes_vanish_and_synced_bytes_stay() {
    let (d, fs) = setup();
    let p = d.path().join("log");
    let f = fs.open(&p, OpenMode::CreateNew).unwrap();
    fs.sync_dir(d.path()).unwrap();
    f.append(b"synced").unwrap();
    f.sync_data().unwrap();
    f.append(b" lost").unwrap();
    let r = fs.power_cut(CutMode::Strict).unwrap();
    assert_eq!(r.bytes_dropped, 5);
    assert_eq!(std::fs::read(&p).unwrap(), b"synced");
    assert!(
        f.append(b"x").is_err(),
        "a handle from before the cut is dead"
    );
    fs.power_on();
    assert!(
        f.append(b"x").is_err(),
        "and stays dead after power returns"
    );
    let g = fs.open(&p, OpenMode::Append).unwrap();
    g.append(b"!").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"synced!");
}

#[test]
fn a_file_whose_directory_was_not_synced_vanishes() {
    let (d, fs) = setup();
    let p = d.path().join("new");
    let f = fs.open(&p, OpenMode::CreateNew).unwrap();
    f.append(b"data").unwrap();
    f.sync_all().unwrap();
    fs.power_cut(CutMode::Strict).unwrap();
    assert!(!p.exists());
}

#[test]
fn an_unsynced_rename_reverts_to_the_old_contents() {
    let (d, fs) = setup();
    let p = d.path().join("CURRENT");
    durable::write_atomic(&*fs, &p, b"old").unwrap();
    // write_atomic's steps without the final directory sync:
    let tmp = durable::tmp_path(&p);
    let f = fs.open(&tmp, OpenMode::CreateTruncate).unwrap();
    f.append(b"new").unwrap();
    f.sync_all().unwrap();
    fs.rename(&tmp, &p).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"new");
    fs.power_cut(CutMode::Strict).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"old");
    assert!(
        !tmp.exists(),
        "the temp file's create was not durable either"
    );
}

#[test]
fn an_unsynced_remove_brings_the_durable_contents_back() {
    let (d, fs) = setup();
    let p = d.path().join("seg");
    durable::write_atomic(&*fs, &p, b"abc").unwrap();
    fs.remove_file(&p).unwrap();
    fs.power_cut(CutMode::Strict).unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"abc");
    fs.power_on();
    durable::remove_file_synced(&*fs, &p).unwrap();
    fs.power_cut(CutMode::Strict).unwrap();
    assert!(!p.exists());
}

#[test]
fn an_unsynced_directory_vanishes_with_its_files() {
    let (d, fs) = setup();
    let sub = d.path().join("a/b");
    fs.create_dir_all(&sub).unwrap();
    durable::write_atomic(&*fs, &sub.join("f"), b"x").unwrap();
    fs.power_cut(CutMode::Strict).unwrap();
    assert!(!d.path().join("a").exists());
    fs.power_on();
    durable::create_dir_synced(&*fs, &sub).unwrap();
    durable::write_atomic(&*fs, &sub.join("f"), b"x").unwrap();
    fs.power_cut(CutMode::Strict).unwrap();
    assert_eq!(std::fs::read(sub.join("f")).unwrap(), b"x");
}

#[test]
fn random_cuts_keep_synced_bytes_and_only_zeros_or_written_bytes_after() {
    for seed in 0..50 {
        let d = tempfile::tempdir().unwrap();
        let fs = FaultFs::new(seed);
        let p = d.path().join("log");
        let f = fs.open(&p, OpenMode::CreateNew).unwrap();
        fs.sync_dir(d.path()).unwrap();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8 + 1).collect();
        f.append(&data[..5000]).unwrap();
        f.sync_data().unwrap();
        f.append(&data[5000..]).unwrap();
        fs.power_cut(CutMode::Random).unwrap();
        let got = std::fs::read(&p).unwrap();
        assert!(got.len() >= 5000 && got.len() <= data.len());
        assert_eq!(&got[..5000], &data[..5000], "seed {seed}");
        for (i, b) in got.iter().enumerate().skip(5000) {
            assert!(*b == 0 || *b == data[i], "seed {seed} offset {i}");
        }
    }
}

#[test]
fn a_scheduled_cut_fires_before_the_nth_change() {
    let (d, fs) = setup();
    let p = d.path().join("log");
    let f = fs.open(&p, OpenMode::CreateNew).unwrap();
    fs.sync_dir(d.path()).unwrap();
    fs.schedule_cut(2, CutMode::Strict);
    f.append(b"a").unwrap();
    f.sync_data().unwrap();
    assert!(f.append(b"b").is_err(), "the third change meets the cut");
    assert!(fs.is_down());
    assert_eq!(std::fs::read(&p).unwrap(), b"a");
    assert_eq!(fs.last_cut().unwrap().bytes_dropped, 0);
}

#[test]
fn injected_faults_fire_as_configured_and_can_be_cleared() {
    let (d, fs) = setup();
    let p = d.path().join("wal.log");
    let f = fs.open(&p, OpenMode::CreateNew).unwrap();
    fs.inject(
        FaultRule::new(Op::Append, libc::ENOSPC)
            .path_contains("wal")
            .skip(1)
            .times(2),
    );
    f.append(b"1").unwrap();
    let e = f.append(b"2").unwrap_err();
    assert!(speedlayer_vfs::is_no_space(&e));
    assert!(f.append(b"3").is_err());
    f.append(b"4").unwrap();
    fs.inject(FaultRule::new(Op::Sync, libc::EIO));
    assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(libc::EIO));
    fs.clear_faults();
    f.sync_data().unwrap();
    assert_eq!(fs.injected(), 3);
}

/// A directory removed whole while operations inside it were still unsynced (a split
/// parent whose compacted-away files were unlinked without a directory sync): the cut
/// must still undo everything else and drop every unsynced byte. It once failed half-way
/// (restoring a file into the removed directory), left files uncut and their old synced
/// lengths in force, and a later cut truncated bytes that had long been durable.
#[test]
fn a_removed_directory_with_unsynced_entries_does_not_break_later_cuts() {
    let (d, fs) = setup();
    let region = d.path().join("region");
    durable::create_dir_synced(&*fs, &region).unwrap();
    let old = region.join("old");
    let f = fs.open(&old, OpenMode::CreateNew).unwrap();
    f.append(b"old").unwrap();
    f.sync_data().unwrap();
    fs.sync_dir(&region).unwrap();
    fs.remove_file(&old).unwrap(); // unsynced unlink inside `region`
    let inner = region.join("sub");
    fs.create_dir_all(&inner).unwrap(); // unsynced mkdir inside `region`
    let moved = d.path().join("moved");
    let m = fs.open(&inner.join("m"), OpenMode::CreateNew).unwrap();
    m.append(b"m").unwrap();
    m.sync_data().unwrap();
    fs.rename(&inner.join("m"), &moved).unwrap(); // unsynced rename out of `region`
    fs.remove_dir_all(&region).unwrap();
    let log = d.path().join("log");
    let l = fs.open(&log, OpenMode::CreateNew).unwrap();
    fs.sync_dir(d.path()).unwrap();
    l.append(b"synced").unwrap();
    l.sync_data().unwrap();
    l.append(b" lost").unwrap();

    fs.power_cut(CutMode::Strict)
        .expect("a cut never fails half-way");
    assert_eq!(std::fs::read(&log).unwrap(), b"synced");
    assert!(!region.exists(), "removed directories stay removed");
    fs.power_on();

    // The next generation's bytes are all durable now: a file reopened for append starts
    // from its whole length, and a second cut keeps it.
    let l = fs.open(&log, OpenMode::Append).unwrap();
    l.append(b"+more").unwrap();
    l.sync_data().unwrap();
    fs.power_cut(CutMode::Strict).unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), b"synced+more");
}

/// The case that lost data in the engine's split test: an unsynced unlink inside a
/// directory that is then removed whole must not make the cut fail and leave the bytes
/// of the generation before it counted as unsynced.
#[test]
fn bytes_durable_before_a_cut_survive_the_next_cut() {
    let (d, fs) = setup();
    let region = d.path().join("region");
    durable::create_dir_synced(&*fs, &region).unwrap();
    let old = region.join("old");
    drop(fs.open(&old, OpenMode::CreateNew).unwrap());
    fs.sync_dir(&region).unwrap();
    let log = d.path().join("log");
    let l = fs.open(&log, OpenMode::CreateNew).unwrap();
    fs.sync_dir(d.path()).unwrap();
    l.append(b"a").unwrap();
    l.sync_data().unwrap();
    l.append(b"bc").unwrap(); // unsynced: lost by the first cut
    fs.remove_file(&old).unwrap();
    fs.remove_dir_all(&region).unwrap();
    fs.power_cut(CutMode::Random).expect("the cut completes");
    fs.power_on();
    let kept = std::fs::read(&log).unwrap();
    // Whatever the first cut kept is durable now; a second cut keeps all of it.
    fs.power_cut(CutMode::Strict).unwrap();
    assert_eq!(std::fs::read(&log).unwrap(), kept);
}
