//! The Kafka sink against a real Kafka-protocol broker (tansu): simulated driving logs with
//! garbage go tail → validator → file channel → Kafka. The topic holds exactly the valid
//! lines (count and content), keyed by car number with each car's events in one partition
//! in log order; the dead-letter topic holds exactly the garbage lines, each with a
//! `reason` header equal to the parser's reason.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::time::{Duration, Instant};

use speedlayer_ingest::collect::agent;
use speedlayer_ingest::collect::config::AgentConfig;
use speedlayer_ingest::event::parse_driving;
use speedlayer_ingest::metrics::Registry;
use speedlayer_ingest::simulate::{SimOptions, run};
use speedlayer_tests::tansu::Tansu;

#[test]
fn topic_and_dead_letter_topic_equal_the_input() {
    let t = Tansu::start();
    t.create_topic("SmartCar-Topic", 4);
    t.create_topic("SmartCar-Topic.dlq", 1);
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let summary = run(&SimOptions {
        cars: 50,
        duration_secs: 60,
        speedup: 0.0,
        seed: 11,
        garbage_rate: 0.05,
        driving_log: dir.join("logs/driving.log"),
        status_spool: dir.join("spool/status"),
        start: chrono::NaiveDateTime::parse_from_str("20261122100000", "%Y%m%d%H%M%S").unwrap(),
        rotate_size: None,
        progress: false,
    })
    .unwrap();
    assert!(summary.garbage_lines > 0);
    let text = fs::read_to_string(dir.join("logs/driving.log")).unwrap();
    let (valid, garbage): (Vec<&str>, Vec<&str>) =
        text.lines().partition(|l| parse_driving(l).is_ok());
    assert_eq!(garbage.len() as u64, summary.garbage_lines);

    let toml = format!(
        r#"
[[pipeline]]
name = "driving"
batch_size = 500
source = {{ type = "tail", path = "logs/driving.log", position_file = "state/driving.pos", poll_interval = "10ms" }}
interceptors = [{{ type = "validate", format = "driving" }}]
channel = {{ type = "file", dir = "state/driving-channel", capacity_mb = 64 }}
sink = {{ type = "kafka", brokers = "{b}", topic = "SmartCar-Topic", key = "car_number" }}
dead_letter = {{ type = "kafka", brokers = "{b}", topic = "SmartCar-Topic.dlq" }}
"#,
        b = t.brokers()
    );
    fs::write(dir.join("agent.toml"), toml).unwrap();
    let cfg = AgentConfig::load(&dir.join("agent.toml")).unwrap();
    let reg = Registry::new();
    let a = agent::start(&cfg, &reg).unwrap();
    let l = [("pipeline", "driving"), ("branch", "main")];
    let out = reg.counter("speedlayer_collect_events_out_total", "", &l);
    let dl = reg.counter("speedlayer_collect_dead_letters_out_total", "", &l);
    let deadline = Instant::now() + Duration::from_secs(60);
    while out.get() < valid.len() as u64 || dl.get() < garbage.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "delivered {} + {} dead",
            out.get(),
            dl.get()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    a.stop().unwrap();
    assert_eq!(out.get(), valid.len() as u64);
    assert_eq!(dl.get(), garbage.len() as u64);

    let recs = t.consume_all("SmartCar-Topic", Duration::from_secs(30));
    let mut got: Vec<String> = recs
        .iter()
        .map(|r| String::from_utf8(r.payload.clone()).unwrap())
        .collect();
    got.sort();
    let mut want: Vec<String> = valid.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(got.len(), want.len(), "count");
    assert_eq!(got, want, "content");

    // Key = car number; one car, one partition, in log order.
    let mut by_car: HashMap<String, Vec<(i32, i64, String)>> = HashMap::new();
    for r in &recs {
        let payload = String::from_utf8(r.payload.clone()).unwrap();
        let car = parse_driving(&payload).unwrap().car_number;
        assert_eq!(r.key.as_deref(), Some(car.as_bytes()));
        by_car
            .entry(car)
            .or_default()
            .push((r.partition, r.offset, payload));
    }
    let mut log_order: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for l in &valid {
        log_order.entry(&l[15..20]).or_default().push(l);
    }
    for (car, mut v) in by_car {
        assert!(
            v.iter().all(|x| x.0 == v[0].0),
            "car {car} spans partitions"
        );
        v.sort_by_key(|x| x.1);
        let seq: Vec<&str> = v.iter().map(|x| x.2.as_str()).collect();
        assert_eq!(seq, log_order[car.as_str()], "car {car} out of order");
    }

    let dlq = t.consume_all("SmartCar-Topic.dlq", Duration::from_secs(30));
    assert_eq!(dlq.len(), garbage.len());
    for r in &dlq {
        let line = String::from_utf8(r.payload.clone()).unwrap();
        assert!(
            garbage.contains(&line.as_str()),
            "{line} is not a garbage line"
        );
        let reason = parse_driving(&line).unwrap_err().to_string();
        assert_eq!(r.header("reason"), Some(reason.as_str()));
    }
}
