//! How events and firings become store rows: row keys, cell timestamps, column names.
//!
//! **`driving`** (family `cf1`): row key `<car>#<yyyyMMddHHmmss>#<crc>` where `<crc>` is
//! the CRC-32 (IEEE, `crc32fast`) of the original CSV line in 8 lower-case
//! hex digits, e.g. `V0042#20261122143015#1c291ca3`. One car's history is one contiguous
//! prefix (`V0042#`), ordered by time. The suffix keeps two different events of one car in
//! the same second apart, while the same line delivered twice (at-least-once Kafka, a
//! replay, a collector resend) maps to the same row. The cell timestamp is the event time
//! in milliseconds, so a replayed event overwrites itself with identical cells.
//!
//! **`car_status`** (family `cf1`): the rows of `speedlayer-events`' `status_row` (the
//! bulk loader's too, so a status line is the same row whichever path stored it): key
//! `<car>#<yyyyMMddHHmmss>#<crc>`, one column per SPEC §1 status field.
//!
//! **`overspeed`** (family `cf1`): row key `<group>#<window start yyyyMMddHHmmss>#<rule>`,
//! cell timestamp = window end (ms); columns `rule`, `car`, `window_start`, `window_end`,
//! `count` and one per aggregate (`avg(speed)` → `avg_speed`).
//!
//! **`ingest_checkpoints`** (family `cf1`): row key `<group>#<topic>#<partition>`, columns
//! `checkpoint` (the rule engine's checkpoint) and `offset` (the commit it belongs to).
//!
//! This module is pure formatting; it does not talk to the store.

use crate::event::DrivingEvent;
use crate::rules::Firing;
use crate::rules::config::format_event_time;

/// The table every driving event is stored in.
pub const DRIVING_TABLE: &str = "driving";
/// The table of rule firings.
pub const OVERSPEED_TABLE: &str = "overspeed";
/// The worker's own bookkeeping: per group, topic and partition, the rule checkpoint of
/// the last commit (brokers such as tansu do not keep commit metadata).
pub const CHECKPOINT_TABLE: &str = "ingest_checkpoints";
/// The one column family of all tables.
pub const FAMILY: &str = "cf1";

/// One row to put: key, cell timestamp and `(qualifier, value)` cells in family [`FAMILY`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Row key.
    pub key: Vec<u8>,
    /// Cell timestamp (ms).
    pub timestamp_ms: i64,
    /// Cells.
    pub cells: Vec<(&'static str, Vec<u8>)>,
}

impl Row {
    /// Approximate encoded size, for batching by bytes.
    pub fn size(&self) -> usize {
        self.key.len()
            + 8
            + self
                .cells
                .iter()
                .map(|(q, v)| q.len() + v.len())
                .sum::<usize>()
    }
}

/// Milliseconds since the Unix epoch by the wall clock (0 if the clock is before 1970).
pub fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The checkpoint row key of a partition: `<group>#<topic>#<partition>`.
pub fn checkpoint_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    format!("{group}#{topic}#{partition}").into_bytes()
}

/// The checkpoint row written just before committing `offset` (cell timestamp: wall clock,
/// so the newest write wins).
pub fn checkpoint_row(
    group: &str,
    topic: &str,
    partition: i32,
    offset: i64,
    checkpoint: &str,
) -> Row {
    Row {
        key: checkpoint_key(group, topic, partition),
        timestamp_ms: wall_clock_ms(),
        cells: vec![
            ("checkpoint", checkpoint.as_bytes().to_vec()),
            ("offset", offset.to_string().into_bytes()),
        ],
    }
}

/// The `driving` row key of an event given its original line.
pub fn driving_key(ev: &DrivingEvent, line: &[u8]) -> Vec<u8> {
    format!(
        "{}#{}#{:08x}",
        ev.car_number,
        ev.event_time,
        crc32fast::hash(line)
    )
    .into_bytes()
}

