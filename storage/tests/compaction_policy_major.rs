//! Table-driven tests of when a periodic major compaction is due (period, jitter bounds,
//! the single-file exception) and of the order in which `select` decides: drop expired
//! files first, then a due major, then a minor.

use speedlayer_storage::compaction::policy::major::{jittered_period, major_due};
use speedlayer_storage::compaction::{
    CandidateFile, CompactionOptions, CompactionStyle, FamilyPolicy, PlanKind, select, select_major,
};

const DAY: u64 = 24 * 60 * 60 * 1000;
const NOW: u64 = 1_000 * DAY;

/// A file created `age` ms before NOW, with cells in `[min_ts, max_ts]`.
fn file(id: u64, age: u64, tombstones: u64) -> CandidateFile {
    CandidateFile {
        id,
        size_bytes: 100,
        seq: id,
        min_ts: NOW - age,
        max_ts: NOW - age + 1,
        cell_count: 10,
        tombstones,
        created_ms: NOW - age,
        being_compacted: false,
    }
}

fn week_no_jitter() -> CompactionOptions {
    CompactionOptions {
        major_jitter: 0.0,
        ..CompactionOptions::default()
    }
}

#[test]
fn major_due_table() {
    struct Case {
        name: &'static str,
        files: Vec<CandidateFile>,
        opts: CompactionOptions,
        ttl: Option<u64>,
        due: bool,
    }
    let cases = [
        Case {
            name: "no files",
            files: vec![],
            opts: week_no_jitter(),
            ttl: None,
            due: false,
        },
        Case {
            name: "oldest exactly one period old",
            files: vec![file(1, 7 * DAY, 0), file(2, DAY, 0)],
            opts: week_no_jitter(),
            ttl: None,
            due: true,
        },
        Case {
            name: "oldest one ms short of the period",
            files: vec![file(1, 7 * DAY - 1, 0), file(2, DAY, 0)],
            opts: week_no_jitter(),
            ttl: None,
            due: false,
        },
        Case {
            name: "period 0 disables",
            files: vec![file(1, 700 * DAY, 0), file(2, DAY, 0)],
            opts: CompactionOptions {
                major_period_ms: 0,
                ..week_no_jitter()
            },
            ttl: None,
            due: false,
        },
        Case {
            name: "single clean file is not rewritten",
            files: vec![file(1, 30 * DAY, 0)],
            opts: week_no_jitter(),
            ttl: None,
            due: false,
        },
        Case {
            name: "single file with delete markers is due",
            files: vec![file(1, 30 * DAY, 3)],
            opts: week_no_jitter(),
            ttl: None,
            due: true,
        },
        Case {
            name: "single file with expired cells is due",
            files: vec![file(1, 30 * DAY, 0)],
            opts: week_no_jitter(),
            ttl: Some(10 * DAY),
            due: true,
        },
        Case {
            name: "single file within its TTL is not due",
            files: vec![file(1, 30 * DAY, 0)],
            opts: week_no_jitter(),
            ttl: Some(60 * DAY),
            due: false,
        },
    ];
    for case in cases {
        let got = major_due(&case.files, &case.opts, case.ttl, NOW, 7);
        assert_eq!(got.is_some(), case.due, "case '{}': {got:?}", case.name);
    }
}

/// With ±50 % jitter no store is due before half a period and every store is due after one
/// and a half; in between, stores differ.
#[test]
fn jitter_bounds_hold_for_every_store() {
    let opts = CompactionOptions::default();
    let mut due_at_one_period = 0;
    for seed in 0..500u64 {
        let young = [file(1, 7 * DAY / 2 - 1, 0), file(2, DAY, 0)];
        assert!(
            major_due(&young, &opts, None, NOW, seed).is_none(),
            "seed {seed}"
        );
        let old = [file(1, 7 * DAY * 3 / 2, 0), file(2, DAY, 0)];
        assert!(
            major_due(&old, &opts, None, NOW, seed).is_some(),
            "seed {seed}"
        );
        let mid = [file(1, 7 * DAY, 0), file(2, DAY, 0)];
        due_at_one_period += usize::from(major_due(&mid, &opts, None, NOW, seed).is_some());
    }
    assert!(
        (100..400).contains(&due_at_one_period),
        "about half the stores are due at exactly one period: {due_at_one_period}"
    );
    assert_eq!(
        jittered_period(7 * DAY, 0.5, 1),
        jittered_period(7 * DAY, 0.5, 1)
    );
}

#[test]
fn select_decides_expired_then_major_then_minor() {
    struct Case {
        name: &'static str,
        files: Vec<CandidateFile>,
        family: FamilyPolicy,
        want: Option<(PlanKind, Vec<u64>)>,
    }
    let exploring = FamilyPolicy::default();
    let ttl_5d = FamilyPolicy {
        ttl_ms: Some(5 * DAY),
        style: CompactionStyle::Exploring,
    };
    let mut busy = file(1, 8 * DAY, 0);
    busy.being_compacted = true;
    let cases = [
        Case {
            name: "expired files dropped before a due major",
            files: vec![file(1, 8 * DAY, 0), file(2, 6 * DAY, 0), file(3, DAY, 0)],
            family: ttl_5d,
            want: Some((PlanKind::DropExpired, vec![1, 2])),
        },
        Case {
            name: "file at exactly the TTL is kept",
            files: vec![file(1, 5 * DAY + 1, 0), file(2, DAY, 0)],
            family: ttl_5d,
            want: None,
        },
        Case {
            name: "due major takes every file",
            files: vec![file(1, 8 * DAY, 0), file(2, 2 * DAY, 0), file(3, DAY, 0)],
            family: exploring,
            want: Some((PlanKind::Major, vec![1, 2, 3])),
        },
        Case {
            name: "due major waits for a running compaction; minor goes on",
            files: vec![busy, file(2, 2 * DAY, 0), file(3, DAY, 0), file(4, DAY, 0)],
            family: exploring,
            want: Some((PlanKind::Minor, vec![2, 3, 4])),
        },
        Case {
            name: "young store: minor",
            files: vec![file(1, DAY, 0), file(2, DAY, 0), file(3, DAY, 0)],
            family: exploring,
            want: Some((PlanKind::Minor, vec![1, 2, 3])),
        },
        Case {
            name: "young store, too few files: nothing",
            files: vec![file(1, DAY, 0), file(2, DAY, 0)],
            family: exploring,
            want: None,
        },
    ];
    let opts = week_no_jitter();
    for case in cases {
        let got = select(&case.files, &opts, &case.family, NOW, 1).map(|p| (p.kind, p.inputs));
        assert_eq!(got, case.want, "case '{}'", case.name);
    }
}

#[test]
fn on_demand_major_takes_all_files_or_waits() {
    let files = [file(1, DAY, 0), file(2, DAY, 0)];
    let plan = select_major(&files, "on demand").unwrap();
    assert_eq!(
        (plan.kind, plan.inputs, plan.reason.as_str()),
        (PlanKind::Major, vec![1, 2], "on demand")
    );
    let mut busy = files.clone();
    busy[1].being_compacted = true;
    assert!(select_major(&busy, "on demand").is_none());
}
