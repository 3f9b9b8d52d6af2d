//! The SPEC §1 records: the driving event (8 CSV fields) and the car status event (13 CSV
//! fields), their strict parsers with precise reasons, and their CSV rendering.
//!
//! **Timezone.** SPEC §1 timestamps are the car's local time with no zone. We treat them as
//! UTC unless a fixed offset is configured ([`parse_driving_with_offset`]): the 14-digit
//! string is kept verbatim (it is what row keys and `yyyyMMdd` set keys are built from) and
//! `event_time_ms` is the epoch milliseconds of that local time minus the offset. Using one
//! fixed offset (never the host's zone) keeps replays deterministic and DST-free.
//!
//! This module does not decide what to do with bad lines: it returns a [`ParseError`] and the
//! caller dead-letters it.

use std::fmt;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime};

pub use crate::error::ParseError;

/// Longest line any valid record can be; longer lines are refused before parsing.
pub const MAX_LINE_LEN: usize = 512;

/// Number of fields of a driving event.
pub const DRIVING_FIELDS: usize = 8;

/// Number of fields of a car status event.
pub const STATUS_FIELDS: usize = 13;

/// Turn signal state, field 6 of a driving event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TurnSignal {
    /// `L`.
    Left,
    /// `R`.
    Right,
    /// `N`.
    None,
}

impl TurnSignal {
    /// The CSV letter.
    pub fn as_char(self) -> char {
        match self {
            TurnSignal::Left => 'L',
            TurnSignal::Right => 'R',
            TurnSignal::None => 'N',
        }
    }
}

/// A driving event (운행 정보), SPEC §1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrivingEvent {
    /// Event time as the 14-digit `yyyyMMddHHmmss` string of the log.
    pub event_time: String,
    /// The same instant as epoch milliseconds (see the module doc for the timezone rule).
    pub event_time_ms: i64,
    /// Car number: one upper-case letter and 4 digits, e.g. `V0042`.
    pub car_number: String,
    /// Accelerator pedal level, 0–9.
    pub accelerator: u8,
    /// Brake pedal level, 0–9.
    pub brake: u8,
    /// Steering wheel angle in degrees, −540…540.
    pub steering_angle: i16,
    /// Turn signal.
    pub turn_signal: TurnSignal,
    /// Speed in km/h, 0…300.
    pub speed: u16,
    /// Driving area code: one upper-case letter and 2 digits, e.g. `A07`.
    pub area: String,
}

impl DrivingEvent {
    /// The car number (the Kafka key, so one car's events stay ordered in one partition).
    pub fn car_number(&self) -> &str {
        &self.car_number
    }

    /// `yyyyMMdd` of the event time (the overspeed set key of SPEC §4).
    pub fn date(&self) -> &str {
        &self.event_time[..8]
    }

    /// The CSV line (no terminator); `parse_driving(e.to_csv()) == e` for parsed events.
    pub fn to_csv(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DrivingEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{},{},{},{},{},{},{},{}",
            self.event_time,
            self.car_number,
            self.accelerator,
            self.brake,
            self.steering_angle,
            self.turn_signal.as_char(),
            self.speed,
            self.area
        )
    }
}

/// A car status event (상태 정보), SPEC §1: time, car, 4 tyre pressures (psi, FL FR RL RR),
/// 4 lamp states (`1` ok, `0` fault), engine, brake and battery status codes.
///
/// SPEC §1 does not bound the numeric fields; we accept tyre pressures 0–99 psi and status
/// codes 0–99 (the simulator writes 0 = ok, higher = warning/fault codes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarStatusEvent {
    /// Event time, 14 digits.
    pub event_time: String,
    /// Epoch milliseconds (module doc's timezone rule).
    pub event_time_ms: i64,
    /// Car number.
    pub car_number: String,
    /// Tyre pressures FL, FR, RL, RR in psi.
    pub tyre_psi: [u8; 4],
    /// Lamp states FL, FR, RL, RR (`true` = ok).
    pub lamps_ok: [bool; 4],
    /// Engine status code.
    pub engine: u8,
    /// Brake status code.
    pub brake: u8,
    /// Battery status code.
    pub battery: u8,
}

