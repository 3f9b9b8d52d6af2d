//! What a compaction keeps: a streaming keep/drop decision for each cell of the merged
//! inputs, in store order.
//!
//! The rules mirror the read path's (`scan::visibility`) so that a compaction never changes
//! what a read returns, except where HBase's semantics say it does:
//!
//! - **Minor** keeps every delete marker: files outside the compaction may hold cells they
//!   mask. It drops only puts that no read can ever return again: a put masked by a marker
//!   among the inputs (the marker stays, and masking depends only on timestamps), an older
//!   write of a column at the same timestamp as a newer one (rule 5 of the read path), and
//!   puts past the TTL (time only moves forward, and a put masks nothing). Versions beyond
//!   max versions are kept: a newer marker in another file may still reveal them.
//! - **Major** sees every file of the store, so it also drops all markers and keeps only the
//!   newest `max_versions` live puts per column. As in HBase, this is where reads change:
//!   versions beyond the limit no longer appear to time-range reads, and a put written
//!   later with a timestamp an old marker covered is no longer masked.
//!
//! Cells not yet visible to every new reader are left alone: a flushed file can hold a
//! write whose sequence is above the region's read point (inserted, not yet completed).
//! Readers that took their snapshot earlier keep the old files, but a reader that starts
//! after the output is installed reads at a point at least the region's read point sampled
//! when the compaction started ([`RetainRules::visible_seq`]); a cell above it is kept
//! as is, masks nothing and counts as no version here, so a marker such a reader cannot
//! see yet never removes a put it can (HBase's smallest read point).
//!
//! This module decides; it does not read or write files (see `executor`).

use bytes::Bytes;

use crate::cell::{CellKey, CellKind, SeqNo};

/// The parameters of one compaction's keep/drop decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetainRules {
    /// Major (all files): markers, masked cells and excess versions are dropped.
    pub major: bool,
    /// The family's max versions (used by major only); at least 1.
    pub max_versions: u32,
    /// Puts with a timestamp below this are expired (the read path's `now - ttl`); 0 when
    /// the family has no TTL.
    pub oldest_ts: u64,
    /// Every reader that can see the output reads at this sequence or later; cells above
    /// it are kept untouched and take no part in the decision. `SeqNo::MAX` = all visible.
    pub visible_seq: SeqNo,
}

impl RetainRules {
    /// Rules for a compaction at `now_ms` of a family with `max_versions` and `ttl_ms`.
    pub fn new(major: bool, max_versions: u32, ttl_ms: Option<u64>, now_ms: u64) -> Self {
        RetainRules {
            major,
            max_versions: max_versions.max(1),
            oldest_ts: ttl_ms.map_or(0, |ttl| now_ms.saturating_sub(ttl)),
            visible_seq: SeqNo::MAX,
        }
    }

    /// The same rules for an output that only readers at `read_point` or later can see.
    pub fn visible_at(self, read_point: SeqNo) -> Self {
        RetainRules {
            visible_seq: read_point,
            ..self
        }
    }
}

/// How many cells a compaction kept and dropped, and why.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetainStats {
    /// Cells written to the output.
    pub kept: u64,
    /// Delete markers dropped (major only).
    pub dropped_markers: u64,
    /// Cells kept untouched because some reader may not see them yet (also in `kept`).
    pub kept_invisible: u64,
    /// Puts masked by a delete marker.
    pub dropped_masked: u64,
    /// Puts past the TTL.
    pub dropped_expired: u64,
    /// Puts beyond max versions (major only).
    pub dropped_versions: u64,
    /// Older writes of a column at a timestamp that a newer write also has.
    pub dropped_duplicates: u64,
}

impl RetainStats {
    /// Cells dropped for any reason.
    pub fn dropped(&self) -> u64 {
        self.dropped_markers
            + self.dropped_masked
            + self.dropped_expired
            + self.dropped_versions
            + self.dropped_duplicates
    }
}

/// The streaming decision: feed every cell of the merged inputs, in store order.
#[derive(Debug)]
pub struct Retainer {
    rules: RetainRules,
    row: Option<Bytes>,
    qualifier: Option<Bytes>,
    family_delete: Option<u64>,
    column_delete: Option<u64>,
    version_delete: Option<u64>,
    last_put_ts: Option<u64>,
    versions: u32,
    stats: RetainStats,
}

