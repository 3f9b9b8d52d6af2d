//! What this process is: its binary, version, git commit and cargo profile (recorded at
//! build time), and when it started. Exported as `speedlayer_build_info` and the uptime
//! gauges; shown by the web console.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The workspace version the binary was built from.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit the binary was built from (12 hex digits), or `unknown` outside a git
/// checkout (set `SPEEDLAYER_GIT_COMMIT` when building from a tarball).
pub const GIT_COMMIT: &str = env!("SPEEDLAYER_GIT_COMMIT");

/// The cargo profile: `debug` when built with debug assertions, else `release`.
pub const PROFILE: &str = if cfg!(debug_assertions) {
    "debug"
} else {
    "release"
};

/// One process's identity and start time.
#[derive(Debug, Clone)]
pub struct Process {
    /// The binary's name (`speedlayer-server`, `speedlayer-ingest worker`, ...).
    pub binary: String,
    started: Instant,
    started_wall: SystemTime,
}

impl Process {
    /// Starts the clock now.
    pub fn new(binary: &str) -> Process {
        Process {
            binary: binary.to_owned(),
            started: Instant::now(),
            started_wall: SystemTime::now(),
        }
    }

    /// Time since [`Process::new`].
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Start time since the Unix epoch, in seconds.
    pub fn start_unix_secs(&self) -> f64 {
        self.started_wall
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    }

    /// The labels of `speedlayer_build_info`.
    pub fn info_labels(&self) -> [(&str, &str); 4] {
        [
            ("binary", self.binary.as_str()),
            ("version", VERSION),
            ("commit", GIT_COMMIT),
            ("profile", PROFILE),
        ]
    }
}
