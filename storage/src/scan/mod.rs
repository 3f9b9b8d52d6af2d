//! The read path: merging sources, deciding visibility, and walking rows of a region
//! snapshot forward or backward.
//!
//! `merge` merges sorted sources; `visibility` applies masking, versions, TTL and time
//! range to one row of one family; `rows` turns a region snapshot into rows for gets and
//! scans. Nothing here writes.

pub mod merge;
pub mod rows;
pub mod visibility;
