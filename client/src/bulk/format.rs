//! How the loader turns one input line into cells: the built-in `status` format (SPEC §1
//! car status events into `car_status` rows, `speedlayer-events`) and the generic `csv`
//! format of `speedlayer import` with a column mapping.
//!
//! A line that does not fit gives a reason (it goes to the dead-letter file); this module
//! neither reads files nor sorts.

use bytes::Bytes;
use speedlayer_events::status_row::{STATUS_COLUMNS, STATUS_FAMILY, status_row, trim_line};

/// The line without its terminator (`\n` or `\r\n`).
pub fn strip_terminator(line: &[u8]) -> &[u8] {
    trim_line(line)
}
use speedlayer_proto::BulkCell;

use super::record::{self, Column};
use crate::error::ClientError;

/// What one field of a CSV line is, in `--columns`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvField {
    /// `:key`: part of the row key (key fields are joined with `#`, in order).
    Key,
    /// `:ts`: the cell timestamp, milliseconds or `yyyyMMddHHmmss` (UTC).
    Timestamp,
    /// `-`: ignored.
    Skip,
    /// `FAMILY:QUALIFIER`: a column.
    Column { family: String, qualifier: Bytes },
}

/// A CSV mapping: the delimiter and one [`CsvField`] per field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvMapping {
    /// Field separator (one byte).
    pub delimiter: u8,
    /// One entry per field of every line.
    pub fields: Vec<CsvField>,
}

impl CsvMapping {
    /// Parses `--columns`: comma-separated `:key`, `:ts`, `-` or `FAMILY:QUALIFIER`, e.g.
    /// `:ts,:key,cf1:speed,-,cf1:area` (HBase ImportTsv's `HBASE_ROW_KEY` and
    /// `HBASE_TS_KEY` are accepted for `:key` and `:ts`).
    ///
    /// # Errors
    /// [`ClientError::BadArgument`] for an empty spec, a column that is none of these, no
    /// `:key`, two `:ts`, or no column at all.
    pub fn parse(spec: &str, delimiter: u8) -> Result<CsvMapping, ClientError> {
        let bad = |why: String| ClientError::BadArgument(format!("--columns '{spec}': {why}"));
        let mut fields = Vec::new();
        for part in spec.split(',') {
            let part = part.trim();
            fields.push(match part {
                ":key" | "HBASE_ROW_KEY" => CsvField::Key,
                ":ts" | "HBASE_TS_KEY" => CsvField::Timestamp,
                "-" => CsvField::Skip,
                other => match other.split_once(':') {
                    Some((f, q)) if !f.is_empty() => CsvField::Column {
                        family: f.to_string(),
                        qualifier: Bytes::from(q.to_string()),
                    },
                    _ => {
                        return Err(bad(format!(
                            "'{other}' is not :key, :ts, - or FAMILY:QUALIFIER"
                        )));
                    }
                },
            });
        }
        let count = |want: &CsvField| fields.iter().filter(|f| *f == want).count();
        if count(&CsvField::Key) == 0 {
            return Err(bad("no :key field".into()));
        }
        if count(&CsvField::Timestamp) > 1 {
            return Err(bad("more than one :ts field".into()));
        }
        if !fields.iter().any(|f| matches!(f, CsvField::Column { .. })) {
            return Err(bad("no FAMILY:QUALIFIER column".into()));
        }
        let m = CsvMapping { delimiter, fields };
        if m.families().len() > record::MAX_FAMILIES {
            return Err(bad(format!("more than {} families", record::MAX_FAMILIES)));
        }
        Ok(m)
    }

