//! Date-tiered minor selection for time-series families (after HBase's
//! `DateTieredCompactionPolicy`).
//!
//! Time is cut into windows aligned to multiples of their size. The newest windows are
//! `base_window_ms` wide; walking back in time, whenever a window starts on a multiple of
//! `base × factor` the walk moves up one tier and windows become `factor` times wider
//! (`factor` = `windows_per_tier`). Windows therefore nest and never overlap. Each file
//! belongs to the window holding its newest timestamp.
//!
//! Only files of one window are merged: in the newest (incoming) window with the exploring
//! rules and `min_files`; in any older window as soon as it holds two files, all of them
//! (up to `max_files`, oldest first), since no more data is expected there. Files whose
//! newest cell is older than `max_tier_age_ms` are left alone for good.
//!
//! Files are matched to windows by timestamp, not position, so a window's files need not be
//! adjacent in sequence order; merges are by full cell key (sequence included), so that is
//! safe. Whole-file TTL expiry is decided before this module runs (`select_expired`).

use std::collections::BTreeMap;

use super::exploring::explore;
use super::{CandidateFile, CompactionOptions, CompactionPlan, PlanKind, total_bytes};

/// Validated window geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tiers {
    /// Width of the newest windows, ≥ 1 ms.
    pub base_window_ms: u64,
    /// Growth factor between tiers, ≥ 2.
    pub factor: u64,
    /// Files whose newest cell is older than this are never compacted.
    pub max_tier_age_ms: u64,
}

impl Tiers {
    /// Geometry from the family option, clamping nonsense (0 width, factor < 2).
    pub fn new(base_window_ms: u64, windows_per_tier: u64, max_tier_age_ms: u64) -> Tiers {
        Tiers {
            base_window_ms: base_window_ms.max(1),
            factor: windows_per_tier.max(2),
            max_tier_age_ms,
        }
    }

    /// The window `[start, start + width)` holding timestamp `ts` as seen at `now_ms`, as
    /// `(start, width)`. Timestamps in the future belong to the newest window.
    pub fn window_of(&self, ts: u64, now_ms: u64) -> (u64, u64) {
        let mut width = self.base_window_ms;
        let mut index = now_ms / width;
        loop {
            let start = index.saturating_mul(width);
            if ts >= start || index == 0 {
                return (start, width);
            }
            if index.is_multiple_of(self.factor) {
                // Promote: the window just before `start` is one tier wider, and it ends
                // exactly at `start` because `start` is a multiple of the wider width.
                match width.checked_mul(self.factor) {
                    Some(wider) => {
                        width = wider;
                        index = index / self.factor - 1;
                    }
                    None => index -= 1,
                }
            } else {
                index -= 1;
            }
        }
    }
}

/// Minor selection with date tiers; see the module docs.
pub fn select_minor(
    files: &[CandidateFile],
    opts: &CompactionOptions,
    tiers: &Tiers,
    now_ms: u64,
) -> Option<CompactionPlan> {
    let cutoff = now_ms.saturating_sub(tiers.max_tier_age_ms);
    // Window start → (width, files oldest first). Newest window last in the map.
    let mut windows: BTreeMap<u64, (u64, Vec<&CandidateFile>)> = BTreeMap::new();
    for f in files {
        if f.being_compacted || f.max_ts < cutoff {
            continue;
        }
        let (start, width) = tiers.window_of(f.max_ts, now_ms);
        windows
            .entry(start)
            .or_insert_with(|| (width, Vec::new()))
            .1
            .push(f);
    }
    let incoming_start = tiers.window_of(now_ms, now_ms).0;

    for (&start, (width, members)) in windows.iter().rev() {
        if start >= incoming_start {
            let run: Vec<CandidateFile> = members.iter().map(|f| (*f).clone()).collect();
            if let Some(chosen) = explore(&run, opts, false) {
                return Some(CompactionPlan {
                    inputs: chosen.iter().map(|f| f.id).collect(),
                    kind: PlanKind::Minor,
                    reason: format!(
                        "date-tiered: {} files of the incoming window [{start}, +{width}) in ratio, {} bytes",
                        chosen.len(),
                        total_bytes(chosen)
                    ),
                });
            }
        } else if members.len() >= 2 {
            let take = members.len().min(opts.max_files.max(2));
            let chosen = &members[..take];
            return Some(CompactionPlan {
                inputs: chosen.iter().map(|f| f.id).collect(),
                kind: PlanKind::Minor,
                reason: format!(
                    "date-tiered: {} files of window [{start}, +{width}) merged into one",
                    chosen.len()
                ),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_nest_and_cover_time_without_gaps() {
        let tiers = Tiers::new(10, 3, u64::MAX);
        let now = 1000;
        // Walk back from now: every timestamp lands in exactly one window that contains it,
        // and consecutive timestamps' windows are either equal or adjacent.
        let mut prev = tiers.window_of(now, now);
        for ts in (0..now).rev() {
            let (start, width) = tiers.window_of(ts, now);
            assert!(
                start <= ts && ts < start + width,
                "ts {ts} in [{start}, +{width})"
            );
            assert_eq!(start % width, 0, "aligned");
            if (start, width) != prev {
                assert_eq!(start + width, prev.0, "windows are contiguous");
                assert!(width >= prev.1, "windows never shrink going back");
            }
            prev = (start, width);
        }
    }
}
