//! Per-benchmark counters and the db_bench report line.
//!
//! The line format is db_bench's, so scripts parse both tools the same way:
//! `fillseq      :       2.556 micros/op 390641 ops/sec;   43.2 MB/s`, followed for
//! reads by a message such as `(632120 of 1000000 found)`. Optional per-operation latency
//! percentiles come from an HDR histogram (`--histogram=1`).
//!
//! This module does not time anything by itself beyond `start`/`finish`: the driver calls
//! [`Stats::op_done`] once per operation.

use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Counters for one benchmark run.
pub struct Stats {
    name: String,
    start: Instant,
    elapsed: Option<Duration>,
    ops: u64,
    bytes: u64,
    message: String,
    histogram: Option<Histogram<u64>>,
    last_op: Instant,
    next_progress: u64,
    progress_every: u64,
}

impl Stats {
    /// Starts the clock for benchmark `name`. `expected_ops` spaces the progress lines
    /// (ten per run, on stderr); `histogram` enables per-operation latency recording.
    pub fn start(name: &str, expected_ops: u64, histogram: bool) -> Stats {
        let now = Instant::now();
        let progress_every = (expected_ops / 10).max(1);
        Stats {
            name: name.to_owned(),
            start: now,
            elapsed: None,
            ops: 0,
            bytes: 0,
            message: String::new(),
            // 1 ns .. 60 s at 3 significant digits; `new_with_bounds` cannot fail on these.
            histogram: histogram
                .then(|| Histogram::new_with_bounds(1, 60_000_000_000, 3).ok())
                .flatten(),
            last_op: now,
            next_progress: progress_every,
            progress_every,
        }
    }

    /// Records one finished operation that moved `bytes` bytes of keys and values.
    #[inline]
    pub fn op_done(&mut self, bytes: u64) {
        self.ops += 1;
        self.bytes += bytes;
        if let Some(h) = self.histogram.as_mut() {
            let now = Instant::now();
            let nanos = now.duration_since(self.last_op).as_nanos();
            h.saturating_record(u64::try_from(nanos).unwrap_or(u64::MAX).max(1));
            self.last_op = now;
        }
        if self.ops == self.next_progress {
            eprintln!("... finished {} ops", self.ops);
            self.next_progress += self.progress_every;
        }
    }

    /// Adds another thread's operations, bytes and latencies to these (db_bench's
    /// `Stats::Merge`); the clock stays this one's, so a multi-threaded benchmark reports
    /// every thread's operations over the wall-clock time of the whole run.
    pub fn absorb(&mut self, other: &Stats) {
        self.ops += other.ops;
        self.bytes += other.bytes;
        if let (Some(mine), Some(theirs)) = (self.histogram.as_mut(), other.histogram.as_ref()) {
            // Same bounds on both sides: `add` cannot fail on them.
            let _ = mine.add(theirs);
        }
    }

    /// Sets the message appended to the report line, e.g. `(12 of 20 found)`.
    pub fn set_message(&mut self, message: impl Into<String>) {
        self.message = message.into();
    }

    /// Stops the clock. Later calls keep the first stop time.
    pub fn finish(&mut self) {
        if self.elapsed.is_none() {
            self.elapsed = Some(self.start.elapsed());
        }
    }

    /// Operations recorded so far.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Elapsed time: until [`Stats::finish`], or until now if not finished.
    pub fn elapsed(&self) -> Duration {
        self.elapsed.unwrap_or_else(|| self.start.elapsed())
    }

    /// Operations per second over the elapsed time.
    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed().as_secs_f64().max(1e-9);
        self.ops as f64 / secs
    }

    /// The db_bench report line (no trailing newline).
    pub fn report_line(&self) -> String {
        let secs = self.elapsed().as_secs_f64().max(1e-9);
        // db_bench divides by at least one operation.
        let done = self.ops.max(1);
        let micros_per_op = secs * 1e6 / done as f64;
        let mut extra = String::new();
        if self.bytes > 0 {
            extra = format!("{:6.1} MB/s", self.bytes as f64 / 1_048_576.0 / secs);
        }
        if !self.message.is_empty() {
            if !extra.is_empty() {
                extra.push(' ');
            }
            extra.push_str(&self.message);
        }
        let sep = if extra.is_empty() { "" } else { " " };
        format!(
            "{:<12} : {:>11.3} micros/op {} ops/sec;{sep}{extra}",
            self.name,
            micros_per_op,
            self.ops_per_sec() as u64
        )
    }

    /// Latency percentiles in microseconds, when `--histogram=1` was given.
    pub fn histogram_line(&self) -> Option<String> {
        let h = self.histogram.as_ref()?;
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        Some(format!(
            "Microseconds per op: P50: {:.2} P95: {:.2} P99: {:.2} P99.9: {:.2} Max: {:.2} Count: {}",
            us(0.5),
            us(0.95),
            us(0.99),
            us(0.999),
            h.max() as f64 / 1000.0,
            h.len()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(name: &str, ops: u64, bytes_per_op: u64, secs: f64) -> Stats {
        let mut stats = Stats::start(name, ops, false);
        for _ in 0..ops {
            stats.op_done(bytes_per_op);
        }
        stats.elapsed = Some(Duration::from_secs_f64(secs));
        stats
    }

    #[test]
    fn report_line_matches_db_bench_layout() {
        let stats = finished("fillseq", 1000, 124, 0.002556);
        assert_eq!(
            stats.report_line(),
            "fillseq      :       2.556 micros/op 391236 ops/sec;   46.3 MB/s"
        );
    }

    #[test]
    fn read_message_follows_the_rate() {
        let mut stats = finished("readrandom", 4, 124, 1.0);
        stats.set_message("(3 of 4 found)");
        assert!(
            stats
                .report_line()
                .ends_with("ops/sec;    0.0 MB/s (3 of 4 found)"),
            "{}",
            stats.report_line()
        );
    }

    #[test]
    fn no_bytes_means_no_rate() {
        let stats = finished("readrandom", 10, 0, 1.0);
        assert!(stats.report_line().ends_with("10 ops/sec;"));
    }

    #[test]
    fn absorb_sums_threads_over_one_clock() {
        let mut total = finished("readrandom", 0, 0, 2.0);
        total.absorb(&finished("readrandom", 100, 10, 1.5));
        total.absorb(&finished("readrandom", 300, 10, 2.0));
        assert_eq!(total.ops(), 400);
        assert_eq!(total.ops_per_sec() as u64, 200);
    }

    #[test]
    fn histogram_counts_every_op() {
        let mut stats = Stats::start("x", 5, true);
        for _ in 0..5 {
            stats.op_done(1);
        }
        let line = stats.histogram_line().unwrap();
        assert!(line.ends_with("Count: 5"), "{line}");
        assert!(Stats::start("y", 1, false).histogram_line().is_none());
    }
}
