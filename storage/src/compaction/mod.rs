//! Compaction: merging a store's immutable files so reads stay fast and dead data leaves
//! the disk.
//!
//! The decision of *what* to compact is a pure function of the store's file set and its
//! options ([`policy`]): HBase's exploring (ratio) selection for minor compactions,
//! periodic and on-demand major compactions, and a date-tiered selection for time-series
//! families, plus dropping whole files whose newest cell is past the family's TTL.
//!
//! This module is not the file format (`hfile`), nor the authoritative file list
//! (`manifest`); it decides and (in the executor) applies plans recorded there.

pub mod executor;
pub mod policy;
pub mod retain;
pub mod run;
pub mod throttle;
pub mod worker;

pub use crate::store::{CompactionStats, FailPoint};
pub use policy::{
    CandidateFile, CompactionOptions, CompactionPlan, CompactionStyle, FamilyPolicy, PlanKind,
    select, select_major,
};
