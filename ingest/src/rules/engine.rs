//! The rule engine: event-time tumbling windows, firings, lateness and safe offsets.
//!
//! Semantics (SPEC §4, Esper `time_batch` in event time): every rule keeps tumbling windows
//! `[k·w, (k+1)·w)` of event time. An event joins the window of its timestamp, in the group
//! of its `group_by` value. A window fires when the rule's watermark (the [`Watermarks`]
//! base minus the rule's allowed lateness) reaches its end, or when every owned partition
//! is idle; it yields one [`Firing`] per group that had events in the window and whose
//! `having` holds. An event whose window has already fired is *late*: it is left out and
//! reported as [`Admission::Late`].
//!
//! Offsets: an offset of a partition is safe to commit when no open window holds an event
//! of that partition at or after it ([`Engine::safe_offset`]). A [`Engine::checkpoint`]
//! string stored with the commit lets a restarted worker skip replayed events of windows
//! that fired before ([`Admission::Replayed`]), so a replay never fires a partial window.
//!
//! Reload ([`Engine::set_rules`]): windows already open keep the rule they opened with;
//! later windows use the new rule. Pure and clock-injected: no I/O, no Kafka, no threads.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{GroupField, Rule, RuleSet, TemplateContext};
use super::expr::{Acc, Numbers};
use super::window::{Base, Watermarks};

/// Engine tuning.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Processing time after which a partition without events is idle (default 10 s).
    /// Shorter flushes quiet streams sooner; too short makes slow partitions' events late.
    pub idle_timeout: Duration,
    /// Bound on open windows per rule (default 1024). At the bound the oldest window is
    /// fired early (counted in [`Engine::forced_firings`]) rather than growing memory.
    pub max_open_windows: usize,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            idle_timeout: Duration::from_secs(10),
            max_open_windows: 1024,
        }
    }
}

/// One event as the engine sees it.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    /// Kafka partition.
    pub partition: i32,
    /// Kafka offset.
    pub offset: i64,
    /// Event time in milliseconds (the log's local time read as UTC).
    pub time_ms: i64,
    /// Car number.
    pub car_number: &'a str,
    /// Driving area code.
    pub area_code: &'a str,
    /// Turn signal.
    pub turn_signal: &'a str,
    /// Numeric fields, indexed like [`super::expr::NumField::ALL`].
    pub numbers: Numbers,
}

impl Sample<'_> {
    fn group(&self, f: GroupField) -> &str {
        match f {
            GroupField::CarNumber => self.car_number,
            GroupField::AreaCode => self.area_code,
            GroupField::TurnSignal => self.turn_signal,
        }
    }
}

/// What happened to an observed event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Counted in at least one open window (or there are no rules).
    Accepted,
    /// Its window had already fired for these rules: left out, to be dead-lettered `late`.
    Late {
        /// The rules for which it was late.
        rules: Vec<String>,
    },
    /// A replay of an event whose window fired before the last checkpoint: skipped.
    Replayed,
}

/// One group's result of a fired window whose `having` held.
#[derive(Debug, Clone, PartialEq)]
pub struct Firing {
    /// The rule's name.
    pub rule: String,
    /// The group's value (e.g. the car number).
    pub group: String,
    /// Window start (ms, inclusive).
    pub window_start_ms: i64,
    /// Window end (ms, exclusive).
    pub window_end_ms: i64,
    /// Events of the group in the window.
    pub count: u64,
    /// Each aggregate of `having` with its value, e.g. `("avg(speed)", 87.5)`.
    pub values: Vec<(String, f64)>,
    /// Rendered `set_key`.
    pub set_key: String,
    /// Rendered `member`.
    pub member: String,
    /// TTL to set on `set_key`.
    pub ttl: Duration,
}

#[derive(Debug, Default)]
struct PartWindow {
    min_offset: i64,
    groups: BTreeMap<String, Acc>,
}

#[derive(Debug)]
struct OpenWindow {
    rule: Arc<Rule>,
    parts: BTreeMap<i32, PartWindow>,
}

#[derive(Debug)]
struct RuleState {
    /// `None` once the rule was removed by a reload (its open windows still fire).
    current: Option<Arc<Rule>>,
    last: Arc<Rule>,
    /// Windows ending at or before this have fired (or been passed): events in them are late.
    fired_up_to: Option<i64>,
    /// Open windows keyed by (end, start).
    windows: BTreeMap<(i64, i64), OpenWindow>,
}

