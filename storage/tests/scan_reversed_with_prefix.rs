//! Scans: prefix, start/stop, reversed order, limits, column selection and filters, across
//! memstore and files and across regions.

use bytes::Bytes;
use speedlayer_storage::{
    Column, CompareOp, Db, Durability, EngineOptions, FamilyOptions, Filter, Mutation, Scan,
    TableSchema,
};

fn rows(db: &Db, scan: &Scan) -> Vec<String> {
    db.scan("t", scan)
        .unwrap()
        .map(|r| String::from_utf8(r.unwrap().row.to_vec()).unwrap())
        .collect()
}

#[test]
fn reversed_prefix_scans_cross_files_memstore_and_regions() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path(), EngineOptions::default()).unwrap();
    db.create_table(TableSchema::new(
        "t",
        vec![FamilyOptions::new("f"), FamilyOptions::new("g")],
    ))
    .unwrap();
    let mut all = Vec::new();
    for car in ["car1", "car2", "car3"] {
        for t in 0..20 {
            let row = format!("{car}#{t:04}");
            all.push(row.clone());
            let m = Mutation::new(row)
                .put("f", "speed", Some(1), Bytes::from((t * 5).to_string()))
                .put("g", "x", Some(1), "y");
            db.write("t", vec![m], Durability::Async).unwrap();
        }
        db.flush("t").unwrap(); // one file per car, the last car also in memstore below
    }
    db.write(
        "t",
        vec![Mutation::new("car3#9999").put("f", "speed", Some(1), "1")],
        Durability::Async,
    )
    .unwrap();
    all.push("car3#9999".into());
    let region = db.regions("t").unwrap()[0].id;
    db.split_region("t", region, b"car2#0010").unwrap();

    let car2: Vec<String> = all
        .iter()
        .filter(|r| r.starts_with("car2"))
        .cloned()
        .collect();
    assert_eq!(rows(&db, &Scan::new().prefix("car2")), car2);
    let mut rev = car2.clone();
    rev.reverse();
    assert_eq!(rows(&db, &Scan::new().prefix("car2").reversed(true)), rev);
    assert_eq!(
        rows(&db, &Scan::new().prefix("car2").reversed(true).limit(3)),
        rev[..3].to_vec()
    );
    let mut everything = all.clone();
    everything.reverse();
    assert_eq!(rows(&db, &Scan::new().reversed(true)), everything);
    assert_eq!(
        rows(&db, &Scan::new().start("car1#0018").stop("car2#0002")),
        vec!["car1#0018", "car1#0019", "car2#0000", "car2#0001"]
    );
    assert_eq!(
        rows(
            &db,
            &Scan::new()
                .start("car1#0018")
                .stop("car2#0002")
                .reversed(true)
        ),
        vec!["car2#0001", "car2#0000", "car1#0019", "car1#0018"]
    );
    // Only family g, and a value filter on f.speed (numeric: "95" > "80").
    let got: Vec<_> = db
        .scan("t", &Scan::new().prefix("car3").column(Column::family("g")))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got.len(), 20, "car3#9999 has no g cell");
    assert!(
        got.iter()
            .all(|r| r.cells.len() == 1 && &r.cells[0].family[..] == b"g")
    );
    let fast = Filter::Value {
        family: "f".into(),
        qualifier: "speed".into(),
        op: CompareOp::Gt,
        value: "80".into(),
    };
    assert_eq!(
        rows(&db, &Scan::new().prefix("car1").filter(fast)),
        vec!["car1#0017", "car1#0018", "car1#0019"]
    );
}
