//! The catalog: which tables exist, their schemas, and their regions' key ranges.
//!
//! Stored in `<data dir>/catalog` as one checksummed record, replaced atomically (write
//! `catalog.tmp`, fsync, rename, fsync the directory), so after a crash it is either the
//! old or the new catalog. It does not hold any cell data.
//!
//! Grammar, invariants and a worked example: `docs/catalog_format.md`.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::coding::{DecodeError, Reader, put_bytes, put_u32, put_u64, put_varint};
use crate::error::{Error, Result};
use crate::schema::CompactionStyle;
use crate::schema::{BloomType, Compression, FamilyOptions, TableSchema};

const MAGIC: &[u8; 8] = b"SLCATLG1";
const VERSION: u8 = 2;

/// A region as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegionEntry {
    pub id: u64,
    pub start: Bytes,
    pub end: Bytes,
}

/// A table as the catalog records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableEntry {
    pub schema: TableSchema,
    /// Sorted by start key; together they cover every row.
    pub regions: Vec<RegionEntry>,
}

/// The whole catalog.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    pub next_region_id: u64,
    pub tables: Vec<TableEntry>,
}

impl Catalog {
    /// The catalog file of a data directory.
    pub fn path(dir: &Path) -> PathBuf {
        dir.join("catalog")
    }

    /// Reads the catalog of `dir` (empty if there is none yet).
    ///
    /// # Errors
    /// `Io`, `ChecksumMismatch` or `Corruption` naming the catalog file.
    pub fn load(fs: &dyn crate::fs::Fs, dir: &Path) -> Result<Catalog> {
        let path = Catalog::path(dir);
        let raw = match fs.read(&path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Catalog {
                    next_region_id: 1,
                    tables: Vec::new(),
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        Catalog::decode(&raw, &path)
    }

    /// Decodes the bytes of a catalog file; `file` only names it in errors. [`Catalog::load`]
    /// reads the file and calls this.
    ///
    /// # Errors
    /// `ChecksumMismatch` or `Corruption` naming `file`.
    pub fn decode(raw: &[u8], file: &Path) -> Result<Catalog> {
        Catalog::decode_raw(raw).map_err(|e| match e {
            CatalogError::Checksum { expected, got } => Error::ChecksumMismatch {
                file: file.to_path_buf(),
                offset: 16,
                expected,
                got,
            },
            CatalogError::Decode(d) => d.into_error(file, 16),
        })
    }

    /// Writes the catalog atomically.
    ///
    /// # Errors
    /// `Io` naming the file that failed.
    pub fn store(&self, fs: &dyn crate::fs::Fs, dir: &Path) -> Result<()> {
        crate::fs::write_atomic(fs, &Catalog::path(dir), &self.encode())
    }

    /// The file bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut p = vec![VERSION];
        put_u64(&mut p, self.next_region_id);
        put_varint(&mut p, self.tables.len() as u64);
        for t in &self.tables {
            put_bytes(&mut p, t.schema.name.as_bytes());
            put_varint(&mut p, t.schema.families.len() as u64);
            for f in &t.schema.families {
                put_bytes(&mut p, f.name.as_bytes());
                put_varint(&mut p, u64::from(f.max_versions));
                p.push(u8::from(f.ttl_ms.is_some()));
                put_u64(&mut p, f.ttl_ms.unwrap_or(0));
                p.push(match f.compression {
                    Compression::None => 0,
                    Compression::Lz4 => 1,
                });
                p.push(match f.bloom {
                    BloomType::None => 0,
                    BloomType::Row => 1,
                    BloomType::RowCol => 2,
                });
                put_u32(&mut p, f.block_size);
                encode_compaction(&mut p, f.compaction);
            }
            put_varint(&mut p, t.regions.len() as u64);
            for r in &t.regions {
                put_u64(&mut p, r.id);
                put_bytes(&mut p, &r.start);
                put_bytes(&mut p, &r.end);
            }
        }
        frame(&p)
    }

    fn decode_raw(raw: &[u8]) -> std::result::Result<Catalog, CatalogError> {
        let mut h = Reader::new(raw);
        if h.take(8, "magic")? != MAGIC {
            return Err(DecodeError::new(0, "bad catalog magic").into());
        }
        let len = h.u32("payload length")? as usize;
        let expected = h.u32("payload crc")?;
        let payload = h.take(len, "payload")?;
        if !h.is_empty() {
            return Err(h.err("trailing bytes after the catalog").into());
        }
        let got = crc32fast::hash(payload);
        if got != expected {
            return Err(CatalogError::Checksum { expected, got });
        }
        let mut r = Reader::new(payload);
        let version = r.u8("version")?;
        if version != VERSION && version != 1 {
            return Err(DecodeError::new(0, "unknown catalog version").into());
        }
        let next_region_id = r.u64("next region id")?;
        let n = r.varint_usize("table count", payload.len())?;
        let text = |b: &[u8], r: &Reader<'_>| {
            String::from_utf8(b.to_vec()).map_err(|_| r.err("name is not UTF-8"))
        };
        let mut tables = Vec::with_capacity(n);
        for _ in 0..n {
            let name = text(r.bytes("table name")?, &r)?;
            let nf = r.varint_usize("family count", payload.len())?;
            let mut families = Vec::with_capacity(nf);
            for _ in 0..nf {
                let mut f = FamilyOptions::new(text(r.bytes("family name")?, &r)?);
                f.max_versions = u32::try_from(r.varint("max versions")?)
                    .map_err(|_| r.err("max versions out of range"))?;
                let has_ttl = r.u8("ttl flag")? != 0;
                let ttl = r.u64("ttl")?;
                f.ttl_ms = has_ttl.then_some(ttl);
                f.compression = match r.u8("compression")? {
                    0 => Compression::None,
                    1 => Compression::Lz4,
                    c => return Err(r.err(format!("unknown compression {c}")).into()),
                };
                f.bloom = match r.u8("bloom")? {
                    0 => BloomType::None,
                    1 => BloomType::Row,
                    2 => BloomType::RowCol,
                    b => return Err(r.err(format!("unknown bloom type {b}")).into()),
                };
                f.block_size = r.u32("block size")?;
                if version >= 2 {
                    f.compaction = decode_compaction(&mut r)?;
                }
                families.push(f);
            }
            let nr = r.varint_usize("region count", payload.len())?;
            let mut regions = Vec::with_capacity(nr);
            for _ in 0..nr {
                regions.push(RegionEntry {
                    id: r.u64("region id")?,
                    start: Bytes::copy_from_slice(r.bytes("region start")?),
                    end: Bytes::copy_from_slice(r.bytes("region end")?),
                });
            }
            tables.push(TableEntry {
                schema: TableSchema { name, families },
                regions,
            });
        }
        if !r.is_empty() {
            return Err(r.err("trailing bytes in the catalog payload").into());
        }
        let catalog = Catalog {
            next_region_id,
            tables,
        };
        catalog
            .check()
            .map_err(|reason| DecodeError::new(0, reason))?;
        Ok(catalog)
    }

