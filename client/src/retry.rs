//! Retry policy: which gRPC codes are worth retrying, and a capped exponential backoff.
//!
//! Only `UNAVAILABLE` (server restarting, connection refused) and `RESOURCE_EXHAUSTED`
//! (server too busy) are retried. A retried `Mutate` without explicit timestamps may write
//! the same value twice under two timestamps, exactly as HBase clients do; writes that must
//! be idempotent carry their own timestamps.

use std::time::Duration;

use tonic::Code;

/// How many times and how patiently a request is retried.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in total, the first included; default 8. 1 disables retries.
    pub max_attempts: u32,
    /// Pause before the first retry; doubled on each further retry. Default 20 ms.
    pub initial_backoff: Duration,
    /// Upper bound of a single pause; default 1 s.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_secs(1),
        }
    }
}

impl RetryPolicy {
    /// Whether a failure with this code may succeed if tried again.
    pub fn is_retryable(code: Code) -> bool {
        matches!(code, Code::Unavailable | Code::ResourceExhausted)
    }

    /// The pause before retry number `retry` (0-based), or `None` when attempts are spent.
    pub fn backoff(&self, retry: u32) -> Option<Duration> {
        if retry + 1 >= self.max_attempts {
            return None;
        }
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        Some(
            self.initial_backoff
                .saturating_mul(factor)
                .min(self.max_backoff),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_then_caps_then_stops() {
        let p = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_millis(100),
        };
        let pauses: Vec<_> = (0..10).map(|r| p.backoff(r)).collect();
        assert_eq!(pauses[0], Some(Duration::from_millis(10)));
        assert_eq!(pauses[1], Some(Duration::from_millis(20)));
        assert_eq!(pauses[3], Some(Duration::from_millis(80)));
        assert_eq!(pauses[4], Some(Duration::from_millis(100)));
        assert_eq!(pauses[8], Some(Duration::from_millis(100)));
        assert_eq!(pauses[9], None);
    }

    #[test]
    fn only_transient_codes_retry() {
        assert!(RetryPolicy::is_retryable(Code::Unavailable));
        assert!(RetryPolicy::is_retryable(Code::ResourceExhausted));
        assert!(!RetryPolicy::is_retryable(Code::NotFound));
        assert!(!RetryPolicy::is_retryable(Code::InvalidArgument));
    }
}
