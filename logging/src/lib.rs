//! The log set-up every speedlayer binary shares: one [`init`] that installs the process's
//! `tracing` subscriber on stderr, in the [`LogFormat`] the operator chose.
//!
//! - `text` (the default) is `tracing_subscriber`'s human format. It is coloured only when
//!   stderr is a terminal and `NO_COLOR` is unset: redirected to a file, a pipe or a
//!   journal, a log holds no ANSI escape sequences for a reader or a parser to trip over.
//! - `json` writes one JSON object per line (`timestamp`, `level`, `target`, `fields`...),
//!   for log shippers; it never carries colour.
//!
//! `RUST_LOG` filters as usual; without it each binary passes its own default filter.
//! Events of libraries that log through the `log` crate (librdkafka's, via `rdkafka`) are
//! forwarded into the same subscriber.
//!
//! Not a metrics or tracing-export layer: only where log lines go and how they look.

use std::io::IsTerminal;

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines; coloured only on a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Whether text logs may carry ANSI colour: only when stderr is a terminal and the
/// `NO_COLOR` convention (<https://no-color.org>) is not in force.
pub fn colour_on_stderr() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

/// Installs the global subscriber: `format` on stderr, filtered by `RUST_LOG` or, when it is
/// unset or invalid, by `default_filter` (e.g. `"info"`).
///
/// # Errors
/// When a global subscriber is already installed (a second call in one process).
pub fn init(
    format: LogFormat,
    default_filter: &str,
) -> Result<(), tracing_subscriber::util::TryInitError> {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    match format {
        LogFormat::Text => tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(colour_on_stderr())
            .with_env_filter(filter)
            .finish()
            .try_init(),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            .with_writer(std::io::stderr)
            .with_env_filter(filter)
            .finish()
            .try_init(),
    }
}
