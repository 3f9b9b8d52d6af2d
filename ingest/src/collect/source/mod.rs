//! Sources: where lines come from. A source reads a batch of lines, hands it to the
//! pipeline's emitter (interceptors → selector → channel puts, durable when it returns)
//! and only then advances its own position, so a crash repeats lines rather than losing
//! them.

pub mod spooldir;
pub mod tail;

use std::sync::atomic::AtomicBool;

use crate::error::Result;

/// The pipeline side of a source: takes a batch of raw lines; returns once they are in
/// every target channel.
pub type Emit<'a> = dyn FnMut(Vec<Vec<u8>>) -> Result<()> + 'a;

/// A line source run on its own thread until `stop` is set.
pub trait Source: Send {
    /// Runs until `stop` is set (then saves its position and returns) or a fatal error.
    ///
    /// # Errors
    /// I/O errors on the followed files or checkpoint; emitter errors (e.g. shutdown).
    fn run(&mut self, emit: &mut Emit<'_>, stop: &AtomicBool) -> Result<()>;
}
