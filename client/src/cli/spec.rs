//! Parsing of the CLI's compact specs: `--family NAME[:versions=N][:ttl=SECONDS]
//! [:compression=lz4|none][:bloom=row|rowcol|none][:blocksize=BYTES]`, `FAMILY:QUALIFIER`
//! columns, `FROM,TO` time ranges, and keys and values typed with the `\xNN` escapes the
//! output prints. Pure functions; no network.

use bytes::Bytes;
use speedlayer_proto::{BloomType, Column, Compression, FamilySchema, TimeRange};

use crate::error::ClientError;

/// Parses a `--family` spec.
///
/// # Errors
/// [`ClientError::BadFamilySpec`] naming the offending option.
pub fn parse_family(spec: &str) -> Result<FamilySchema, ClientError> {
    let bad = |reason: String| ClientError::BadFamilySpec {
        spec: spec.to_string(),
        reason,
    };
    let mut parts = spec.split(':');
    let name = parts.next().unwrap_or_default();
    if name.is_empty() || name.contains('=') {
        return Err(bad(
            "the family name comes first and must not be empty".into()
        ));
    }
    let mut family = FamilySchema {
        name: name.to_string(),
        ..Default::default()
    };
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("option '{part}' is not KEY=VALUE")))?;
        let number = |what: &str| {
            value.parse::<u64>().map_err(|_| {
                bad(format!(
                    "{what} must be a non-negative integer, got '{value}'"
                ))
            })
        };
        match key {
            "versions" => {
                let n = number("versions")?;
                if n == 0 || n > u64::from(u32::MAX) {
                    return Err(bad(format!("versions must be 1..={}, got {n}", u32::MAX)));
                }
                family.max_versions = n as u32;
            }
            "ttl" => {
                let secs = number("ttl")?;
                let ms = secs
                    .checked_mul(1000)
                    .ok_or_else(|| bad(format!("ttl {secs} s overflows milliseconds")))?;
                family.ttl_ms = Some(ms);
            }
            "compression" => {
                family.compression = match value {
                    "lz4" => Compression::Lz4,
                    "none" => Compression::None,
                    _ => {
                        return Err(bad(format!(
                            "compression must be lz4 or none, got '{value}'"
                        )));
                    }
                } as i32;
            }
            "bloom" => {
                family.bloom = match value {
                    "row" => BloomType::Row,
                    "rowcol" => BloomType::RowCol,
                    "none" => BloomType::None,
                    _ => {
                        return Err(bad(format!(
                            "bloom must be row, rowcol or none, got '{value}'"
                        )));
                    }
                } as i32;
            }
            "blocksize" => {
                let n = number("blocksize")?;
                family.block_size =
                    u32::try_from(n).map_err(|_| bad(format!("blocksize {n} is too large")))?;
            }
            other => {
                return Err(bad(format!(
                    "unknown option '{other}' (versions, ttl, compression, bloom, blocksize)"
                )));
            }
        }
    }
    Ok(family)
}

/// Parses typed text into bytes, the inverse of [`output::show`](super::output::show):
/// `\xNN` is the byte with hex value NN (either case), `\\` one backslash, and everything
/// else is taken as typed (UTF-8). `what` names the text in errors ("row key").
///
/// # Errors
/// [`ClientError::BadArgument`] on any other backslash sequence, so that a typo is not
/// stored silently.
pub fn unescape(what: &str, text: &str) -> Result<Bytes, ClientError> {
    if !text.contains('\\') {
        return Ok(Bytes::from(text.to_string()));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'x') => {
                let byte = bytes
                    .get(i + 2..i + 4)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match byte {
                    Some(b) => out.push(b),
                    None => return Err(bad_escape(what, text, i)),
                }
                i += 4;
            }
            _ => return Err(bad_escape(what, text, i)),
        }
    }
    Ok(Bytes::from(out))
}

fn bad_escape(what: &str, text: &str, at: usize) -> ClientError {
    let seq: String = text[at..].chars().take(4).collect();
    ClientError::BadArgument(format!(
        "{what} '{text}': bad escape '{seq}' (write \\xNN for a byte, \\\\ for a backslash)"
    ))
}

