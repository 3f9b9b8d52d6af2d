//! When a periodic major compaction is due, after HBase's `hbase.hregion.majorcompaction`
//! and `hbase.hregion.majorcompaction.jitter`.
//!
//! A store is due when its oldest file was written at least one (jittered) period ago. The
//! jitter spreads stores over `period × (1 ± jitter)` deterministically from a per-store
//! seed, so the answer is stable between calls and stores do not all rewrite at once.
//! A store of one file that holds no delete marker and no expired cell is not due: a major
//! compaction would rewrite it unchanged (HBase skips an already major-compacted file the
//! same way).
//!
//! This module decides only "due"; [`super::select_major`] builds the plan.

use super::{CandidateFile, CompactionOptions};

/// The store's major period after jitter, in ms: within `period × (1 ± jitter)`.
pub fn jittered_period(period_ms: u64, jitter: f64, seed: u64) -> u64 {
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let spread = period_ms as f64 * jitter;
    // A uniform draw in [0, 1) from the seed: the top 53 bits of a splitmix64 step.
    let unit = (splitmix64(seed) >> 11) as f64 / (1u64 << 53) as f64;
    let offset = spread - 2.0 * spread * unit;
    let period = period_ms as f64 + offset;
    if period <= 0.0 {
        0
    } else if period >= u64::MAX as f64 {
        u64::MAX
    } else {
        period.round() as u64
    }
}

/// `Some(reason)` when the store's periodic major compaction is due at `now_ms`.
pub fn major_due(
    files: &[CandidateFile],
    opts: &CompactionOptions,
    ttl_ms: Option<u64>,
    now_ms: u64,
    seed: u64,
) -> Option<String> {
    if opts.major_period_ms == 0 {
        return None;
    }
    let oldest = files.iter().min_by_key(|f| f.created_ms)?;
    let period = jittered_period(opts.major_period_ms, opts.major_jitter, seed ^ oldest.id);
    let age = now_ms.saturating_sub(oldest.created_ms);
    if age < period {
        return None;
    }
    if let [only] = files {
        let has_expired = ttl_ms.is_some_and(|ttl| now_ms.saturating_sub(only.min_ts) > ttl);
        if only.tombstones == 0 && !has_expired {
            return None;
        }
    }
    Some(format!(
        "periodic major: oldest file {} is {age} ms old, period {period} ms",
        oldest.id
    ))
}

/// One step of splitmix64: a well-mixed 64-bit value from any seed.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_bounds_and_is_deterministic() {
        let period = 1_000_000;
        let mut seen_low = false;
        let mut seen_high = false;
        for seed in 0..1000 {
            let p = jittered_period(period, 0.5, seed);
            assert!((500_000..=1_500_000).contains(&p), "seed {seed}: {p}");
            assert_eq!(p, jittered_period(period, 0.5, seed));
            seen_low |= p < 900_000;
            seen_high |= p > 1_100_000;
        }
        assert!(seen_low && seen_high, "jitter spreads both ways");
        assert_eq!(jittered_period(period, 0.0, 42), period);
        assert_eq!(jittered_period(period, f64::NAN, 42), period);
    }
}