    /// The invariants of `catalog_format.md` §3 that the grammar cannot express: valid
    /// schemas (their names become directory names), unique table names, regions that tile
    /// each table's key space, unique region ids below `next_region_id`.
    fn check(&self) -> std::result::Result<(), String> {
        let mut ids = std::collections::HashSet::new();
        for (i, t) in self.tables.iter().enumerate() {
            let name = &t.schema.name;
            t.schema.validate().map_err(|e| e.to_string())?;
            if self.tables[..i].iter().any(|u| &u.schema.name == name) {
                return Err(format!("table '{name}' appears twice"));
            }
            let (Some(first), Some(last)) = (t.regions.first(), t.regions.last()) else {
                return Err(format!("table '{name}' has no region"));
            };
            if !first.start.is_empty() || !last.end.is_empty() {
                return Err(format!(
                    "the regions of table '{name}' do not cover every row"
                ));
            }
            for (j, r) in t.regions.iter().enumerate() {
                if !r.end.is_empty() && r.start >= r.end {
                    return Err(format!(
                        "region {} of table '{name}' is empty or inverted",
                        r.id
                    ));
                }
                if let Some(next) = t.regions.get(j + 1)
                    && (r.end.is_empty() || next.start != r.end)
                {
                    return Err(format!(
                        "regions {} and {} of table '{name}' leave a gap or overlap",
                        r.id, next.id
                    ));
                }
                if r.id >= self.next_region_id || !ids.insert(r.id) {
                    return Err(format!(
                        "region id {} of table '{name}' is repeated or not below the next id {}",
                        r.id, self.next_region_id
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `payload` behind the catalog header (magic, length, checksum).
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + payload.len());
    out.extend_from_slice(MAGIC);
    put_u32(&mut out, payload.len() as u32);
    put_u32(&mut out, crc32fast::hash(payload));
    out.extend_from_slice(payload);
    out
}

enum CatalogError {
    Checksum { expected: u32, got: u32 },
    Decode(DecodeError),
}

impl From<DecodeError> for CatalogError {
    fn from(e: DecodeError) -> Self {
        CatalogError::Decode(e)
    }
}

/// Compaction style of a family (catalog version 2).
fn encode_compaction(p: &mut Vec<u8>, style: CompactionStyle) {
    match style {
        CompactionStyle::Exploring => p.push(0),
        CompactionStyle::DateTiered {
            base_window_ms,
            windows_per_tier,
            max_tier_age_ms,
        } => {
            p.push(1);
            put_u64(p, base_window_ms);
            put_u64(p, windows_per_tier);
            put_u64(p, max_tier_age_ms);
        }
    }
}

fn decode_compaction(r: &mut Reader<'_>) -> std::result::Result<CompactionStyle, DecodeError> {
    match r.u8("compaction style")? {
        0 => Ok(CompactionStyle::Exploring),
        1 => Ok(CompactionStyle::DateTiered {
            base_window_ms: r.u64("base window")?,
            windows_per_tier: r.u64("windows per tier")?,
            max_tier_age_ms: r.u64("max tier age")?,
        }),
        c => Err(r.err(format!("unknown compaction style {c}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Catalog {
        Catalog {
            next_region_id: 7,
            tables: vec![TableEntry {
                schema: TableSchema::new(
                    "driving",
                    vec![
                        FamilyOptions::new("cf1").max_versions(3).ttl_ms(1000),
                        FamilyOptions {
                            compression: Compression::None,
                            bloom: BloomType::RowCol,
                            ..FamilyOptions::new("cf2")
                        },
                    ],
                ),
                regions: vec![
                    RegionEntry {
                        id: 1,
                        start: Bytes::new(),
                        end: Bytes::from("m"),
                    },
                    RegionEntry {
                        id: 2,
                        start: Bytes::from("m"),
                        end: Bytes::new(),
                    },
                ],
            }],
        }
    }

    /// Pins the worked example of `docs/catalog_format.md` §4.
    #[test]
    fn doc_example_bytes() {
        let c = Catalog {
            next_region_id: 3,
            tables: vec![TableEntry {
                schema: TableSchema::new("t", vec![FamilyOptions::new("f")]),
                regions: vec![
                    RegionEntry {
                        id: 1,
                        start: Bytes::new(),
                        end: Bytes::from("m"),
                    },
                    RegionEntry {
                        id: 2,
                        start: Bytes::from("m"),
                        end: Bytes::new(),
                    },
                ],
            }],
        };
        let doc = "53 4c 43 41 54 4c 47 31 37 00 00 00 2d e6 44 d2 \
                   02 03 00 00 00 00 00 00 00 01 01 74 01 01 66 01 \
                   00 00 00 00 00 00 00 00 00 01 01 00 00 01 00 00 \
                   02 01 00 00 00 00 00 00 00 00 01 6d 02 00 00 00 \
                   00 00 00 00 01 6d 00";
        let want: Vec<u8> = doc
            .split_whitespace()
            .map(|h| u8::from_str_radix(h, 16).unwrap())
            .collect();
        assert_eq!(c.encode(), want);
        assert_eq!(Catalog::decode_raw(&want).ok(), Some(c));
    }

    #[test]
    fn round_trips() {
        let c = sample();
        assert_eq!(Catalog::decode_raw(&c.encode()).ok(), Some(c));
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let raw = sample().encode();
        for i in 0..raw.len() {
            let mut bad = raw.clone();
            bad[i] ^= 0x41;
            assert!(
                Catalog::decode_raw(&bad).is_err(),
                "flip at {i} went unnoticed"
            );
        }
        for cut in 0..raw.len() {
            assert!(Catalog::decode_raw(&raw[..cut]).is_err());
        }
    }

    /// A payload with a valid checksum that breaks an invariant is refused, naming it.
    #[test]
    fn a_well_framed_catalog_that_breaks_an_invariant_is_refused() {
        type Damage = Box<dyn Fn(&mut Catalog)>;
        let cases: Vec<(&str, Damage)> = vec![
            (
                "gap",
                Box::new(|c| c.tables[0].regions[1].start = Bytes::from("n")),
            ),
            (
                "cover",
                Box::new(|c| c.tables[0].regions[0].start = Bytes::from("a")),
            ),
            (
                "cover",
                Box::new(|c| {
                    c.tables[0].regions.pop();
                }),
            ),
            ("no region", Box::new(|c| c.tables[0].regions.clear())),
            ("repeated", Box::new(|c| c.tables[0].regions[1].id = 1)),
            ("repeated", Box::new(|c| c.next_region_id = 2)),
            ("name", Box::new(|c| c.tables[0].schema.name = "..".into())),
            (
                "twice",
                Box::new(|c| {
                    let t = c.tables[0].clone();
                    c.tables.push(t);
                }),
            ),
        ];
        for (want, damage) in cases {
            let mut c = sample();
            damage(&mut c);
            let err = Catalog::decode(&c.encode(), Path::new("cat")).unwrap_err();
            assert!(
                matches!(err, Error::Corruption { .. }) && err.to_string().contains(want),
                "{want}: {err}"
            );
        }
    }

    #[test]
    fn load_names_the_file_on_damage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            Catalog::load(&speedlayer_vfs::RealFs, dir.path())
                .unwrap()
                .tables
                .len(),
            0
        );
        sample().store(&speedlayer_vfs::RealFs, dir.path()).unwrap();
        assert_eq!(
            Catalog::load(&speedlayer_vfs::RealFs, dir.path()).unwrap(),
            sample()
        );
        let mut raw = std::fs::read(Catalog::path(dir.path())).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        std::fs::write(Catalog::path(dir.path()), raw).unwrap();
        let err = Catalog::load(&speedlayer_vfs::RealFs, dir.path()).unwrap_err();
        assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
        assert!(err.to_string().contains("catalog"));
    }
}