impl CarStatusEvent {
    /// The car number.
    pub fn car_number(&self) -> &str {
        &self.car_number
    }

    /// The CSV line (no terminator).
    pub fn to_csv(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for CarStatusEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{},{}", self.event_time, self.car_number)?;
        for p in self.tyre_psi {
            write!(f, ",{p}")?;
        }
        for l in self.lamps_ok {
            write!(f, ",{}", u8::from(l))?;
        }
        write!(f, ",{},{},{}", self.engine, self.brake, self.battery)
    }
}

/// Which SPEC §1 format a line should have (the validator interceptor's `format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Driving events.
    Driving,
    /// Car status events.
    Status,
}

impl Format {
    /// Validates `line` against this format.
    ///
    /// # Errors
    /// The precise [`ParseError`] of the line.
    pub fn validate(self, line: &[u8]) -> Result<(), ParseError> {
        let s = line_str(line)?;
        match self {
            Format::Driving => parse_driving(s).map(drop),
            Format::Status => parse_status(s).map(drop),
        }
    }
}

/// Parses a driving event, treating its local time as UTC.
///
/// # Errors
/// [`ParseError`] naming the first bad field and why.
pub fn parse_driving(line: &str) -> Result<DrivingEvent, ParseError> {
    parse_driving_with_offset(line, utc())
}

/// Parses a driving event whose local time is at `offset` from UTC.
///
/// # Errors
/// [`ParseError`] naming the first bad field and why.
pub fn parse_driving_with_offset(
    line: &str,
    offset: FixedOffset,
) -> Result<DrivingEvent, ParseError> {
    let fields = split::<DRIVING_FIELDS>(line)?;
    let (event_time, event_time_ms) = time_field(fields[0], offset)?;
    Ok(DrivingEvent {
        event_time: event_time.to_owned(),
        event_time_ms,
        car_number: car_field(fields[1])?.to_owned(),
        accelerator: int_field(3, "accelerator pedal", fields[2], 0, 9)? as u8,
        brake: int_field(4, "brake pedal", fields[3], 0, 9)? as u8,
        steering_angle: int_field(5, "steering angle", fields[4], -540, 540)? as i16,
        turn_signal: match fields[5] {
            "L" => TurnSignal::Left,
            "R" => TurnSignal::Right,
            "N" => TurnSignal::None,
            other => {
                return Err(field_err(
                    6,
                    "turn signal",
                    format!("expected L, R or N, got {other:?}"),
                ));
            }
        },
        speed: int_field(7, "speed", fields[6], 0, 300)? as u16,
        area: area_field(fields[7])?.to_owned(),
    })
}

/// Parses a car status event, treating its local time as UTC.
///
/// # Errors
/// [`ParseError`] naming the first bad field and why.
pub fn parse_status(line: &str) -> Result<CarStatusEvent, ParseError> {
    let f = split::<STATUS_FIELDS>(line)?;
    let (event_time, event_time_ms) = time_field(f[0], utc())?;
    const TYRES: [&str; 4] = ["tyre FL psi", "tyre FR psi", "tyre RL psi", "tyre RR psi"];
    const LAMPS: [&str; 4] = ["lamp FL", "lamp FR", "lamp RL", "lamp RR"];
    let mut tyre_psi = [0u8; 4];
    let mut lamps_ok = [false; 4];
    for i in 0..4 {
        tyre_psi[i] = int_field(3 + i, TYRES[i], f[2 + i], 0, 99)? as u8;
        lamps_ok[i] = match f[6 + i] {
            "1" => true,
            "0" => false,
            other => {
                return Err(field_err(
                    7 + i,
                    LAMPS[i],
                    format!("expected 0 or 1, got {other:?}"),
                ));
            }
        };
    }
    Ok(CarStatusEvent {
        event_time: event_time.to_owned(),
        event_time_ms,
        car_number: car_field(f[1])?.to_owned(),
        tyre_psi,
        lamps_ok,
        engine: int_field(11, "engine status", f[10], 0, 99)? as u8,
        brake: int_field(12, "brake status", f[11], 0, 99)? as u8,
        battery: int_field(13, "battery status", f[12], 0, 99)? as u8,
    })
}

