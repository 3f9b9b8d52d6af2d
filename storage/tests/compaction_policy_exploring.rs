//! Table-driven tests of the exploring (ratio) minor selection: file sizes in, chosen run
//! out, including the boundaries of ratio, min/max files, size limits, files being
//! compacted and the "stuck" fallback; plus a randomized check of its optimality.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use speedlayer_storage::compaction::policy::exploring::{in_ratio, select_minor};
use speedlayer_storage::compaction::{CandidateFile, CompactionOptions, PlanKind};

/// Files with ids 1.. in seq order; ids listed in `busy` are being compacted.
fn files(sizes: &[u64], busy: &[u64]) -> Vec<CandidateFile> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, &size_bytes)| {
            let id = i as u64 + 1;
            CandidateFile {
                id,
                size_bytes,
                seq: id * 10,
                min_ts: 0,
                max_ts: 0,
                cell_count: size_bytes,
                tombstones: 0,
                created_ms: 0,
                being_compacted: busy.contains(&id),
            }
        })
        .collect()
}

struct Case {
    name: &'static str,
    sizes: &'static [u64],
    busy: &'static [u64],
    opts: CompactionOptions,
    want: Option<&'static [u64]>,
}

fn opts() -> CompactionOptions {
    CompactionOptions::default()
}

