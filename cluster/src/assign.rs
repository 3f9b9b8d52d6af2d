//! The master's decisions, as a pure function of one meta view and the live members: what
//! each region should go through next. The master loop (`master`) writes them.

use std::collections::{BTreeMap, BTreeSet};

use crate::meta::{MetaView, TableState};
use crate::region_state::{Event, RegionState};

/// One decided step: apply `event` to region `id` of `table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Table.
    pub table: String,
    /// Region id.
    pub id: u64,
    /// What to apply.
    pub event: Event,
}

/// What the master does next, given the members alive now:
/// - a region on a member that is gone is `Lost` (it goes offline; its next owner fences
///   and replays its WAL);
/// - an offline region of an enabled table is assigned to the target of its move if that
///   member is alive, else to the member with the fewest regions (ties: the smallest id),
///   counting what this plan assigns;
/// - an open region of a table being dropped is closed.
pub fn plan(view: &MetaView, live: &BTreeSet<String>) -> Vec<Step> {
    let mut load: BTreeMap<&str, usize> = live.iter().map(|s| (s.as_str(), 0)).collect();
    for regions in view.regions.values() {
        for r in regions.values() {
            if let Some(s) = &r.value.server
                && let Some(n) = load.get_mut(s.as_str())
            {
                *n += 1;
            }
        }
    }
    let mut steps = Vec::new();
    for (table, regions) in &view.regions {
        let state = view.tables.get(table).map(|t| t.value.state);
        for (id, r) in regions {
            let r = &r.value;
            let step = |event| Step {
                table: table.clone(),
                id: *id,
                event,
            };
            match (&r.server, r.state) {
                (Some(s), RegionState::Opening | RegionState::Open | RegionState::Closing)
                    if !live.contains(s) =>
                {
                    steps.push(step(Event::Lost(s.clone())));
                }
                (None, RegionState::Offline) if state == Some(TableState::Enabled) => {
                    let moved_to = r
                        .target
                        .as_deref()
                        .and_then(|t| load.get_key_value(t).map(|(k, _)| *k));
                    let least = load
                        .iter()
                        .min_by_key(|(id, n)| (**n, **id))
                        .map(|(k, _)| *k);
                    let Some(target) = moved_to.or(least) else {
                        continue;
                    };
                    if let Some(n) = load.get_mut(target) {
                        *n += 1;
                    }
                    steps.push(step(Event::Assign(target.to_owned())));
                }
                (Some(s), RegionState::Open) if state == Some(TableState::Dropping) => {
                    steps.push(step(Event::Close(s.clone(), r.epoch)));
                }
                _ => {}
            }
        }
    }
    steps
}

/// Most regions the balancer moves at once; the next moves wait until these have opened.
pub const MAX_MOVES_AT_ONCE: usize = 4;

/// Whether any region is on its way somewhere (opening, closing, or offline in an enabled
/// table): the balancer waits for these, as HBase's does for regions in transition.
pub fn in_transition(view: &MetaView) -> bool {
    view.regions.iter().any(|(table, regions)| {
        let enabled = view
            .tables
            .get(table)
            .is_some_and(|t| t.value.state == TableState::Enabled);
        regions.values().any(|r| match r.value.state {
            RegionState::Opening | RegionState::Closing => true,
            RegionState::Offline => enabled,
            RegionState::Open | RegionState::Split => false,
        })
    })
}