/// The car number of a driving or status line (field 2) without a full parse; `None` if
/// the line has fewer than two fields. Used for Kafka keys on the hot path.
pub fn car_number_of(line: &[u8]) -> Option<&[u8]> {
    let mut it = line.split(|&b| b == b',');
    it.next()?;
    it.next()
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap_or_else(|| unreachable!("0 is a valid offset"))
}

/// Turns raw line bytes into a `&str` without the line terminator, refusing empty, oversize
/// and non-UTF-8 lines.
pub fn line_str(line: &[u8]) -> Result<&str, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if line.len() > MAX_LINE_LEN {
        return Err(ParseError::TooLong {
            len: line.len(),
            max: MAX_LINE_LEN,
        });
    }
    std::str::from_utf8(line).map_err(|e| ParseError::NotUtf8 {
        at: e.valid_up_to(),
    })
}

fn split<const N: usize>(line: &str) -> Result<[&str; N], ParseError> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        return Err(ParseError::Empty);
    }
    if line.len() > MAX_LINE_LEN {
        return Err(ParseError::TooLong {
            len: line.len(),
            max: MAX_LINE_LEN,
        });
    }
    let mut out = [""; N];
    let mut got = 0;
    for part in line.split(',') {
        if got < N {
            out[got] = part;
        }
        got += 1;
    }
    if got != N {
        return Err(ParseError::FieldCount { expected: N, got });
    }
    Ok(out)
}

fn field_err(index: usize, name: &'static str, reason: String) -> ParseError {
    ParseError::Field {
        index,
        name,
        reason,
    }
}

fn time_field(s: &str, offset: FixedOffset) -> Result<(&str, i64), ParseError> {
    let bad = |reason: String| field_err(1, "event time", reason);
    if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!("expected 14 digits yyyyMMddHHmmss, got {s:?}")));
    }
    let num = |r: std::ops::Range<usize>| -> u32 {
        s.as_bytes()[r]
            .iter()
            .fold(0u32, |acc, b| acc * 10 + u32::from(b - b'0'))
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4),
        num(4..6),
        num(6..8),
        num(8..10),
        num(10..12),
        num(12..14),
    );
    let date = NaiveDate::from_ymd_opt(y as i32, mo, d).ok_or_else(|| {
        bad(format!(
            "{s:?} is not a calendar date ({y:04}-{mo:02}-{d:02})"
        ))
    })?;
    let time = date.and_hms_opt(h, mi, se).ok_or_else(|| {
        bad(format!(
            "{s:?} is not a time of day ({h:02}:{mi:02}:{se:02})"
        ))
    })?;
    let ms = local_to_epoch_ms(time, offset);
    Ok((s, ms))
}

fn local_to_epoch_ms(local: NaiveDateTime, offset: FixedOffset) -> i64 {
    local.and_utc().timestamp_millis() - i64::from(offset.local_minus_utc()) * 1000
}

fn car_field(s: &str) -> Result<&str, ParseError> {
    let b = s.as_bytes();
    if b.len() == 5 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit) {
        Ok(s)
    } else {
        Err(field_err(
            2,
            "car number",
            format!("expected one upper-case letter and 4 digits, got {s:?}"),
        ))
    }
}

fn area_field(s: &str) -> Result<&str, ParseError> {
    let b = s.as_bytes();
    if b.len() == 3 && b[0].is_ascii_alphabetic() && b[1..].iter().all(u8::is_ascii_digit) {
        Ok(s)
    } else {
        Err(field_err(
            8,
            "area code",
            format!("expected one letter and 2 digits, got {s:?}"),
        ))
    }
}

