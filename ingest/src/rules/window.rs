//! Event-time progress per Kafka partition: the watermark's base and idle detection.
//!
//! Each owned partition remembers the highest event time it has delivered and when (in
//! processing time) it last delivered anything. The watermark base is the minimum of the
//! highest event times over the owned partitions that are not idle, so a partition racing
//! ahead never makes a slower partition's events late. A partition that delivered nothing
//! for the idle timeout is left out; when every owned partition is idle, the base is
//! [`Base::AllIdle`] and every open window may fire (the last window of a quiet stream).
//! A stream-wide pause is not evidence that any one partition is idle: when events resume
//! after every owned partition went quiet, every partition gets a fresh idle timeout, so
//! the first partition to resume cannot race ahead and make the others' events late.
//! Rules subtract their own allowed lateness from the base. This module knows nothing of
//! windows or rules.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// What the owned partitions say about event-time progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// No partition owned, or an active partition has not delivered an event yet.
    Unknown,
    /// The minimum, over active partitions, of their highest event time (ms).
    Min(i64),
    /// Every owned partition is idle: the stream is quiet.
    AllIdle,
}

#[derive(Debug, Clone)]
struct Clock {
    max_event_ms: Option<i64>,
    last_event_at: Instant,
    next_offset: Option<i64>,
}

/// Event-time progress of the partitions this worker owns.
#[derive(Debug, Clone)]
pub struct Watermarks {
    parts: BTreeMap<i32, Clock>,
    idle_timeout: Duration,
}

impl Watermarks {
    /// A tracker whose partitions count as idle after `idle_timeout` without events.
    pub fn new(idle_timeout: Duration) -> Watermarks {
        Watermarks {
            parts: BTreeMap::new(),
            idle_timeout,
        }
    }

    /// Starts tracking `partition` (no-op if already owned).
    pub fn assign(&mut self, partition: i32, now: Instant) {
        self.parts.entry(partition).or_insert(Clock {
            max_event_ms: None,
            last_event_at: now,
            next_offset: None,
        });
    }

    /// Stops tracking `partition`: it no longer holds the watermark back.
    pub fn revoke(&mut self, partition: i32) {
        self.parts.remove(&partition);
    }

    /// Whether `partition` is owned.
    pub fn owns(&self, partition: i32) -> bool {
        self.parts.contains_key(&partition)
    }

