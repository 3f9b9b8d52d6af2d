//! The read path: deciding visibility and walking rows of a region snapshot forward or
//! backward, over the sorted sources `merge` combines.
//!
//! `visibility` applies masking, versions, TTL and time range to one row of one family;
//! `rows` turns a region snapshot into rows for gets and scans. Nothing here writes.

pub mod rows;
pub mod visibility;