fn int_field(
    index: usize,
    name: &'static str,
    s: &str,
    min: i32,
    max: i32,
) -> Result<i32, ParseError> {
    let b = s.as_bytes();
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    // Only plain decimal integers: no '+', no spaces, no leading zeros games beyond 4 digits.
    if digits.is_empty() || digits.len() > 4 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(field_err(index, name, format!("not an integer: {s:?}")));
    }
    let v: i32 = s
        .parse()
        .map_err(|_| field_err(index, name, format!("not an integer: {s:?}")))?;
    if v < min || v > max {
        return Err(field_err(
            index,
            name,
            format!("{v} is outside {min}..={max}"),
        ));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "20261122143015,V0042,3,0,-12,N,87,A07";

    fn with_field(i: usize, v: &str) -> String {
        let mut f: Vec<&str> = GOOD.split(',').collect();
        f[i - 1] = v;
        f.join(",")
    }

    fn field_index(e: ParseError) -> usize {
        match e {
            ParseError::Field { index, .. } => index,
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_spec_example_and_round_trips() {
        let e = parse_driving(GOOD).unwrap();
        assert_eq!(e.event_time, "20261122143015");
        assert_eq!(e.event_time_ms, 1_795_357_815_000);
        assert_eq!(e.car_number(), "V0042");
        assert_eq!((e.accelerator, e.brake, e.steering_angle), (3, 0, -12));
        assert_eq!(e.turn_signal, TurnSignal::None);
        assert_eq!((e.speed, e.area.as_str()), (87, "A07"));
        assert_eq!(e.date(), "20261122");
        assert_eq!(e.to_csv(), GOOD);
        assert_eq!(parse_driving(&format!("{GOOD}\r\n")).unwrap(), e);
    }

    #[test]
    fn offset_shifts_epoch_but_not_the_string() {
        let kst = FixedOffset::east_opt(9 * 3600).unwrap();
        let e = parse_driving_with_offset(GOOD, kst).unwrap();
        assert_eq!(e.event_time, "20261122143015");
        assert_eq!(e.event_time_ms, 1_795_357_815_000 - 9 * 3_600_000);
    }

    #[test]
    fn time_boundaries() {
        for ok in [
            "00010101000000",
            "99991231235959",
            "20240229120000",
            "20261122000000",
        ] {
            assert!(parse_driving(&with_field(1, ok)).is_ok(), "{ok}");
        }
        for bad in [
            "20250229120000", // not a leap year
            "20261301000000", // month 13
            "20261100000000", // day 0
            "20261131000000", // Nov 31
            "20261122240000", // hour 24
            "20261122126000", // minute 60
            "20261122125960", // second 60
            "2026112214301",  // 13 digits
            "202611221430155",
            "2026-11-2214301",
            "",
        ] {
            assert_eq!(
                field_index(parse_driving(&with_field(1, bad)).unwrap_err()),
                1,
                "{bad}"
            );
        }
    }

    #[test]
    fn car_number_boundaries() {
        for ok in ["A0000", "Z9999"] {
            assert!(parse_driving(&with_field(2, ok)).is_ok());
        }
        for bad in ["v0042", "V042", "V00421", "VV042", "V00a2", ""] {
            assert_eq!(
                field_index(parse_driving(&with_field(2, bad)).unwrap_err()),
                2,
                "{bad}"
            );
        }
    }

    #[test]
    fn pedal_boundaries() {
        for idx in [3, 4] {
            for ok in ["0", "9"] {
                assert!(parse_driving(&with_field(idx, ok)).is_ok());
            }
            for bad in ["-1", "10", "x", "", "1.5", "+1", " 1"] {
                assert_eq!(
                    field_index(parse_driving(&with_field(idx, bad)).unwrap_err()),
                    idx
                );
            }
        }
    }

    #[test]
    fn steering_boundaries() {
        for ok in ["-540", "540", "0", "-0"] {
            assert!(parse_driving(&with_field(5, ok)).is_ok(), "{ok}");
        }
        for bad in ["-541", "541", "--1", "-", "99999"] {
            assert_eq!(
                field_index(parse_driving(&with_field(5, bad)).unwrap_err()),
                5,
                "{bad}"
            );
        }
    }

    #[test]
    fn turn_signal_values() {
        assert_eq!(
            parse_driving(&with_field(6, "L")).unwrap().turn_signal,
            TurnSignal::Left
        );
        assert_eq!(
            parse_driving(&with_field(6, "R")).unwrap().turn_signal,
            TurnSignal::Right
        );
        for bad in ["l", "X", "", "LR"] {
            assert_eq!(
                field_index(parse_driving(&with_field(6, bad)).unwrap_err()),
                6
            );
        }
    }

    #[test]
    fn speed_boundaries_and_reason_text() {
        assert_eq!(parse_driving(&with_field(7, "0")).unwrap().speed, 0);
        assert_eq!(parse_driving(&with_field(7, "300")).unwrap().speed, 300);
        let e = parse_driving(&with_field(7, "301")).unwrap_err();
        assert_eq!(e.to_string(), "field 7 (speed): 301 is outside 0..=300");
        let e = parse_driving(&with_field(7, "fast")).unwrap_err();
        assert_eq!(e.to_string(), "field 7 (speed): not an integer: \"fast\"");
        assert_eq!(
            field_index(parse_driving(&with_field(7, "-1")).unwrap_err()),
            7
        );
    }

    #[test]
    fn area_boundaries() {
        for ok in ["A00", "z99"] {
            assert!(parse_driving(&with_field(8, ok)).is_ok());
        }
        for bad in ["A7", "A007", "107", "AA7", ""] {
            assert_eq!(
                field_index(parse_driving(&with_field(8, bad)).unwrap_err()),
                8,
                "{bad}"
            );
        }
    }

    #[test]
    fn whole_line_errors() {
        assert_eq!(parse_driving(""), Err(ParseError::Empty));
        assert_eq!(parse_driving("\n"), Err(ParseError::Empty));
        assert_eq!(
            parse_driving("20261122143015,V0042,3"),
            Err(ParseError::FieldCount {
                expected: 8,
                got: 3
            })
        );
        assert_eq!(
            parse_driving(&format!("{GOOD},extra")),
            Err(ParseError::FieldCount {
                expected: 8,
                got: 9
            })
        );
        let long = "9".repeat(MAX_LINE_LEN + 1);
        assert!(matches!(
            parse_driving(&long),
            Err(ParseError::TooLong { .. })
        ));
        assert_eq!(line_str(b"\xffabc"), Err(ParseError::NotUtf8 { at: 0 }));
        assert_eq!(Format::Driving.validate(GOOD.as_bytes()), Ok(()));
        assert!(Format::Status.validate(GOOD.as_bytes()).is_err());
    }

    #[test]
    fn status_parses_round_trips_and_checks_fields() {
        let line = "20261122143015,V0042,32,33,31,32,1,1,0,1,0,0,2";
        let s = parse_status(line).unwrap();
        assert_eq!(s.tyre_psi, [32, 33, 31, 32]);
        assert_eq!(s.lamps_ok, [true, true, false, true]);
        assert_eq!((s.engine, s.brake, s.battery), (0, 0, 2));
        assert_eq!(s.to_csv(), line);
        assert_eq!(s.car_number(), "V0042");
        let bad_lamp = "20261122143015,V0042,32,33,31,32,1,2,0,1,0,0,2";
        assert_eq!(field_index(parse_status(bad_lamp).unwrap_err()), 8);
        let bad_psi = "20261122143015,V0042,32,100,31,32,1,1,0,1,0,0,2";
        assert_eq!(field_index(parse_status(bad_psi).unwrap_err()), 4);
        assert!(matches!(
            parse_status(GOOD),
            Err(ParseError::FieldCount {
                expected: 13,
                got: 8
            })
        ));
    }

    #[test]
    fn mutated_lines_never_panic_and_valid_ones_round_trip() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let alphabet = b"0123456789,-NLRVA \r\n\xff";
        for _ in 0..20_000 {
            let mut b = GOOD.as_bytes().to_vec();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                match rng.random_range(0..3) {
                    0 => b[i] = alphabet[rng.random_range(0..alphabet.len())],
                    1 => {
                        b.remove(i);
                    }
                    _ => b.insert(i, alphabet[rng.random_range(0..alphabet.len())]),
                }
                if b.is_empty() {
                    break;
                }
            }
            if Format::Driving.validate(&b).is_ok() {
                let e = parse_driving(line_str(&b).unwrap()).unwrap();
                assert_eq!(parse_driving(&e.to_csv()), Ok(e.clone()));
            }
            let _ = Format::Status.validate(&b);
        }
    }

    #[test]
    fn car_number_of_reads_field_two() {
        assert_eq!(car_number_of(GOOD.as_bytes()), Some(&b"V0042"[..]));
        assert_eq!(car_number_of(b"nocomma"), None);
    }
}
