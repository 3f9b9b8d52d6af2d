//! The crash-safe compaction protocol on its own: a region's files (`RegionFiles`: manifest,
//! file ids, block cache) and one store on a temporary directory, no `Region` and no `Db`.
//!
//! Input files are written with the HFile writer and recorded as a flush would. Each test
//! runs `compaction::run::compact_store` and checks every step the protocol promises:
//! the claim (a claimed file is not taken twice), the output file, the one manifest edit,
//! the version swap, and the deletion of inputs once their last reader lets go; and, for
//! each fail point, that reopening the files (as after a crash there) gives exactly the old
//! set or the new one, never a mix, with no unlisted file and no pending compaction left.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use speedlayer_storage::compaction::run::{RunContext, abort_pending, compact_store};
use speedlayer_storage::compaction::{CompactionOptions, FailPoint};
use speedlayer_storage::files::{RegionFiles, Shared};
use speedlayer_storage::hfile::{FileOptions, HFileWriter, file_name, parse_file_name};
use speedlayer_storage::manifest::FileMeta;
use speedlayer_storage::store::{Store, StoreFile};
use speedlayer_storage::{CellKey, CellKind, FamilyOptions, RecoveryMode};

type Cells = BTreeMap<(String, u64), String>;

fn shared() -> Shared {
    Shared::new(1 << 20, speedlayer_vfs::real(), RecoveryMode::default())
}

fn family() -> FamilyOptions {
    FamilyOptions::new("f").max_versions(10)
}

fn open(dir: &Path) -> (RegionFiles, Arc<Store>) {
    open_with(dir, family())
}

fn open_with(dir: &Path, fam: FamilyOptions) -> (RegionFiles, Arc<Store>) {
    let (files, mut per_family, _) =
        RegionFiles::open(dir, std::slice::from_ref(&fam), &shared(), 7, "t", None)
            .expect("open region files");
    let live = per_family.pop().expect("one family");
    let store = Arc::new(Store::new(fam, dir.join("f"), live));
    (files, store)
}

fn ctx() -> RunContext {
    RunContext {
        opts: CompactionOptions {
            auto: false,
            ..CompactionOptions::default()
        },
        throttle: None,
        now_ms: 1_000_000,
    }
}

/// Writes one file of `rows` (each row one put at `ts`, sequence `seq`) as a flush would:
/// HFile, manifest edit, version.
fn flush_file(files: &RegionFiles, store: &Store, rows: &[&str], ts: u64, seq: u64) {
    let id = files.allocate_file_id();
    let path = store.dir.join(file_name(id));
    let mut w = HFileWriter::create(files.fs(), &path, FileOptions::default()).unwrap();
    for row in rows {
        let key = CellKey {
            row: Bytes::copy_from_slice(row.as_bytes()),
            qualifier: Bytes::from_static(b"q"),
            timestamp: ts,
            kind: CellKind::Put,
            seq,
        };
        w.push(key.as_ref(), format!("{row}@{ts}").as_bytes())
            .unwrap();
    }
    let info = w.finish().unwrap();
    speedlayer_storage::fs::sync_dir(files.fs(), &store.dir).unwrap();
    let size = std::fs::metadata(&path).unwrap().len();
    files
        .record_flush(
            vec![("f".to_string(), FileMeta::from_info(id, size, &info))],
            seq,
        )
        .unwrap();
    let sf = StoreFile::open(files.fs(), &path, id, files.block_cache()).unwrap();
    store.apply(vec![Arc::new(sf)], &[]);
}

/// Three overlapping files: rows r0..r9 at ts 1, r5..r14 at ts 2, r0..r4 at ts 3.
fn populate(files: &RegionFiles, store: &Store) -> Cells {
    let rows: Vec<String> = (0..15).map(|i| format!("r{i:02}")).collect();
    let r: Vec<&str> = rows.iter().map(String::as_str).collect();
    flush_file(files, store, &r[0..10], 1, 10);
    flush_file(files, store, &r[5..15], 2, 20);
    flush_file(files, store, &r[0..5], 3, 30);
    read(store)
}

/// Every cell of the store's live files, (row, ts) → value.
fn read(store: &Store) -> Cells {
    let mut out = Cells::new();
    for f in &store.current().files {
        for item in f.iter_from(None).unwrap() {
            let (k, v) = item.unwrap();
            out.insert(
                (String::from_utf8(k.row.to_vec()).unwrap(), k.timestamp),
                String::from_utf8(v.to_vec()).unwrap(),
            );
        }
    }
    out
}

fn live(store: &Store) -> BTreeSet<u64> {
    store.current().files.iter().map(|f| f.id).collect()
}

