//! The one log format shared by the WAL and the manifest: a file header followed by
//! checksummed, length-prefixed frames (`storage/docs/log_format.md`), and the one recovery
//! loop that reads such a file back and decides what a damaged tail is.
//!
//! What recovery must tell apart: damage a power cut can leave (bytes never made durable by
//! an `fsync`: a short or torn last frame, unsynced pages that reached the disk out of
//! order or read back as zeros) from damage to bytes that *were* synced (media or software
//! corruption). Only the first may be cut away. The format decides it with **durability
//! confirmations**: every valid frame may vouch that the log had been synced up to some
//! offset when it was written. The manifest syncs every frame before the next is appended,
//! so each of its frames confirms its own offset; the WAL writes an explicit sync marker
//! frame carrying the synced offset before a group whenever it grew. Damage at offset `X`
//! is a torn tail iff no valid frame anywhere after `X` confirms an offset beyond `X`.
//!
//! This module knows frames and files; it does not decode payloads or apply them.

mod recover;

pub use recover::{LogSpec, Recovered, RecoveryMode, TornTail, recover};

pub use crate::coding::{
    FRAME_HEADER_BYTES, FrameRead, begin_frame, finish_frame, put_frame, read_frame,
};