#[test]
fn exploring_selection_table() {
    let cases = [
        Case {
            name: "fewer than min_files",
            sizes: &[10, 10],
            busy: &[],
            opts: opts(),
            want: None,
        },
        Case {
            name: "exactly min_files",
            sizes: &[10, 10, 10],
            busy: &[],
            opts: opts(),
            want: Some(&[1, 2, 3]),
        },
        Case {
            name: "ratio exactly 1.2 is in",
            sizes: &[12, 5, 5],
            busy: &[],
            opts: opts(),
            want: Some(&[1, 2, 3]),
        },
        Case {
            name: "ratio just over 1.2 is out",
            sizes: &[13, 5, 5],
            busy: &[],
            opts: opts(),
            want: None,
        },
        Case {
            name: "ratio 2.0 admits what 1.2 refuses",
            sizes: &[13, 5, 5],
            busy: &[],
            opts: CompactionOptions {
                ratio: 2.0,
                ..opts()
            },
            want: Some(&[1, 2, 3]),
        },
        Case {
            name: "big old file left out",
            sizes: &[1000, 10, 10, 10],
            busy: &[],
            opts: opts(),
            want: Some(&[2, 3, 4]),
        },
        Case {
            name: "more files preferred",
            sizes: &[10, 10, 10, 10, 10],
            busy: &[],
            opts: opts(),
            want: Some(&[1, 2, 3, 4, 5]),
        },
        Case {
            name: "max_files caps the run (ties keep the oldest)",
            sizes: &[10; 12],
            busy: &[],
            opts: opts(),
            want: Some(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        },
        Case {
            name: "equal count: fewer bytes preferred",
            sizes: &[40, 30, 30, 1, 1, 1],
            busy: &[],
            opts: CompactionOptions {
                max_files: 3,
                ..opts()
            },
            want: Some(&[4, 5, 6]),
        },
        Case {
            name: "min_files 2",
            sizes: &[10, 12],
            busy: &[],
            opts: CompactionOptions {
                min_files: 2,
                ..opts()
            },
            want: Some(&[1, 2]),
        },
        Case {
            name: "files up to the newest compacting one are excluded",
            sizes: &[10, 10, 10, 10, 10, 10],
            busy: &[3],
            opts: opts(),
            want: Some(&[4, 5, 6]),
        },
        Case {
            name: "too few files after the compacting one",
            sizes: &[10, 10, 10, 10, 10, 10],
            busy: &[1, 4],
            opts: opts(),
            want: None,
        },
        Case {
            name: "max_compact_bytes bounds the total",
            sizes: &[10, 10, 10, 10],
            busy: &[],
            opts: CompactionOptions {
                max_compact_bytes: 30,
                ..opts()
            },
            want: Some(&[1, 2, 3]),
        },
        Case {
            name: "max_compact_bytes just below any run",
            sizes: &[10, 10, 10],
            busy: &[],
            opts: CompactionOptions {
                max_compact_bytes: 29,
                ..opts()
            },
            want: None,
        },
        Case {
            name: "below min_compact_bytes skips the ratio test",
            sizes: &[100, 1, 1],
            busy: &[],
            opts: CompactionOptions {
                min_compact_bytes: 103,
                ..opts()
            },
            want: Some(&[1, 2, 3]),
        },
        Case {
            name: "at min_compact_bytes the ratio applies again",
            sizes: &[100, 1, 1],
            busy: &[],
            opts: CompactionOptions {
                min_compact_bytes: 102,
                ..opts()
            },
            want: None,
        },
        Case {
            name: "not stuck: nothing in ratio, nothing chosen",
            sizes: &[1, 100, 10_000, 1_000_000],
            busy: &[],
            opts: opts(),
            want: None,
        },
        Case {
            name: "stuck at the blocking count: smallest run anyway",
            sizes: &[1, 100, 10_000, 1_000_000],
            busy: &[],
            opts: CompactionOptions {
                blocking_files: 4,
                ..opts()
            },
            want: Some(&[1, 2, 3]),
        },
        Case {
            name: "one below the blocking count is not stuck",
            sizes: &[1, 100, 10_000, 1_000_000],
            busy: &[],
            opts: CompactionOptions {
                blocking_files: 5,
                ..opts()
            },
            want: None,
        },
        Case {
            name: "stuck prefers files per byte over file count",
            sizes: &[50, 50, 50, 50, 1, 1, 1],
            busy: &[],
            opts: CompactionOptions {
                blocking_files: 7,
                ..opts()
            },
            want: Some(&[5, 6, 7]),
        },
        Case {
            name: "not stuck the same set prefers more files",
            sizes: &[50, 50, 50, 50, 1, 1, 1],
            busy: &[],
            opts: opts(),
            want: Some(&[1, 2, 3, 4, 5, 6, 7]),
        },
        Case {
            name: "empty store",
            sizes: &[],
            busy: &[],
            opts: opts(),
            want: None,
        },
    ];

    for case in cases {
        let set = files(case.sizes, case.busy);
        let plan = select_minor(&set, &case.opts);
        let got = plan.as_ref().map(|p| p.inputs.clone());
        assert_eq!(got, case.want.map(|w| w.to_vec()), "case '{}'", case.name);
        if let Some(plan) = plan {
            assert_eq!(plan.kind, PlanKind::Minor, "case '{}'", case.name);
            assert!(
                plan.reason.starts_with("exploring"),
                "case '{}': {}",
                case.name,
                plan.reason
            );
        }
    }
}

/// Random stores: the chosen run is adjacent, in ratio, and no other qualifying run beats
/// it (more files, or as many with fewer bytes) — checked against a brute-force search.
#[test]
fn exploring_choice_is_optimal_on_random_stores() {
    let mut rng = StdRng::seed_from_u64(0x5eed_c0de);
    let opts = CompactionOptions {
        blocking_files: usize::MAX,
        ..opts()
    };
    let mut chosen_some = 0;
    for round in 0..2000 {
        let n = rng.random_range(0..15);
        let sizes: Vec<u64> = (0..n).map(|_| rng.random_range(1..200)).collect();
        let set = files(&sizes, &[]);
        let plan = select_minor(&set, &opts);

        let mut best: Option<(usize, u64)> = None;
        for start in 0..set.len() {
            for len in opts.min_files..=opts.max_files.min(set.len() - start) {
                let run = &set[start..start + len];
                if in_ratio(run, opts.ratio) {
                    let bytes: u64 = run.iter().map(|f| f.size_bytes).sum();
                    if best.is_none_or(|(l, b)| len > l || (len == l && bytes < b)) {
                        best = Some((len, bytes));
                    }
                }
            }
        }
        match (plan, best) {
            (None, None) => {}
            (Some(plan), Some((len, bytes))) => {
                chosen_some += 1;
                let first = set.iter().position(|f| f.id == plan.inputs[0]).unwrap();
                let run = &set[first..first + plan.inputs.len()];
                let ids: Vec<u64> = run.iter().map(|f| f.id).collect();
                assert_eq!(ids, plan.inputs, "round {round}: adjacent");
                assert!(in_ratio(run, opts.ratio), "round {round}: in ratio");
                let run_bytes: u64 = run.iter().map(|f| f.size_bytes).sum();
                assert_eq!(
                    (run.len(), run_bytes),
                    (len, bytes),
                    "round {round}: {sizes:?}"
                );
            }
            (plan, best) => {
                panic!("round {round} {sizes:?}: plan {plan:?}, brute force {best:?}")
            }
        }
    }
    assert!(
        chosen_some > 500,
        "the random stores exercise selection ({chosen_some})"
    );
}
