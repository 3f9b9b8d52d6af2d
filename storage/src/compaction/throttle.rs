//! The compaction I/O throttle: a token bucket on bytes written, shared by all compaction
//! threads of a `Db`, so background rewriting leaves disk bandwidth to flushes and reads.
//!
//! Tokens accrue at the configured rate up to a burst of 100 ms worth; a write takes its
//! bytes from the bucket and may drive it negative, and the writer then sleeps until the
//! debt is repaid. The arithmetic ([`Throttle::charge`]) is a pure function of an
//! `Instant` so it is tested without sleeping; [`SharedThrottle::consume`] does the sleep.
//!
//! This is not a general rate limiter for reads or flushes.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Token bucket state. `rate == 0` means unlimited.
#[derive(Debug)]
pub struct Throttle {
    rate: u64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// A bucket refilling at `bytes_per_sec` (0 = unlimited), full at start, holding at most
    /// 100 ms of tokens (at least 64 KiB).
    pub fn new(bytes_per_sec: u64, now: Instant) -> Throttle {
        let burst = (bytes_per_sec as f64 / 10.0).max(64.0 * 1024.0);
        Throttle {
            rate: bytes_per_sec,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// The configured rate in bytes per second (0 = unlimited).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Takes `bytes` from the bucket at `now`; returns how long the writer must wait before
    /// writing more (zero when the bucket is not in debt).
    pub fn charge(&mut self, bytes: u64, now: Instant) -> Duration {
        if self.rate == 0 {
            return Duration::ZERO;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.burst);
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate as f64)
        }
    }
}

/// A throttle shared by threads; the lock is held only for the arithmetic, never while
/// sleeping.
#[derive(Debug)]
pub struct SharedThrottle {
    inner: Mutex<Throttle>,
}

impl SharedThrottle {
    /// A shared throttle at `mb_per_sec` MiB/s (0 = unlimited).
    pub fn new(mb_per_sec: u64) -> SharedThrottle {
        SharedThrottle {
            inner: Mutex::new(Throttle::new(
                mb_per_sec.saturating_mul(1024 * 1024),
                Instant::now(),
            )),
        }
    }

    /// Accounts `bytes` written and sleeps while the bucket is in debt.
    pub fn consume(&self, bytes: u64) {
        let wait = self.inner.lock().charge(bytes, Instant::now());
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let t0 = Instant::now();
        let mut t = Throttle::new(0, t0);
        assert_eq!(t.charge(u64::MAX, t0), Duration::ZERO);
    }

    #[test]
    fn debt_is_repaid_at_the_rate() {
        let t0 = Instant::now();
        // 1 MiB/s: burst 100 ms = 104857.6 bytes.
        let rate = 1024 * 1024;
        let mut t = Throttle::new(rate, t0);
        assert_eq!(t.charge(100_000, t0), Duration::ZERO, "within the burst");
        // Now ~4857 tokens left; 1 MiB more puts the bucket ~1 s in debt.
        let wait = t.charge(rate, t0);
        let expect = (rate as f64 - 4857.6) / rate as f64;
        assert!((wait.as_secs_f64() - expect).abs() < 1e-6, "{wait:?}");
        // After waiting that long, the next small write is free again... almost: it owes
        // exactly its own size.
        let later = t0 + wait;
        let w2 = t.charge(1024, later);
        assert!(
            (w2.as_secs_f64() - 1024.0 / rate as f64).abs() < 1e-6,
            "{w2:?}"
        );
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let rate = 10 * 1024 * 1024;
        let mut t = Throttle::new(rate, t0);
        let later = t0 + Duration::from_secs(60);
        // A minute idle still allows only 100 ms worth without waiting.
        assert_eq!(t.charge(rate / 10, later), Duration::ZERO);
        assert!(t.charge(rate / 10, later) > Duration::from_millis(99));
    }

    #[test]
    fn sustained_rate_matches_the_setting() {
        // Charge 10 MiB in 64 KiB writes, advancing the clock by each wait: total simulated
        // time must be ~ (10 MiB - burst) / rate.
        let t0 = Instant::now();
        let rate = 4 * 1024 * 1024;
        let mut t = Throttle::new(rate, t0);
        let mut now = t0;
        for _ in 0..160 {
            now += t.charge(64 * 1024, now);
        }
        let secs = (now - t0).as_secs_f64();
        let expect = (10.0 * 1024.0 * 1024.0 - rate as f64 / 10.0) / rate as f64;
        assert!((secs - expect).abs() < 0.02, "{secs} vs {expect}");
    }
}
