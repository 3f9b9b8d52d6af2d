//! Kill -9 under a write load with `sync` durability: every write the server acknowledged
//! before the kill is readable after the restart, with its value. 3 cycles by default;
//! `SPEEDLAYER_LONG=1` runs 25.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot_free::AckLog;
use speedlayer_client::proto::{self, Durability, GetRequest};
use speedlayer_client::put_row;
use speedlayer_tests::server::{ServerProcess, client_without_retries};

/// Acknowledged keys, shared by the writer tasks (a std Mutex: no extra dependency).
mod parking_lot_free {
    use std::sync::Mutex;

    #[derive(Default)]
    pub struct AckLog(Mutex<Vec<(String, String)>>);

    impl AckLog {
        pub fn push(&self, key: String, value: String) {
            self.0.lock().unwrap().push((key, value));
        }
        pub fn len(&self) -> usize {
            self.0.lock().unwrap().len()
        }
        pub fn snapshot(&self) -> Vec<(String, String)> {
            self.0.lock().unwrap().clone()
        }
    }
}

const WRITERS: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_kill9_sync_writes_survive() {
    let cycles = if std::env::var("SPEEDLAYER_LONG").is_ok_and(|v| v == "1") {
        25
    } else {
        3
    };
    let dir = tempfile::tempdir().unwrap();
    let mut server = ServerProcess::start(dir.path(), &["--memstore-flush-bytes", "65536"]);
    client_without_retries(&server.url())
        .await
        .create_table(proto::TableSchema {
            name: "audit".into(),
            families: vec![proto::FamilySchema {
                name: "cf1".into(),
                ..Default::default()
            }],
        })
        .await
        .unwrap();
    let acked = Arc::new(AckLog::default());

    for cycle in 0..cycles {
        let c = client_without_retries(&server.url()).await;
        let stop = Arc::new(AtomicBool::new(false));
        let mut writers = Vec::new();
        for w in 0..WRITERS {
            let (c, stop, acked) = (c.clone(), stop.clone(), acked.clone());
            writers.push(tokio::spawn(async move {
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("c{cycle:03}-w{w}-{seq:08}");
                    let value = format!("{cycle}:{w}:{seq}:{}", "x".repeat((seq % 200) as usize));
                    let put = put_row(key.as_bytes(), &[("cf1", "v", value.as_bytes())]);
                    match c.mutate("audit", vec![put], Durability::Sync).await {
                        Ok(_) => acked.push(key, value),
                        Err(_) => return,
                    }
                    seq += 1;
                }
            }));
        }
        // Kill once this cycle has some acknowledged writes, at a varying point.
        let target = acked.len() + 150 + 97 * (cycle % 5);
        let deadline = Instant::now() + Duration::from_secs(60);
        while acked.len() < target {
            assert!(
                Instant::now() < deadline,
                "writes stalled:\n{}",
                server.log()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        server.kill9();
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.await.unwrap();
        }
        server.restart();

        // Every acknowledged write of every cycle so far is there.
        let c = client_without_retries(&server.url()).await;
        let all = acked.snapshot();
        for (key, value) in &all {
            let row = c
                .get(GetRequest {
                    table: "audit".into(),
                    row: Bytes::from(key.clone()),
                    ..Default::default()
                })
                .await
                .unwrap();
            let got = row.and_then(|r| r.cells.first().map(|c| c.value.clone()));
            assert_eq!(
                got.as_deref(),
                Some(value.as_bytes()),
                "cycle {cycle}: acknowledged write {key} lost after kill -9"
            );
        }
        // And a scan sees at least as many rows (unacknowledged in-flight writes may exist).
        let scanned = c
            .scan_all(proto::ScanRequest {
                table: "audit".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            scanned.len() >= all.len(),
            "{} < {}",
            scanned.len(),
            all.len()
        );
    }
    let status = server.terminate();
    assert!(status.success(), "{}", server.log());
}
