//! Lease self-fencing (`server/docs/cluster_design.md` §5a): a member serves only while it
//! knows its etcd lease cannot have expired.
//!
//! A keepalive sent at `t_send` (this machine's monotonic clock) and answered with TTL `T`
//! proves that etcd will not expire the lease before `T` after it *received* the keepalive,
//! which is after `t_send`. So the member may serve until `t_send + T − margin`; the margin
//! absorbs clock-rate drift between this machine and etcd's. Past that instant every request
//! is refused, so by the time etcd expires the lease (and only then may the master give the
//! member's regions away) the member has stopped acknowledging. Wall clocks are never used.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Until when this process may serve. Shared by the membership task, which extends it on
/// every confirmed keepalive, and the request path, which checks it.
#[derive(Debug)]
pub struct Fence {
    base: Instant,
    /// Nanoseconds after `base` until which serving is allowed; 0: not serving.
    until: AtomicU64,
    /// The lease whose keepalives extend `until` (0: none).
    lease: AtomicU64,
}

impl Default for Fence {
    fn default() -> Self {
        Fence::new()
    }
}

impl Fence {
    /// A fence that allows nothing until the first lease is granted.
    pub fn new() -> Fence {
        Fence {
            base: Instant::now(),
            until: AtomicU64::new(0),
            lease: AtomicU64::new(0),
        }
    }

    /// Whether a request may be served (and a write acknowledged) now.
    pub fn serving(&self) -> bool {
        self.remaining().is_some()
    }

    /// How long serving stays allowed without another confirmed keepalive.
    pub fn remaining(&self) -> Option<Duration> {
        let until = self.until.load(Ordering::Acquire);
        let now = self.nanos(Instant::now());
        (now < until).then(|| Duration::from_nanos(until - now))
    }

    /// The lease whose keepalives extend the fence (0: none).
    pub fn lease(&self) -> i64 {
        self.lease.load(Ordering::Acquire) as i64
    }

    /// A lease was granted (or kept alive) with `ttl` in answer to a request sent at
    /// `sent`: serving is allowed until `sent + ttl − margin`. A confirmation for a lease
    /// other than the current one is ignored, and the deadline never moves backwards
    /// within one lease (answers can overtake each other).
    pub fn confirm(&self, lease: i64, sent: Instant, ttl: Duration, margin: Duration) {
        if self.lease() != lease {
            return;
        }
        // An instant before `base` counts as 0: never serving.
        let until = self.nanos(sent + ttl.saturating_sub(margin));
        self.until.fetch_max(until, Ordering::AcqRel);
    }

    /// Serving stops now; later confirmations count only for `lease` (0: none until
    /// [`Fence::adopt`]).
    pub fn revoke(&self) {
        self.lease.store(0, Ordering::Release);
        self.until.store(0, Ordering::Release);
    }

    /// A new lease replaces the old one; serving waits for its first confirmation.
    pub fn adopt(&self, lease: i64) {
        self.until.store(0, Ordering::Release);
        self.lease.store(lease as u64, Ordering::Release);
    }

    fn nanos(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.base).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_inside_a_confirmed_window_of_the_current_lease() {
        let f = Fence::new();
        assert!(!f.serving(), "nothing before a lease");
        let sent = Instant::now();
        f.confirm(7, sent, Duration::from_secs(60), Duration::from_secs(20));
        assert!(
            !f.serving(),
            "a confirmation for a lease not adopted counts for nothing"
        );
        f.adopt(7);
        f.confirm(7, sent, Duration::from_secs(60), Duration::from_secs(20));
        let left = f.remaining().unwrap();
        assert!(left <= Duration::from_secs(40) && left > Duration::from_secs(39));
        // An older answer arriving late does not shorten the window...
        f.confirm(7, sent, Duration::from_secs(30), Duration::from_secs(20));
        assert!(f.remaining().unwrap() > Duration::from_secs(39));
        // ... and the deadline counts from the send time, not the arrival.
        let old = Instant::now() - Duration::from_secs(5);
        let g = Fence::new();
        g.adopt(1);
        g.confirm(1, old, Duration::from_secs(6), Duration::from_secs(2));
        assert!(
            !g.serving(),
            "sent 5 s ago with 6 s TTL and 2 s margin: expired"
        );
        f.revoke();
        assert!(!f.serving());
        f.confirm(7, Instant::now(), Duration::from_secs(60), Duration::ZERO);
        assert!(
            !f.serving(),
            "a revoked lease is not revived by a late answer"
        );
    }
}