    /// The owned partitions.
    pub fn partitions(&self) -> impl Iterator<Item = i32> + '_ {
        self.parts.keys().copied()
    }

    /// Records an event of `partition` at `offset` with event time `t_ms`.
    pub fn observe(&mut self, partition: i32, offset: i64, t_ms: i64, now: Instant) {
        // Every partition idle implies this one is: checking it first keeps the per-event
        // cost O(1) while events flow.
        if self
            .parts
            .get(&partition)
            .is_some_and(|c| self.is_idle(c, now))
            && self.all_idle(now)
        {
            // The stream resumes after a pause: restart every partition's idle timeout.
            for c in self.parts.values_mut() {
                c.last_event_at = now;
            }
        }
        self.assign(partition, now);
        if let Some(c) = self.parts.get_mut(&partition) {
            c.max_event_ms = Some(c.max_event_ms.map_or(t_ms, |m| m.max(t_ms)));
            c.last_event_at = now;
            c.next_offset = Some(c.next_offset.map_or(offset + 1, |n| n.max(offset + 1)));
        }
    }

    /// One past the highest offset seen on `partition`, if any.
    pub fn next_offset(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).and_then(|c| c.next_offset)
    }

    /// The highest event time seen on `partition`.
    pub fn max_event_ms(&self, partition: i32) -> Option<i64> {
        self.parts.get(&partition).and_then(|c| c.max_event_ms)
    }

    fn is_idle(&self, c: &Clock, now: Instant) -> bool {
        now.saturating_duration_since(c.last_event_at) >= self.idle_timeout
    }

    /// Whether some partition is owned and every owned one is idle at `now`.
    fn all_idle(&self, now: Instant) -> bool {
        !self.parts.is_empty() && self.parts.values().all(|c| self.is_idle(c, now))
    }

    /// The watermark's base at processing time `now`.
    pub fn base(&self, now: Instant) -> Base {
        if self.parts.is_empty() {
            return Base::Unknown;
        }
        let mut min: Option<i64> = None;
        let mut active = 0;
        for c in self.parts.values() {
            if self.is_idle(c, now) {
                continue;
            }
            active += 1;
            match c.max_event_ms {
                None => return Base::Unknown,
                Some(m) => min = Some(min.map_or(m, |x| x.min(m))),
            }
        }
        match min {
            Some(m) => Base::Min(m),
            None if active == 0 => Base::AllIdle,
            None => Base::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slowest_active_partition_holds_the_watermark() {
        let t0 = Instant::now();
        let mut w = Watermarks::new(Duration::from_secs(10));
        w.assign(0, t0);
        w.assign(1, t0);
        assert_eq!(w.base(t0), Base::Unknown);
        w.observe(0, 0, 100_000, t0);
        assert_eq!(
            w.base(t0),
            Base::Unknown,
            "partition 1 has said nothing yet"
        );
        w.observe(1, 0, 40_000, t0);
        assert_eq!(w.base(t0), Base::Min(40_000));
        w.observe(1, 1, 30_000, t0);
        assert_eq!(w.base(t0), Base::Min(40_000), "max, not last, event time");
        assert_eq!(w.next_offset(1), Some(2));
    }

    #[test]
    fn idle_partitions_stop_holding_it_back_and_all_idle_flushes() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(5);
        let mut w = Watermarks::new(idle);
        w.observe(0, 0, 100_000, t0);
        w.observe(1, 0, 40_000, t0);
        let later = t0 + Duration::from_secs(3);
        w.observe(0, 1, 120_000, later);
        assert_eq!(
            w.base(t0 + idle),
            Base::Min(120_000),
            "partition 1 went idle"
        );
        assert_eq!(w.base(later + idle), Base::AllIdle);
        w.observe(1, 1, 41_000, later + idle);
        assert_eq!(w.base(later + idle), Base::Min(41_000), "active again");
    }

    #[test]
    fn after_a_stream_wide_pause_the_first_partition_back_cannot_race_ahead() {
        let t0 = Instant::now();
        let idle = Duration::from_secs(3);
        let mut w = Watermarks::new(idle);
        w.observe(0, 0, 60_000, t0);
        w.observe(1, 0, 60_000, t0);
        let resume = t0 + Duration::from_secs(12);
        assert_eq!(w.base(resume), Base::AllIdle, "the whole stream paused");
        // Partition 0 delivers its whole backlog before partition 1's first fetch.
        w.observe(0, 1, 120_000, resume);
        assert_eq!(
            w.base(resume + Duration::from_millis(50)),
            Base::Min(60_000),
            "partition 1 gets a fresh idle timeout, so it still holds the watermark"
        );
        w.observe(1, 1, 61_000, resume + Duration::from_millis(60));
        assert_eq!(w.base(resume + idle / 2), Base::Min(61_000));
        // A partition that stays quiet while another delivers is still left out in time.
        w.observe(0, 2, 122_000, resume + Duration::from_secs(2));
        let stuck = resume + Duration::from_millis(60) + idle;
        w.observe(0, 3, 125_000, stuck);
        assert_eq!(w.base(stuck), Base::Min(125_000), "partition 1 idle again");
    }

    #[test]
    fn revoked_partitions_leave_the_watermark() {
        let t0 = Instant::now();
        let mut w = Watermarks::new(Duration::from_secs(10));
        w.observe(0, 0, 100_000, t0);
        w.observe(1, 0, 40_000, t0);
        w.revoke(1);
        assert_eq!(w.base(t0), Base::Min(100_000));
        assert!(!w.owns(1));
        w.revoke(0);
        assert_eq!(w.base(t0), Base::Unknown);
    }
}
