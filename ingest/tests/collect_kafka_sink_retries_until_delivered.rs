//! Transactions against a real broker: while no broker listens at the configured address
//! every delivery times out, so the sink rolls its take back, counts the error and retries;
//! the events stay in the file channel. Once tansu starts on that port (and the topic
//! exists) they are all delivered, and they left the channel only then.

use std::fs;
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::metrics::Registry;
use speedlayer_tests::tansu::Tansu;

#[test]
fn failed_deliveries_roll_back_and_retry() {
    let port = speedlayer_tests::tansu::free_port();
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    fs::create_dir_all(dir.join("spool")).unwrap();
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("20261122143015,V{:04},3,0,-12,N,{},A07", i % 37, i % 300))
        .collect();
    fs::write(dir.join("spool/a.csv"), lines.join("\n") + "\n").unwrap();
    let cfg = AgentConfig::parse(&format!(
        r#"
[[pipeline]]
name = "p"
source = {{ type = "spooldir", dir = "{d}/spool", poll_interval = "10ms" }}
channel = {{ type = "file", dir = "{d}/channel", capacity_mb = 8 }}
sink = {{ type = "kafka", brokers = "127.0.0.1:{port}", topic = "late-topic", properties = {{ "message.timeout.ms" = "1500", "reconnect.backoff.max.ms" = "200" }} }}
"#,
        d = dir.display(),
    ))
    .unwrap();
    let reg = Registry::new();
    let a = agent::start(&cfg, &reg).unwrap();
    let l = [("pipeline", "p"), ("branch", "main")];
    let errors = reg.counter("speedlayer_collect_sink_errors_total", "", &l);
    let out = reg.counter("speedlayer_collect_events_out_total", "", &l);
    let fill = reg.gauge(
        "speedlayer_collect_channel_events",
        "",
        &[("pipeline", "p"), ("channel", "p.main")],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while errors.get() == 0 {
        assert!(
            Instant::now() < deadline,
            "no delivery failure observed: out {} fill {}\n{}",
            out.get(),
            fill.get(),
            reg.render()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(out.get(), 0);
    assert_eq!(
        fill.get(),
        1000,
        "events left the channel without being delivered"
    );

    let t = Tansu::start_on(port);
    // The waiting producer may reach the broker (and auto-create the topic) first.
    t.ensure_topic("late-topic", 2);
    while out.get() < 1000 {
        assert!(
            Instant::now() < deadline,
            "not delivered after the topic appeared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    a.stop().unwrap();
    assert_eq!(fill.get(), 0);
    let mut got: Vec<String> = t
        .consume_all("late-topic", Duration::from_secs(20))
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    got.sort();
    got.dedup();
    let mut want = lines.clone();
    want.sort();
    want.dedup();
    assert_eq!(got, want);
}
