//! Manifest edits replay to exactly the state they built — across reopenings and log
//! compactions — refused edits write nothing, and files the manifest does not list are
//! found as orphans.

use std::collections::BTreeSet;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_storage::Error;
use speedlayer_storage::manifest::{
    FileMeta, Manifest, ManifestOptions, ManifestState, VersionEdit, list_orphans, manifest_name,
    remove_orphans,
};

fn meta(id: u64) -> FileMeta {
    FileMeta {
        id,
        size: 1000 + id,
        first_row: Bytes::from(format!("V{id:04}")),
        last_row: Bytes::from(format!("V{:04}", id + 10)),
        min_ts: id,
        max_ts: id + 100,
        min_seq: id,
        max_seq: id * 2,
        cell_count: 50,
        tombstone_count: id % 3,
    }
}

/// A random edit that fits `state`.
fn random_edit(rng: &mut StdRng, state: &ManifestState) -> VersionEdit {
    let families = ["cf1", "cf2", "status"];
    let mut e = VersionEdit::default();
    let mut next = state.next_file_id.max(1);
    for _ in 0..rng.random_range(0..3) {
        let f = families[rng.random_range(0..3)].to_string();
        e.add_files.push((f, meta(next)));
        next += 1;
    }
    let live: Vec<(String, u64)> = state
        .files
        .iter()
        .flat_map(|(f, m)| m.keys().map(move |id| (f.clone(), *id)))
        .collect();
    for (f, id) in live {
        if rng.random_ratio(1, 4) {
            e.remove_files.push((f, id));
        }
    }
    if rng.random_bool(0.5) {
        e.flushed_seq = Some(rng.random_range(0..10_000));
    }
    if rng.random_ratio(1, 5) {
        e.next_file_id = Some(next + rng.random_range(0..5));
    }
    if let Some((&id, _)) = state.pending_compactions.iter().next()
        && rng.random_bool(0.5)
    {
        e.compaction_end = Some(id);
    } else if rng.random_ratio(1, 4) {
        let id = next + 10;
        e.compaction_begin = Some((id, vec![1, 2, 3]));
    }
    e
}

#[test]
fn random_edits_replay_across_reopen_and_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = ManifestOptions {
        max_log_bytes: 2048,
        ..ManifestOptions::default()
    };
    let mut rng = StdRng::seed_from_u64(7);
    let (mut m, state) = Manifest::open_with(dir.path(), opts.clone()).unwrap();
    assert_eq!(state, ManifestState::default());
    let mut model = ManifestState::default();
    let mut max_number_seen = 1;
    for step in 0..400 {
        let e = random_edit(&mut rng, &model);
        model.apply(&e).unwrap();
        m.apply(&e).unwrap();
        assert_eq!(m.state(), &model, "step {step}");
        if step % 37 == 0 {
            drop(m);
            let (m2, replayed) = Manifest::open_with(dir.path(), opts.clone()).unwrap();
            assert_eq!(replayed, model, "reopen at step {step}");
            m = m2;
        }
        let logs: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| {
                let n = e.unwrap().file_name().into_string().unwrap();
                n.starts_with("MANIFEST-").then_some(n)
            })
            .collect();
        assert_eq!(logs.len(), 1, "old logs are deleted: {logs:?}");
        let n: u64 = logs[0]["MANIFEST-".len()..].parse().unwrap();
        max_number_seen = max_number_seen.max(n);
    }
    assert!(
        max_number_seen > 3,
        "the log was compacted ({max_number_seen})"
    );
    assert!(m.log_bytes() <= 2048 + 1024);
    drop(m);
    let (_, replayed) = Manifest::open_with(dir.path(), opts.clone()).unwrap();
    assert_eq!(replayed, model);
}

#[test]
fn refused_edits_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut m, _) = Manifest::open(dir.path()).unwrap();
    m.apply(&VersionEdit {
        add_files: vec![("cf1".into(), meta(1))],
        ..Default::default()
    })
    .unwrap();
    let len = m.log_bytes();
    let bad = [
        VersionEdit {
            add_files: vec![("cf2".into(), meta(1))],
            ..Default::default()
        },
        VersionEdit {
            remove_files: vec![("cf1".into(), 9)],
            ..Default::default()
        },
        VersionEdit {
            compaction_end: Some(4),
            ..Default::default()
        },
    ];
    for e in bad {
        assert!(
            matches!(m.apply(&e), Err(Error::InvalidArgument(_))),
            "{e:?}"
        );
        assert_eq!(m.log_bytes(), len);
    }
    assert_eq!(
        std::fs::metadata(dir.path().join(manifest_name(1)))
            .unwrap()
            .len(),
        len
    );
}

#[test]
fn stray_logs_without_current_are_discarded() {
    let dir = tempfile::tempdir().unwrap();
    // A crash after writing a first log but before CURRENT: nothing was committed.
    std::fs::write(dir.path().join(manifest_name(1)), b"SLMAN\0\x01\0garbage").unwrap();
    let (m, state) = Manifest::open(dir.path()).unwrap();
    assert_eq!(state, ManifestState::default());
    assert!(dir.path().join("CURRENT").exists());
    drop(m);
    let (_, state) = Manifest::open(dir.path()).unwrap();
    assert_eq!(state, ManifestState::default());
}

#[test]
fn orphans_are_unlisted_hfiles_and_tmp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("cf1");
    std::fs::create_dir(&store).unwrap();
    for name in [
        speedlayer_storage::hfile::file_name(1),
        speedlayer_storage::hfile::file_name(2),
        speedlayer_storage::hfile::file_name(3),
        "00000000000000000004.hfile.tmp".to_string(),
        "README".to_string(),
    ] {
        std::fs::write(store.join(name), b"x").unwrap();
    }
    let live: BTreeSet<u64> = [1, 3].into();
    let orphans = list_orphans(&speedlayer_storage::fs::RealFs, &store, &live).unwrap();
    assert_eq!(
        orphans,
        vec![
            store.join(speedlayer_storage::hfile::file_name(2)),
            store.join("00000000000000000004.hfile.tmp"),
        ]
    );
    assert_eq!(
        remove_orphans(&speedlayer_storage::fs::RealFs, &store, &live).unwrap(),
        orphans
    );
    assert!(
        list_orphans(&speedlayer_storage::fs::RealFs, &store, &live)
            .unwrap()
            .is_empty()
    );
    assert!(store.join("README").exists());
    assert!(
        list_orphans(
            &speedlayer_storage::fs::RealFs,
            &dir.path().join("missing"),
            &live
        )
        .unwrap()
        .is_empty()
    );
}
