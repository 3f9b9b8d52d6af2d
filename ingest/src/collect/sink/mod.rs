//! Sinks: where a branch's events go. `deliver` returns only when the destination has the
//! whole batch (Kafka: every delivery report; file_roll: written and fsynced; logger:
//! written to stdout; bulkload: written and fsynced, loaded into the store later), so the sink
//! runner can commit the channel take.

pub mod bulkload;
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

    /// Time-based work between batches (file_roll's roll interval). The sink runner calls
    /// it whenever a take comes back empty, so at least every 100 ms while the channel is
    /// idle: time passing alone must be enough to publish what was delivered.
    ///
    /// # Errors
    /// As [`deliver`](Self::deliver); the runner logs it and carries on, as every event
    /// taken so far is already delivered.
    fn tick(&mut self) -> Result<()> {
        Ok(())
    }

    /// Called on shutdown after the last delivery.
    ///
    /// # Errors
    /// Failing to flush or close.
    fn close(&mut self) -> Result<()> {
        Ok(())
    }
}
