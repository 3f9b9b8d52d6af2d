//! The `speedlayer` CLI end to end against the real `speedlayer-server`: create a table,
//! put cells, get and scan with every option and a filter expression, delete, flush,
//! compact, stats, the HTTP endpoints, then a graceful restart (exit 0) and read-back of
//! everything, then drop.

use speedlayer_client::cli::output::JsonRow;
use speedlayer_tests::server::ServerProcess;

fn rows(json_lines: &str) -> Vec<JsonRow> {
    json_lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {l:?}: {e}")))
        .collect()
}

fn keys(json_lines: &str) -> Vec<String> {
    rows(json_lines).into_iter().map(|r| r.row).collect()
}

#[test]
fn cli_tour_reads_back_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &[]);
    let s = &server;

    let out = s
        .cli(&[
            "create-table",
            "driving",
            "--family",
            "cf1:versions=3:compression=lz4:bloom=rowcol",
            "--family",
            "cf2:ttl=604800:compression=none:bloom=none",
        ])
        .ok();
    assert!(out.contains("created table driving"), "{out}");
    let err = s.cli(&["create-table", "driving", "--family", "cf1"]).err();
    assert_eq!(err.trim(), "error: table 'driving' already exists");

    let data = [
        ("V0001-20261122143000", "87", "A07", "N", "1000"),
        ("V0001-20261122143001", "60", "A07", "L", "2000"),
        ("V0002-20261122143000", "95", "B01", "L", "3000"),
        ("V0003-20261122143000", "81", "A07", "R", "4000"),
    ];
    for (row, speed, area, turn, ts) in data {
        for (q, v) in [
            ("speed", speed),
            ("area_number", area),
            ("turn_signal", turn),
        ] {
            let col = format!("cf1:{q}");
            s.cli(&["put", "driving", row, &col, v, "--ts", ts]).ok();
        }
    }
    // A second, newer version of one cell, written with async durability.
    s.cli(&[
        "put",
        "driving",
        "V0001-20261122143000",
        "cf1:speed",
        "90",
        "--ts",
        "1500",
        "--durability",
        "async",
    ])
    .ok();

    // get: whole row, one column, versions.
    let got = rows(
        &s.cli(&["get", "driving", "V0001-20261122143000", "--json"])
            .ok(),
    );
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].cells.len(), 3, "{got:?}");
    let speed = rows(
        &s.cli(&[
            "get",
            "driving",
            "V0001-20261122143000",
            "--column",
            "cf1:speed",
            "--versions",
            "2",
            "--json",
        ])
        .ok(),
    );
    let values: Vec<(&str, u64)> = speed[0]
        .cells
        .iter()
        .map(|c| (c.value.as_str(), c.timestamp))
        .collect();
    assert_eq!(values, [("90", 1500), ("87", 1000)]);
    let human = s
        .cli(&[
            "get",
            "driving",
            "V0001-20261122143000",
            "--column",
            "cf1:speed",
        ])
        .ok();
    assert!(human.starts_with("ROW"), "{human}");
    assert!(
        human.contains("cf1:speed") && human.contains("90") && human.contains("1 row(s)"),
        "{human}"
    );
    let none = s.cli(&["get", "driving", "NOPE", "--json"]).ok();
    assert_eq!(none, "");

    // scan options, one by one.
    let all = s.cli(&["scan", "driving", "--json"]).ok();
    assert_eq!(
        keys(&all),
        [
            "V0001-20261122143000",
            "V0001-20261122143001",
            "V0002-20261122143000",
            "V0003-20261122143000"
        ]
    );
    assert_eq!(
        keys(
            &s.cli(&["scan", "driving", "--prefix", "V0001", "--json"])
                .ok()
        ),
        ["V0001-20261122143000", "V0001-20261122143001"]
    );
    assert_eq!(
        keys(
            &s.cli(&["scan", "driving", "--start", "V0002", "--json"])
                .ok()
        ),
        ["V0002-20261122143000", "V0003-20261122143000"]
    );
    assert_eq!(
        keys(
            &s.cli(&[
                "scan",
                "driving",
                "--start",
                "V0001-20261122143001",
                "--stop",
                "V0003",
                "--json"
            ])
            .ok()
        ),
        ["V0001-20261122143001", "V0002-20261122143000"]
    );
    assert_eq!(
        keys(
            &s.cli(&["scan", "driving", "--reversed", "--limit", "2", "--json"])
                .ok()
        ),
        ["V0003-20261122143000", "V0002-20261122143000"]
    );
    let speeds = rows(
        &s.cli(&["scan", "driving", "--column", "cf1:speed", "--json"])
            .ok(),
    );
    assert_eq!(speeds.len(), 4);
    assert!(
        speeds
            .iter()
            .all(|r| r.cells.len() == 1 && r.cells[0].qualifier == "speed")
    );
    assert_eq!(
        keys(
            &s.cli(&["scan", "driving", "--time-range", "2000,3500", "--json"])
                .ok()
        ),
        ["V0001-20261122143001", "V0002-20261122143000"]
    );
    let filter = "cf1:speed > 80 AND (cf1:area_number = 'A07' OR cf1:turn_signal = 'L')";
    assert_eq!(
        keys(
            &s.cli(&["scan", "driving", "--filter", filter, "--json"])
                .ok()
        ),
        [
            "V0001-20261122143000",
            "V0002-20261122143000",
            "V0003-20261122143000"
        ]
    );
    assert_eq!(
        keys(
            &s.cli(&[
                "scan",
                "driving",
                "--filter",
                "cf1:turn_signal = 'L' AND cf1:speed < 70",
                "--json"
            ])
            .ok()
        ),
        ["V0001-20261122143001"]
    );
    let table = s.cli(&["scan", "driving", "--limit", "1"]).ok();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].find("COLUMN"),
        lines[1].find("cf1:"),
        "aligned: {table}"
    );

    // delete a column, then a row.
    s.cli(&[
        "delete",
        "driving",
        "V0003-20261122143000",
        "--column",
        "cf1:turn_signal",
    ])
    .ok();
    let v3 = rows(
        &s.cli(&["get", "driving", "V0003-20261122143000", "--json"])
            .ok(),
    );
    assert!(
        v3[0].cells.iter().all(|c| c.qualifier != "turn_signal"),
        "{v3:?}"
    );
    assert_eq!(v3[0].cells.len(), 2);
    s.cli(&["delete", "driving", "V0001-20261122143001"]).ok();
    assert_eq!(
        s.cli(&["get", "driving", "V0001-20261122143001", "--json"])
            .ok(),
        ""
    );

    // flush, compact, stats, describe, tables.
    assert!(
        s.cli(&["flush", "driving"])
            .ok()
            .contains("flushed driving")
    );
    assert!(
        s.cli(&["compact", "driving", "--major"])
            .ok()
            .contains("major")
    );
    assert!(s.cli(&["compact", "driving"]).ok().contains("minor"));
    let stats: serde_json::Value =
        serde_json::from_str(&s.cli(&["stats", "driving", "--json"]).ok()).unwrap();
    let regions = stats["regions"].as_array().unwrap();
    assert_eq!(regions.len(), 1);
    assert_eq!(regions[0]["table"], "driving");
    assert!(regions[0]["files"].as_u64().unwrap() >= 1, "{stats}");
    assert!(stats["wal_syncs"].as_u64().unwrap() >= 1, "{stats}");
    // The major compaction rewrote the flushed file (it holds the delete markers above).
    assert!(regions[0]["compactions"].as_u64().unwrap() >= 1, "{stats}");
    let desc = s.cli(&["describe", "driving"]).ok();
    assert!(
        desc.contains("cf1") && desc.contains("rowcol") && desc.contains("604800"),
        "{desc}"
    );
    assert!(s.cli(&["tables"]).ok().contains("driving"));

    // HTTP endpoints.
    assert_eq!(s.http_get("/health"), (200, "ok\n".to_string()));
    let (code, metrics) = s.http_get("/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("speedlayer_grpc_requests_total{method=\"Mutate\",outcome=\"ok\"} 15"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "speedlayer_grpc_request_duration_seconds_bucket{method=\"Scan\",le=\"+Inf\"}"
        )
    );
    assert!(metrics.contains("speedlayer_store_files{table=\"driving\""));
    assert!(metrics.contains("speedlayer_store_compactions_total{table=\"driving\""));
    assert!(metrics.contains("speedlayer_wal_syncs_total{table=\"driving\""));
    assert!(metrics.contains("speedlayer_block_cache_hits_total"));
    let (code, page) = s.http_get("/");
    assert_eq!(code, 200);
    assert!(
        page.contains("<table>") && page.contains("driving"),
        "{page}"
    );

    // Graceful restart: exit 0, everything still there.
    let before = s
        .cli(&["scan", "driving", "--versions", "3", "--json"])
        .ok();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}: {}", server.log());
    assert!(server.log().contains("memstores flushed and WAL synced"));
    server.restart();
    let after = server
        .cli(&["scan", "driving", "--versions", "3", "--json"])
        .ok();
    assert_eq!(after, before);
    assert_eq!(keys(&after).len(), 3);

    // drop.
    server.cli(&["drop-table", "driving", "--yes"]).ok();
    let err = server.cli(&["scan", "driving"]).err();
    assert_eq!(err.trim(), "error: table 'driving' does not exist");
    assert!(server.cli(&["tables"]).ok().contains("0 table(s)"));
}
