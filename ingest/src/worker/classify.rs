//! A batch sorted for the cycle's effects: the rows to store (driving or car status, by
//! the topic's [`Parser`]), the dead letters (each with its reason), and the next offset
//! of every record's partition; the rule engine, where the topic has one, observes each
//! good driving event on the way.
//!
//! Pure: no I/O, no clock of its own (processing time is passed in), so every outcome is
//! unit-tested here without a broker. What is stored, dead-lettered and committed, and in
//! which order, is `run` and `commit`.

use std::time::Instant;

use rdkafka::message::{Message, OwnedMessage};

use super::config::Parser;
use super::rows::{Row, car_status_row, driving_row};
use crate::event::{DrivingEvent, TurnSignal, line_str, parse_driving, parse_status};
use crate::rules::{Admission, Engine, Sample};

/// A record bound for the dead-letter topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    /// `reason`, `source-topic`, `source-partition`, `source-offset`.
    pub headers: Vec<(String, String)>,
}

/// What one batch asks of the sinks.
#[derive(Debug, Default)]
pub struct Classified {
    /// One row per parsed event, late ones included (every event is stored).
    pub rows: Vec<Row>,
    /// Unparsable and late records, in batch order.
    pub dead: Vec<DeadLetter>,
    /// `(partition, offset + 1)` of every owned record: acknowledged once the rows and
    /// dead letters are durable.
    pub next: Vec<(i32, i64)>,
    /// Records of the batch (owned or not).
    pub consumed: u64,
    /// Records dead-lettered because they did not parse.
    pub parse_bad: u64,
    /// Events the engine refused as late (stored, and dead-lettered as `late`).
    pub late: u64,
}

fn dead_letter(m: &OwnedMessage, reason: &str) -> DeadLetter {
    DeadLetter {
        key: m.key().map(<[u8]>::to_vec),
        payload: m.payload().unwrap_or_default().to_vec(),
        headers: vec![
            ("reason".into(), reason.into()),
            ("source-topic".into(), m.topic().into()),
            ("source-partition".into(), m.partition().to_string()),
            ("source-offset".into(), m.offset().to_string()),
        ],
    }
}

fn sample(ev: &DrivingEvent, partition: i32, offset: i64) -> Sample<'_> {
    Sample {
        partition,
        offset,
        time_ms: ev.event_time_ms,
        car_number: &ev.car_number,
        area_code: &ev.area,
        turn_signal: match ev.turn_signal {
            TurnSignal::Left => "L",
            TurnSignal::Right => "R",
            TurnSignal::None => "N",
        },
        numbers: [
            f64::from(ev.speed),
            f64::from(ev.accelerator),
            f64::from(ev.brake),
            f64::from(ev.steering_angle),
        ],
    }
}