/// The rule engine of one worker.
#[derive(Debug)]
pub struct Engine {
    opts: EngineOptions,
    clocks: Watermarks,
    rules: Vec<(String, RuleState)>,
    /// Per partition and rule: windows ending at or before this fired before the restart.
    floors: HashMap<i32, HashMap<String, i64>>,
    late: u64,
    replayed: u64,
    forced: u64,
}

impl Engine {
    /// An engine running `rules`.
    pub fn new(rules: &RuleSet, opts: EngineOptions) -> Engine {
        let mut e = Engine {
            clocks: Watermarks::new(opts.idle_timeout),
            opts,
            rules: Vec::new(),
            floors: HashMap::new(),
            late: 0,
            replayed: 0,
            forced: 0,
        };
        e.set_rules(rules);
        e
    }

    /// Replaces the rules (hot reload). Open windows keep the rule they opened with.
    pub fn set_rules(&mut self, set: &RuleSet) {
        for (_, st) in &mut self.rules {
            st.current = None;
        }
        for r in &set.rules {
            let rule = Arc::new(r.clone());
            match self.rules.iter_mut().find(|(n, _)| *n == r.name) {
                Some((_, st)) => {
                    st.current = Some(rule.clone());
                    st.last = rule;
                }
                None => self.rules.push((
                    r.name.clone(),
                    RuleState {
                        current: Some(rule.clone()),
                        last: rule,
                        fired_up_to: None,
                        windows: BTreeMap::new(),
                    },
                )),
            }
        }
        self.rules
            .retain(|(_, st)| st.current.is_some() || !st.windows.is_empty());
    }

    /// Takes ownership of `partition` (after a rebalance).
    pub fn assign(&mut self, partition: i32, now: Instant) {
        self.clocks.assign(partition, now);
    }

    /// Restores a partition's checkpoint (from [`Engine::checkpoint`], stored with its
    /// committed offset): replayed events of windows that fired before are skipped.
    /// Unknown rule names and malformed entries are ignored (they only cost a re-fire).
    pub fn restore(&mut self, partition: i32, checkpoint: &str) {
        let floors = self.floors.entry(partition).or_default();
        for item in checkpoint.split(';').filter(|s| !s.is_empty()) {
            if let Some((name, v)) = item.split_once('=')
                && let Ok(ms) = v.parse::<i64>()
            {
                floors.insert(name.to_string(), ms);
            }
        }
    }

    /// The checkpoint to store with committed offsets: each rule's fired-up-to time.
    pub fn checkpoint(&self) -> String {
        let mut out = String::new();
        for (name, st) in &self.rules {
            if let Some(t) = st.fired_up_to {
                if !out.is_empty() {
                    out.push(';');
                }
                out.push_str(&format!("{name}={t}"));
            }
        }
        out
    }

    /// Gives up `partition` (revoked in a rebalance): it leaves the watermark and its
    /// events leave the open windows (the next owner replays them from the commit).
    pub fn revoke(&mut self, partition: i32) {
        self.clocks.revoke(partition);
        self.floors.remove(&partition);
        for (_, st) in &mut self.rules {
            for w in st.windows.values_mut() {
                w.parts.remove(&partition);
            }
            st.windows.retain(|_, w| !w.parts.is_empty());
        }
    }

    /// The partitions currently owned.
    pub fn partitions(&self) -> Vec<i32> {
        self.clocks.partitions().collect()
    }

    /// Feeds one event at processing time `now`.
    pub fn observe(&mut self, s: &Sample<'_>, now: Instant) -> Admission {
        self.clocks.observe(s.partition, s.offset, s.time_ms, now);
        let floors = self.floors.get(&s.partition);
        let mut late = Vec::new();
        let mut replayed = 0usize;
        let mut active = 0usize;
        for (name, st) in &mut self.rules {
            let Some(rule) = &st.current else { continue };
            active += 1;
            let start = rule.window_start(s.time_ms);
            let end = start + rule.window_ms;
            if floors.and_then(|f| f.get(name)).is_some_and(|f| end <= *f) {
                replayed += 1;
                continue;
            }
            if st.fired_up_to.is_some_and(|f| end <= f) {
                late.push(name.clone());
                continue;
            }
            let w = st
                .windows
                .entry((end, start))
                .or_insert_with(|| OpenWindow {
                    rule: rule.clone(),
                    parts: BTreeMap::new(),
                });
            let group = s.group(w.rule.group_by).to_string();
            let part = w.parts.entry(s.partition).or_insert_with(|| PartWindow {
                min_offset: s.offset,
                groups: BTreeMap::new(),
            });
            part.min_offset = part.min_offset.min(s.offset);
            part.groups.entry(group).or_default().add(&s.numbers);
        }
        if !late.is_empty() {
            self.late += 1;
            Admission::Late { rules: late }
        } else if active > 0 && replayed == active {
            self.replayed += 1;
            Admission::Replayed
        } else {
            Admission::Accepted
        }
    }

