//! Minor compaction selection after HBase's `ExploringCompactionPolicy`.
//!
//! Every run of adjacent files (in sequence order) of length `min_files..=max_files` is a
//! candidate. A candidate qualifies when its total is within `max_compact_bytes` and it is
//! "in ratio": no file is larger than `ratio` × the sum of the others (candidates smaller
//! than `min_compact_bytes` skip that test). Among qualifying candidates the one with more
//! files wins, then the one with fewer bytes: the most files removed for the least I/O.
//!
//! When the store has as many files as the blocking threshold it "may be stuck": then the
//! preference becomes files per byte, and if nothing is in ratio the smallest candidate is
//! chosen anyway, because a store that cannot compact blocks its flushes.
//!
//! This module is not the date-tiered policy (which reuses [`explore`] inside one window).

use super::{
    CandidateFile, CompactionOptions, CompactionPlan, PlanKind, minor_eligible, total_bytes,
};

/// Minor selection over the whole store with the exploring rules.
pub fn select_minor(files: &[CandidateFile], opts: &CompactionOptions) -> Option<CompactionPlan> {
    let free = files.iter().filter(|f| !f.being_compacted).count();
    let might_be_stuck = free >= opts.blocking_files;
    let eligible = minor_eligible(files);
    let chosen = explore(eligible, opts, might_be_stuck)?;
    let bytes = total_bytes(chosen);
    let reason = if might_be_stuck && !in_ratio(chosen, opts.ratio) {
        format!(
            "exploring (stuck: {free} files >= blocking {}): smallest run of {} files, {bytes} bytes",
            opts.blocking_files,
            chosen.len()
        )
    } else {
        format!(
            "exploring: {} adjacent files in ratio {}, {bytes} bytes",
            chosen.len(),
            opts.ratio
        )
    };
    Some(CompactionPlan {
        inputs: chosen.iter().map(|f| f.id).collect(),
        kind: PlanKind::Minor,
        reason,
    })
}

/// The best run of adjacent `files` by the exploring rules, or `None`.
///
/// `files` must already exclude anything a running compaction owns.
pub fn explore<'a>(
    files: &'a [CandidateFile],
    opts: &CompactionOptions,
    might_be_stuck: bool,
) -> Option<&'a [CandidateFile]> {
    let min_files = opts.min_files.max(1);
    let max_files = opts.max_files.max(min_files);
    let mut best: Option<(&[CandidateFile], u64)> = None;
    let mut smallest: Option<(&[CandidateFile], u64)> = None;

    for start in 0..files.len() {
        let longest = (files.len() - start).min(max_files);
        for len in min_files..=longest {
            let run = &files[start..start + len];
            let bytes = total_bytes(run);
            if might_be_stuck && smallest.is_none_or(|(_, s)| bytes < s) {
                smallest = Some((run, bytes));
            }
            if bytes > opts.max_compact_bytes {
                continue;
            }
            if bytes >= opts.min_compact_bytes && !in_ratio(run, opts.ratio) {
                continue;
            }
            if best.is_none_or(|(b, b_bytes)| better(run, bytes, b, b_bytes, might_be_stuck)) {
                best = Some((run, bytes));
            }
        }
    }
    match best {
        Some((run, _)) => Some(run),
        None if might_be_stuck => smallest.map(|(run, _)| run),
        None => None,
    }
}

/// True when no file is larger than `ratio` × the sum of the others. A single file (or
/// none) is trivially in ratio. Exactly at the ratio is in ratio.
pub fn in_ratio(files: &[CandidateFile], ratio: f64) -> bool {
    if files.len() < 2 {
        return true;
    }
    let total = total_bytes(files);
    files.iter().all(|f| {
        let others = total - f.size_bytes;
        // f64 holds sizes up to 2^53 bytes exactly, far beyond any store file.
        (f.size_bytes as f64) <= (others as f64) * ratio
    })
}

/// Whether `run` beats the best so far: more files, then fewer bytes; when stuck, more
/// files per byte (HBase's `isBetterSelection`).
fn better(
    run: &[CandidateFile],
    bytes: u64,
    best: &[CandidateFile],
    best_bytes: u64,
    might_be_stuck: bool,
) -> bool {
    if might_be_stuck && bytes > 0 && best_bytes > 0 {
        let best_density = best.len() as f64 / best_bytes as f64;
        let density = run.len() as f64 / bytes as f64;
        return density > best_density;
    }
    run.len() > best.len() || (run.len() == best.len() && bytes < best_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sized(sizes: &[u64]) -> Vec<CandidateFile> {
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size_bytes)| CandidateFile {
                id: i as u64 + 1,
                size_bytes,
                seq: i as u64 + 1,
                min_ts: 0,
                max_ts: 0,
                cell_count: 1,
                tombstones: 0,
                created_ms: 0,
                being_compacted: false,
            })
            .collect()
    }

    #[test]
    fn ratio_boundary_is_inclusive() {
        // 12 vs 10: exactly 1.2 × the others.
        assert!(in_ratio(&sized(&[12, 5, 5]), 1.2));
        assert!(!in_ratio(&sized(&[13, 5, 5]), 1.2));
        assert!(in_ratio(&sized(&[7]), 1.2));
    }

    #[test]
    fn stuck_prefers_density() {
        let files = sized(&[100, 1, 1, 1, 50, 50, 50]);
        let opts = CompactionOptions {
            blocking_files: 7,
            ..CompactionOptions::default()
        };
        let run = explore(&files, &opts, true).unwrap();
        let ids: Vec<u64> = run.iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![2, 3, 4], "three 1-byte files are the densest run");
    }
}
