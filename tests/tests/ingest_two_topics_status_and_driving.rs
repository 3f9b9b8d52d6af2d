//! Issue 15's streaming status path: one `speedlayer-ingest worker` process, configured
//! with a `topics` list, consumes the driving topic (rows into `driving`, rules on) and
//! the status topic (rows into `car_status`, created with the configured family TTL) at
//! once. All real: tansu, `speedlayer-server`, the worker binary. Bad lines of both topics
//! are mixed in; the worker is `kill -9`ed mid-stream and restarted. At the end:
//! - every valid line of each topic is one row of its table, rebuilt from the row's cells
//!   into exactly the line that was sent (count and content), no other rows (a replay
//!   rewrites the same key, so nothing is duplicated);
//! - every bad line is in its own topic's dead-letter topic with a non-empty `reason`
//!   header and its source topic, and the restarted worker counted the status ones;
//! - `speedlayer describe car_status` shows the TTL and `speedlayer scan car_status
//!   --prefix V0003#` finds that car's status rows.

#[path = "ingest_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use speedlayer_tests::server::{ServerProcess, run_cli};
use support::status::*;
use support::*;

/// The TTL the worker creates `car_status` with (seconds).
const STATUS_TTL_S: u64 = 3650 * 86_400;

async fn wait_tables(url: &str, at_least: (usize, usize), limit: Duration) -> (usize, usize) {
    let deadline = Instant::now() + limit;
    loop {
        let d = table_lines(url, "driving", &DRIVING_COLUMNS).await.len();
        let s = table_lines(url, "car_status", &STATUS_COLUMNS).await.len();
        if d >= at_least.0 && s >= at_least.1 {
            return (d, s);
        }
        assert!(
            Instant::now() < deadline,
            "rows (driving, car_status) = ({d}, {s}), waiting for {at_least:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }
}

/// The sum of metric `name{…topic="T"…}` samples in Prometheus text.
fn metric_of(text: &str, name: &str, topic: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| l.contains(&format!("topic=\"{topic}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_worker_stores_both_topics_dead_letters_bad_lines_and_survives_kill9() {
    let tansu = speedlayer_tests::tansu::Tansu::start();
    tansu.create_topic(TOPIC, 4);
    tansu.create_topic(STATUS, 2);
    tansu.create_topic(DLQ, 1);
    tansu.create_topic(STATUS_DLQ, 1);
    let brokers = tansu.brokers();
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path(), 80);
    let server = ServerProcess::start_pinned(&dir.path().join("data"), &[]);
    let url = server.url();
    let resp = server.resp.expect("pinned server has RESP").to_string();
    let config = dir.path().join("worker.toml");
    std::fs::write(
        &config,
        format!(
            "brokers = \"{brokers}\"\nserver = \"{url}\"\nresp = \"{resp}\"\n\
             rules = \"{}\"\ngroup = \"two-topics\"\nidle_flush = \"3s\"\n\
             topics = [\n\
             {{ name = \"{TOPIC}\", parser = \"driving\" }},\n\
             {{ name = \"{STATUS}\", parser = \"status\", ttl = \"{}s\" }},\n]\n",
            rules.display(),
            STATUS_TTL_S
        ),
    )
    .unwrap();

    let driving = driving_lines(20, 0, 90, 15);
    let bad_driving = garbage(10);
    let status = status_lines(30, 60);
    let bad_status = bad_status_lines();
    let (d3, s3) = (driving.len() / 3, status.len() / 3);

    // A third of each topic, the bad driving lines with it, before the worker starts; the
    // second third streams in chunks while it runs, and the worker is killed halfway
    // through that stream (the stream goes on without it).
    let mut first = records(&driving[..d3]);
    first.extend(bad_driving.iter().map(|b| (None, b.clone())));
    produce(&brokers, &first).await;
    produce_to(&brokers, STATUS, &status[..s3]).await;
    let w = WorkerProc::start(&config);
    let chunks = 20;
    let (half_tx, half_rx) = tokio::sync::oneshot::channel();
    let stream = {
        let (brokers, driving, status) = (
            brokers.clone(),
            records(&driving[d3..2 * d3]),
            status[s3..2 * s3].to_vec(),
        );
        tokio::spawn(async move {
            let mut half_tx = Some(half_tx);
            let (dn, sn) = (driving.len() / chunks, status.len() / chunks);
            for i in 0..chunks {
                let last = i + 1 == chunks;
                let d = &driving[i * dn..if last { driving.len() } else { (i + 1) * dn }];
                let s = &status[i * sn..if last { status.len() } else { (i + 1) * sn }];
                produce(&brokers, d).await;
                produce_to(&brokers, STATUS, s).await;
                if i + 1 == chunks / 2
                    && let Some(tx) = half_tx.take()
                {
                    let _ = tx.send(());
                }
                tokio::time::sleep(Duration::from_millis(20)).await; // the stream's pace
            }
        })
    };
    half_rx.await.unwrap();
    drop(w); // kill -9 mid-stream
    let (d, s) = wait_tables(&url, (0, 0), Duration::from_secs(1)).await;
    eprintln!(
        "killed halfway through the stream with (driving, car_status) = ({d}, {s}) rows stored"
    );
    stream.await.unwrap();

    // The rest, the bad status lines with it, to a restarted worker.
    produce(&brokers, &records(&driving[2 * d3..])).await;
    let mut rest = status[2 * s3..].to_vec();
    rest.extend(bad_status.iter().map(|b| ("V0001".to_string(), b.clone())));
    produce_to(&brokers, STATUS, &rest).await;
    let w = WorkerProc::start(&config);
    wait_tables(
        &url,
        (driving.len(), status.len()),
        Duration::from_secs(120),
    )
    .await;

    let want_driving = expected(driving.iter().map(|l| l.text.clone()));
    let want_status = expected(status.iter().map(|(_, l)| l.clone()));
    assert_eq!(want_status.len(), status.len(), "distinct status lines");
    let got_driving = table_lines(&url, "driving", &DRIVING_COLUMNS).await;
    let got_status = table_lines(&url, "car_status", &STATUS_COLUMNS).await;
    assert_eq!(got_driving.len(), want_driving.len(), "driving rows");
    assert!(
        got_driving == want_driving,
        "driving rows differ from the lines sent"
    );
    assert_eq!(got_status.len(), want_status.len(), "car_status rows");
    let diff: Vec<_> = got_status
        .iter()
        .filter(|(k, v)| want_status.get(*k) != Some(*v))
        .take(3)
        .collect();
    assert!(diff.is_empty(), "car_status rows not sent: {diff:?}");

    // Dead letters: each bad line in its own topic's DLQ, with a reason (at least once
    // across the kill, so compared as sets).
    for (dlq, topic, bad) in [
        (DLQ, TOPIC, bad_driving.clone()),
        (STATUS_DLQ, STATUS, bad_status.clone()),
    ] {
        let recs = tansu.consume_at_least(dlq, bad.len(), Duration::from_secs(30));
        for r in &recs {
            let reason = r.header("reason").unwrap_or_default();
            assert!(!reason.is_empty(), "{dlq}: a dead letter without a reason");
            assert_eq!(r.header("source-topic"), Some(topic), "{dlq}");
        }
        let got: BTreeSet<String> = recs
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect();
        let want: BTreeSet<String> = bad.into_iter().collect();
        assert_eq!(got, want, "{dlq}: exactly the bad lines");
    }
    let why: Vec<String> = tansu
        .consume_all(STATUS_DLQ, Duration::from_secs(10))
        .iter()
        .map(|r| r.header("reason").unwrap_or_default().to_string())
        .collect();
    eprintln!("status dead-letter reasons: {why:#?}");

    // The restarted worker saw every bad status line (all sent after the restart) once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = w.metrics();
        let counted = metric_of(&text, "ingest_dead_lettered_total", STATUS);
        if counted == bad_status.len() as f64 {
            assert!(
                metric_of(&text, "ingest_stored_total", STATUS) > 0.0,
                "{text}"
            );
            assert_eq!(metric_of(&text, "ingest_late_total", STATUS), 0.0);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "status dead letters counted: {counted}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await; // poll interval
    }

    // Queryable from the CLI, created with the configured TTL.
    let described = run_cli(&url, &["describe", "car_status"]).ok();
    assert!(
        described.contains(&STATUS_TTL_S.to_string()),
        "TTL {STATUS_TTL_S} s not in:\n{described}"
    );
    let scanned = run_cli(&url, &["scan", "car_status", "--prefix", "V0003#"]).ok();
    let want_v3 = status.iter().filter(|(c, _)| c == "V0003").count();
    let rows_v3: BTreeSet<&str> = scanned
        .lines()
        .filter_map(|l| l.split_whitespace().find(|w| w.starts_with("V0003#")))
        .collect();
    assert_eq!(rows_v3.len(), want_v3, "scan --prefix V0003#:\n{scanned}");
    drop(w);
}