/// Moves that even out the open regions per live member, at most `max_moves`, and none
/// while a region is in transition. While the most loaded member holds more than one
/// region above the least loaded, one of its regions moves to the least loaded: a region
/// of the table the two are most uneven in (so each table spreads too), the smallest id
/// first. Ties between members go to the smallest id, so the plan is deterministic.
pub fn balance(view: &MetaView, live: &BTreeSet<String>, max_moves: usize) -> Vec<Step> {
    if live.len() < 2 || in_transition(view) {
        return Vec::new();
    }
    // Open regions of enabled tables on live members: (member -> [(table, id, epoch)]).
    let mut held: BTreeMap<&str, Vec<(&str, u64, u64)>> =
        live.iter().map(|s| (s.as_str(), Vec::new())).collect();
    for (table, regions) in &view.regions {
        if view.tables.get(table).map(|t| t.value.state) != Some(TableState::Enabled) {
            continue;
        }
        for (id, r) in regions {
            if r.value.state == RegionState::Open
                && let Some(s) = &r.value.server
                && let Some(list) = held.get_mut(s.as_str())
            {
                list.push((table.as_str(), *id, r.value.epoch));
            }
        }
    }
    let mut steps = Vec::new();
    while steps.len() < max_moves {
        let Some((&most, _)) = held
            .iter()
            .max_by_key(|(id, l)| (l.len(), std::cmp::Reverse(**id)))
        else {
            break;
        };
        let Some((&least, _)) = held.iter().min_by_key(|(id, l)| (l.len(), **id)) else {
            break;
        };
        let (hi, lo) = (held[most].len(), held[least].len());
        if hi <= lo + 1 {
            break;
        }
        let per_table =
            |member: &str, table: &str| held[member].iter().filter(|(t, _, _)| *t == table).count();
        let Some(pick) = held[most]
            .iter()
            .enumerate()
            .max_by_key(|(_, (t, id, _))| {
                let skew = per_table(most, t) as i64 - per_table(least, t) as i64;
                (skew, std::cmp::Reverse(*id))
            })
            .map(|(i, _)| i)
        else {
            break;
        };
        let Some(list) = held.get_mut(most) else {
            break;
        };
        let (table, id, epoch) = list.remove(pick);
        if let Some(list) = held.get_mut(least) {
            list.push((table, id, epoch));
        }
        steps.push(Step {
            table: table.to_owned(),
            id,
            event: Event::Move(most.to_owned(), epoch, least.to_owned()),
        });
    }
    steps
}

/// The byte rule's default threshold: it never acts on a difference smaller than this
/// (small regions move for nothing). `[cluster] balance_min_mb` sets it.
pub const DEFAULT_BALANCE_MIN_BYTES: u64 = 256 << 20;

