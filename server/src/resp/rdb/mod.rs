//! Redis's RDB format, for the types we hold (sets): a writer (SAVE, and the replication
//! full sync) and a reader (migration from Redis). The grammar, a worked example and the
//! invariants are in `server/docs/rdb.md`; constants here point back to it.
//!
//! This is an exchange format, not our persistence (the AOF and `dump.snap` are, see
//! `aof`): this module encodes and decodes bytes and does no I/O; the import at start is in
//! `aof::Aof::open`, SAVE in `cmd::system`.

pub mod crc64;
pub mod lzf;
mod read;
mod write;

pub use read::{Decoded, decode};
pub use write::encode;

/// The file name, in the RESP directory, of the RDB that SAVE writes and a first start
/// imports.
pub const RDB_FILE: &str = "dump.rdb";
/// `REDIS` then the version: we write 10, as Redis 7.0 does.
pub const MAGIC: &[u8; 5] = b"REDIS";
/// The version we write (Redis 7.0's).
pub const VERSION: u32 = 10;
/// The newest version we read (Redis 7.2 writes 11).
pub const MAX_VERSION: u32 = 11;

/// Opcodes (`rdb.md`, grammar).
pub(crate) mod op {
    pub const FUNCTION_PRE_GA: u8 = 0xF6;
    pub const FUNCTION2: u8 = 0xF5;
    pub const MODULE_AUX: u8 = 0xF7;
    pub const IDLE: u8 = 0xF8;
    pub const FREQ: u8 = 0xF9;
    pub const AUX: u8 = 0xFA;
    pub const RESIZEDB: u8 = 0xFB;
    pub const EXPIRETIME_MS: u8 = 0xFC;
    pub const EXPIRETIME: u8 = 0xFD;
    pub const SELECTDB: u8 = 0xFE;
    pub const EOF: u8 = 0xFF;
}

/// Value types (`rdb.md`, grammar); the sets are the ones we read.
pub(crate) mod ty {
    pub const SET: u8 = 2;
    pub const SET_INTSET: u8 = 11;
    pub const SET_LISTPACK: u8 = 20;
}

/// The largest set Redis 7.0 keeps as an intset (`set-max-intset-entries`).
pub const INTSET_MAX_ENTRIES: usize = 512;

/// What a Redis type byte holds, for refusals.
pub(crate) fn type_name(t: u8) -> &'static str {
    match t {
        0 => "a string",
        1 | 10 | 14 | 18 => "a list",
        3 | 5 | 12 | 17 => "a sorted set",
        4 | 9 | 13 | 16 => "a hash",
        6 | 7 => "module data",
        15 | 19 | 21 => "a stream",
        _ => "an unknown type",
    }
}
