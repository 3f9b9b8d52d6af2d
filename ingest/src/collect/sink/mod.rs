//! Sinks: where a branch's events go. `deliver` returns only when the destination has the
//! whole batch (Kafka: every delivery report; file_roll: written and fsynced; logger:
//! written to stdout), so the sink runner can commit the channel take.

pub mod file_roll;
pub mod kafka;
pub mod logger;

use super::Event;
use crate::error::Result;

/// A destination for events.
pub trait Sink: Send {
    /// The sink's name (for metrics and errors).
    fn name(&self) -> &str;

    /// Delivers the whole batch or fails; on failure the runner rolls back and retries.
    ///
    /// # Errors
    /// Any delivery failure ([`Error::Sink`](crate::Error::Sink), I/O, Kafka).
    fn deliver(&mut self, events: &[&Event]) -> Result<()>;

    /// Called on shutdown after the last delivery.
    ///
    /// # Errors
    /// Failing to flush or close.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
