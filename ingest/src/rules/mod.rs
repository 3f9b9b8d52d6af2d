//! The rule engine: Esper `time_batch`-style aggregations evaluated in event time.
//!
//! - [`config`]: the TOML rule file, parsed and validated with precise messages.
//! - [`expr`]: the `having` expression language (aggregates, comparisons, AND/OR).
//! - [`window`]: tumbling event-time windows, per-partition watermarks, idle detection.
//! - [`engine`]: windows + rules → firings, lateness, and Kafka offsets safe to commit.
//! - [`reload`]: watching the rule file and swapping rules without a restart.
//!
//! The engine is pure: it knows nothing of Kafka, the store or RESP. The worker feeds it
//! [`engine::Sample`]s with their partition and offset, and acts on the firings.

pub mod config;
pub mod engine;
pub mod expr;
pub mod reload;
pub mod window;

pub use config::{GroupField, Rule, RuleSet};
pub use engine::{Admission, Engine, EngineOptions, Firing, Sample};
