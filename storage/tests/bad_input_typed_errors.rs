//! Bad input gets the right typed error and changes nothing: empty row, oversize row,
//! qualifier, value and batch, unknown family, unknown table, bad schemas, duplicate
//! tables.

use bytes::Bytes;
use speedlayer_storage::{
    Column, Db, Durability, EngineOptions, Error, FamilyOptions, Get, Limits, Mutation, MutationOp,
    Scan, TableSchema,
};

fn open() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let opts = EngineOptions {
        limits: Limits {
            max_row_bytes: 16,
            max_qualifier_bytes: 8,
            max_value_bytes: 32,
            max_batch_bytes: 256,
        },
        ..EngineOptions::default()
    };
    let db = Db::open(dir.path(), opts).unwrap();
    db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")]))
        .unwrap();
    (dir, db)
}

fn put(row: &[u8], fam: &str, q: &[u8], v: &[u8]) -> Vec<Mutation> {
    vec![Mutation::new(Bytes::copy_from_slice(row)).put(
        Bytes::copy_from_slice(fam.as_bytes()),
        Bytes::copy_from_slice(q),
        Some(1),
        Bytes::copy_from_slice(v),
    )]
}

fn invalid(r: Result<(), Error>, what: &str) {
    match r {
        Err(Error::InvalidArgument(msg)) => assert!(msg.contains(what), "{msg:?} lacks {what:?}"),
        other => panic!("expected InvalidArgument({what}), got {other:?}"),
    }
}

#[test]
fn writes_with_bad_sizes_are_invalid_arguments() {
    let (_d, db) = open();
    let w = |b| db.write("t", b, Durability::Sync);
    invalid(w(put(b"", "f", b"q", b"v")), "empty");
    invalid(w(put(&[b'r'; 17], "f", b"q", b"v")), "row key of 17 bytes");
    invalid(w(put(b"r", "f", &[b'q'; 9], b"v")), "qualifier of 9 bytes");
    invalid(w(put(b"r", "f", b"q", &[b'v'; 33])), "value of 33 bytes");
    let big: Vec<Mutation> = (0..20)
        .flat_map(|i| put(format!("r{i}").as_bytes(), "f", b"q", &[1; 30]))
        .collect();
    invalid(w(big), "batch limit");
    // A bad row in a batch rejects the batch: the good row before it is not written.
    let mut mixed = put(b"good", "f", b"q", b"v");
    mixed.extend(put(b"", "f", b"q", b"v"));
    invalid(w(mixed), "empty");
    assert_eq!(db.get("t", &Get::new("good")).unwrap(), None);
    // Exactly at the limits is fine.
    w(put(&[b'r'; 16], "f", &[b'q'; 8], &[b'v'; 32])).unwrap();
    invalid(db.get("t", &Get::new("")).map(|_| ()), "empty");
}

#[test]
fn unknown_family_and_table_are_named() {
    let (_d, db) = open();
    match db.write("t", put(b"r", "nope", b"q", b"v"), Durability::Sync) {
        Err(e @ Error::UnknownFamily { .. }) => {
            assert_eq!(e.to_string(), "unknown column family 'nope' in table 't'")
        }
        other => panic!("{other:?}"),
    }
    let del = vec![Mutation::new("r").op(MutationOp::DeleteFamily {
        family: "zz".into(),
        timestamp: None,
    })];
    assert!(matches!(
        db.write("t", del, Durability::Sync),
        Err(Error::UnknownFamily { .. })
    ));
    assert!(matches!(
        db.get("t", &Get::new("r").column(Column::family("zz"))),
        Err(Error::UnknownFamily { .. })
    ));
    assert!(matches!(
        db.scan("t", &Scan::new().column(Column::qualified("zz", "q")))
            .map(|_| ()),
        Err(Error::UnknownFamily { .. })
    ));
    match db.write("nope", put(b"r", "f", b"q", b"v"), Durability::Sync) {
        Err(Error::UnknownTable(t)) => assert_eq!(t, "nope"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        db.get("nope", &Get::new("r")),
        Err(Error::UnknownTable(_))
    ));
    assert!(matches!(
        db.scan("nope", &Scan::new()).map(|_| ()),
        Err(Error::UnknownTable(_))
    ));
    assert!(matches!(db.flush("nope"), Err(Error::UnknownTable(_))));
    assert!(matches!(db.drop_table("nope"), Err(Error::UnknownTable(_))));
    assert!(matches!(
        db.describe_table("nope"),
        Err(Error::UnknownTable(_))
    ));
}

#[test]
fn bad_schemas_and_duplicates_are_refused() {
    let (_d, db) = open();
    assert!(matches!(
        db.create_table(TableSchema::new("t", vec![FamilyOptions::new("f")])),
        Err(Error::TableExists(_))
    ));
    for bad in [
        TableSchema::new("../x", vec![FamilyOptions::new("f")]),
        TableSchema::new("u", vec![]),
        TableSchema::new("u", vec![FamilyOptions::new("f"), FamilyOptions::new("f")]),
        TableSchema::new("u", vec![FamilyOptions::new("a/b")]),
    ] {
        assert!(matches!(
            db.create_table(bad),
            Err(Error::InvalidArgument(_))
        ));
    }
    assert_eq!(db.list_tables().len(), 1);
}
