//! `config/server.toml` is the one documented place for the server's file keys: it loads
//! with the real loader, states the true defaults, and names every key the loader knows
//! (the key list is taken from the loader itself, by asking it about an unknown key).

use std::path::{Path, PathBuf};

use clap::Parser;
use speedlayer_server::config::{ServerArgs, Settings};

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/server.toml")
}

fn resolve(args: &[&str]) -> Result<Settings, String> {
    let mut all = vec!["speedlayer-server"];
    all.extend_from_slice(args);
    ServerArgs::parse_from(all)
        .resolve()
        .map_err(|e| e.to_string())
}

/// The keys the loader accepts in a table: it refuses `__probe__` and lists what it expects.
fn known_keys(table: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("probe.toml");
    let text = match table {
        Some(t) => format!("[{t}]\n__probe__ = 1\n"),
        None => "__probe__ = 1\n".to_owned(),
    };
    std::fs::write(&path, text).unwrap();
    let err = resolve(&["--config", path.to_str().unwrap()]).unwrap_err();
    let list = err
        .split_once("expected")
        .unwrap_or_else(|| panic!("no key list in {err:?}"))
        .1;
    let keys: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!keys.is_empty(), "no keys parsed from {err:?}");
    keys
}

#[test]
fn the_example_names_every_key_the_loader_knows() {
    let text = std::fs::read_to_string(example()).unwrap();
    let section = |name: &str| -> String {
        let start = text
            .find(&format!("\n[{name}]\n"))
            .unwrap_or_else(|| panic!("no [{name}] table"));
        let rest = &text[start + name.len() + 3..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
    };
    let top = &text[..text.find("\n[").unwrap_or(text.len())];
    let has_key = |body: &str, key: &str| body.lines().any(|l| l.starts_with(&format!("{key} = ")));
    for key in known_keys(None) {
        if key == "grpc" || key == "resp" || key == "cluster" {
            assert!(text.contains(&format!("\n[{key}]\n")), "no [{key}] table");
        } else {
            assert!(
                has_key(top, &key),
                "top-level key `{key}` missing from the example"
            );
        }
    }
    for table in ["grpc", "resp", "cluster"] {
        let body = section(table);
        for key in known_keys(Some(table)) {
            assert!(
                has_key(&body, &key),
                "[{table}] `{key}` missing from the example"
            );
        }
    }
}

#[test]
fn the_example_loads_and_states_the_defaults() {
    let path = example();
    let from_file = resolve(&["--config", path.to_str().unwrap()]).unwrap();
    let defaults = resolve(&[]).unwrap();
    assert_eq!(from_file.data_dir, defaults.data_dir);
    assert_eq!(from_file.only_resp, defaults.only_resp);

    let (f, d) = (from_file.region.unwrap(), defaults.region.unwrap());
    assert_eq!(f.dir, d.dir);
    assert_eq!(f.grpc_addr, d.grpc_addr);
    assert_eq!(f.http_addr, d.http_addr);
    assert_eq!(f.max_message_bytes, d.max_message_bytes);
    assert_eq!(f.split_check_interval, d.split_check_interval);
    assert_eq!(f.engine.memstore_flush_bytes, d.engine.memstore_flush_bytes);
    assert_eq!(f.engine.region_split_bytes, d.engine.region_split_bytes);
    assert_eq!(f.engine.block_cache_bytes, d.engine.block_cache_bytes);

    let (f, d) = (from_file.resp.unwrap(), defaults.resp.unwrap());
    assert_eq!(f.addr, d.addr);
    assert_eq!(f.dir, d.dir);
    assert_eq!(f.requirepass, d.requirepass);
    assert_eq!(f.replicaof, d.replicaof);
    assert_eq!(f.appendfsync, d.appendfsync);
    assert_eq!(f.maxclients, d.maxclients);
    assert_eq!(f.protected_mode, d.protected_mode);
    assert_eq!(f.auto_aof_rewrite_percentage, d.auto_aof_rewrite_percentage);
    assert_eq!(f.auto_aof_rewrite_min_size, d.auto_aof_rewrite_min_size);
    assert_eq!(f.threads, d.threads);
    assert_eq!(f.busy_poll, d.busy_poll);
}

#[test]
fn the_example_runs_alone_with_the_default_cluster_settings() {
    let path = example();
    let from_file = resolve(&["--config", path.to_str().unwrap()]).unwrap();
    let defaults = resolve(&[]).unwrap();
    assert_eq!(from_file.cluster, defaults.cluster);
    assert!(from_file.cluster_mode().is_none(), "the example runs alone");
}
