//! [`ParseError`]: the crate's one error type, the precise reason a log line is bad input
//! (it travels with the line into a dead-letter sink or file, so it is a value, not just a
//! failure).

/// Why a log line is not a valid SPEC §1 record. `Display` is the human reason that goes into
/// the dead-letter header `reason`; field indices are 1-based as in SPEC §1's tables.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The line is empty (or only a line terminator).
    #[error("empty line")]
    Empty,
    /// The line is longer than any valid record can be.
    #[error("line of {len} bytes exceeds the {max}-byte limit")]
    TooLong {
        /// Length of the refused line.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The line is not valid UTF-8.
    #[error("line is not valid UTF-8 (at byte {at})")]
    NotUtf8 {
        /// Offset of the first invalid byte.
        at: usize,
    },
    /// Wrong number of comma-separated fields.
    #[error("expected {expected} fields, got {got}")]
    FieldCount {
        /// Fields the format has.
        expected: usize,
        /// Fields found.
        got: usize,
    },
    /// One field is malformed or out of range.
    #[error("field {index} ({name}): {reason}")]
    Field {
        /// 1-based field index.
        index: usize,
        /// Field name as in SPEC §1.
        name: &'static str,
        /// What was wrong, with the offending value.
        reason: String,
    },
}