    /// The families the mapping writes.
    pub fn families(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .fields
            .iter()
            .filter_map(|f| match f {
                CsvField::Column { family, .. } => Some(family.clone()),
                _ => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A line format of the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineFormat {
    /// SPEC §1 car status events, as `car_status` rows.
    Status,
    /// Any CSV with a column mapping.
    Csv(CsvMapping),
}

impl LineFormat {
    /// The families the format writes.
    pub fn families(&self) -> Vec<String> {
        match self {
            LineFormat::Status => vec![STATUS_FAMILY.to_string()],
            LineFormat::Csv(m) => m.families(),
        }
    }

    /// Appends the cells of `line` (with or without its terminator) to `out`; `default_ts`
    /// is the timestamp of cells whose line has none (the load's start).
    ///
    /// # Errors
    /// The reason the line is bad input (nothing is appended then).
    pub fn cells(
        &self,
        line: &[u8],
        default_ts: u64,
        out: &mut Vec<BulkCell>,
    ) -> Result<(), String> {
        let line = trim_line(line);
        match self {
            LineFormat::Status => {
                let text = speedlayer_events::line_str(line).map_err(|e| e.to_string())?;
                let ev = speedlayer_events::parse_status(text).map_err(|e| e.to_string())?;
                let row = status_row(&ev, line);
                let ts = u64::try_from(row.timestamp_ms)
                    .map_err(|_| format!("event time {} is before 1970", ev.event_time))?;
                let key = Bytes::from(row.key.clone());
                out.extend(row.cells().map(|(q, v)| BulkCell {
                    row: key.clone(),
                    family: STATUS_FAMILY.to_string(),
                    qualifier: Bytes::from_static(q.as_bytes()),
                    timestamp: ts,
                    value: Bytes::copy_from_slice(v),
                }));
                Ok(())
            }
            LineFormat::Csv(m) => csv_cells(m, line, default_ts, out),
        }
    }

    /// Appends the row record (`record.rs`) of `line` to `out`, family indexes into
    /// `families` (this format's [`LineFormat::families`]); its length.
    ///
    /// # Errors
    /// The reason the line is bad input (nothing is appended then).
    pub fn record(
        &self,
        line: &[u8],
        default_ts: u64,
        families: &[String],
        out: &mut Vec<u8>,
    ) -> Result<usize, String> {
        let line = trim_line(line);
        match self {
            LineFormat::Status => {
                let text = speedlayer_events::line_str(line).map_err(|e| e.to_string())?;
                let ev = speedlayer_events::parse_status(text).map_err(|e| e.to_string())?;
                let family = family_index(families, STATUS_FAMILY)?;
                status_record(&ev, line, family, out)
            }
            LineFormat::Csv(m) => csv_record(m, line, default_ts, families, out),
        }
    }
}

/// The record of a status event: the row `status_row` makes (same key, timestamp and
/// values, `status_record_matches_status_row`), built without allocating per value — the
/// numbers are formatted on the stack and the key in one buffer.
fn status_record(
    ev: &speedlayer_events::CarStatusEvent,
    line: &[u8],
    family: u8,
    out: &mut Vec<u8>,
) -> Result<usize, String> {
    use std::io::Write as _;
    let ts = u64::try_from(ev.event_time_ms)
        .map_err(|_| format!("event time {} is before 1970", ev.event_time))?;
    let mut key = Vec::with_capacity(ev.car_number.len() + ev.event_time.len() + 10);
    let _ = write!(
        key,
        "{}#{}#{:08x}",
        ev.car_number,
        ev.event_time,
        crc32fast::hash(trim_line(line))
    );
    // A u8 in decimal: at most 3 digits.
    let mut digits = [[0u8; 3]; 7];
    let mut lens = [0usize; 7];
    let numbers = [
        ev.tyre_psi[0],
        ev.tyre_psi[1],
        ev.tyre_psi[2],
        ev.tyre_psi[3],
        ev.engine,
        ev.brake,
        ev.battery,
    ];
    for ((d, len), n) in digits.iter_mut().zip(lens.iter_mut()).zip(numbers) {
        let mut w = &mut d[..];
        let _ = write!(w, "{n}");
        *len = 3 - w.len();
    }
    let num = |i: usize| &digits[i][..lens[i]];
    let lamp = |ok: bool| -> &'static [u8] { if ok { b"1" } else { b"0" } };
    let values: [&[u8]; 13] = [
        ev.event_time.as_bytes(),
        ev.car_number.as_bytes(),
        num(0),
        num(1),
        num(2),
        num(3),
        lamp(ev.lamps_ok[0]),
        lamp(ev.lamps_ok[1]),
        lamp(ev.lamps_ok[2]),
        lamp(ev.lamps_ok[3]),
        num(4),
        num(5),
        num(6),
    ];
    let mut cols: [Column<'_>; 13] = [Column {
        family,
        qualifier: b"",
        value: b"",
    }; 13];
    for ((c, q), v) in cols.iter_mut().zip(STATUS_COLUMNS).zip(values) {
        c.qualifier = q.as_bytes();
        c.value = v;
    }
    record::encode(&key, ts, &mut cols, out)
}

fn family_index(families: &[String], family: &str) -> Result<u8, String> {
    families
        .iter()
        .position(|f| f == family)
        .and_then(|i| u8::try_from(i).ok())
        .ok_or_else(|| format!("family {family} is not in the load's family table"))
}

fn csv_record(
    m: &CsvMapping,
    line: &[u8],
    default_ts: u64,
    families: &[String],
    out: &mut Vec<u8>,
) -> Result<usize, String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    let parts: Vec<&[u8]> = line.split(|b| *b == m.delimiter).collect();
    if parts.len() != m.fields.len() {
        return Err(format!(
            "expected {} fields, got {}",
            m.fields.len(),
            parts.len()
        ));
    }
    let mut key = Vec::new();
    let mut ts = default_ts;
    let mut cols = Vec::with_capacity(parts.len());
    for (f, p) in m.fields.iter().zip(&parts) {
        match f {
            CsvField::Key => {
                if !key.is_empty() {
                    key.push(b'#');
                }
                key.extend_from_slice(p);
            }
            CsvField::Timestamp => ts = parse_ts(p)?,
            CsvField::Column { family, qualifier } => cols.push(Column {
                family: family_index(families, family)?,
                qualifier,
                value: p,
            }),
            CsvField::Skip => {}
        }
    }
    record::encode(&key, ts, &mut cols, out)
}

fn csv_cells(
    m: &CsvMapping,
    line: &[u8],
    default_ts: u64,
    out: &mut Vec<BulkCell>,
) -> Result<(), String> {
    if line.is_empty() {
        return Err("empty line".into());
    }
    let parts: Vec<&[u8]> = line.split(|b| *b == m.delimiter).collect();
    if parts.len() != m.fields.len() {
        return Err(format!(
            "expected {} fields, got {}",
            m.fields.len(),
            parts.len()
        ));
    }
    let mut key = Vec::new();
    let mut ts = default_ts;
    for (f, p) in m.fields.iter().zip(&parts) {
        match f {
            CsvField::Key => {
                if !key.is_empty() {
                    key.push(b'#');
                }
                key.extend_from_slice(p);
            }
            CsvField::Timestamp => ts = parse_ts(p)?,
            _ => {}
        }
    }
    if key.is_empty() {
        return Err("empty row key".into());
    }
    let key = Bytes::from(key);
    for (f, p) in m.fields.iter().zip(parts) {
        if let CsvField::Column { family, qualifier } = f {
            out.push(BulkCell {
                row: key.clone(),
                family: family.clone(),
                qualifier: qualifier.clone(),
                timestamp: ts,
                value: Bytes::copy_from_slice(p),
            });
        }
    }
    Ok(())
}

/// A `:ts` field: 14 digits `yyyyMMddHHmmss` (UTC), or milliseconds since the epoch.
fn parse_ts(p: &[u8]) -> Result<u64, String> {
    let s = std::str::from_utf8(p).map_err(|_| "timestamp is not UTF-8".to_string())?;
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        if s.len() == 14 {
            let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S")
                .map_err(|e| format!("timestamp {s:?}: {e}"))?;
            return u64::try_from(t.and_utc().timestamp_millis())
                .map_err(|_| format!("timestamp {s:?} is before 1970"));
        }
        return s.parse().map_err(|e| format!("timestamp {s:?}: {e}"));
    }
    Err(format!(
        "timestamp {s:?} is neither yyyyMMddHHmmss nor milliseconds"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_record_matches_status_row() {
        let families = LineFormat::Status.families();
        for line in [
            "20261122143015,V0042,32,33,31,32,1,1,0,1,0,0,2\n",
            "20261122000000,A0000,28,99,0,7,0,0,0,0,9,99,10\r\n",
            "20261129235959,V0001,36,36,36,36,1,1,1,1,0,0,0",
        ] {
            let ev = speedlayer_events::parse_status(
                speedlayer_events::line_str(line.as_bytes()).unwrap(),
            )
            .unwrap();
            let row = status_row(&ev, trim_line(line.as_bytes()));
            let mut cols: Vec<Column<'_>> = row
                .cells()
                .map(|(q, v)| Column {
                    family: 0,
                    qualifier: q.as_bytes(),
                    value: v,
                })
                .collect();
            let mut want = Vec::new();
            record::encode(&row.key, row.timestamp_ms as u64, &mut cols, &mut want).unwrap();
            let mut got = Vec::new();
            LineFormat::Status
                .record(line.as_bytes(), 0, &families, &mut got)
                .unwrap();
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn status_lines_become_thirteen_cells_of_one_row() {
        let mut out = Vec::new();
        let line = b"20261122143015,V0042,32,33,31,32,1,1,0,1,0,0,2\n";
        LineFormat::Status.cells(line, 0, &mut out).unwrap();
        assert_eq!(out.len(), 13);
        assert!(out.iter().all(|c| c.row == out[0].row && c.family == "cf1"));
        assert!(out[0].row.starts_with(b"V0042#20261122143015#"));
        assert_eq!(out[0].timestamp, 1_795_357_815_000);
        let e = LineFormat::Status
            .cells(
                b"20261122143015,V0042,32,33,31,32,7,1,0,1,0,0,2",
                0,
                &mut out,
            )
            .unwrap_err();
        assert!(e.contains("field 7"), "{e}");
        assert_eq!(out.len(), 13, "a bad line adds nothing");
    }

    #[test]
    fn csv_mapping_parses_and_maps() {
        let m = CsvMapping::parse(":ts,:key,cf1:speed,-,cf2:area", b',').unwrap();
        assert_eq!(m.families(), ["cf1", "cf2"]);
        let f = LineFormat::Csv(m);
        let mut out = Vec::new();
        f.cells(b"20261122143015,V0042,87,x,A07", 7, &mut out)
            .unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(&out[0].row[..], b"V0042");
        assert_eq!(out[0].timestamp, 1_795_357_815_000);
        assert_eq!(
            (&out[1].family[..], &out[1].value[..]),
            ("cf2", &b"A07"[..])
        );
        assert!(
            f.cells(b"1,V1,87,x", 7, &mut out)
                .unwrap_err()
                .contains("fields")
        );
        assert!(f.cells(b"soon,V1,87,x,A", 7, &mut out).is_err());
        assert!(
            f.cells(b"1,,87,x,A", 7, &mut out)
                .unwrap_err()
                .contains("empty row key")
        );

        let m = CsvMapping::parse(":key,:key,cf1:v", b';').unwrap();
        let mut out = Vec::new();
        LineFormat::Csv(m).cells(b"a;b;1", 99, &mut out).unwrap();
        assert_eq!((&out[0].row[..], out[0].timestamp), (&b"a#b"[..], 99));

        for bad in ["", "cf1:v", ":key", ":key,:ts,:ts,cf1:v", ":key,nope"] {
            assert!(CsvMapping::parse(bad, b',').is_err(), "{bad:?} accepted");
        }
    }
}
