//! Conversions between the wire types (`speedlayer_proto`) and the storage engine's types,
//! with validation: anything the contract forbids (an empty oneof, an unspecified compare
//! operator, a filter nested too deep) becomes `INVALID_ARGUMENT` naming the field.
//!
//! Pure functions; no I/O, no storage calls.

use speedlayer_proto as pb;
use speedlayer_storage as st;
use tonic::Status;

/// The deepest filter tree accepted; deeper trees are refused (bounded recursion).
pub const MAX_FILTER_DEPTH: usize = 32;
/// The most operands of all filter lists of one request together.
pub const MAX_FILTER_NODES: usize = 1024;

/// A proto family schema to storage options; zeros take the storage defaults.
pub fn family_from_pb(f: &pb::FamilySchema) -> Result<st::FamilyOptions, Status> {
    let mut opts = st::FamilyOptions::new(f.name.clone());
    if f.max_versions > 0 {
        opts.max_versions = f.max_versions;
    }
    opts.ttl_ms = f.ttl_ms;
    opts.compression = match pb::Compression::try_from(f.compression) {
        Ok(pb::Compression::Unspecified) => opts.compression,
        Ok(pb::Compression::None) => st::Compression::None,
        Ok(pb::Compression::Lz4) => st::Compression::Lz4,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "family '{}': unknown compression {}",
                f.name, f.compression
            )));
        }
    };
    opts.bloom = match pb::BloomType::try_from(f.bloom) {
        Ok(pb::BloomType::Unspecified) => opts.bloom,
        Ok(pb::BloomType::None) => st::BloomType::None,
        Ok(pb::BloomType::Row) => st::BloomType::Row,
        Ok(pb::BloomType::RowCol) => st::BloomType::RowCol,
        Err(_) => {
            return Err(Status::invalid_argument(format!(
                "family '{}': unknown bloom type {}",
                f.name, f.bloom
            )));
        }
    };
    if f.block_size > 0 {
        opts.block_size = f.block_size;
    }
    Ok(opts)
}

/// Storage family options to the proto schema (every option explicit).
pub fn family_to_pb(f: &st::FamilyOptions) -> pb::FamilySchema {
    pb::FamilySchema {
        name: f.name.clone(),
        max_versions: f.max_versions,
        ttl_ms: f.ttl_ms,
        compression: match f.compression {
            st::Compression::None => pb::Compression::None,
            st::Compression::Lz4 => pb::Compression::Lz4,
        } as i32,
        bloom: match f.bloom {
            st::BloomType::None => pb::BloomType::None,
            st::BloomType::Row => pb::BloomType::Row,
            st::BloomType::RowCol => pb::BloomType::RowCol,
        } as i32,
        block_size: f.block_size,
    }
}

/// A proto table schema to the storage schema.
pub fn schema_from_pb(s: Option<pb::TableSchema>) -> Result<st::TableSchema, Status> {
    let s = s.ok_or_else(|| Status::invalid_argument("CreateTable: schema is missing"))?;
    let families = s
        .families
        .iter()
        .map(family_from_pb)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(st::TableSchema::new(s.name, families))
}

/// A storage table schema to the proto schema.
pub fn schema_to_pb(s: &st::TableSchema) -> pb::TableSchema {
    pb::TableSchema {
        name: s.name.clone(),
        families: s.families.iter().map(family_to_pb).collect(),
    }
}

/// The proto durability; unspecified means `Sync` (the safe default).
pub fn durability_from_pb(d: i32) -> Result<st::Durability, Status> {
    match pb::Durability::try_from(d) {
        Ok(pb::Durability::Unspecified | pb::Durability::Sync) => Ok(st::Durability::Sync),
        Ok(pb::Durability::Async) => Ok(st::Durability::Async),
        Ok(pb::Durability::SkipWal) => Ok(st::Durability::SkipWal),
        Err(_) => Err(Status::invalid_argument(format!("unknown durability {d}"))),
    }
}

