//! `config/worker.toml` is the one documented place for the worker's file keys: it loads
//! with the real loader, states the true defaults, and names every key the loader knows
//! (the list comes from the loader, asked about an unknown key).

use std::path::{Path, PathBuf};

use std::time::Duration;

use speedlayer_ingest::worker::{Parser, TopicConfig, WorkerArgs, WorkerConfig};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/worker.toml")
}

fn from_file(path: PathBuf) -> Result<WorkerConfig, String> {
    WorkerConfig::resolve(&WorkerArgs {
        config: Some(path),
        ..WorkerArgs::default()
    })
    .map_err(|e| e.to_string())
}

#[test]
fn the_example_names_every_key_the_loader_knows() {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.toml");
    std::fs::write(&probe, "__probe__ = 1\n").unwrap();
    let err = from_file(probe).unwrap_err();
    let keys: Vec<&str> = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("no key list in {err:?}"))
        .1
        .split('`')
        .skip(1)
        .step_by(2)
        .collect();
    assert!(keys.len() > 10, "{keys:?}");
    let text = std::fs::read_to_string(example()).unwrap();
    for key in keys {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{key} = "))),
            "`{key}` missing from config/worker.toml"
        );
    }
}

#[test]
fn the_example_loads_and_states_the_defaults() {
    let c = from_file(example()).unwrap();
    let d = WorkerConfig::new(
        &c.brokers,
        &c.server,
        &c.resp,
        Path::new("config/rules.toml"),
    );
    assert_eq!(
        (&c.brokers, &c.server, &c.resp),
        (
            &"127.0.0.1:9092".to_owned(),
            &"http://127.0.0.1:16020".to_owned(),
            &"127.0.0.1:6380".to_owned()
        )
    );
    assert_eq!(c.topics, d.topics);
    assert_eq!(c.group, d.group);
    assert_eq!(c.rules, d.rules);
    assert_eq!(c.http_addr, d.http_addr);
    assert_eq!(c.idle_flush, d.idle_flush);
    assert_eq!(c.batch_max_events, d.batch_max_events);
    assert_eq!(c.batch_max_bytes, d.batch_max_bytes);
    assert_eq!(c.batch_linger, d.batch_linger);
    assert_eq!(c.commit_interval, d.commit_interval);
    assert_eq!(c.backoff_max, d.backoff_max);
    assert_eq!(c.resp_timeout, d.resp_timeout);
}

#[test]
fn the_documented_two_topic_setup_loads_as_documented() {
    let text = std::fs::read_to_string(example()).unwrap();
    // The commented `topics = [ … ]` block of the example, uncommented.
    let block: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("#   topics = ["))
        .take_while(|l| l.starts_with("#  "))
        .map(|l| &l[1..])
        .collect();
    assert!(block.len() >= 4, "no commented topics example: {block:?}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.toml");
    std::fs::write(
        &path,
        format!(
            "brokers = \"127.0.0.1:9092\"\nserver = \"http://127.0.0.1:16020\"\n\
             resp = \"127.0.0.1:6380\"\n{}\n",
            block.join("\n")
        ),
    )
    .unwrap();
    let c = from_file(path).unwrap();
    assert_eq!(
        c.topics,
        vec![
            TopicConfig::driving("SmartCar-Topic"),
            TopicConfig::status("SmartCar-Status", Some(Duration::from_secs(30 * 86_400))),
        ]
    );
    assert_eq!(c.topics[1].parser, Parser::Status);
    assert_eq!(c.topics[1].table, "car_status");
    assert!(!c.topics[1].rules);
}
