//! How a car status event becomes a `car_status` row, whichever path stores it (the bulk
//! loader of the `speedlayer` CLI, or the ingest worker).
//!
//! Row key `<car>#<yyyyMMddHHmmss>#<crc>`, the rules of `driving`: `<crc>` is the CRC-32
//! (IEEE) of the original line without its terminator, in 8 lower-case hex digits, e.g.
//! `V0042#20261122143015#8e5cbe28`. One car's history is one contiguous prefix (`V0042#`),
//! ordered by time; two events of one car in one second stay apart, and the same line
//! stored twice (a re-load, a replay) is the same row. The cell timestamp is the event time
//! in milliseconds, so a re-stored line overwrites itself with identical cells. Family
//! `cf1`, one column per SPEC §1 field ([`STATUS_COLUMNS`]).
//!
//! This module is pure formatting; it neither parses lines nor talks to a store.

use crate::event::CarStatusEvent;

/// The table every car status event is stored in.
pub const STATUS_TABLE: &str = "car_status";
/// Its one column family.
pub const STATUS_FAMILY: &str = "cf1";
/// Its columns, in SPEC §1 field order (sorted order is the loader's business).
pub const STATUS_COLUMNS: [&str; 13] = [
    "event_time",
    "car_number",
    "tyre_fl_psi",
    "tyre_fr_psi",
    "tyre_rl_psi",
    "tyre_rr_psi",
    "lamp_fl",
    "lamp_fr",
    "lamp_rl",
    "lamp_rr",
    "engine",
    "brake",
    "battery",
];

/// One `car_status` row: key, cell timestamp (ms) and one value per [`STATUS_COLUMNS`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRow {
    /// Row key.
    pub key: Vec<u8>,
    /// Cell timestamp: the event time in ms since the epoch.
    pub timestamp_ms: i64,
    /// Values, in [`STATUS_COLUMNS`] order.
    pub values: [Vec<u8>; 13],
}

impl StatusRow {
    /// `(column, value)` pairs in [`STATUS_COLUMNS`] order.
    pub fn cells(&self) -> impl Iterator<Item = (&'static str, &[u8])> {
        STATUS_COLUMNS
            .iter()
            .copied()
            .zip(self.values.iter().map(Vec::as_slice))
    }
}

/// The line without its terminator (`\n` or `\r\n`): what the key's CRC covers.
pub fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The `car_status` row key of an event given its original line.
pub fn status_key(ev: &CarStatusEvent, line: &[u8]) -> Vec<u8> {
    format!(
        "{}#{}#{:08x}",
        ev.car_number,
        ev.event_time,
        crc32fast::hash(trim_line(line))
    )
    .into_bytes()
}

/// The `car_status` row of an event given its original line.
pub fn status_row(ev: &CarStatusEvent, line: &[u8]) -> StatusRow {
    let n = |v: u8| v.to_string().into_bytes();
    let lamp = |ok: bool| if ok { b"1".to_vec() } else { b"0".to_vec() };
    StatusRow {
        key: status_key(ev, line),
        timestamp_ms: ev.event_time_ms,
        values: [
            ev.event_time.clone().into_bytes(),
            ev.car_number.clone().into_bytes(),
            n(ev.tyre_psi[0]),
            n(ev.tyre_psi[1]),
            n(ev.tyre_psi[2]),
            n(ev.tyre_psi[3]),
            lamp(ev.lamps_ok[0]),
            lamp(ev.lamps_ok[1]),
            lamp(ev.lamps_ok[2]),
            lamp(ev.lamps_ok[3]),
            n(ev.engine),
            n(ev.brake),
            n(ev.battery),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_status;

    #[test]
    fn key_and_columns_follow_the_driving_rules() {
        let line = "20261122143015,V0042,32,33,31,32,1,1,0,1,0,0,2";
        let ev = parse_status(line).unwrap();
        let row = status_row(&ev, format!("{line}\r\n").as_bytes());
        let crc = crc32fast::hash(line.as_bytes());
        assert_eq!(
            String::from_utf8(row.key.clone()).unwrap(),
            format!("V0042#20261122143015#{crc:08x}"),
            "the CRC covers the line without its terminator"
        );
        assert_eq!(row.timestamp_ms, ev.event_time_ms);
        let cells: Vec<(&str, String)> = row
            .cells()
            .map(|(c, v)| (c, String::from_utf8(v.to_vec()).unwrap()))
            .collect();
        let rebuilt: Vec<String> = cells.iter().map(|(_, v)| v.clone()).collect();
        assert_eq!(rebuilt.join(","), line, "every field, in order");
        assert_eq!(cells[8], ("lamp_rl", "0".to_string()));
        assert_eq!(status_row(&ev, line.as_bytes()), row, "same line, same row");
    }
}
