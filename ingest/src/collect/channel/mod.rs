//! Channels: the buffer between a source and a sink, with Flume's transaction discipline.
//! A sink runner `take`s a batch, delivers it, then `commit`s (the events leave the channel)
//! or `rollback`s (they will be taken again, in order). At most one take is outstanding per
//! channel: each channel has exactly one sink runner.
//!
//! Both channels are bounded: `put` blocks while the channel is full and returns
//! [`Error::Shutdown`](crate::Error::Shutdown) once the channel is closed.

pub mod file;
pub mod memory;

use std::time::Duration;

use super::Event;
use crate::error::Result;

/// A bounded, transactional event buffer.
pub trait Channel: Send + Sync {
    /// The channel's name (for metrics and errors).
    fn name(&self) -> &str;

    /// Appends `events`, blocking while the channel is full. For the file channel the
    /// events are on disk (and fsynced per its policy) when this returns.
    ///
    /// # Errors
    /// `Shutdown` if closed while waiting; I/O errors for the file channel.
    fn put(&self, events: Vec<Event>) -> Result<()>;

    /// Takes up to `max` events, waiting up to `wait` for the first one; empty on timeout.
    ///
    /// # Errors
    /// I/O or checksum errors for the file channel.
    fn take(&self, max: usize, wait: Duration) -> Result<Vec<Event>>;

    /// The outstanding take was delivered: its events leave the channel.
    ///
    /// # Errors
    /// I/O errors writing the file channel's checkpoint.
    fn commit(&self) -> Result<()>;

    /// The outstanding take failed: its events (given back) will be taken again first.
    ///
    /// # Errors
    /// I/O errors re-opening the file channel's segment.
    fn rollback(&self, events: Vec<Event>) -> Result<()>;

    /// Events in the channel, including an outstanding take.
    fn len(&self) -> usize;

    /// Whether [`len`](Self::len) is 0.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wakes blocked callers; later `put`s fail with `Shutdown`. Takes still drain.
    fn close(&self);
}
