//! Helpers of the tests of issue 15's streaming status path: SPEC §1 status lines (good
//! ones and one bad line per kind of fault), the worker binary as a process, and the
//! rows of a table rebuilt into the lines they were stored from, to compare with an
//! independent expectation.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use speedlayer_tests::bins::bin_path;

use super::scan_table;

pub const STATUS: &str = "SmartCar-Status";
pub const STATUS_DLQ: &str = "SmartCar-Status.dlq";

/// The worker binary, `kill -9`ed on drop; its `READY http=ADDR` line.
pub struct WorkerProc {
    child: Child,
    ready: String,
}

impl WorkerProc {
    pub fn start(config: &Path) -> WorkerProc {
        let mut child = Command::new(bin_path("speedlayer-ingest"))
            .arg("worker")
            .arg("--config")
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if line.starts_with("READY") {
                    let _ = tx.send(line);
                }
            }
        });
        let ready = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("no READY line within 60 s");
        WorkerProc { child, ready }
    }

    /// The worker's `/metrics` text.
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        let addr = self
            .ready
            .split_whitespace()
            .find_map(|f| f.strip_prefix("http="))
            .expect("READY names http=ADDR");
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    }
}

impl Drop for WorkerProc {
    fn drop(&mut self) {
        let _ = self.child.kill(); // SIGKILL: no graceful commit
        let _ = self.child.wait();
    }
}

/// yyyyMMddHHmmss of 2026-11-22 14:30:00 UTC + `s` seconds (within the day).
pub fn status_stamp(s: i64) -> String {
    format!(
        "20261122{:02}{:02}{:02}",
        14 + (30 * 60 + s) / 3600,
        (30 + s / 60) % 60,
        s % 60
    )
}

/// `cars` cars, one status line per car per second for `seconds` s.
pub fn status_lines(cars: usize, seconds: i64) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for s in 0..seconds {
        for c in 0..cars {
            let car = format!("V{c:04}");
            let v = |k: i64| (c as i64 * 7 + s * 3 + k) % 40 + 20;
            let lamp = |k: i64| i64::from((c as i64 + s + k) % 9 != 0);
            let line = format!(
                "{},{car},{},{},{},{},{},{},{},{},{},{},{}",
                status_stamp(s),
                v(0),
                v(1),
                v(2),
                v(3),
                lamp(0),
                lamp(1),
                lamp(2),
                lamp(3),
                (c + s as usize) % 3,
                (c * 2 + s as usize) % 4,
                s % 5
            );
            out.push((car, line));
        }
    }
    out
}

/// Status lines the parser refuses, one per kind of fault.
pub fn bad_status_lines() -> Vec<String> {
    vec![
        "20261122143000,V0001,32,33,31,32,1,1,0,1,0,0".into(), // a field short
        "20261122143000,V0001,320,33,31,32,1,1,0,1,0,0,2".into(), // psi out of range
        "20261122143000,V0001,32,33,31,32,1,2,0,1,0,0,2".into(), // lamp neither 0 nor 1
        "20261399000000,V0001,32,33,31,32,1,1,0,1,0,0,2".into(), // no such date
        "20261122143000,bad-car,32,33,31,32,1,1,0,1,0,0,2".into(), // car number
        "status of V0001: fine".into(),
        "20261122143015,V0042,3,0,-12,N,87,A07".into(), // a driving line on the status topic
    ]
}

pub async fn produce_to(brokers: &str, topic: &str, lines: &[(String, String)]) {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    let mut pending = Vec::with_capacity(lines.len());
    for (key, text) in lines {
        let rec = FutureRecord::to(topic).key(key).payload(text.as_str());
        match p.send_result(rec) {
            Ok(f) => pending.push(f),
            Err((e, _)) => panic!("enqueue failed: {e}"),
        }
    }
    for f in pending {
        f.await.unwrap().map_err(|(e, _)| e).unwrap();
    }
}

/// A row's cells joined in `columns` order: the line it was stored from.
pub fn rebuilt(cells: &BTreeMap<String, Vec<u8>>, columns: &[&str]) -> String {
    columns
        .iter()
        .map(|c| String::from_utf8_lossy(cells.get(*c).map_or(&[][..], Vec::as_slice)))
        .collect::<Vec<_>>()
        .join(",")
}

pub const DRIVING_COLUMNS: [&str; 8] = [
    "event_time",
    "car_number",
    "accelerator",
    "brake",
    "steering_angle",
    "turn_signal",
    "speed",
    "area",
];
pub const STATUS_COLUMNS: [&str; 13] = [
    "event_time",
    "car_number",
    "tyre_fl_psi",
    "tyre_fr_psi",
    "tyre_rl_psi",
    "tyre_rr_psi",
    "lamp_fl",
    "lamp_fr",
    "lamp_rl",
    "lamp_rr",
    "engine",
    "brake",
    "battery",
];

/// row key → the line rebuilt from its cells.
pub async fn table_lines(url: &str, table: &str, columns: &[&str]) -> BTreeMap<Vec<u8>, String> {
    scan_table(url, table)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(k, cells)| (k, rebuilt(&cells, columns)))
        .collect()
}

/// Independent expectation: `<car>#<yyyyMMddHHmmss>#<crc32 of the line>` → the line.
pub fn expected(lines: impl IntoIterator<Item = String>) -> BTreeMap<Vec<u8>, String> {
    lines
        .into_iter()
        .map(|l| {
            let mut f = l.split(',');
            let (time, car) = (f.next().unwrap(), f.next().unwrap());
            let key = format!("{car}#{time}#{:08x}", crc32fast::hash(l.as_bytes()));
            (key.into_bytes(), l)
        })
        .collect()
}
