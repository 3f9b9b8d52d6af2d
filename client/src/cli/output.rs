//! How the CLI prints: aligned tables for people, one JSON object per row per line for
//! scripts. Bytes that are not UTF-8 are shown with `\xNN` escapes (as the HBase shell does)
//! and a backslash as `\\`, so every shown text maps back to one byte string
//! ([`spec::unescape`](super::spec::unescape) is the inverse, and the CLI accepts it).

use std::io::{self, Write};

use serde_json::json;
use speedlayer_proto::{
    BloomType, Compression, DescribeTableResponse, FamilySchema, RegionStatsResponse, Row,
    TableSchema,
};
use unicode_width::UnicodeWidthStr;

use super::args::TimeFormat;

/// A cell timestamp as `--time-format` asks.
pub fn timestamp(ms: u64, format: TimeFormat) -> String {
    match format {
        TimeFormat::Ms => ms.to_string(),
        TimeFormat::Iso => iso8601(ms),
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, UTC).
pub fn iso8601(ms: u64) -> String {
    let (secs, millis) = (ms / 1000, ms % 1000);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Days to a civil date (H. Hinnant's `civil_from_days`); fits i64 for every u64 ms.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{millis:03}Z")
}

/// Renders bytes as text: UTF-8 as is, other bytes and control characters as `\xNN`, a
/// backslash as `\\`.
pub fn show(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else if c.is_control() {
                // Byte by byte: U+0085 is shown as its UTF-8 bytes `\xC2\x85`.
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\x{b:02X}"));
                }
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// One row as the JSON object of the CLI contract; fields in contract order.
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct JsonRow {
    /// Row key.
    pub row: String,
    /// Cells: family, qualifier, newest first.
    pub cells: Vec<JsonCell>,
}

/// One cell of a [`JsonRow`].
#[derive(Debug, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct JsonCell {
    /// Family name.
    pub family: String,
    /// Qualifier.
    pub qualifier: String,
    /// Milliseconds since the epoch.
    pub timestamp: u64,
    /// Value.
    pub value: String,
}

impl From<&Row> for JsonRow {
    fn from(row: &Row) -> JsonRow {
        JsonRow {
            row: show(&row.row),
            cells: row
                .cells
                .iter()
                .map(|c| JsonCell {
                    family: show(&c.family),
                    qualifier: show(&c.qualifier),
                    timestamp: c.timestamp,
                    value: show(&c.value),
                })
                .collect(),
        }
    }
}

/// Writes one row as a JSON line; with [`TimeFormat::Iso`] each cell's `timestamp` is an
/// ISO 8601 string instead of a number.
///
/// # Errors
/// Failure to write `out`.
pub fn json_row(out: &mut dyn Write, row: &Row, times: TimeFormat) -> io::Result<()> {
    let line = match times {
        TimeFormat::Ms => serde_json::to_string(&JsonRow::from(row)),
        TimeFormat::Iso => {
            let mut doc = serde_json::to_value(JsonRow::from(row)).map_err(io::Error::other)?;
            if let Some(cells) = doc.get_mut("cells").and_then(|c| c.as_array_mut()) {
                for (cell, source) in cells.iter_mut().zip(&row.cells) {
                    cell["timestamp"] = json!(iso8601(source.timestamp));
                }
            }
            serde_json::to_string(&doc)
        }
    }
    .map_err(io::Error::other)?;
    writeln!(out, "{line}")
}

/// Writes rows as JSON lines, or as an aligned table followed by a row count.
///
/// # Errors
/// Failure to write `out`.
pub fn rows(out: &mut dyn Write, rows: &[Row], json: bool, times: TimeFormat) -> io::Result<()> {
    if json {
        for row in rows {
            json_row(out, row, times)?;
        }
        return Ok(());
    }
    let mut lines = vec![vec![
        "ROW".to_string(),
        "COLUMN".to_string(),
        "TIMESTAMP".to_string(),
        "VALUE".to_string(),
    ]];
    for row in rows {
        for cell in &row.cells {
            lines.push(vec![
                show(&row.row),
                format!("{}:{}", show(&cell.family), show(&cell.qualifier)),
                timestamp(cell.timestamp, times),
                show(&cell.value),
            ]);
        }
    }
    aligned(out, &lines)?;
    writeln!(out, "{} row(s)", rows.len())
}

/// Writes a table of strings with columns padded to their widest cell, measured in
/// terminal columns (a Hangul syllable takes two).
///
/// # Errors
/// Failure to write `out`.
pub fn aligned(out: &mut dyn Write, lines: &[Vec<String>]) -> io::Result<()> {
    let columns = lines.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            lines
                .iter()
                .filter_map(|l| l.get(i))
                .map(|s| s.width())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for line in lines {
        let mut text = String::new();
        for (i, cell) in line.iter().enumerate() {
            if i + 1 == line.len() {
                text.push_str(cell);
            } else {
                let pad = widths[i].saturating_sub(cell.width());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
}

fn compression_name(f: &FamilySchema) -> &'static str {
    match Compression::try_from(f.compression) {
        Ok(Compression::None) => "none",
        Ok(Compression::Lz4) => "lz4",
        _ => "default",
    }
}

fn bloom_name(f: &FamilySchema) -> &'static str {
    match BloomType::try_from(f.bloom) {
        Ok(BloomType::None) => "none",
        Ok(BloomType::Row) => "row",
        Ok(BloomType::RowCol) => "rowcol",
        _ => "default",
    }
}

/// A family as JSON; `ttl_seconds` is null for "forever".
fn family_json(f: &FamilySchema) -> serde_json::Value {
    json!({
        "name": f.name,
        "versions": f.max_versions,
        "ttl_seconds": f.ttl_ms.map(|ms| ms / 1000),
        "compression": compression_name(f),
        "bloom": bloom_name(f),
        "block_size": f.block_size,
    })
}

fn family_lines(schema: &TableSchema) -> Vec<Vec<String>> {
    let mut lines = vec![vec![
        "FAMILY".to_string(),
        "VERSIONS".to_string(),
        "TTL_SECONDS".to_string(),
        "COMPRESSION".to_string(),
        "BLOOM".to_string(),
        "BLOCK_SIZE".to_string(),
    ]];
    for f in &schema.families {
        let (compression, bloom) = (compression_name(f), bloom_name(f));
        lines.push(vec![
            f.name.clone(),
            f.max_versions.to_string(),
            f.ttl_ms
                .map_or("forever".to_string(), |ms| (ms / 1000).to_string()),
            compression.to_string(),
            bloom.to_string(),
            f.block_size.to_string(),
        ]);
    }
    lines
}

/// Writes the table list, or one JSON object per table per line
/// (`{"table": NAME, "families": [FAMILY...]}`).
///
/// # Errors
/// Failure to write `out`.
pub fn tables(out: &mut dyn Write, tables: &[TableSchema], json: bool) -> io::Result<()> {
    if json {
        for t in tables {
            let families: Vec<_> = t.families.iter().map(family_json).collect();
            writeln!(out, "{}", json!({ "table": t.name, "families": families }))?;
        }
        return Ok(());
    }
    let mut lines = vec![vec!["TABLE".to_string(), "FAMILIES".to_string()]];
    for t in tables {
        let families: Vec<&str> = t.families.iter().map(|f| f.name.as_str()).collect();
        lines.push(vec![t.name.clone(), families.join(",")]);
    }
    aligned(out, &lines)?;
    writeln!(out, "{} table(s)", tables.len())
}

/// Writes a table's families and regions, as tables or as one JSON object.
///
/// # Errors
/// Failure to write `out`.
pub fn describe(out: &mut dyn Write, desc: &DescribeTableResponse, json: bool) -> io::Result<()> {
    let schema = desc.schema.clone().unwrap_or_default();
    if json {
        let families: Vec<_> = schema.families.iter().map(family_json).collect();
        let regions: Vec<_> = desc
            .regions
            .iter()
            .map(|r| {
                json!({
                    "region": r.region_id,
                    "start": show(&r.start_key),
                    "end": show(&r.end_key),
                    "server": r.server_addr,
                })
            })
            .collect();
        let doc = json!({ "table": schema.name, "families": families, "regions": regions });
        return writeln!(out, "{doc}");
    }
    writeln!(out, "table {}", schema.name)?;
    aligned(out, &family_lines(&schema))?;
    let mut lines = vec![vec![
        "REGION".to_string(),
        "START".to_string(),
        "END".to_string(),
        "SERVER".to_string(),
    ]];
    for r in &desc.regions {
        lines.push(vec![
            r.region_id.to_string(),
            show(&r.start_key),
            show(&r.end_key),
            r.server_addr.clone(),
        ]);
    }
    aligned(out, &lines)
}

/// Writes region statistics as a table or one JSON object.
///
/// # Errors
/// Failure to write `out`.
pub fn stats(out: &mut dyn Write, stats: &RegionStatsResponse, json: bool) -> io::Result<()> {
    if json {
        let regions: Vec<_> = stats
            .regions
            .iter()
            .map(|r| {
                let loc = r.location.clone().unwrap_or_default();
                json!({
                    "table": loc.table,
                    "region": loc.region_id,
                    "start": show(&loc.start_key),
                    "end": show(&loc.end_key),
                    "memstore_bytes": r.memstore_bytes,
                    "files": r.files,
                    "file_bytes": r.file_bytes,
                    "flushes": r.flushes,
                    "compactions": r.compactions,
                    "cells_written": r.cells_written,
                })
            })
            .collect();
        let doc = json!({
            "regions": regions,
            "wal_syncs": stats.wal_syncs,
            "block_cache_hits": stats.block_cache_hits,
            "block_cache_misses": stats.block_cache_misses,
        });
        return writeln!(out, "{doc}");
    }
    let mut lines = vec![
        [
            "TABLE",
            "REGION",
            "START",
            "END",
            "MEMSTORE",
            "FILES",
            "FILE_BYTES",
            "FLUSHES",
            "COMPACTIONS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
    ];
    for r in &stats.regions {
        let loc = r.location.clone().unwrap_or_default();
        lines.push(vec![
            loc.table,
            loc.region_id.to_string(),
            show(&loc.start_key),
            show(&loc.end_key),
            r.memstore_bytes.to_string(),
            r.files.to_string(),
            r.file_bytes.to_string(),
            r.flushes.to_string(),
            r.compactions.to_string(),
        ]);
    }
    aligned(out, &lines)?;
    writeln!(
        out,
        "wal_syncs={} block_cache_hits={} block_cache_misses={}",
        stats.wal_syncs, stats.block_cache_hits, stats.block_cache_misses
    )
}

/// `speedlayer cluster status`: a summary line, then one line per member (`*` marks the
/// master), or one JSON object.
///
/// # Errors
/// Failure to write `out`.
pub fn cluster_status(
    out: &mut dyn Write,
    status: &speedlayer_cluster::ClusterStatus,
    json: bool,
) -> io::Result<()> {
    if json {
        let text = serde_json::to_string(status).map_err(io::Error::other)?;
        return writeln!(out, "{text}");
    }
    writeln!(
        out,
        "cluster {}: {} server{}, master {} (etcd revision {})",
        status.cluster,
        status.servers.len(),
        if status.servers.len() == 1 { "" } else { "s" },
        status.master.as_deref().unwrap_or("none"),
        status.revision
    )?;
    if status.servers.is_empty() {
        return Ok(());
    }
    let mut lines = vec![
        [
            "", "SERVER", "GRPC", "HTTP", "RESP", "REGIONS", "STARTED", "VERSION",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for s in &status.servers {
        let master = status.master.as_deref() == Some(s.id.as_str());
        lines.push(vec![
            if master { "*" } else { "" }.to_owned(),
            s.id.clone(),
            s.grpc.clone(),
            s.http.clone(),
            s.resp.clone().unwrap_or_else(|| "-".into()),
            status.open_on(&s.id).to_string(),
            iso8601(s.started_ms),
            s.version.clone(),
        ]);
    }
    aligned(out, &lines)?;
    if status.regions.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    let mut lines = vec![
        [
            "TABLE", "REGION", "START", "END", "STATE", "SERVER", "EPOCH",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for r in &status.regions {
        let boundary = |hex: &str| match speedlayer_cluster::unhex(hex) {
            _ if hex.is_empty() => "-".to_owned(),
            Some(b) => String::from_utf8_lossy(&b).escape_debug().to_string(),
            None => hex.to_owned(),
        };
        let state = format!("{:?}", r.state).to_lowercase();
        let state = match &r.target {
            Some(t) => format!("{state} -> {t}"),
            None => state,
        };
        lines.push(vec![
            r.table.clone(),
            r.id.to_string(),
            boundary(&r.start),
            boundary(&r.end),
            state,
            r.server.clone().unwrap_or_else(|| "-".into()),
            r.epoch.to_string(),
        ]);
    }
    aligned(out, &lines)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use speedlayer_proto::Cell;

    fn sample() -> Row {
        Row {
            row: Bytes::from_static(b"V0042-20261122143015"),
            cells: vec![Cell {
                family: Bytes::from_static(b"cf1"),
                qualifier: Bytes::from_static(b"speed"),
                timestamp: 1_763_800_000_000,
                value: Bytes::from_static(b"87"),
            }],
        }
    }

    #[test]
    fn json_line_has_the_contract_shape() {
        let mut out = Vec::new();
        rows(&mut out, &[sample()], true, TimeFormat::Ms).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"row\":\"V0042-20261122143015\",\"cells\":[{\"family\":\"cf1\",\"qualifier\":\"speed\",\"timestamp\":1763800000000,\"value\":\"87\"}]}\n"
        );
    }

    #[test]
    fn table_is_aligned() {
        let mut out = Vec::new();
        rows(&mut out, &[sample()], false, TimeFormat::Ms).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].find("COLUMN"), lines[1].find("cf1:speed"));
        assert_eq!(lines[0].find("VALUE"), lines[1].find("87"));
        assert_eq!(lines[2], "1 row(s)");
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_763_800_000_000), "2025-11-22T08:26:40.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
        // The largest timestamp still renders (no overflow).
        assert!(iso8601(u64::MAX).ends_with(".615Z"));
    }

    #[test]
    fn wide_characters_align() {
        let lines = vec![
            vec!["ROW".to_string(), "VALUE".to_string()],
            vec!["차량-0042".to_string(), "87".to_string()],
        ];
        let mut out = Vec::new();
        aligned(&mut out, &lines).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        let col = |line: &str, needle: &str| line[..line.find(needle).unwrap()].width();
        assert_eq!(col(rows[0], "VALUE"), col(rows[1], "87"), "{text}");
    }

    #[test]
    fn binary_bytes_are_escaped() {
        assert_eq!(show(b"a\x00\xffb"), "a\\x00\\xFFb");
        // A literal backslash cannot be mistaken for an escape.
        assert_eq!(show(b"\\x00"), "\\\\x00");
        assert_eq!(show("차".as_bytes()), "차");
    }
}
