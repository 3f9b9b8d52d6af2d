//! The policies over time: a week of time-ordered flushes of one store is simulated at the
//! policy level (a merge's output is the sum of its inputs, an expired file disappears),
//! running `select` to a fixed point after every flush. The file count must stay below the
//! blocking threshold and the write amplification within the bound the policy's geometry
//! promises. Prints the figures (run with `--nocapture`); no disk is touched.

use speedlayer_storage::compaction::{
    CandidateFile, CompactionOptions, CompactionStyle, FamilyPolicy, PlanKind, select,
};

const MINUTE: u64 = 60_000;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

#[derive(Debug, Default)]
struct Outcome {
    flushes: u64,
    user_bytes: u64,
    compaction_bytes: u64,
    max_files: usize,
    minors: u64,
    majors: u64,
    dropped: u64,
    final_files: usize,
}

impl Outcome {
    fn write_amplification(&self) -> f64 {
        (self.user_bytes + self.compaction_bytes) as f64 / self.user_bytes as f64
    }
}

/// `flushes` flushes of `flush_bytes`, each holding the next `span` ms of data.
fn simulate(
    family: FamilyPolicy,
    opts: &CompactionOptions,
    flushes: u64,
    span: u64,
    flush_bytes: u64,
) -> Outcome {
    let mut files: Vec<CandidateFile> = Vec::new();
    let mut out = Outcome::default();
    let mut next_id = 1;
    let start = 100 * DAY;
    for i in 0..flushes {
        let now = start + (i + 1) * span;
        files.push(CandidateFile {
            id: next_id,
            size_bytes: flush_bytes,
            seq: next_id,
            min_ts: now - span,
            max_ts: now - 1,
            cell_count: flush_bytes / 100,
            tombstones: 0,
            created_ms: now,
            being_compacted: false,
        });
        next_id += 1;
        out.flushes += 1;
        out.user_bytes += flush_bytes;
        for _ in 0..100 {
            let Some(plan) = select(&files, opts, &family, now, 42) else {
                break;
            };
            let (inputs, rest): (Vec<CandidateFile>, Vec<CandidateFile>) =
                files.into_iter().partition(|f| plan.inputs.contains(&f.id));
            assert_eq!(
                inputs.len(),
                plan.inputs.len(),
                "plan names live files only"
            );
            files = rest;
            match plan.kind {
                PlanKind::DropExpired => out.dropped += inputs.len() as u64,
                PlanKind::Minor | PlanKind::Major => {
                    if plan.kind == PlanKind::Major {
                        out.majors += 1;
                    } else {
                        out.minors += 1;
                    }
                    let size: u64 = inputs.iter().map(|f| f.size_bytes).sum();
                    out.compaction_bytes += size;
                    files.push(CandidateFile {
                        id: next_id,
                        size_bytes: size,
                        seq: inputs.iter().map(|f| f.seq).max().unwrap(),
                        min_ts: inputs.iter().map(|f| f.min_ts).min().unwrap(),
                        max_ts: inputs.iter().map(|f| f.max_ts).max().unwrap(),
                        cell_count: inputs.iter().map(|f| f.cell_count).sum(),
                        tombstones: 0,
                        created_ms: now,
                        being_compacted: false,
                    });
                    next_id += 1;
                    files.sort_by_key(|f| f.seq);
                }
            }
        }
        out.max_files = out.max_files.max(files.len());
    }
    out.final_files = files.len();
    out
}

#[test]
fn exploring_keeps_file_count_bounded_with_logarithmic_write_amplification() {
    let opts = CompactionOptions::default();
    // A week of 10-minute flushes of 64 MiB, no TTL.
    let o = simulate(
        FamilyPolicy::default(),
        &opts,
        7 * 144,
        10 * MINUTE,
        64 << 20,
    );
    println!(
        "exploring: {o:?}, write amplification {:.2}",
        o.write_amplification()
    );
    assert!(o.max_files < opts.blocking_files, "{o:?}");
    assert!(o.minors > 0);
    // Each byte is rewritten about once per "ratio tier": log base ~3 of 1000 flushes ≈ 7.
    assert!(o.write_amplification() < 9.0, "{o:?}");
}

#[test]
fn date_tiered_with_ttl_drops_whole_files_and_bounds_the_store() {
    let opts = CompactionOptions {
        major_period_ms: 0,
        ..CompactionOptions::default()
    };
    let family = FamilyPolicy {
        ttl_ms: Some(DAY),
        style: CompactionStyle::DateTiered {
            base_window_ms: HOUR,
            windows_per_tier: 4,
            max_tier_age_ms: 2 * DAY,
        },
    };
    let o = simulate(family, &opts, 7 * 144, 10 * MINUTE, 64 << 20);
    println!(
        "date-tiered: {o:?}, write amplification {:.2}",
        o.write_amplification()
    );
    assert!(o.dropped > 0, "expired files leave whole: {o:?}");
    assert!(o.max_files < opts.blocking_files, "{o:?}");
    // Windows of 1 h, 4 h, 16 h: each byte is rewritten about once per tier.
    assert!(o.write_amplification() < 4.5, "{o:?}");
    assert_eq!(o.majors, 0);
}
