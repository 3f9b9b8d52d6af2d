//! The console's fleet view: a day's flagged cars and one car's speed over time, read
//! through the in-process storage engine and RESP keyspace (no network hop).
//!
//! Encodings (SPEC §3–4, `ingest/src/worker/rows.rs` and `sets.rs`):
//! - TTL set: key `yyyyMMdd` (the rule's `set_key = "{window_date}"`), members the car
//!   numbers flagged that day.
//! - `overspeed` (family `cf1`): row `<car>#<window start yyyyMMddHHmmss>#<rule>`, columns
//!   `window_start`, `window_end`, `count`, `avg_speed`, `rule`.
//! - `driving` (family `cf1`): row `<car>#<yyyyMMddHHmmss>#<crc>`, column `speed`.
//!
//! Event times are local times without a zone; they are returned as seconds as if UTC, so
//! a chart labelled in UTC shows the times as written. Bounded: [`MAX_CARS`] cars,
//! [`MAX_WINDOWS`] windows per car, [`MAX_POINTS`] speed points, ranges of at most
//! [`MAX_RANGE_S`]; a cut result says `truncated`. Reads only.

use bytes::Bytes;
use serde::Serialize;
use speedlayer_storage::Db;
use speedlayer_storage::read::Scan;

use super::api::printable;
use crate::error::ServerError;
use crate::resp::server::Shared;

/// Flagged cars listed at most.
pub const MAX_CARS: usize = 500;
/// Overspeed windows returned per car at most.
pub const MAX_WINDOWS: usize = 500;
/// Speed points returned at most.
pub const MAX_POINTS: usize = 20_000;
/// Longest time range of a speed query: one day.
pub const MAX_RANGE_S: i64 = 86_400;

const FAMILY: &[u8] = b"cf1";
const NO_RESP: &str = "the TTL set service is not running in this server (--resp-addr off)";
const OVERSPEED: &str = "overspeed";
const DRIVING: &str = "driving";

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `yyyyMMddHHmmss` (or its first 8 digits) as seconds since the epoch, read as UTC.
pub fn parse_time(s: &str) -> Option<i64> {
    if !(s.len() == 14 || s.len() == 8) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |a: usize, b: usize| s.get(a..b).and_then(|x| x.parse::<i64>().ok());
    let (y, mo, d) = (n(0, 4)?, n(4, 6)?, n(6, 8)?);
    let (h, mi, se) = if s.len() == 14 {
        (n(8, 10)?, n(10, 12)?, n(12, 14)?)
    } else {
        (0, 0, 0)
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 59 {
        return None;
    }
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Seconds since the epoch as `yyyyMMddHHmmss` (UTC).
pub fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // civil_from_days (Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// A day given as `yyyyMMdd` or `yyyy-MM-dd`, normalised to `yyyyMMdd`.
pub fn parse_day(s: &str) -> Result<String, ServerError> {
    let d: String = s.chars().filter(|c| *c != '-').collect();
    match parse_time(&d) {
        Some(_) if d.len() == 8 => Ok(d),
        _ => Err(ServerError::BadRequest(format!(
            "day {s:?} is not a date (yyyy-MM-dd or yyyyMMdd)"
        ))),
    }
}

/// A car number as the tables key it: one upper-case letter and 4 digits (SPEC §1).
fn check_car(car: &str) -> Result<(), ServerError> {
    let b = car.as_bytes();
    if b.len() == 5 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit) {
        Ok(())
    } else {
        Err(ServerError::BadRequest(format!(
            "car {car:?} is not a car number (a letter and 4 digits, e.g. V0042)"
        )))
    }
}

/// One overspeed window of a car.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// Rule name.
    pub rule: String,
    /// Window start, `yyyyMMddHHmmss`.
    pub start: String,
    /// Window end, `yyyyMMddHHmmss`.
    pub end: String,
    /// Window start as seconds (as if UTC).
    pub start_s: Option<i64>,
    /// Window end as seconds.
    pub end_s: Option<i64>,
    /// Average speed in the window, km/h.
    pub avg_speed: Option<f64>,
    /// Events in the window.
    pub count: Option<u64>,
}