    /// Fires every window the watermark (or idleness, or the open-window bound) has
    /// passed at processing time `now`, in order of window end, rule and group.
    pub fn advance(&mut self, now: Instant) -> Vec<Firing> {
        let base = self.clocks.base(now);
        let mut out = Vec::new();
        let max_open = self.opts.max_open_windows.max(1);
        for (name, st) in &mut self.rules {
            let lateness = st.current.as_ref().unwrap_or(&st.last).allowed_lateness_ms;
            while let Some((&(end, start), w)) = st.windows.first_key_value() {
                let due = match base {
                    Base::AllIdle => true,
                    Base::Min(m) => end <= m.saturating_sub(w.rule.allowed_lateness_ms),
                    Base::Unknown => false,
                };
                let forced = !due && st.windows.len() > max_open;
                if !due && !forced {
                    break;
                }
                if forced {
                    self.forced += 1;
                }
                if let Some(w) = st.windows.remove(&(end, start)) {
                    fire(name, start, end, &w, &mut out);
                }
                st.fired_up_to = Some(st.fired_up_to.map_or(end, |f| f.max(end)));
            }
            if let Base::Min(m) = base {
                let limit = m.saturating_sub(lateness);
                st.fired_up_to = Some(st.fired_up_to.map_or(limit, |f| f.max(limit)));
            }
        }
        self.rules
            .retain(|(_, st)| st.current.is_some() || !st.windows.is_empty());
        out.sort_by(|a, b| {
            (a.window_end_ms, &a.rule, &a.group).cmp(&(b.window_end_ms, &b.rule, &b.group))
        });
        out
    }

    /// The offset of `partition` up to which (exclusive) a commit is safe as far as the
    /// rules are concerned: the lowest offset held by an open window, else one past the
    /// highest offset observed. `None` if nothing was observed since assignment.
    pub fn safe_offset(&self, partition: i32) -> Option<i64> {
        self.held_offset(partition)
            .or_else(|| self.clocks.next_offset(partition))
    }

    /// The lowest offset of `partition` held by an open window, if any: no commit may
    /// reach past it.
    pub fn held_offset(&self, partition: i32) -> Option<i64> {
        self.rules
            .iter()
            .flat_map(|(_, st)| st.windows.values())
            .filter_map(|w| w.parts.get(&partition).map(|p| p.min_offset))
            .min()
    }

    /// Number of windows currently open, over all rules.
    pub fn open_windows(&self) -> usize {
        self.rules.iter().map(|(_, st)| st.windows.len()).sum()
    }

    /// Events reported late so far.
    pub fn late_events(&self) -> u64 {
        self.late
    }

    /// Replayed events skipped so far.
    pub fn replayed_events(&self) -> u64 {
        self.replayed
    }

    /// Windows fired early because of [`EngineOptions::max_open_windows`].
    pub fn forced_firings(&self) -> u64 {
        self.forced
    }
}

fn fire(name: &str, start: i64, end: i64, w: &OpenWindow, out: &mut Vec<Firing>) {
    let mut groups: BTreeMap<&str, Acc> = BTreeMap::new();
    for part in w.parts.values() {
        for (g, acc) in &part.groups {
            groups.entry(g.as_str()).or_default().merge(acc);
        }
    }
    for (group, acc) in groups {
        if !w.rule.having.holds(&acc) {
            continue;
        }
        let ctx = TemplateContext {
            rule: name,
            group,
            window_start_ms: start,
            window_end_ms: end,
        };
        out.push(Firing {
            rule: name.to_string(),
            group: group.to_string(),
            window_start_ms: start,
            window_end_ms: end,
            count: acc.count(),
            values: w
                .rule
                .having
                .aggregates()
                .iter()
                .map(|a| (a.to_string(), acc.value(a)))
                .collect(),
            set_key: w.rule.set_key.render(&ctx),
            member: w.rule.member.render(&ctx),
            ttl: w.rule.ttl,
        });
    }
}
