//! Compaction selection as pure functions: a store's file set, its options and the current
//! time in; a [`CompactionPlan`] (or nothing to do) out.
//!
//! Nothing here touches the disk, the manifest or a clock: callers pass `now_ms`, so every
//! rule is unit-tested with tables of file sizes and ages. The executor applies the plan.
//!
//! [`select`] decides in this order, first match wins:
//! 1. **Drop expired** ([`PlanKind::DropExpired`]): files whose newest cell (put or
//!    marker) is past the family TTL are removed whole, without rewriting. This is safe for
//!    every style: a marker can only mask cells with a timestamp at or below its own, and
//!    those are expired as well.
//! 2. **Periodic major** ([`major`]): every file of the store into one, when the oldest
//!    file is older than the (jittered) major period.
//! 3. **Minor**, by the family's [`CompactionStyle`]: [`exploring`] (HBase's
//!    `ExploringCompactionPolicy`) or [`date_tiered`].
//!
//! Files are passed oldest → newest (ascending max sequence number). A file that is part of
//! a running compaction (`being_compacted`) is never selected again; like HBase, minor
//! selection only considers files *newer* than the newest file being compacted, so a
//! selection is always a run of adjacent files.

pub mod date_tiered;
pub mod exploring;
pub mod major;

pub use crate::schema::CompactionStyle;
use std::fmt;

use crate::cell::{SeqNo, Timestamp};

/// One store file as the policy sees it: sizes, sequence and time bounds, nothing on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CandidateFile {
    /// The file id (as in the manifest).
    pub id: u64,
    /// File size on disk in bytes.
    pub size_bytes: u64,
    /// Highest sequence number in the file; the slice given to a policy is ordered by it.
    pub seq: SeqNo,
    /// Lowest cell timestamp in the file (ms).
    pub min_ts: Timestamp,
    /// Highest cell timestamp in the file (ms), delete markers included.
    pub max_ts: Timestamp,
    /// Number of cells (puts and markers).
    pub cell_count: u64,
    /// Number of delete markers.
    pub tombstones: u64,
    /// When the file was written (ms since the epoch); drives the periodic major.
    pub created_ms: u64,
    /// True while a running compaction owns this file.
    pub being_compacted: bool,
}

/// What a plan does with its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlanKind {
    /// Merge a subset of files into one; keeps delete markers (older files outside the set
    /// may hold cells they mask) and drops only what is provably dead.
    Minor,
    /// Merge every file of the store into one; drops markers and all they mask, expired
    /// cells and versions beyond the family's max versions.
    Major,
    /// Delete the inputs whole, without rewriting: every cell in them is past the TTL.
    DropExpired,
}

impl fmt::Display for PlanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlanKind::Minor => "minor",
            PlanKind::Major => "major",
            PlanKind::DropExpired => "drop-expired",
        })
    }
}

/// A decision: which files, what to do with them, and why (for logs and tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompactionPlan {
    /// Input file ids, oldest → newest.
    pub inputs: Vec<u64>,
    /// What to do with them.
    pub kind: PlanKind,
    /// Human-readable reason, e.g. "exploring: 4 files in ratio 1.2, 10 MiB".
    pub reason: String,
}

/// What the policy needs to know about the store's family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FamilyPolicy {
    /// The family's TTL; `None` keeps cells forever.
    pub ttl_ms: Option<u64>,
    /// How minor compactions are chosen.
    pub style: CompactionStyle,
}

/// Tunables shared by every store. Defaults follow HBase's.
#[derive(Clone, Debug, PartialEq)]
pub struct CompactionOptions {
    /// Fewest files a minor compaction merges. Default 3 (`hbase.hstore.compaction.min`).
    pub min_files: usize,
    /// Most files a minor compaction merges. Default 10 (`hbase.hstore.compaction.max`).
    pub max_files: usize,
    /// No file of a minor selection may be larger than `ratio` × the sum of the others.
    /// Default 1.2 (`hbase.hstore.compaction.ratio`). Higher merges more eagerly (more write
    /// amplification, fewer files).
    pub ratio: f64,
    /// Selections whose total is below this skip the ratio test: small files are always
    /// worth merging. Default 0 (off); HBase uses the memstore flush size.
    pub min_compact_bytes: u64,
    /// Selections whose total is above this are never chosen for a minor. Default
    /// `u64::MAX` (off).
    pub max_compact_bytes: u64,
    /// A store with this many files blocks flushes; at or above it the selection may pick a
    /// set outside the ratio rather than nothing ("stuck" mode). Default 16.
    pub blocking_files: usize,
    /// Period of automatic major compactions in ms; 0 disables them. Default 7 days.
    pub major_period_ms: u64,
    /// Fraction of the period by which each store's deadline is spread (±), so stores do not
    /// all major-compact at once. Default 0.5, clamped to [0, 1].
    pub major_jitter: f64,
    /// Background compaction threads (default 1: on 2 cores, one core stays for writes).
    pub threads: usize,
    /// Stores the background queue holds at most (default 1024); beyond, a store is
    /// picked up at its next flush instead.
    pub max_queued_stores: usize,
    /// I/O throttle on compaction output in MiB/s (default 64; 0 = unlimited).
    pub throttle_mb_per_sec: u64,
    /// Longest a flush waits for compactions while a store has `blocking_files` files
    /// (default 10 s); then it flushes anyway.
    pub blocking_wait_ms: u64,
    /// Compact in the background after flushes (default true). Off: only `Db::compact`.
    pub auto: bool,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        CompactionOptions {
            min_files: 3,
            max_files: 10,
            ratio: 1.2,
            min_compact_bytes: 0,
            max_compact_bytes: u64::MAX,
            blocking_files: 16,
            major_period_ms: 7 * 24 * 60 * 60 * 1000,
            major_jitter: 0.5,
            threads: 1,
            max_queued_stores: 1024,
            throttle_mb_per_sec: 64,
            blocking_wait_ms: 10_000,
            auto: true,
        }
    }
}

