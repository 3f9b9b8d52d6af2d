//! Write requests: a [`Mutation`] is one row's edits, applied atomically.
//!
//! This module only describes edits; turning them into cells (timestamps resolved,
//! sequence numbers assigned) is the region's job.

use bytes::Bytes;

/// One edit of a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MutationOp {
    /// Writes a value. `timestamp: None` = server time in ms when applied.
    Put {
        family: Bytes,
        qualifier: Bytes,
        timestamp: Option<u64>,
        value: Bytes,
    },
    /// Deletes one version: the one at `timestamp`, or the newest visible one if `None`
    /// (when the column has none, the marker gets the current time and masks nothing older
    /// than a put at exactly that time).
    Delete {
        family: Bytes,
        qualifier: Bytes,
        timestamp: Option<u64>,
    },
    /// Deletes every version of a column with timestamp ≤ `timestamp` (now if `None`).
    DeleteColumn {
        family: Bytes,
        qualifier: Bytes,
        timestamp: Option<u64>,
    },
    /// Deletes every column of a family with timestamp ≤ `timestamp` (now if `None`).
    DeleteFamily {
        family: Bytes,
        timestamp: Option<u64>,
    },
    /// A `DeleteFamily` on every family of the table.
    DeleteRow { timestamp: Option<u64> },
}

/// All edits of one row; applied atomically (all or none visible).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    pub row: Bytes,
    pub ops: Vec<MutationOp>,
}

impl Mutation {
    /// An empty mutation of `row`.
    pub fn new(row: impl Into<Bytes>) -> Self {
        Mutation {
            row: row.into(),
            ops: Vec::new(),
        }
    }

    /// Adds a put (builder style).
    pub fn put(
        mut self,
        family: impl Into<Bytes>,
        qualifier: impl Into<Bytes>,
        timestamp: Option<u64>,
        value: impl Into<Bytes>,
    ) -> Self {
        self.ops.push(MutationOp::Put {
            family: family.into(),
            qualifier: qualifier.into(),
            timestamp,
            value: value.into(),
        });
        self
    }

    /// Adds an op (builder style).
    pub fn op(mut self, op: MutationOp) -> Self {
        self.ops.push(op);
        self
    }
}