/// A proto compare operator; unspecified is refused.
pub fn compare_op_from_pb(op: i32) -> Result<st::CompareOp, Status> {
    match pb::CompareOp::try_from(op) {
        Ok(pb::CompareOp::Eq) => Ok(st::CompareOp::Eq),
        Ok(pb::CompareOp::Ne) => Ok(st::CompareOp::Ne),
        Ok(pb::CompareOp::Lt) => Ok(st::CompareOp::Lt),
        Ok(pb::CompareOp::Le) => Ok(st::CompareOp::Le),
        Ok(pb::CompareOp::Gt) => Ok(st::CompareOp::Gt),
        Ok(pb::CompareOp::Ge) => Ok(st::CompareOp::Ge),
        Ok(pb::CompareOp::Unspecified) | Err(_) => Err(Status::invalid_argument(format!(
            "compare operator {op} is not one of EQ, NE, LT, LE, GT, GE"
        ))),
    }
}

/// One row mutation; every op must be set.
pub fn mutation_from_pb(m: pb::RowMutation) -> Result<st::Mutation, Status> {
    use pb::mutation_op::Op;
    let mut ops = Vec::with_capacity(m.ops.len());
    for (i, op) in m.ops.into_iter().enumerate() {
        let op = match op.op {
            Some(Op::Put(p)) => st::MutationOp::Put {
                family: p.family,
                qualifier: p.qualifier,
                timestamp: p.timestamp,
                value: p.value,
            },
            Some(Op::Delete(d)) => st::MutationOp::Delete {
                family: d.family,
                qualifier: d.qualifier,
                timestamp: d.timestamp,
            },
            Some(Op::DeleteColumn(d)) => st::MutationOp::DeleteColumn {
                family: d.family,
                qualifier: d.qualifier,
                timestamp: d.timestamp,
            },
            Some(Op::DeleteFamily(d)) => st::MutationOp::DeleteFamily {
                family: d.family,
                timestamp: d.timestamp,
            },
            Some(Op::DeleteRow(d)) => st::MutationOp::DeleteRow {
                timestamp: d.timestamp,
            },
            None => {
                return Err(Status::invalid_argument(format!(
                    "mutation of row {:?}: op #{i} is empty",
                    String::from_utf8_lossy(&m.row)
                )));
            }
        };
        ops.push(op);
    }
    Ok(st::Mutation { row: m.row, ops })
}

/// A proto filter tree, bounded in depth and size.
pub fn filter_from_pb(f: pb::Filter) -> Result<st::Filter, Status> {
    let mut nodes = 0;
    filter_rec(f, 0, &mut nodes)
}

fn filter_rec(f: pb::Filter, depth: usize, nodes: &mut usize) -> Result<st::Filter, Status> {
    use pb::filter::Kind;
    *nodes += 1;
    if depth > MAX_FILTER_DEPTH {
        return Err(Status::invalid_argument(format!(
            "filter nested deeper than {MAX_FILTER_DEPTH}"
        )));
    }
    if *nodes > MAX_FILTER_NODES {
        return Err(Status::invalid_argument(format!(
            "filter has more than {MAX_FILTER_NODES} nodes"
        )));
    }
    match f.kind {
        Some(Kind::Value(v)) => Ok(st::Filter::Value {
            family: v.family,
            qualifier: v.qualifier,
            op: compare_op_from_pb(v.op)?,
            value: v.value,
        }),
        Some(Kind::RowPrefix(p)) => Ok(st::Filter::RowPrefix(p)),
        Some(Kind::ColumnPrefix(p)) => Ok(st::Filter::ColumnPrefix(p)),
        Some(Kind::And(list)) => Ok(st::Filter::And(
            list.filters
                .into_iter()
                .map(|f| filter_rec(f, depth + 1, nodes))
                .collect::<Result<_, _>>()?,
        )),
        Some(Kind::Or(list)) => Ok(st::Filter::Or(
            list.filters
                .into_iter()
                .map(|f| filter_rec(f, depth + 1, nodes))
                .collect::<Result<_, _>>()?,
        )),
        None => Err(Status::invalid_argument("filter node has no kind set")),
    }
}