/// One flagged car of a day.
#[derive(Debug, Serialize)]
pub struct FlaggedCar {
    /// Car number.
    pub car: String,
    /// Its overspeed windows that day (at most [`MAX_WINDOWS`]).
    pub windows: Vec<Window>,
}

/// A day's flagged cars.
#[derive(Debug, Serialize)]
pub struct Flagged {
    /// The day, `yyyyMMdd` (also the TTL set key).
    pub day: String,
    /// Remaining TTL of the day's set in ms (-2: no such set).
    pub set_pttl_ms: i64,
    /// Cars, sorted (at most [`MAX_CARS`]).
    pub cars: Vec<FlaggedCar>,
    /// More cars or windows exist than returned.
    pub truncated: bool,
}

fn text(row: &speedlayer_storage::read::Row, q: &str) -> Option<String> {
    row.value(FAMILY, q.as_bytes())
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Overspeed windows of `car` whose start lies in `[from, to)` (`yyyyMMddHHmmss` bounds).
fn windows(db: &Db, car: &str, from: &str, to: &str) -> Result<(Vec<Window>, bool), ServerError> {
    let scan = Scan::new()
        .start(Bytes::from(format!("{car}#{from}")))
        .stop(Bytes::from(format!("{car}#{to}")))
        .limit(MAX_WINDOWS + 1);
    let mut out = Vec::new();
    for row in db.scan(OVERSPEED, &scan)? {
        let row = row?;
        if out.len() == MAX_WINDOWS {
            return Ok((out, true));
        }
        let start = text(&row, "window_start").unwrap_or_default();
        let end = text(&row, "window_end").unwrap_or_default();
        out.push(Window {
            rule: text(&row, "rule").unwrap_or_default(),
            start_s: parse_time(&start),
            end_s: parse_time(&end),
            start,
            end,
            avg_speed: text(&row, "avg_speed").and_then(|v| v.parse().ok()),
            count: text(&row, "count").and_then(|v| v.parse().ok()),
        });
    }
    Ok((out, false))
}

fn table_missing(e: &ServerError) -> bool {
    matches!(
        e,
        ServerError::Storage(speedlayer_storage::Error::UnknownTable(_))
    )
}

/// The cars flagged on `day` (the TTL set) with their overspeed windows of that day.
///
/// # Errors
/// [`ServerError::BadRequest`] for a malformed day, no TTL set service, a storage failure.
pub fn flagged(db: &Db, resp: Option<&Shared>, day: &str) -> Result<Flagged, ServerError> {
    let day = parse_day(day)?;
    let resp = resp.ok_or_else(|| ServerError::BadRequest(NO_RESP.into()))?;
    let (mut cars, pttl, mut truncated) = {
        let ks = resp.ks.lock();
        let now = ks.now_ms();
        match ks
            .iter_get(day.as_bytes())
            .filter(|e| ks.is_live_at(e, now))
        {
            None => (Vec::new(), -2, false),
            Some(e) => {
                let cars: Vec<String> = e
                    .set
                    .iter()
                    .map(|m| printable(m.as_bytes()))
                    .take(MAX_CARS)
                    .collect();
                (
                    cars,
                    e.expire_at.map_or(-1, |t| (t - now).max(0)),
                    e.set.len() > MAX_CARS,
                )
            }
        }
    };
    cars.sort();
    let next_day = parse_time(&day).map_or_else(String::new, |t| format_time(t + 86_400));
    let mut out = Vec::with_capacity(cars.len());
    for car in cars {
        let found = if check_car(&car).is_ok() {
            match windows(db, &car, &day, &next_day[..8]) {
                Ok(w) => w,
                Err(e) if table_missing(&e) => (Vec::new(), false),
                Err(e) => return Err(e),
            }
        } else {
            (Vec::new(), false)
        };
        truncated |= found.1;
        out.push(FlaggedCar {
            car,
            windows: found.0,
        });
    }
    Ok(Flagged {
        day,
        set_pttl_ms: pttl,
        cars: out,
        truncated,
    })
}

/// One car's speed over a time range.
#[derive(Debug, Serialize)]
pub struct SpeedSeries {
    /// Car number.
    pub car: String,
    /// Range start, `yyyyMMddHHmmss`.
    pub from: String,
    /// Range end (exclusive).
    pub to: String,
    /// Event times, seconds as if UTC.
    pub t: Vec<i64>,
    /// Speeds, km/h.
    pub speed: Vec<f64>,
    /// Overspeed windows starting in the range.
    pub windows: Vec<Window>,
    /// More points exist than returned ([`MAX_POINTS`]).
    pub truncated: bool,
}

/// The speed of `car` between `from` and `to` (`yyyyMMddHHmmss`, at most a day apart).
///
/// # Errors
/// [`ServerError::BadRequest`] for malformed parameters, a storage failure.
pub fn speed(db: &Db, car: &str, from: &str, to: &str) -> Result<SpeedSeries, ServerError> {
    check_car(car)?;
    let (Some(f), Some(t)) = (parse_time(from), parse_time(to)) else {
        return Err(ServerError::BadRequest(
            "from and to must be times as yyyyMMddHHmmss".into(),
        ));
    };
    if t <= f || t - f > MAX_RANGE_S {
        return Err(ServerError::BadRequest(format!(
            "the range must be positive and at most {MAX_RANGE_S} s"
        )));
    }
    let (from, to) = (format_time(f), format_time(t));
    let scan = Scan::new()
        .start(Bytes::from(format!("{car}#{from}")))
        .stop(Bytes::from(format!("{car}#{to}")))
        .limit(MAX_POINTS + 1);
    let mut series = SpeedSeries {
        car: car.to_owned(),
        from: from.clone(),
        to: to.clone(),
        t: Vec::new(),
        speed: Vec::new(),
        windows: Vec::new(),
        truncated: false,
    };
    let rows = match db.scan(DRIVING, &scan) {
        Ok(rows) => Some(rows),
        Err(speedlayer_storage::Error::UnknownTable(_)) => None,
        Err(e) => return Err(e.into()),
    };
    for row in rows.into_iter().flatten() {
        let row = row?;
        if series.t.len() == MAX_POINTS {
            series.truncated = true;
            break;
        }
        let key = String::from_utf8_lossy(&row.row);
        let time = key.split('#').nth(1).and_then(parse_time);
        let speed = text(&row, "speed").and_then(|v| v.parse::<f64>().ok());
        if let (Some(time), Some(speed)) = (time, speed) {
            series.t.push(time);
            series.speed.push(speed);
        }
    }
    match windows(db, car, &from, &to) {
        Ok((w, cut)) => {
            series.windows = w;
            series.truncated |= cut;
        }
        Err(e) if table_missing(&e) => {}
        Err(e) => return Err(e),
    }
    Ok(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_bad_ones_are_refused() {
        let t = parse_time("20261122143015").unwrap();
        assert_eq!(format_time(t), "20261122143015");
        assert_eq!(parse_time("19700101000000"), Some(0));
        assert_eq!(
            format_time(parse_time("20240229235959").unwrap() + 1),
            "20240301000000"
        );
        assert_eq!(parse_time("20261322143015"), None);
        assert_eq!(parse_time("2026112214301x"), None);
        assert_eq!(parse_day("2026-11-22").unwrap(), "20261122");
        assert!(parse_day("2026-11").is_err());
        assert!(check_car("V0042").is_ok());
        assert!(check_car("v0042").is_err());
    }
}
