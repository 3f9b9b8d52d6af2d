//! The logger sink: writes each event to stdout as `[sink] key=value … | body` (dead letters
//! with their `reason`). For debugging and demos, not for volume.

use std::io::Write;

use super::Sink;
use crate::collect::Event;
use crate::error::{Error, Result};

/// Writes events to stdout.
pub struct LoggerSink {
    name: String,
}

impl LoggerSink {
    /// A logger sink.
    pub fn new(name: &str) -> Self {
        LoggerSink {
            name: name.to_owned(),
        }
    }
}

/// Renders one event as the logger prints it (without the newline).
pub fn render(sink: &str, e: &Event) -> String {
    let mut s = format!("[{sink}]");
    if let Some(r) = &e.dead_letter {
        s.push_str(&format!(" reason={r:?}"));
    }
    for (k, v) in &e.headers {
        s.push_str(&format!(" {k}={v}"));
    }
    s.push_str(" | ");
    s.push_str(&String::from_utf8_lossy(&e.body));
    s
}

impl Sink for LoggerSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn deliver(&mut self, events: &[&Event]) -> Result<()> {
        let out = std::io::stdout();
        let mut out = out.lock();
        for e in events {
            writeln!(out, "{}", render(&self.name, e))
                .map_err(|err| Error::io("write", "<stdout>", err))?;
        }
        out.flush()
            .map_err(|err| Error::io("flush", "<stdout>", err))
    }
}