fn columns_from_pb(columns: Vec<pb::Column>) -> Vec<st::Column> {
    columns
        .into_iter()
        .map(|c| st::Column {
            family: c.family,
            qualifier: c.qualifier,
        })
        .collect()
}

fn time_range_from_pb(t: Option<pb::TimeRange>) -> Result<Option<st::TimeRange>, Status> {
    match t {
        None => Ok(None),
        Some(t) if t.min < t.max => Ok(Some(st::TimeRange {
            min: t.min,
            max: t.max,
        })),
        // An all-zero range is proto3's "unset".
        Some(t) if t.min == 0 && t.max == 0 => Ok(None),
        Some(t) => Err(Status::invalid_argument(format!(
            "time range [{}, {}) is empty",
            t.min, t.max
        ))),
    }
}

/// The read options a Get and a Scan request share.
fn read_from_pb(
    columns: Vec<pb::Column>,
    time_range: Option<pb::TimeRange>,
    max_versions: Option<u32>,
    filter: Option<pb::Filter>,
) -> Result<st::ReadOptions, Status> {
    Ok(st::ReadOptions {
        columns: columns_from_pb(columns),
        time_range: time_range_from_pb(time_range)?,
        max_versions,
        filter: filter.map(filter_from_pb).transpose()?,
    })
}

/// A Get request to the storage read.
pub fn get_from_pb(g: pb::GetRequest) -> Result<st::Get, Status> {
    let mut get = st::Get::new(g.row);
    get.read = read_from_pb(g.columns, g.time_range, g.max_versions, g.filter)?;
    Ok(get)
}

/// A Scan request to the storage scan.
///
/// The wire and the engine name the bounds differently when reversed: on the wire (HBase
/// style) `start` is then the highest row, inclusive, and `stop` the lowest, exclusive;
/// the engine always takes a key range `[start, stop)`. Rows `stop < key <= start` are
/// exactly the rows `successor(stop) <= key < successor(start)`, where the successor of a
/// key is the key followed by a zero byte (the smallest key greater than it).
pub fn scan_from_pb(s: pb::ScanRequest) -> Result<st::Scan, Status> {
    let mut scan = st::Scan::new();
    if s.reversed {
        scan.start = s.stop.map(|k| key_successor(&k));
        scan.stop = s.start.map(|k| key_successor(&k));
    } else {
        scan.start = s.start;
        scan.stop = s.stop;
    }
    scan.prefix = s.prefix;
    scan.reversed = s.reversed;
    scan.limit = s.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX));
    scan.read = read_from_pb(s.columns, s.time_range, s.max_versions, s.filter)?;
    Ok(scan)
}

/// The smallest row key greater than `key`: `key` followed by a zero byte.
fn key_successor(key: &[u8]) -> bytes::Bytes {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    bytes::Bytes::from(next)
}

/// A storage row to the wire row (delete markers never leave the engine).
pub fn row_to_pb(r: st::Row) -> pb::Row {
    pb::Row {
        row: r.row,
        cells: r
            .cells
            .into_iter()
            .map(|c| pb::Cell {
                family: c.family,
                qualifier: c.qualifier,
                timestamp: c.timestamp,
                value: c.value,
            })
            .collect(),
    }
}