/// Balance by bytes where counts allow it: once region counts differ by at most one and
/// nothing is in transition, if the member with the most bytes holds more than twice (and
/// `min_gap` more than) the member with the fewest, and holds more regions than
/// it, one of its regions moves there — the one whose size is closest to half the gap and
/// smaller than the gap, so the spread always shrinks and the counts stay within one. One
/// move per call; `sizes` are the regions' bytes on the storage root (missing: 0).
pub fn balance_bytes(
    view: &MetaView,
    live: &BTreeSet<String>,
    sizes: &BTreeMap<(String, u64), u64>,
    min_gap: u64,
) -> Option<Step> {
    if live.len() < 2 || in_transition(view) {
        return None;
    }
    // Per member: its bytes, and its regions as (table, id, epoch, bytes).
    type Held<'a> = (u64, Vec<(&'a str, u64, u64, u64)>);
    let mut held: BTreeMap<&str, Held<'_>> =
        live.iter().map(|s| (s.as_str(), (0, Vec::new()))).collect();
    for (table, regions) in &view.regions {
        if view.tables.get(table).map(|t| t.value.state) != Some(TableState::Enabled) {
            continue;
        }
        for (id, r) in regions {
            if r.value.state == RegionState::Open
                && let Some(s) = &r.value.server
                && let Some(h) = held.get_mut(s.as_str())
            {
                let size = sizes.get(&(table.clone(), *id)).copied().unwrap_or(0);
                h.0 += size;
                h.1.push((table.as_str(), *id, r.value.epoch, size));
            }
        }
    }
    let counts: Vec<usize> = held.values().map(|h| h.1.len()).collect();
    if counts.iter().max()? - counts.iter().min()? > 1 {
        return None;
    }
    let (&heavy, (hb, hr)) = held
        .iter()
        .max_by_key(|(id, h)| (h.0, std::cmp::Reverse(**id)))?;
    let (&light, (lb, lr)) = held.iter().min_by_key(|(id, h)| (h.0, **id))?;
    let gap = hb.checked_sub(*lb)?;
    if heavy == light || gap < min_gap || *hb <= lb.saturating_mul(2) || hr.len() <= lr.len() {
        return None;
    }
    let (table, id, epoch, _) = hr
        .iter()
        .filter(|(_, _, _, size)| *size > 0 && *size < gap)
        .min_by_key(|(_, id, _, size)| (size.abs_diff(gap / 2), *id))?;
    Some(Step {
        table: (*table).to_owned(),
        id: *id,
        event: Event::Move(heavy.to_owned(), *epoch, light.to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{TableMeta, Versioned};
    use crate::region_state::RegionMeta;

    fn view(regions: &[(u64, RegionState, Option<&str>)], state: TableState) -> MetaView {
        let mut v = MetaView {
            next_region_id: 100,
            ..MetaView::default()
        };
        v.tables.insert(
            "t".into(),
            Versioned {
                value: TableMeta {
                    schema: serde_json::Value::Null,
                    state,
                },
                mod_revision: 1,
            },
        );
        for (id, st, server) in regions {
            let mut r = RegionMeta::new(b"", b"");
            r.state = *st;
            r.server = server.map(str::to_owned);
            r.epoch = 3;
            v.regions.entry("t".into()).or_default().insert(
                *id,
                Versioned {
                    value: r,
                    mod_revision: 1,
                },
            );
        }
        v
    }

    fn live(ids: &[&str]) -> BTreeSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn offline_regions_spread_over_the_least_loaded_members() {
        use RegionState::*;
        let v = view(
            &[
                (1, Open, Some("a")),
                (2, Open, Some("a")),
                (3, Offline, None),
                (4, Offline, None),
                (5, Offline, None),
                (6, Offline, None),
            ],
            TableState::Enabled,
        );
        let steps = plan(&v, &live(&["a", "b", "c"]));
        let targets: Vec<_> = steps
            .iter()
            .map(|s| match &s.event {
                Event::Assign(t) => t.as_str(),
                e => panic!("{e:?}"),
            })
            .collect();
        assert_eq!(targets, ["b", "c", "b", "c"]);
        assert!(
            plan(&v, &live(&[]))
                .iter()
                .all(|s| matches!(s.event, Event::Lost(_))),
            "no member: nothing assigned, a's regions lost"
        );
    }

    #[test]
    fn regions_of_a_gone_member_are_lost_and_a_dropped_table_closes() {
        use RegionState::*;
        let v = view(
            &[
                (1, Open, Some("dead")),
                (2, Opening, Some("dead")),
                (3, Open, Some("a")),
            ],
            TableState::Enabled,
        );
        let steps = plan(&v, &live(&["a"]));
        assert_eq!(
            steps
                .iter()
                .map(|s| (s.id, s.event.clone()))
                .collect::<Vec<_>>(),
            vec![
                (1, Event::Lost("dead".into())),
                (2, Event::Lost("dead".into()))
            ]
        );
        let v = view(
            &[(1, Open, Some("a")), (2, Offline, None)],
            TableState::Dropping,
        );
        let steps = plan(&v, &live(&["a"]));
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].event, Event::Close("a".into(), 3));
    }

    #[test]
    fn balance_evens_out_counts_and_tables_and_waits_for_transitions() {
        use RegionState::*;
        let mut v = view(
            &[
                (1, Open, Some("a")),
                (2, Open, Some("a")),
                (3, Open, Some("a")),
                (4, Open, Some("b")),
                (5, Open, Some("b")),
                (6, Open, Some("b")),
            ],
            TableState::Enabled,
        );
        // A third member joined: one region of each moves to it, no more.
        let steps = balance(&v, &live(&["a", "b", "c"]), MAX_MOVES_AT_ONCE);
        assert_eq!(
            steps
                .iter()
                .map(|s| (s.id, s.event.clone()))
                .collect::<Vec<_>>(),
            vec![
                (1, Event::Move("a".into(), 3, "c".into())),
                (4, Event::Move("b".into(), 3, "c".into())),
            ]
        );
        assert!(
            balance(&v, &live(&["a", "b"]), 4).is_empty(),
            "already even"
        );
        assert_eq!(balance(&v, &live(&["a", "b", "c"]), 1).len(), 1, "bounded");
        // Nothing moves while a region is in transition.
        v.regions
            .get_mut("t")
            .unwrap()
            .get_mut(&6)
            .unwrap()
            .value
            .state = Opening;
        assert!(balance(&v, &live(&["a", "b", "c"]), 4).is_empty());
    }

    #[test]
    fn a_moved_region_opens_on_its_target_if_alive() {
        use RegionState::*;
        let mut v = view(
            &[(1, Open, Some("a")), (2, Offline, None)],
            TableState::Enabled,
        );
        v.regions
            .get_mut("t")
            .unwrap()
            .get_mut(&2)
            .unwrap()
            .value
            .target = Some("a".into());
        let steps = plan(&v, &live(&["a", "b"]));
        assert_eq!(
            steps[0].event,
            Event::Assign("a".into()),
            "target, not least loaded"
        );
        let steps = plan(&v, &live(&["b"]));
        let two = steps.iter().find(|s| s.id == 2).unwrap();
        assert_eq!(two.event, Event::Assign("b".into()), "target gone");
    }

    #[test]
    fn bytes_move_only_where_counts_allow_and_the_spread_shrinks() {
        use RegionState::*;
        let v = view(
            &[
                (1, Open, Some("a")),
                (2, Open, Some("a")),
                (3, Open, Some("b")),
            ],
            TableState::Enabled,
        );
        const M: u64 = 1 << 20;
        let sizes = |a1, a2, b3| -> BTreeMap<(String, u64), u64> {
            [(1, a1), (2, a2), (3, b3)]
                .into_iter()
                .map(|(id, s)| (("t".to_owned(), id), s))
                .collect()
        };
        // a holds 2 GiB + 300 MiB, b 100 MiB: the region nearest half the gap moves.
        let step = balance_bytes(
            &v,
            &live(&["a", "b"]),
            &sizes(2048 * M, 300 * M, 100 * M),
            DEFAULT_BALANCE_MIN_BYTES,
        )
        .expect("a move");
        assert_eq!(step.id, 2);
        assert_eq!(step.event, Event::Move("a".into(), 3, "b".into()));
        // Close enough, or a gap too small to matter: nothing.
        assert!(
            balance_bytes(
                &v,
                &live(&["a", "b"]),
                &sizes(100 * M, 90 * M, 150 * M),
                DEFAULT_BALANCE_MIN_BYTES
            )
            .is_none()
        );
        assert!(
            balance_bytes(
                &v,
                &live(&["a", "b"]),
                &sizes(100 * M, 100 * M, 1),
                DEFAULT_BALANCE_MIN_BYTES
            )
            .is_none()
        );
        // The heavy member holds no more regions than the light one: counts win.
        assert!(
            balance_bytes(
                &v,
                &live(&["a", "b"]),
                &sizes(1, 1, 4096 * M),
                DEFAULT_BALANCE_MIN_BYTES
            )
            .is_none()
        );
        // No region smaller than the gap: moving any would not shrink the spread.
        assert!(
            balance_bytes(
                &v,
                &live(&["a", "b"]),
                &sizes(4096 * M, 0, 0),
                DEFAULT_BALANCE_MIN_BYTES
            )
            .is_none()
        );
        // The threshold is a setting: a 3.25 MiB gap moves nothing by default, and moves
        // the region nearest half of it under a 1 MiB threshold.
        let small = sizes(3 * M, M / 2, M / 4);
        assert!(balance_bytes(&v, &live(&["a", "b"]), &small, DEFAULT_BALANCE_MIN_BYTES).is_none());
        let step = balance_bytes(&v, &live(&["a", "b"]), &small, M).expect("a move");
        assert_eq!(step.id, 2);
    }
}