/// Picks the next compaction for one store, or `None` when there is nothing worth doing.
///
/// `files` are the store's files oldest → newest; `now_ms` is the wall clock; `jitter_seed`
/// identifies the store (e.g. a hash of its region and family) so its major deadline jitter
/// is stable from one call to the next.
pub fn select(
    files: &[CandidateFile],
    opts: &CompactionOptions,
    family: &FamilyPolicy,
    now_ms: u64,
    jitter_seed: u64,
) -> Option<CompactionPlan> {
    if let Some(plan) = select_expired(files, family.ttl_ms, now_ms) {
        return Some(plan);
    }
    if let Some(reason) = major::major_due(files, opts, family.ttl_ms, now_ms, jitter_seed)
        && let Some(plan) = select_major(files, reason)
    {
        return Some(plan);
    }
    match family.style {
        CompactionStyle::Exploring => exploring::select_minor(files, opts),
        CompactionStyle::DateTiered {
            base_window_ms,
            windows_per_tier,
            max_tier_age_ms,
        } => date_tiered::select_minor(
            files,
            opts,
            &date_tiered::Tiers::new(base_window_ms, windows_per_tier, max_tier_age_ms),
            now_ms,
        ),
    }
}

/// A major compaction of every file of the store (on demand or when due).
///
/// `None` when the store has no files, or when a running compaction owns one of them (a
/// major needs all files; the caller retries after that compaction ends).
pub fn select_major(files: &[CandidateFile], reason: impl Into<String>) -> Option<CompactionPlan> {
    if files.is_empty() || files.iter().any(|f| f.being_compacted) {
        return None;
    }
    Some(CompactionPlan {
        inputs: files.iter().map(|f| f.id).collect(),
        kind: PlanKind::Major,
        reason: reason.into(),
    })
}

/// True when every cell of the file is past the TTL at `now_ms` (the read path's rule:
/// a cell is expired when `now - ts > ttl`).
pub fn file_expired(file: &CandidateFile, ttl_ms: Option<u64>, now_ms: u64) -> bool {
    match ttl_ms {
        Some(ttl) => now_ms.saturating_sub(file.max_ts) > ttl,
        None => false,
    }
}

/// Every file not owned by a running compaction whose newest cell has expired.
pub fn select_expired(
    files: &[CandidateFile],
    ttl_ms: Option<u64>,
    now_ms: u64,
) -> Option<CompactionPlan> {
    let ttl = ttl_ms?;
    let inputs: Vec<u64> = files
        .iter()
        .filter(|f| !f.being_compacted && file_expired(f, ttl_ms, now_ms))
        .map(|f| f.id)
        .collect();
    if inputs.is_empty() {
        return None;
    }
    let reason = format!(
        "drop-expired: {} file(s) whose newest cell is older than the TTL of {ttl} ms",
        inputs.len()
    );
    Some(CompactionPlan {
        inputs,
        kind: PlanKind::DropExpired,
        reason,
    })
}

/// The files a minor compaction may choose from: those newer than the newest file that a
/// running compaction owns (HBase's rule: selections stay runs of adjacent files).
pub fn minor_eligible(files: &[CandidateFile]) -> &[CandidateFile] {
    match files.iter().rposition(|f| f.being_compacted) {
        Some(last) => &files[last + 1..],
        None => files,
    }
}

/// Sum of the files' sizes.
pub(crate) fn total_bytes(files: &[CandidateFile]) -> u64 {
    files.iter().map(|f| f.size_bytes).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(id: u64, being_compacted: bool) -> CandidateFile {
        CandidateFile {
            id,
            size_bytes: 10,
            seq: id,
            min_ts: 0,
            max_ts: 100,
            cell_count: 1,
            tombstones: 0,
            created_ms: 0,
            being_compacted,
        }
    }

    #[test]
    fn eligible_files_follow_the_newest_compacting_file() {
        let files = [
            file(1, false),
            file(2, true),
            file(3, false),
            file(4, false),
        ];
        let ids: Vec<u64> = minor_eligible(&files).iter().map(|f| f.id).collect();
        assert_eq!(ids, vec![3, 4]);
        let files = [file(1, false), file(2, false)];
        assert_eq!(minor_eligible(&files).len(), 2);
    }

    #[test]
    fn expiry_uses_strictly_greater_than_ttl() {
        let f = file(1, false);
        assert!(
            !file_expired(&f, Some(50), 150),
            "age 50 == ttl is still visible"
        );
        assert!(file_expired(&f, Some(50), 151));
        assert!(!file_expired(&f, None, u64::MAX));
    }

    #[test]
    fn major_needs_every_file_free() {
        assert!(select_major(&[file(1, false), file(2, true)], "x").is_none());
        assert!(select_major(&[], "x").is_none());
        let plan = select_major(&[file(1, false), file(2, false)], "x").unwrap();
        assert_eq!(plan.inputs, vec![1, 2]);
        assert_eq!(plan.kind, PlanKind::Major);
    }
}
