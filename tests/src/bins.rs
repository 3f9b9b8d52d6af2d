//! Locating the workspace's binaries from an integration test.
//!
//! Cargo only exposes `CARGO_BIN_EXE_*` to tests of the same package, so the cross-crate
//! suite finds binaries beside its own test executable (`target/<profile>/deps/..`).

use std::path::PathBuf;

/// The path of a binary built from this workspace, e.g. `bin_path("speedlayer-server")`.
///
/// # Panics
/// If the binary has not been built (run `cargo build --workspace --bins` first; `make test`
/// does).
pub fn bin_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe
        .parent()
        .expect("test binary has a parent")
        .to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join(name);
    assert!(
        path.exists(),
        "binary {} not found: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}
