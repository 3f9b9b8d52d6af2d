//! `config/agent.toml` is the one documented place for the collector's keys: it loads with
//! the real loader (what `scripts/demo.sh` runs), and names every key and type the loader
//! knows. The key lists come from the loader itself: asked about an unknown key or type, it
//! refuses and lists what it expects.

use std::path::{Path, PathBuf};

use speedlayer_ingest::collect::config::{AgentConfig, ChannelConfig, SinkConfig, SourceConfig};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/agent.toml")
}

/// What the loader says it expects when `text` holds an unknown key or type (empty when
/// the table takes no keys at all).
fn expected(text: &str) -> Vec<String> {
    let err = AgentConfig::parse(text)
        .err()
        .unwrap_or_else(|| panic!("the probe was accepted: {text}"))
        .to_string();
    assert!(
        err.contains("__probe__"),
        "not about the probe: {err}\n{text}"
    );
    match err.split_once("expected") {
        None => Vec::new(),
        Some((_, list)) => list
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect(),
    }
}

const P: &str = "[[pipeline]]\nname = \"p\"\n";

#[test]
fn the_example_loads_with_the_real_loader() {
    let cfg = AgentConfig::load(&example()).unwrap();
    let names: Vec<&str> = cfg.pipeline.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["driving", "status"]);
    let dir = example().parent().unwrap().to_path_buf();
    let driving = &cfg.pipeline[0];
    assert!(
        matches!(&driving.source, SourceConfig::Tail { path, .. } if *path == dir.join("logs/driving.log")),
        "relative paths resolve against the file's directory: {:?}",
        driving.source
    );
    assert!(matches!(driving.channel, Some(ChannelConfig::File { .. })));
    assert!(
        matches!(&driving.sink, Some(SinkConfig::Kafka { brokers, .. }) if brokers == "127.0.0.1:19092"),
        "scripts/demo.sh rewrites this address: {:?}",
        driving.sink
    );
    assert!(matches!(
        cfg.pipeline[1].sink,
        Some(SinkConfig::FileRoll { .. })
    ));
}

#[test]
fn the_example_names_every_key_and_type_the_loader_knows() {
    let text = std::fs::read_to_string(example()).unwrap();
    let mut missing = Vec::new();
    let named = |key: &str| {
        [
            format!("{key} ="),
            format!("[{key}]"),
            format!("[[{key}]]"),
            format!("[[pipeline.{key}]]"),
        ]
        .iter()
        .any(|form| text.contains(form))
    };
    let need_key = |missing: &mut Vec<String>, what: &str, key: &str| {
        if !named(key) {
            missing.push(format!("{what}: key `{key}`"));
        }
    };
    for k in expected("__probe__ = 1\n") {
        need_key(&mut missing, "top level", &k);
    }
    for k in expected("[agent]\n__probe__ = 1\n") {
        need_key(&mut missing, "[agent]", &k);
    }
    let pipeline_keys = expected("[[pipeline]]\n__probe__ = 1\n");
    assert!(
        pipeline_keys.contains(&"source".to_owned()),
        "{pipeline_keys:?}"
    );
    for k in &pipeline_keys {
        need_key(&mut missing, "[[pipeline]]", k);
    }
    for k in expected(&format!("{P}[[pipeline.branch]]\n__probe__ = 1\n")) {
        need_key(&mut missing, "[[pipeline.branch]]", &k);
    }
    // Tagged tables: every type, and every key of every type.
    let tagged = [
        (
            "source",
            format!("{P}source = {{ type = \"TYPE\", __probe__ = 1 }}\n"),
        ),
        (
            "interceptors",
            format!(
                "{P}source = {{ type = \"spooldir\", dir = \"d\" }}\ninterceptors = [{{ type = \"TYPE\", __probe__ = 1 }}]\n"
            ),
        ),
        (
            "selector",
            format!(
                "{P}source = {{ type = \"spooldir\", dir = \"d\" }}\nselector = {{ type = \"TYPE\", __probe__ = 1 }}\n"
            ),
        ),
        (
            "channel",
            format!(
                "{P}source = {{ type = \"spooldir\", dir = \"d\" }}\nchannel = {{ type = \"TYPE\", __probe__ = 1 }}\n"
            ),
        ),
        (
            "sink",
            format!(
                "{P}source = {{ type = \"spooldir\", dir = \"d\" }}\nsink = {{ type = \"TYPE\", __probe__ = 1 }}\n"
            ),
        ),
    ];
    for (what, template) in &tagged {
        let types = expected(&template.replace("TYPE", "__probe__"));
        assert!(!types.is_empty(), "{what}: no types listed");
        for t in types {
            if !text.contains(&format!("type = \"{t}\"")) {
                missing.push(format!("{what}: type `{t}`"));
            }
            for k in expected(&template.replace("TYPE", &t)) {
                need_key(&mut missing, &format!("{what} {t}"), &k);
            }
        }
    }
    assert!(missing.is_empty(), "not in config/agent.toml: {missing:#?}");
}