fn on_disk(store: &Store) -> BTreeSet<u64> {
    std::fs::read_dir(&store.dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .map(|n| parse_file_name(&n).unwrap_or_else(|| panic!("stray file {n}")))
        .collect()
}

fn pending(files: &RegionFiles) -> usize {
    files.manifest().lock().state().pending_compactions.len()
}

#[test]
fn a_major_claims_writes_commits_swaps_and_deletes_inputs_after_the_last_reader() {
    let dir = tempfile::tempdir().unwrap();
    let (files, store) = open(dir.path());
    let cells = populate(&files, &store);
    assert_eq!(cells.len(), 25, "10 + 10 + 5 versions");
    let inputs = live(&store);
    assert_eq!(inputs.len(), 3);

    // Claim: while another compaction holds an input, this one does nothing.
    let held = store
        .lifecycle
        .claim(&[*inputs.first().unwrap()], || store.current());
    let held = held.expect("a live, unclaimed file can be claimed");
    assert!(
        store
            .lifecycle
            .claim(&[*inputs.first().unwrap()], || store.current())
            .is_none(),
        "a claimed file cannot be claimed twice"
    );
    assert!(
        store.lifecycle.claim(&[999], || store.current()).is_none(),
        "a file not in the version cannot be claimed"
    );
    // A major waits for running compactions in `Compactor`; here the input is simply taken.
    assert!(!compact_store(&files, u64::MAX, &store, &ctx(), false).unwrap());
    drop(held);

    // An old reader keeps the inputs alive past the swap.
    let old_version = store.current();
    assert!(compact_store(&files, u64::MAX, &store, &ctx(), true).unwrap());
    let out = live(&store);
    assert_eq!(out.len(), 1, "one output");
    assert!(out.is_disjoint(&inputs));
    assert_eq!(read(&store), cells, "max_versions 10 keeps every version");
    {
        let m = files.manifest().lock();
        let listed: BTreeSet<u64> = m.state().files["f"].keys().copied().collect();
        assert_eq!(listed, out, "one manifest edit lists the output only");
        assert!(m.state().pending_compactions.is_empty());
    }
    assert_eq!(store.lifecycle.graveyard_len(), 3);
    assert_eq!(store.lifecycle.reap(), 0, "a reader still holds the inputs");
    assert!(inputs.is_subset(&on_disk(&store)));
    drop(old_version);
    assert_eq!(store.lifecycle.reap(), 3);
    assert_eq!(on_disk(&store), out);
    let stats = store.lifecycle.counters.snapshot();
    assert_eq!(
        (stats.runs, stats.majors, stats.files_in, stats.files_out),
        (1, 1, 3, 1)
    );

    // The swap is durable: reopened, the files say the same.
    drop((files, store));
    let (files, store) = open(dir.path());
    assert_eq!(live(&store), out);
    assert_eq!(read(&store), cells);
    assert_eq!(pending(&files), 0);
}

#[test]
fn a_stop_at_every_step_reopens_to_the_old_set_or_the_new_one() {
    for point in FailPoint::ALL {
        let dir = tempfile::tempdir().unwrap();
        let (cells, inputs) = {
            let (files, store) = open(dir.path());
            let cells = populate(&files, &store);
            let inputs = live(&store);
            store.lifecycle.set_fail_point(Some(point));
            let err = compact_store(&files, u64::MAX, &store, &ctx(), true).unwrap_err();
            assert!(
                matches!(err, speedlayer_storage::Error::Injected(_)),
                "{point:?}: {err}"
            );
            let expect_pending =
                matches!(point, FailPoint::AfterBegin | FailPoint::AfterOutputWritten);
            assert_eq!(pending(&files), usize::from(expect_pending), "{point:?}");
            if point == FailPoint::AfterOutputWritten {
                assert_eq!(on_disk(&store).len(), 4, "the output exists, unlisted");
            }
            (cells, inputs)
            // Dropped: the process "dies" here.
        };

        let (files, store) = open(dir.path());
        let closed = abort_pending(&mut files.manifest().lock()).unwrap();
        assert_eq!(pending(&files), 0, "{point:?}");
        let now = live(&store);
        assert_eq!(now, on_disk(&store), "{point:?}: no unlisted file survives");
        match point {
            FailPoint::AfterBegin | FailPoint::AfterOutputWritten => {
                assert_eq!(closed, 1, "{point:?}");
                assert_eq!(now, inputs, "{point:?}: the old set stands");
            }
            FailPoint::AfterCommit | FailPoint::BeforeDeleteInputs => {
                assert_eq!(closed, 0, "{point:?}");
                assert_eq!(now.len(), 1, "{point:?}: the new set stands");
                assert!(now.is_disjoint(&inputs), "{point:?}");
            }
        }
        assert_eq!(read(&store), cells, "{point:?}: the same cells");

        // Compaction works again: file ids are never reused.
        flush_file(&files, &store, &["z"], 9, 90);
        assert!(compact_store(&files, u64::MAX, &store, &ctx(), true).unwrap());
        let after = live(&store);
        assert_eq!(after.len(), 1);
        assert!(after.is_disjoint(&inputs) && after.is_disjoint(&now));
        assert_eq!(read(&store).len(), cells.len() + 1, "{point:?}");
    }
}

#[test]
fn cells_above_the_read_point_are_kept_as_they_are() {
    // One version per column: a major at an unlimited read point keeps only the newest of
    // each row; at read point 15 only the first file (seq 10) is judged, and a reader at 15
    // still sees those versions, so every cell stays.
    for (read_point, kept) in [(15, 25), (u64::MAX, 15)] {
        let dir = tempfile::tempdir().unwrap();
        let (files, store) = open_with(dir.path(), FamilyOptions::new("f"));
        let cells = populate(&files, &store);
        assert!(compact_store(&files, read_point, &store, &ctx(), true).unwrap());
        let after = read(&store);
        assert_eq!(after.len(), kept, "read point {read_point}");
        assert!(
            after.iter().all(|(k, v)| cells.get(k) == Some(v)),
            "a compaction invents nothing"
        );
        // One file left: a minor has nothing to merge.
        assert!(!compact_store(&files, u64::MAX, &store, &ctx(), false).unwrap());
    }
}