/// Parses `FAMILY:QUALIFIER` (qualifier `Some`) or `FAMILY` (qualifier `None`); both may
/// use the escapes of [`unescape`].
///
/// # Errors
/// [`ClientError::BadColumn`] on an empty family, [`ClientError::BadArgument`] on a bad
/// escape.
pub fn parse_column(column: &str) -> Result<(Bytes, Option<Bytes>), ClientError> {
    let (family, qualifier) = match column.split_once(':') {
        Some((f, q)) => (f, Some(unescape("qualifier", q)?)),
        None => (column, None),
    };
    if family.is_empty() {
        return Err(ClientError::BadColumn(column.to_string()));
    }
    Ok((unescape("family", family)?, qualifier))
}

/// Parses repeated `--column` values.
///
/// # Errors
/// As [`parse_column`].
pub fn parse_columns(columns: &[String]) -> Result<Vec<Column>, ClientError> {
    columns
        .iter()
        .map(|c| parse_column(c).map(|(family, qualifier)| Column { family, qualifier }))
        .collect()
}

/// Parses `FROM,TO` milliseconds into a `[FROM, TO)` range.
///
/// # Errors
/// [`ClientError::BadArgument`] when not two integers with FROM < TO.
pub fn parse_time_range(text: &str) -> Result<TimeRange, ClientError> {
    let bad = || {
        ClientError::BadArgument(format!(
            "--time-range '{text}': expected FROM,TO in milliseconds with FROM < TO"
        ))
    };
    let (from, to) = text.split_once(',').ok_or_else(bad)?;
    let min = from.trim().parse::<u64>().map_err(|_| bad())?;
    let max = to.trim().parse::<u64>().map_err(|_| bad())?;
    if min >= max {
        return Err(bad());
    }
    Ok(TimeRange { min, max })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_with_every_option() {
        let f =
            parse_family("cf1:versions=3:ttl=604800:compression=none:bloom=rowcol:blocksize=4096")
                .unwrap();
        assert_eq!(f.name, "cf1");
        assert_eq!(f.max_versions, 3);
        assert_eq!(f.ttl_ms, Some(604_800_000));
        assert_eq!(f.compression, Compression::None as i32);
        assert_eq!(f.bloom, BloomType::RowCol as i32);
        assert_eq!(f.block_size, 4096);
    }

    #[test]
    fn bare_family_takes_server_defaults() {
        let f = parse_family("cf1").unwrap();
        assert_eq!(f.max_versions, 0);
        assert_eq!(f.ttl_ms, None);
        assert_eq!(f.compression, Compression::Unspecified as i32);
    }

    #[test]
    fn bad_family_specs_say_why() {
        for (spec, needle) in [
            ("", "name"),
            ("cf1:versions=0", "versions"),
            ("cf1:versions=x", "versions"),
            ("cf1:ttl", "KEY=VALUE"),
            ("cf1:compression=zstd", "lz4 or none"),
            ("cf1:bloom=all", "row, rowcol or none"),
            ("cf1:colour=red", "unknown option 'colour'"),
        ] {
            let err = parse_family(spec).unwrap_err().to_string();
            assert!(err.contains(needle), "{spec}: {err}");
        }
    }

    #[test]
    fn escapes_are_the_inverse_of_show() {
        let all: Vec<u8> = (0..=255u8)
            .chain(*b"\\x41\\\\ \xea\xb0\x80 \xc2\x85")
            .collect();
        let shown = crate::cli::output::show(&all);
        assert_eq!(unescape("value", &shown).unwrap(), all);
        assert_eq!(
            unescape("row key", "a\\x00\\xffb").unwrap(),
            &b"a\x00\xffb"[..]
        );
        assert_eq!(unescape("row key", "c:\\\\dir").unwrap(), &b"c:\\dir"[..]);
        assert_eq!(unescape("row key", "차").unwrap(), "차".as_bytes());
        for bad in ["a\\q", "a\\x4", "a\\xzz", "a\\"] {
            let err = unescape("row key", bad).unwrap_err().to_string();
            assert!(err.contains("bad escape"), "{bad}: {err}");
        }
    }

    #[test]
    fn columns_and_time_ranges() {
        let (f, q) = parse_column("cf1:speed").unwrap();
        assert_eq!(
            (f.as_ref(), q.as_deref()),
            (&b"cf1"[..], Some(&b"speed"[..]))
        );
        let (f, q) = parse_column("cf1").unwrap();
        assert_eq!((f.as_ref(), q), (&b"cf1"[..], None));
        assert!(parse_column(":x").is_err());
        assert_eq!(
            parse_time_range("10,20").unwrap(),
            TimeRange { min: 10, max: 20 }
        );
        assert!(parse_time_range("20,10").is_err());
        assert!(parse_time_range("10").is_err());
    }
}
