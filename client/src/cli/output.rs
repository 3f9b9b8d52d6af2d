//! How the CLI prints: aligned tables for people, one JSON object per row per line for
//! scripts. Bytes that are not UTF-8 are shown with `\xNN` escapes (as the HBase shell does)
//! and a backslash as `\\`, so every shown text maps back to one byte string
//! ([`spec::unescape`](super::spec::unescape) is the inverse, and the CLI accepts it).

use std::io::{self, Write};

use serde_json::json;
use speedlayer_proto::{
    BloomType, Compression, DescribeTableResponse, RegionStatsResponse, Row, TableSchema,
};

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

/// Writes one row as a JSON line.
///
/// # Errors
/// Failure to write `out`.
pub fn json_row(out: &mut dyn Write, row: &Row) -> io::Result<()> {
    let line = serde_json::to_string(&JsonRow::from(row)).map_err(io::Error::other)?;
    writeln!(out, "{line}")
}

/// Writes rows as JSON lines, or as an aligned table followed by a row count.
///
/// # Errors
/// Failure to write `out`.
pub fn rows(out: &mut dyn Write, rows: &[Row], json: bool) -> io::Result<()> {
    if json {
        for row in rows {
            json_row(out, row)?;
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
                cell.timestamp.to_string(),
                show(&cell.value),
            ]);
        }
    }
    aligned(out, &lines)?;
    writeln!(out, "{} row(s)", rows.len())
}

/// Writes a table of strings with columns padded to their widest cell.
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
                .map(|s| s.chars().count())
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
                let pad = widths[i].saturating_sub(cell.chars().count());
                text.push_str(cell);
                text.push_str(&" ".repeat(pad + 2));
            }
        }
        writeln!(out, "{}", text.trim_end())?;
    }
    Ok(())
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
        let compression = match Compression::try_from(f.compression) {
            Ok(Compression::None) => "none",
            Ok(Compression::Lz4) => "lz4",
            _ => "default",
        };
        let bloom = match BloomType::try_from(f.bloom) {
            Ok(BloomType::None) => "none",
            Ok(BloomType::Row) => "row",
            Ok(BloomType::RowCol) => "rowcol",
            _ => "default",
        };
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

/// Writes the table list.
///
/// # Errors
/// Failure to write `out`.
pub fn tables(out: &mut dyn Write, tables: &[TableSchema]) -> io::Result<()> {
    let mut lines = vec![vec!["TABLE".to_string(), "FAMILIES".to_string()]];
    for t in tables {
        let families: Vec<&str> = t.families.iter().map(|f| f.name.as_str()).collect();
        lines.push(vec![t.name.clone(), families.join(",")]);
    }
    aligned(out, &lines)?;
    writeln!(out, "{} table(s)", tables.len())
}

/// Writes a table's families and regions.
///
/// # Errors
/// Failure to write `out`.
pub fn describe(out: &mut dyn Write, desc: &DescribeTableResponse) -> io::Result<()> {
    let schema = desc.schema.clone().unwrap_or_default();
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
        rows(&mut out, &[sample()], true).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"row\":\"V0042-20261122143015\",\"cells\":[{\"family\":\"cf1\",\"qualifier\":\"speed\",\"timestamp\":1763800000000,\"value\":\"87\"}]}\n"
        );
    }

    #[test]
    fn table_is_aligned() {
        let mut out = Vec::new();
        rows(&mut out, &[sample()], false).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].find("COLUMN"), lines[1].find("cf1:speed"));
        assert_eq!(lines[0].find("VALUE"), lines[1].find("87"));
        assert_eq!(lines[2], "1 row(s)");
    }

    #[test]
    fn binary_bytes_are_escaped() {
        assert_eq!(show(b"a\x00\xffb"), "a\\x00\\xFFb");
        // A literal backslash cannot be mistaken for an escape.
        assert_eq!(show(b"\\x00"), "\\\\x00");
        assert_eq!(show("차".as_bytes()), "차");
    }
}
