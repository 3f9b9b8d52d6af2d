//! The collector agent: Flume's model (source → interceptors → selector → channels → sinks)
//! configured in TOML, several pipelines per agent, at-least-once from file to sink.
//!
//! Transactions: a source puts a batch into its channels and only then advances its own
//! position (tail checkpoint, spooldir rename); a sink runner takes a batch, hands it to its
//! sink, and commits the take only when the sink has it (Kafka: every delivery report;
//! file_roll: written and fsynced). A failed delivery rolls the take back and retries.
//!
//! Not a general stream processor: events are opaque lines plus a few headers.

pub mod agent;
pub mod channel;
pub mod config;
pub mod interceptor;
pub mod selector;
pub mod sink;
pub mod source;

/// One collected line and its headers, the unit that moves through a pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// Headers set by interceptors (`timestamp`, `host`, extracted fields).
    pub headers: Vec<(String, String)>,
    /// The line, without its terminator.
    pub body: Vec<u8>,
    /// `Some(reason)` if the validator refused the line: it goes to the dead-letter sink.
    pub dead_letter: Option<String>,
}

impl Event {
    /// An event with no headers.
    pub fn new(body: Vec<u8>) -> Self {
        Event {
            headers: Vec::new(),
            body,
            dead_letter: None,
        }
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Sets header `name` (replacing an existing value).
    pub fn set_header(&mut self, name: &str, value: String) {
        match self.headers.iter_mut().find(|(k, _)| k == name) {
            Some(h) => h.1 = value,
            None => self.headers.push((name.to_owned(), value)),
        }
    }

    /// Approximate in-memory/on-disk size, for byte bounds.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len() + 6)
                .sum::<usize>()
            + self.dead_letter.as_ref().map_or(0, String::len)
            + 16
    }
}
