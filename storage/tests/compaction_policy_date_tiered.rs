//! Table-driven tests of date-tiered selection: the window geometry (tiers growing by a
//! factor, aligned, nested), which window's files merge, the incoming window's ratio rule,
//! the max tier age, files being compacted, and whole-file TTL drops.

use speedlayer_storage::compaction::policy::date_tiered::{Tiers, select_minor};
use speedlayer_storage::compaction::{
    CandidateFile, CompactionOptions, CompactionStyle, FamilyPolicy, PlanKind, select,
};

const NOW: u64 = 1000;

/// A file of 10 bytes whose newest cell is at `max_ts` (and oldest 5 ms before).
fn file(id: u64, max_ts: u64) -> CandidateFile {
    CandidateFile {
        id,
        size_bytes: 10,
        seq: id,
        min_ts: max_ts.saturating_sub(5),
        max_ts,
        cell_count: 10,
        tombstones: 0,
        created_ms: NOW,
        being_compacted: false,
    }
}

#[test]
fn window_geometry_table() {
    // base 10 ms, factor 3, now 1000: [1000,+10) [990,+10) then promoted to 30-wide windows
    // [960,+30) [930,+30) [900,+30), then 90-wide [810,+90) ...
    let tiers = Tiers::new(10, 3, u64::MAX);
    let cases: [(u64, (u64, u64)); 13] = [
        (5000, (1000, 10)),
        (1009, (1000, 10)),
        (1000, (1000, 10)),
        (999, (990, 10)),
        (990, (990, 10)),
        (989, (960, 30)),
        (960, (960, 30)),
        (959, (930, 30)),
        (929, (900, 30)),
        (900, (900, 30)),
        (899, (810, 90)),
        (809, (540, 270)),
        (0, (0, 270)),
    ];
    for (ts, want) in cases {
        assert_eq!(tiers.window_of(ts, NOW), want, "ts {ts}");
    }
    // Nonsense geometry is clamped rather than looping forever.
    let clamped = Tiers::new(0, 1, 5);
    assert_eq!((clamped.base_window_ms, clamped.factor), (1, 2));
    assert_eq!(clamped.window_of(0, u64::MAX).0, 0);
}

#[test]
fn date_tiered_selection_table() {
    struct Case {
        name: &'static str,
        files: Vec<CandidateFile>,
        busy: &'static [u64],
        max_age: u64,
        opts: CompactionOptions,
        want: Option<Vec<u64>>,
    }
    let opts = CompactionOptions::default;
    let cases = [
        Case {
            name: "three files in the incoming window",
            files: vec![file(1, 1001), file(2, 1003), file(3, 1005)],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: Some(vec![1, 2, 3]),
        },
        Case {
            name: "two files in the incoming window are too few",
            files: vec![file(1, 1001), file(2, 1003)],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: None,
        },
        Case {
            name: "an older window merges as soon as it has two files",
            files: vec![file(1, 965), file(2, 980), file(3, 1001), file(4, 1002)],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: Some(vec![1, 2]),
        },
        Case {
            name: "one file per window: nothing to merge",
            files: vec![file(1, 850), file(2, 950), file(3, 995), file(4, 1001)],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: None,
        },
        Case {
            name: "files of different windows never merge, even adjacent ones",
            files: vec![file(1, 959), file(2, 960), file(3, 990)],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: None,
        },
        Case {
            name: "the newest qualifying window wins",
            files: vec![file(1, 820), file(2, 830), file(3, 961), file(4, 962)],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: Some(vec![3, 4]),
        },
        Case {
            name: "files past the max tier age are left alone",
            files: vec![file(1, 820), file(2, 830), file(3, 1001)],
            busy: &[],
            max_age: 150,
            opts: opts(),
            want: None,
        },
        Case {
            name: "max tier age boundary: exactly at the cutoff is still compacted",
            files: vec![file(1, 850), file(2, 851)],
            busy: &[],
            max_age: 150,
            opts: opts(),
            want: Some(vec![1, 2]),
        },
        Case {
            name: "a file being compacted is not selected again",
            files: vec![file(1, 961), file(2, 962), file(3, 963)],
            busy: &[1],
            max_age: u64::MAX,
            opts: opts(),
            want: Some(vec![2, 3]),
        },
        Case {
            name: "old window capped at max_files, oldest first",
            files: (1..=5).map(|id| file(id, 960 + id)).collect(),
            busy: &[],
            max_age: u64::MAX,
            opts: CompactionOptions {
                max_files: 3,
                ..opts()
            },
            want: Some(vec![1, 2, 3]),
        },
        Case {
            name: "incoming window applies the ratio",
            files: vec![
                CandidateFile {
                    size_bytes: 1000,
                    ..file(1, 1001)
                },
                file(2, 1002),
                file(3, 1003),
                file(4, 1004),
            ],
            busy: &[],
            max_age: u64::MAX,
            opts: opts(),
            want: Some(vec![2, 3, 4]),
        },
    ];
    for mut case in cases {
        for f in &mut case.files {
            f.being_compacted = case.busy.contains(&f.id);
        }
        let tiers = Tiers::new(10, 3, case.max_age);
        let plan = select_minor(&case.files, &case.opts, &tiers, NOW);
        if let Some(p) = &plan {
            assert_eq!(p.kind, PlanKind::Minor, "case '{}'", case.name);
            assert!(p.reason.starts_with("date-tiered"), "case '{}'", case.name);
        }
        assert_eq!(plan.map(|p| p.inputs), case.want, "case '{}'", case.name);
    }
}

#[test]
fn expired_files_are_dropped_whole_before_tiering() {
    let family = FamilyPolicy {
        ttl_ms: Some(100),
        style: CompactionStyle::DateTiered {
            base_window_ms: 10,
            windows_per_tier: 3,
            max_tier_age_ms: u64::MAX,
        },
    };
    let opts = CompactionOptions {
        major_period_ms: 0,
        ..CompactionOptions::default()
    };
    // max_ts 899: age 101 > ttl → expired; 900: age 100 → kept.
    let files = vec![file(1, 850), file(2, 899), file(3, 900), file(4, 905)];
    let plan = select(&files, &opts, &family, NOW, 0).unwrap();
    assert_eq!(plan.kind, PlanKind::DropExpired);
    assert_eq!(plan.inputs, vec![1, 2]);

    // Once they are gone, the tiers merge the survivors of the [900, +30) window.
    let plan = select(&files[2..], &opts, &family, NOW, 0).unwrap();
    assert_eq!((plan.kind, plan.inputs), (PlanKind::Minor, vec![3, 4]));
}
