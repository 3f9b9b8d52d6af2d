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
/// - an offline region of an enabled table is assigned to the member with the fewest
///   regions (ties: the smallest id), counting what this plan assigns;
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
                    let Some((&target, _)) = load.iter().min_by_key(|(id, n)| (**n, **id)) else {
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
}