/// The `driving` row of an event (the 8 SPEC §1 columns).
pub fn driving_row(ev: &DrivingEvent, line: &[u8]) -> Row {
    Row {
        key: driving_key(ev, line),
        timestamp_ms: ev.event_time_ms,
        cells: vec![
            ("event_time", ev.event_time.clone().into_bytes()),
            ("car_number", ev.car_number.clone().into_bytes()),
            ("accelerator", ev.accelerator.to_string().into_bytes()),
            ("brake", ev.brake.to_string().into_bytes()),
            ("steering_angle", ev.steering_angle.to_string().into_bytes()),
            (
                "turn_signal",
                ev.turn_signal.as_char().to_string().into_bytes(),
            ),
            ("speed", ev.speed.to_string().into_bytes()),
            ("area", ev.area.clone().into_bytes()),
        ],
    }
}

/// The `car_status` row of a status event given its original line.
pub fn car_status_row(ev: &crate::event::CarStatusEvent, line: &[u8]) -> Row {
    let r = speedlayer_events::status_row::status_row(ev, line);
    Row {
        key: r.key,
        timestamp_ms: r.timestamp_ms,
        cells: speedlayer_events::status_row::STATUS_COLUMNS
            .into_iter()
            .zip(r.values)
            .collect(),
    }
}

/// Column name of an aggregate: `avg(speed)` → `avg_speed`, `count(*)` → `count_all`.
fn aggregate_column(label: &str) -> &'static str {
    match label {
        "avg(speed)" => "avg_speed",
        "min(speed)" => "min_speed",
        "max(speed)" => "max_speed",
        "sum(speed)" => "sum_speed",
        "count(*)" | "count(speed)" => "count_all",
        _ => "aggregate_other",
    }
}

/// The `overspeed` row of a firing.
pub fn overspeed_row(f: &Firing) -> Row {
    let start = format_event_time(f.window_start_ms, "%Y%m%d%H%M%S");
    let end = format_event_time(f.window_end_ms, "%Y%m%d%H%M%S");
    let mut cells = vec![
        ("rule", f.rule.clone().into_bytes()),
        ("car", f.group.clone().into_bytes()),
        ("window_start", start.clone().into_bytes()),
        ("window_end", end.into_bytes()),
        ("count", f.count.to_string().into_bytes()),
    ];
    let mut other = Vec::new();
    for (label, v) in &f.values {
        match aggregate_column(label) {
            "aggregate_other" => other.push(format!("{label}={v}")),
            col => cells.push((col, format!("{v}").into_bytes())),
        }
    }
    if !other.is_empty() {
        cells.push(("aggregates", other.join(";").into_bytes()));
    }
    Row {
        key: format!("{}#{}#{}", f.group, start, f.rule).into_bytes(),
        timestamp_ms: f.window_end_ms,
        cells,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_driving;

    #[test]
    fn driving_keys_are_car_prefixed_time_ordered_and_replay_stable() {
        let line = "20261122143015,V0042,3,0,-12,N,87,A07";
        let ev = parse_driving(line).unwrap();
        let row = driving_row(&ev, line.as_bytes());
        let key = String::from_utf8(row.key.clone()).unwrap();
        assert!(key.starts_with("V0042#20261122143015#"), "{key}");
        assert_eq!(key.len(), "V0042#20261122143015#".len() + 8);
        assert_eq!(row.timestamp_ms, ev.event_time_ms);
        assert_eq!(
            driving_row(&ev, line.as_bytes()),
            row,
            "same line, same row"
        );
        let other = "20261122143015,V0042,3,0,-12,N,88,A07";
        let ev2 = parse_driving(other).unwrap();
        assert_ne!(
            driving_key(&ev2, other.as_bytes()),
            row.key,
            "same second, other event"
        );
        assert!(row.cells.contains(&("speed", b"87".to_vec())));
    }

    #[test]
    fn overspeed_rows_carry_the_window_and_aggregates() {
        let f = Firing {
            rule: "overspeed".into(),
            group: "V0042".into(),
            window_start_ms: 1_795_357_800_000,
            window_end_ms: 1_795_357_830_000,
            count: 2,
            values: vec![("avg(speed)".into(), 82.5)],
            set_key: "20261122".into(),
            member: "V0042".into(),
            ttl: std::time::Duration::from_secs(604_800),
        };
        let row = overspeed_row(&f);
        assert_eq!(row.key, b"V0042#20261122143000#overspeed".to_vec());
        assert!(row.cells.contains(&("avg_speed", b"82.5".to_vec())));
        assert!(
            row.cells
                .contains(&("window_end", b"20261122143030".to_vec()))
        );
        assert!(row.cells.contains(&("count", b"2".to_vec())));
    }
}