/// A row lent by a storage scan to the wire row: the row's bytes are copied once into
/// one buffer that every field of the message shares (no per-cell allocation).
pub fn row_view_to_pb(r: &st::RowView<'_>) -> pb::Row {
    let len = r.row().len()
        + r.cells()
            .map(|c| c.family.len() + c.qualifier.len() + c.value.len())
            .sum::<usize>();
    let mut buf = bytes::BytesMut::with_capacity(len);
    buf.extend_from_slice(r.row());
    for c in r.cells() {
        buf.extend_from_slice(c.family);
        buf.extend_from_slice(c.qualifier);
        buf.extend_from_slice(c.value);
    }
    let data = buf.freeze();
    let mut at = r.row().len();
    let mut take = |n: usize| {
        let b = data.slice(at..at + n);
        at += n;
        b
    };
    let row = data.slice(..r.row().len());
    let cells = r
        .cells()
        .map(|c| pb::Cell {
            family: take(c.family.len()),
            qualifier: take(c.qualifier.len()),
            timestamp: c.timestamp,
            value: take(c.value.len()),
        })
        .collect();
    pb::Row { row, cells }
}

/// A storage region to its wire location, naming this server.
pub fn location_to_pb(r: &st::RegionInfo, server_addr: &str) -> pb::RegionLocation {
    pb::RegionLocation {
        region_id: r.id,
        table: r.table.clone(),
        start_key: r.start.clone(),
        end_key: r.end.clone(),
        server_addr: server_addr.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn reversed_scan_bounds_become_the_engine_key_range() {
        let req = |start: Option<&'static [u8]>, stop: Option<&'static [u8]>, reversed| {
            scan_from_pb(pb::ScanRequest {
                table: "t".into(),
                start: start.map(Bytes::from_static),
                stop: stop.map(Bytes::from_static),
                reversed,
                ..Default::default()
            })
            .unwrap()
        };
        // Forward: [start, stop) as is.
        let s = req(Some(b"r1"), Some(b"r3"), false);
        assert_eq!(
            (s.start.as_deref(), s.stop.as_deref()),
            (Some(&b"r1"[..]), Some(&b"r3"[..]))
        );
        // Reversed: stop < key <= start, i.e. [stop\0, start\0).
        let s = req(Some(b"r3"), Some(b"r1"), true);
        assert_eq!(
            (s.start.as_deref(), s.stop.as_deref()),
            (Some(&b"r1\0"[..]), Some(&b"r3\0"[..]))
        );
        let s = req(Some(b"r3"), None, true);
        assert_eq!((s.start, s.stop.as_deref()), (None, Some(&b"r3\0"[..])));
        let s = req(None, Some(b"r1"), true);
        assert_eq!((s.start.as_deref(), s.stop), (Some(&b"r1\0"[..]), None));
    }

    #[test]
    fn zeros_take_storage_defaults() {
        let f = family_from_pb(&pb::FamilySchema {
            name: "cf1".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f, st::FamilyOptions::new("cf1"));
        let back = family_from_pb(&family_to_pb(&f)).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn empty_filter_and_unspecified_op_are_invalid() {
        let err = filter_from_pb(pb::Filter { kind: None }).unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let value = pb::Filter {
            kind: Some(pb::filter::Kind::Value(pb::ValueFilter {
                family: Bytes::from_static(b"cf"),
                qualifier: Bytes::from_static(b"q"),
                op: 0,
                value: Bytes::new(),
            })),
        };
        assert_eq!(
            filter_from_pb(value).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn deep_filters_are_refused() {
        let mut f = pb::Filter {
            kind: Some(pb::filter::Kind::RowPrefix(Bytes::from_static(b"a"))),
        };
        for _ in 0..100 {
            f = pb::Filter {
                kind: Some(pb::filter::Kind::And(pb::FilterList { filters: vec![f] })),
            };
        }
        assert_eq!(
            filter_from_pb(f).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }

    #[test]
    fn empty_mutation_op_is_invalid() {
        let m = pb::RowMutation {
            row: Bytes::from_static(b"r"),
            ops: vec![pb::MutationOp { op: None }],
        };
        assert_eq!(
            mutation_from_pb(m).unwrap_err().code(),
            tonic::Code::InvalidArgument
        );
    }
}