impl Retainer {
    /// A fresh decision for one compaction.
    pub fn new(rules: RetainRules) -> Self {
        Retainer {
            rules,
            row: None,
            qualifier: None,
            family_delete: None,
            column_delete: None,
            version_delete: None,
            last_put_ts: None,
            versions: 0,
            stats: RetainStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> RetainStats {
        self.stats
    }

    /// Whether the next cell (store order) goes to the output.
    pub fn keep(&mut self, key: &CellKey) -> bool {
        if self.row.as_ref() != Some(&key.row) {
            self.row = Some(key.row.clone());
            self.family_delete = None;
            self.qualifier = None;
        }
        if self.qualifier.as_ref() != Some(&key.qualifier) {
            self.qualifier = Some(key.qualifier.clone());
            self.column_delete = None;
            self.version_delete = None;
            self.last_put_ts = None;
            self.versions = 0;
        }
        if key.seq > self.rules.visible_seq {
            self.stats.kept_invisible += 1;
            self.stats.kept += 1;
            return true;
        }
        let ts = key.timestamp;
        let keep = match key.kind {
            CellKind::DeleteFamily | CellKind::DeleteColumn | CellKind::Delete => {
                let slot = match key.kind {
                    CellKind::DeleteFamily => &mut self.family_delete,
                    CellKind::DeleteColumn => &mut self.column_delete,
                    _ => &mut self.version_delete,
                };
                *slot = Some(match (key.kind, *slot) {
                    (CellKind::Delete, _) | (_, None) => ts,
                    (_, Some(prev)) => prev.max(ts),
                });
                if self.rules.major {
                    self.stats.dropped_markers += 1;
                }
                !self.rules.major
            }
            CellKind::Put => self.keep_put(ts),
        };
        if keep {
            self.stats.kept += 1;
        }
        keep
    }

    fn keep_put(&mut self, ts: u64) -> bool {
        let duplicate = self.last_put_ts == Some(ts);
        self.last_put_ts = Some(ts);
        if duplicate {
            self.stats.dropped_duplicates += 1;
            return false;
        }
        let masked = self.family_delete.is_some_and(|d| ts <= d)
            || self.column_delete.is_some_and(|d| ts <= d)
            || self.version_delete == Some(ts);
        if masked {
            self.stats.dropped_masked += 1;
            return false;
        }
        if ts < self.rules.oldest_ts {
            self.stats.dropped_expired += 1;
            return false;
        }
        if self.rules.major {
            if self.versions >= self.rules.max_versions {
                self.stats.dropped_versions += 1;
                return false;
            }
            self.versions += 1;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    //! The oracle is the read path itself: reading the compaction's output (plus, for a
    //! minor, the files left out of it) must give what reading the inputs gave.

    use std::collections::BTreeMap;

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::read::TimeRange;
    use crate::scan::visibility::{FamilyQuery, RowVisibility};

    type Cells = Vec<(CellKey, Bytes)>;

    fn key(row: &str, q: &str, ts: u64, kind: CellKind, seq: u64) -> CellKey {
        CellKey {
            row: Bytes::copy_from_slice(row.as_bytes()),
            qualifier: Bytes::copy_from_slice(q.as_bytes()),
            timestamp: ts,
            kind,
            seq,
        }
    }

    /// Every visible cell per row, as the read path returns it.
    fn read(cells: &[(CellKey, Bytes)], q: &FamilyQuery) -> Vec<(String, String, u64, Bytes)> {
        let mut sorted: Cells = cells.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|a, b| a.0 == b.0);
        let mut by_row: BTreeMap<Bytes, Cells> = BTreeMap::new();
        for c in sorted {
            by_row.entry(c.0.row.clone()).or_default().push(c);
        }
        let mut out = Vec::new();
        for (_, row_cells) in by_row {
            let mut v = RowVisibility::new(q);
            for (k, val) in row_cells {
                v.push(k, val);
            }
            for c in v.out {
                out.push((
                    String::from_utf8_lossy(&c.row).into_owned(),
                    String::from_utf8_lossy(&c.qualifier).into_owned(),
                    c.timestamp,
                    c.value,
                ));
            }
        }
        out
    }

    fn compact(cells: &[(CellKey, Bytes)], rules: RetainRules) -> (Cells, RetainStats) {
        let mut sorted: Cells = cells.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        sorted.dedup_by(|a, b| a.0 == b.0);
        let mut r = Retainer::new(rules);
        let kept = sorted.into_iter().filter(|(k, _)| r.keep(k)).collect();
        (kept, r.stats())
    }

    fn query(max_versions: u32, oldest_ts: u64, time_range: Option<TimeRange>) -> FamilyQuery {
        FamilyQuery {
            family: Bytes::from_static(b"f"),
            qualifiers: None,
            time_range,
            max_versions,
            oldest_ts,
        }
    }

    fn random_cells(rng: &mut StdRng, n: usize, seq_base: u64) -> Cells {
        let kinds = [
            CellKind::Put,
            CellKind::Put,
            CellKind::Put,
            CellKind::Put,
            CellKind::Delete,
            CellKind::DeleteColumn,
            CellKind::DeleteFamily,
        ];
        (0..n)
            .map(|i| {
                let kind = kinds[rng.random_range(0..kinds.len())];
                let row = ["a", "b", "c"][rng.random_range(0..3)];
                let q = if kind == CellKind::DeleteFamily {
                    ""
                } else {
                    ["", "x", "y"][rng.random_range(0..3)]
                };
                let ts = rng.random_range(0..12);
                let seq = seq_base + i as u64;
                let value = if kind == CellKind::Put {
                    Bytes::from(format!("v{seq}"))
                } else {
                    Bytes::new()
                };
                (key(row, q, ts, kind, seq), value)
            })
            .collect()
    }

    #[test]
    fn major_drops_markers_masked_expired_and_excess_versions() {
        let cells: Cells = vec![
            (key("r", "", 9, CellKind::DeleteFamily, 10), Bytes::new()),
            (key("r", "a", 12, CellKind::Put, 11), Bytes::from("new")),
            (key("r", "a", 11, CellKind::Put, 12), Bytes::from("older")),
            (key("r", "a", 10, CellKind::Put, 13), Bytes::from("excess")),
            (key("r", "a", 8, CellKind::Put, 1), Bytes::from("masked")),
            (key("s", "b", 1, CellKind::Put, 2), Bytes::from("expired")),
            (key("s", "b", 5, CellKind::Put, 3), Bytes::from("old dup")),
            (key("s", "b", 5, CellKind::Put, 4), Bytes::from("new dup")),
        ];
        let (kept, stats) = compact(&cells, RetainRules::new(true, 2, Some(10), 13));
        let values: Vec<&[u8]> = kept.iter().map(|(_, v)| &v[..]).collect();
        assert_eq!(values, vec![&b"new"[..], b"older", b"new dup"]);
        assert_eq!(
            stats,
            RetainStats {
                kept: 3,
                dropped_markers: 1,
                dropped_masked: 1,
                dropped_expired: 1,
                dropped_versions: 1,
                dropped_duplicates: 1,
                kept_invisible: 0,
            }
        );
    }

    #[test]
    fn minor_keeps_markers_and_versions() {
        let cells: Cells = vec![
            (key("r", "a", 5, CellKind::DeleteColumn, 10), Bytes::new()),
            (key("r", "a", 7, CellKind::Put, 3), Bytes::from("v7")),
            (key("r", "a", 6, CellKind::Put, 2), Bytes::from("v6")),
            (key("r", "a", 4, CellKind::Put, 1), Bytes::from("masked")),
        ];
        let (kept, stats) = compact(&cells, RetainRules::new(false, 1, None, 100));
        let kinds: Vec<(u64, CellKind)> = kept.iter().map(|(k, _)| (k.timestamp, k.kind)).collect();
        assert_eq!(
            kinds,
            vec![
                (7, CellKind::Put),
                (6, CellKind::Put),
                (5, CellKind::DeleteColumn)
            ]
        );
        assert_eq!((stats.kept, stats.dropped_masked), (3, 1));
    }

    /// A marker written but not yet visible (seq above the read point) must not take the
    /// put it masks with it: a reader at the read point still sees that put.
    #[test]
    fn cells_above_the_read_point_are_kept_and_mask_nothing() {
        let cells: Cells = vec![
            (key("r", "a", 6, CellKind::DeleteColumn, 3), Bytes::new()),
            (key("r", "a", 5, CellKind::Put, 2), Bytes::from("live")),
            (key("r", "a", 4, CellKind::Put, 1), Bytes::from("excess")),
        ];
        for major in [true, false] {
            let rules = RetainRules::new(major, 1, None, 100).visible_at(2);
            let (kept, stats) = compact(&cells, rules);
            let kept: Vec<(u64, CellKind)> =
                kept.iter().map(|(k, _)| (k.timestamp, k.kind)).collect();
            let mut want = vec![(6, CellKind::DeleteColumn), (5, CellKind::Put)];
            if !major {
                want.push((4, CellKind::Put));
            }
            assert_eq!(kept, want, "major: {major}");
            assert_eq!(stats.kept_invisible, 1);
        }
    }

    /// With writes above the read point (timestamps rising, as the engine's clock gives
    /// them), the output reads like the input at the read point and at every later one.
    #[test]
    fn output_reads_like_input_at_every_later_read_point() {
        let mut rng = StdRng::seed_from_u64(13);
        for round in 0..1000 {
            let n = rng.random_range(0..20);
            let mut cells = random_cells(&mut rng, n, 1);
            let visible = n as u64;
            // Later writes: sequences above `visible`, timestamps above every earlier one.
            let m = rng.random_range(0..8);
            let later = random_cells(&mut rng, m, visible + 1);
            cells.extend(later.into_iter().map(|(mut k, v)| {
                k.timestamp += 20;
                (k, v)
            }));
            let major = rng.random_bool(0.5);
            let max_versions = rng.random_range(1..4);
            let rules = RetainRules::new(major, max_versions, None, 50).visible_at(visible);
            let (kept, _) = compact(&cells, rules);
            let upto = |c: &Cells, r: u64| -> Cells {
                c.iter().filter(|(k, _)| k.seq <= r).cloned().collect()
            };
            let last = cells.iter().map(|(k, _)| k.seq).max().unwrap_or(0);
            for r in visible..=last.max(visible) {
                for v in 1..=max_versions {
                    let q = query(v, 0, None);
                    assert_eq!(
                        read(&upto(&kept, r), &q),
                        read(&upto(&cells, r), &q),
                        "round {round}, major {major}, read point {r}, versions {v}"
                    );
                }
            }
        }
    }

    /// Major output reads exactly like its input for every query without a time range, at
    /// the compaction's clock and any later one, for any max versions up to the family's.
    #[test]
    fn major_output_reads_like_input() {
        let mut rng = StdRng::seed_from_u64(7);
        for round in 0..3000 {
            let n = rng.random_range(0..30);
            let cells = random_cells(&mut rng, n, 1);
            let max_versions = rng.random_range(1..4);
            let ttl = rng.random_bool(0.5).then(|| rng.random_range(0..8));
            let now = 12;
            let (kept, _) = compact(&cells, RetainRules::new(true, max_versions, ttl, now));
            assert!(kept.iter().all(|(k, _)| k.kind == CellKind::Put));
            for later in [now, now + 3] {
                let oldest = ttl.map_or(0, |t| later.saturating_sub(t));
                for v in 1..=max_versions {
                    let q = query(v, oldest, None);
                    assert_eq!(
                        read(&kept, &q),
                        read(&cells, &q),
                        "round {round}, versions {v}, now {later}, cells {cells:?}"
                    );
                }
            }
        }
    }

    /// A minor compaction of some files, read together with the files it left out, reads
    /// exactly like all the original files — for every query, time ranges included. This is
    /// the "never resurrects" property: markers masking cells outside the set survive.
    #[test]
    fn minor_output_with_other_files_reads_like_input() {
        let mut rng = StdRng::seed_from_u64(11);
        for round in 0..3000 {
            let files: Vec<Cells> = (0..4)
                .map(|i| {
                    let n = rng.random_range(0..10);
                    random_cells(&mut rng, n, i * 100 + 1)
                })
                .collect();
            let first = rng.random_range(0..4);
            let last = rng.random_range(first..4);
            let chosen: Cells = files[first..=last].concat();
            let others: Cells = files[..first]
                .iter()
                .chain(&files[last + 1..])
                .flatten()
                .cloned()
                .collect();
            let ttl = rng.random_bool(0.5).then(|| rng.random_range(0..8));
            let now = 12;
            let (kept, _) = compact(&chosen, RetainRules::new(false, 1, ttl, now));
            let after: Cells = kept.into_iter().chain(others.iter().cloned()).collect();
            let before: Cells = files.concat();
            for later in [now, now + 2] {
                let oldest = ttl.map_or(0, |t| later.saturating_sub(t));
                for v in 1..=3 {
                    for range in [None, Some(TimeRange { min: 3, max: 8 })] {
                        let q = query(v, oldest, range);
                        assert_eq!(
                            read(&after, &q),
                            read(&before, &q),
                            "round {round}: files {first}..={last}, versions {v}, now {later}"
                        );
                    }
                }
            }
        }
    }
}
