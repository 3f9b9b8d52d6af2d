//! Cluster mode's storage (`Db::open_hosted`): several processes' databases over one
//! shared storage root, each holding the regions meta gives it, with the `FENCE` protocol of
//! `server/docs/cluster_design.md` §5b. Two `Db`s on one root stand for two servers on a
//! shared file system.
//!
//! - A takeover (B opens the region for a newer epoch while A still has it open, as a
//!   paused server would) sees every write A acknowledged; A's next write is refused with
//!   `Fenced`, not acknowledged.
//! - The new owner's sequence numbers start above the deposed owner's, so a third owner
//!   later sees the newest values.
//! - Rows, tables and scan ranges outside the regions held are `NotServing`, never a silent
//!   partial answer; the catalog operations belong to meta.

use bytes::Bytes;
use speedlayer_storage::{
    Db, Durability, EngineOptions, Error, FamilyOptions, Get, Mutation, Scan, TableSchema,
};

fn schema() -> TableSchema {
    TableSchema::new("t", vec![FamilyOptions::new("f")])
}

fn put(db: &Db, row: &str, value: &str) -> Result<(), Error> {
    db.write(
        "t",
        vec![Mutation::new(Bytes::copy_from_slice(row.as_bytes())).put(
            "f",
            "q",
            Some(1),
            Bytes::copy_from_slice(value.as_bytes()),
        )],
        Durability::Sync,
    )
}

fn value(db: &Db, row: &str) -> Option<String> {
    db.get("t", &Get::new(Bytes::copy_from_slice(row.as_bytes())))
        .unwrap()
        .map(|r| String::from_utf8_lossy(&r.cells[0].value).into_owned())
}

#[test]
fn a_takeover_sees_every_acknowledged_write_and_fences_the_old_owner() {
    let root = tempfile::tempdir().unwrap();
    let a = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    a.host_region(schema(), 1, Bytes::new(), Bytes::new(), 1)
        .unwrap();
    for i in 0..100 {
        put(&a, &format!("r{i:03}"), "a").unwrap();
    }
    assert_eq!(a.hosted_regions(), vec![("t".to_owned(), 1, 1)]);

    // B takes the region over while A still holds it open (a paused server).
    let b = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    b.host_region(schema(), 1, Bytes::new(), Bytes::new(), 2)
        .unwrap();
    for i in 0..100 {
        assert_eq!(
            value(&b, &format!("r{i:03}")).as_deref(),
            Some("a"),
            "acknowledged by A, lost by B"
        );
    }
    // A wakes up: its write reaches its WAL but is not acknowledged.
    match put(&a, "r000", "zombie") {
        Err(Error::Fenced {
            epoch: 1, found: 2, ..
        }) => {}
        other => panic!("the deposed owner acknowledged a write: {other:?}"),
    }
    // B's writes are newer than anything A could still append.
    for i in 0..100 {
        put(&b, &format!("r{i:03}"), "b").unwrap();
    }
    put(&b, "r100", "b").unwrap();
    // A's close flushes its unacknowledged write: the manifest refuses the deposed owner.
    assert!(
        matches!(a.unhost_region("t", 1), Err(Error::Fenced { .. })),
        "the deposed owner changed the region's files"
    );
    b.unhost_region("t", 1).unwrap();
    drop((a, b));

    // A third owner: B's values win everywhere, A's acknowledged rows are all there.
    let c = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    c.host_region(schema(), 1, Bytes::new(), Bytes::new(), 3)
        .unwrap();
    for i in 0..=100 {
        assert_eq!(
            value(&c, &format!("r{i:03}")).as_deref(),
            Some("b"),
            "row r{i:03}"
        );
    }
    // Opening again for the same epoch does nothing; a newer epoch reopens.
    c.host_region(schema(), 1, Bytes::new(), Bytes::new(), 3)
        .unwrap();
    c.host_region(schema(), 1, Bytes::new(), Bytes::new(), 4)
        .unwrap();
    assert_eq!(c.hosted_regions(), vec![("t".to_owned(), 1, 4)]);
    assert_eq!(value(&c, "r050").as_deref(), Some("b"));
}

#[test]
fn rows_and_ranges_held_elsewhere_are_not_served() {
    let root = tempfile::tempdir().unwrap();
    let db = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    assert!(matches!(
        db.get("t", &Get::new("a")),
        Err(Error::NotServing(_))
    ));
    // Two of three regions: ["", "g") and ["m", "").
    db.host_region(schema(), 1, Bytes::new(), Bytes::from_static(b"g"), 1)
        .unwrap();
    db.host_region(schema(), 3, Bytes::from_static(b"m"), Bytes::new(), 1)
        .unwrap();
    put(&db, "a", "1").unwrap();
    put(&db, "z", "1").unwrap();
    assert!(matches!(put(&db, "h", "1"), Err(Error::NotServing(_))));
    assert!(matches!(
        db.get("t", &Get::new("h")),
        Err(Error::NotServing(_))
    ));
    let rows = |s: Scan| db.scan("t", &s).map(|it| it.count());
    assert_eq!(rows(Scan::new().stop(Bytes::from_static(b"g"))).unwrap(), 1);
    assert_eq!(
        rows(Scan::new().start(Bytes::from_static(b"m"))).unwrap(),
        1
    );
    assert_eq!(
        rows(Scan::new().prefix(Bytes::from_static(b"a"))).unwrap(),
        1
    );
    assert!(
        matches!(rows(Scan::new()), Err(Error::NotServing(_))),
        "a whole-table scan would miss [g, m)"
    );
    assert!(matches!(
        rows(
            Scan::new()
                .start(Bytes::from_static(b"c"))
                .stop(Bytes::from_static(b"n"))
        ),
        Err(Error::NotServing(_))
    ));
    // Meta owns the catalog in cluster mode.
    assert!(matches!(
        db.create_table(schema()),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(db.drop_table("t"), Err(Error::InvalidArgument(_))));
    // Letting a region go: its rows are served no more.
    db.unhost_region("t", 3).unwrap();
    assert!(matches!(
        db.get("t", &Get::new("z")),
        Err(Error::NotServing(_))
    ));
    assert_eq!(value(&db, "a").as_deref(), Some("1"));
}

#[test]
fn a_plain_database_refuses_hosting() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    assert!(matches!(
        db.host_region(schema(), 1, Bytes::new(), Bytes::new(), 1),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn a_zombies_refused_append_never_comes_back_on_a_later_owner() {
    let root = tempfile::tempdir().unwrap();
    let a = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    a.host_region(schema(), 1, Bytes::new(), Bytes::new(), 1)
        .unwrap();
    put(&a, "acked", "a").unwrap();
    // B takes over and writes nothing; A, paused meanwhile, appends and is refused.
    let b = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    b.host_region(schema(), 1, Bytes::new(), Bytes::new(), 2)
        .unwrap();
    assert!(matches!(
        put(&a, "ghost", "zombie"),
        Err(Error::Fenced { .. })
    ));
    // B dies without closing anything (no flush at close to hide the problem).
    std::mem::forget(b);
    // A third owner replays the region's logs: the refused write must not appear.
    let c = Db::open_hosted(root.path(), EngineOptions::default()).unwrap();
    c.host_region(schema(), 1, Bytes::new(), Bytes::new(), 3)
        .unwrap();
    assert_eq!(value(&c, "acked").as_deref(), Some("a"));
    assert_eq!(
        value(&c, "ghost"),
        None,
        "a write the deposed owner was refused came back on a later owner"
    );
}