/// Sorts `batch`: records of partitions not `owned` (revoked while in flight) are
/// skipped, for the next owner replays them; the rest are parsed by `parser` and become
/// rows and/or dead letters, and `engine` (if any) observes each parsed driving event at
/// processing time `now`.
pub fn classify(
    batch: &[OwnedMessage],
    owned: impl Fn(i32) -> bool,
    parser: Parser,
    mut engine: Option<&mut Engine>,
    now: Instant,
) -> Classified {
    let mut out = Classified {
        rows: Vec::with_capacity(batch.len()),
        ..Classified::default()
    };
    for m in batch {
        out.consumed += 1;
        let (p, off) = (m.partition(), m.offset());
        if !owned(p) {
            continue;
        }
        out.next.push((p, off + 1));
        let payload = m.payload().unwrap_or_default();
        let line = payload.strip_suffix(b"\n").unwrap_or(payload);
        let parsed = match parser {
            Parser::Driving => line_str(payload).and_then(parse_driving).map(|ev| {
                out.rows.push(driving_row(&ev, line));
                if let Some(engine) = engine.as_deref_mut()
                    && let Admission::Late { .. } = engine.observe(&sample(&ev, p, off), now)
                {
                    out.late += 1;
                    out.dead.push(dead_letter(m, "late"));
                }
            }),
            Parser::Status => line_str(payload)
                .and_then(parse_status)
                .map(|ev| out.rows.push(car_status_row(&ev, line))),
        };
        match parsed {
            Ok(()) => {}
            Err(reason) => {
                out.parse_bad += 1;
                out.dead.push(dead_letter(m, &reason.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rdkafka::Timestamp;

    use super::*;
    use crate::rules::config::OVERSPEED_RULE;
    use crate::rules::{EngineOptions, RuleSet};

    fn engine() -> Engine {
        let rules = RuleSet::parse(OVERSPEED_RULE, "rules.toml").unwrap();
        Engine::new(&rules, EngineOptions::default())
    }

    fn msg(partition: i32, offset: i64, line: &str) -> OwnedMessage {
        OwnedMessage::new(
            Some(line.as_bytes().to_vec()),
            Some(b"V0042".to_vec()),
            "driving".into(),
            Timestamp::NotAvailable,
            partition,
            offset,
            None,
        )
    }

    fn line(hhmmss: &str, speed: u32) -> String {
        format!("20261122{hhmmss},V0042,3,0,-12,N,{speed},A07\n")
    }

    fn reason(d: &DeadLetter) -> &str {
        &d.headers[0].1
    }

    #[test]
    fn good_lines_become_rows_and_bad_ones_dead_letters_with_where_they_came_from() {
        let mut e = engine();
        e.assign(0, Instant::now());
        let batch = vec![
            msg(0, 10, &line("143015", 90)),
            msg(0, 11, "garbage\n"),
            msg(0, 12, &line("143016", 95)),
            msg(0, 13, ""),
        ];
        let c = classify(
            &batch,
            |_| true,
            Parser::Driving,
            Some(&mut e),
            Instant::now(),
        );
        assert_eq!(
            (c.consumed, c.rows.len(), c.parse_bad, c.late),
            (4, 2, 2, 0)
        );
        assert_eq!(c.next, vec![(0, 11), (0, 12), (0, 13), (0, 14)]);
        assert_eq!(c.dead.len(), 2);
        assert_eq!(c.dead[0].payload, b"garbage\n");
        assert_eq!(c.dead[0].key.as_deref(), Some(&b"V0042"[..]));
        assert!(!reason(&c.dead[0]).is_empty());
        assert_eq!(
            c.dead[0].headers[1..],
            [
                ("source-topic".to_string(), "driving".to_string()),
                ("source-partition".to_string(), "0".to_string()),
                ("source-offset".to_string(), "11".to_string()),
            ]
        );
        assert_eq!(c.dead[1].headers[3].1, "13");
        assert_eq!(
            e.open_windows(),
            1,
            "the engine saw both events (one window)"
        );
    }

    #[test]
    fn records_of_a_partition_no_longer_owned_are_left_for_the_next_owner() {
        let mut e = engine();
        e.assign(1, Instant::now());
        let batch = vec![msg(0, 5, &line("143015", 90)), msg(1, 7, "garbage")];
        let c = classify(
            &batch,
            |p| p == 1,
            Parser::Driving,
            Some(&mut e),
            Instant::now(),
        );
        assert_eq!(c.consumed, 2);
        assert_eq!(
            c.next,
            vec![(1, 8)],
            "partition 0 is neither acked nor stored"
        );
        assert!(c.rows.is_empty());
        assert_eq!(c.dead.len(), 1);
        assert_eq!(
            e.open_windows(),
            0,
            "the engine never saw partition 0's event"
        );
    }

    #[test]
    fn a_late_event_is_stored_and_dead_lettered_as_late() {
        let mut e = engine();
        let t0 = Instant::now();
        e.assign(0, t0);
        // Window [14:30:00, 14:30:30) fires once the watermark passes its end + 5 s.
        let first = classify(
            &[
                msg(0, 0, &line("143001", 90)),
                msg(0, 1, &line("143200", 90)),
            ],
            |_| true,
            Parser::Driving,
            Some(&mut e),
            t0,
        );
        assert_eq!(first.late, 0);
        let fired = e.advance(t0 + Duration::from_millis(1));
        assert!(!fired.is_empty(), "the first window fired");
        let c = classify(
            &[msg(0, 2, &line("143002", 99))],
            |_| true,
            Parser::Driving,
            Some(&mut e),
            t0,
        );
        assert_eq!((c.rows.len(), c.late, c.parse_bad), (1, 1, 0));
        assert_eq!(reason(&c.dead[0]), "late");
        assert_eq!(c.next, vec![(0, 3)]);
    }

    #[test]
    fn status_lines_become_car_status_rows_and_bad_ones_dead_letters_with_the_reason() {
        let good = "20261122143015,V0042,32,33,31,32,1,1,0,1,0,0,2";
        let batch = vec![
            msg(0, 0, &format!("{good}\n")),
            msg(0, 1, "20261122143015,V0042,32,33,31,32,1,1,0,1,0,0\n"),
            msg(0, 2, &line("143016", 95)), // a driving line on the status topic
        ];
        let c = classify(&batch, |_| true, Parser::Status, None, Instant::now());
        assert_eq!((c.consumed, c.rows.len(), c.parse_bad), (3, 1, 2));
        let key = format!(
            "V0042#20261122143015#{:08x}",
            crc32fast::hash(good.as_bytes())
        );
        assert_eq!(c.rows[0].key, key.into_bytes());
        assert_eq!(c.rows[0].cells.len(), 13);
        assert!(c.rows[0].cells.contains(&("battery", b"2".to_vec())));
        assert_eq!(c.next, vec![(0, 1), (0, 2), (0, 3)]);
        assert!(c.dead.iter().all(|d| !reason(d).is_empty()));
        assert_eq!(c.dead[1].headers[3].1, "2");
    }
}
