//! The database's compaction service: the worker pool, the shared throttle, on-demand
//! compaction and flush backpressure, wired to regions and stores.
//!
//! `Db` owns one [`Compactor`]. After a flush (and on a slow periodic tick, for TTL drops
//! and periodic majors) it schedules the region's stores; `Db::compact` runs compactions in
//! the caller's thread; the flusher calls [`Compactor::wait_for_room`] before flushing a
//! region whose store has reached `blocking_files`, so flushes wait (bounded) and writes
//! slow down and then fail with `TooBusy` through the memstore limit.
//!
//! This module does not decide (`compaction::policy`) nor execute (`compaction::run`)
//! compactions; it lives with the `Db` because it is the one part that knows regions.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::compaction::policy::CompactionOptions;
use crate::compaction::run::{RunContext, candidates, compact_store};
use crate::compaction::throttle::SharedThrottle;
use crate::compaction::worker::{CompactionTarget, Worker, WorkerStats};
use crate::error::Result;
use crate::options::Clock;
use crate::region::Region;

/// Signalled after every compaction, so waiters re-check file counts.
#[derive(Debug, Default)]
struct Done {
    count: Mutex<u64>,
    cv: Condvar,
}

impl Done {
    fn notify(&self) {
        *self.count.lock() += 1;
        self.cv.notify_all();
    }

    /// Waits for the next compaction to finish, at most until `deadline`.
    fn wait_until(&self, deadline: Instant) {
        let mut c = self.count.lock();
        let seen = *c;
        while *c == seen {
            if self.cv.wait_until(&mut c, deadline).timed_out() {
                return;
            }
        }
    }
}

/// One store of one region, as the worker sees it.
struct StoreTarget {
    region: Weak<Region>,
    store: usize,
    key: String,
    opts: CompactionOptions,
    throttle: Option<Arc<SharedThrottle>>,
    clock: Clock,
    done: Arc<Done>,
}

impl CompactionTarget for StoreTarget {
    fn key(&self) -> String {
        self.key.clone()
    }

    fn compact_once(&self) -> Result<bool> {
        let Some(region) = self.region.upgrade() else {
            return Ok(false);
        };
        let Some(store) = region.stores().get(self.store).cloned() else {
            return Ok(false);
        };
        let ctx = RunContext {
            opts: self.opts.clone(),
            throttle: self.throttle.clone(),
            now_ms: self.clock.now_ms(),
        };
        let res = compact_store(region.files(), region.read_point(), &store, &ctx, false);
        self.done.notify();
        res
    }
}

/// The compaction service of a `Db`.
pub struct Compactor {
    worker: Worker,
    opts: CompactionOptions,
    throttle: Option<Arc<SharedThrottle>>,
    clock: Clock,
    done: Arc<Done>,
    /// Set when the database shuts down: flushes stop waiting for room.
    stopping: AtomicBool,
}

impl std::fmt::Debug for Compactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compactor")
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Compactor {
    /// Starts the worker threads.
    ///
    /// # Errors
    /// `Io` if a thread cannot be spawned.
    pub fn start(opts: &CompactionOptions, clock: Clock) -> Result<Compactor> {
        let throttle = (opts.throttle_mb_per_sec > 0)
            .then(|| Arc::new(SharedThrottle::new(opts.throttle_mb_per_sec)));
        Ok(Compactor {
            worker: Worker::start(opts.threads, opts.max_queued_stores)?,
            opts: opts.clone(),
            throttle,
            clock,
            done: Arc::new(Done::default()),
            stopping: AtomicBool::new(false),
        })
    }

    /// Queues every store of `region` for a background look (no-op when automatic
    /// compaction is off).
    pub fn schedule_region(&self, region: &Arc<Region>) {
        if !self.opts.auto {
            return;
        }
        for (i, store) in region.stores().iter().enumerate() {
            let target = StoreTarget {
                region: Arc::downgrade(region),
                store: i,
                key: format!(
                    "{}/{}/{}",
                    region.info.table, region.info.id, store.opts.name
                ),
                opts: self.opts.clone(),
                throttle: self.throttle.clone(),
                clock: self.clock.clone(),
                done: Arc::clone(&self.done),
            };
            if !self.worker.schedule(Arc::new(target)) {
                tracing::debug!(
                    region = region.info.id,
                    "compaction queue full; store rescheduled at its next flush"
                );
            }
        }
    }

    /// Compacts every store of `region` now, in the caller's thread: with `major`, every
    /// store's files into one (waiting for a running background compaction of the store
    /// first); otherwise minor compactions until the policy finds nothing more to do.
    ///
    /// # Errors
    /// The first compaction error.
    pub fn compact_now(&self, region: &Region, major: bool) -> Result<()> {
        for store in region.stores() {
            let ctx = RunContext {
                opts: self.opts.clone(),
                throttle: self.throttle.clone(),
                now_ms: self.clock.now_ms(),
            };
            if major {
                loop {
                    let files = candidates(store);
                    if files.is_empty() {
                        break;
                    }
                    if files.iter().any(|f| f.being_compacted) {
                        self.done
                            .wait_until(Instant::now() + Duration::from_millis(100));
                        continue;
                    }
                    if compact_store(region.files(), region.read_point(), store, &ctx, true)? {
                        break;
                    }
                }
            } else {
                while compact_store(region.files(), region.read_point(), store, &ctx, false)? {}
            }
            self.done.notify();
        }
        Ok(())
    }

    /// Backpressure before a flush: while a store of `region` has `blocking_files` or more
    /// files, schedule it and wait for compactions, at most `blocking_wait_ms`; then the
    /// flush goes ahead anyway (HBase's `blockingWaitTime`), so a slow compaction delays
    /// writes but never deadlocks them. Returns how long it waited.
    pub fn wait_for_room(&self, region: &Arc<Region>) -> Duration {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(self.opts.blocking_wait_ms);
        loop {
            let over = region
                .stores()
                .iter()
                .any(|s| s.current().files.len() >= self.opts.blocking_files);
            if !over || Instant::now() >= deadline || self.stopping.load(Ordering::Acquire) {
                let waited = start.elapsed();
                if over {
                    tracing::warn!(
                        region = region.info.id,
                        waited_ms = waited.as_millis() as u64,
                        "store still at the blocking file count; flushing anyway"
                    );
                }
                return waited;
            }
            self.schedule_region(region);
            self.done
                .wait_until(deadline.min(Instant::now() + Duration::from_millis(100)));
        }
    }

    /// Releases flushes waiting in [`Compactor::wait_for_room`] (shutdown).
    pub fn stop_waiting(&self) {
        self.stopping.store(true, Ordering::Release);
        self.done.notify();
    }

    /// The worker's counters.
    pub fn stats(&self) -> WorkerStats {
        self.worker.stats()
    }

    /// Stops the worker after its running compactions.
    pub fn shutdown(&mut self) {
        self.worker.shutdown();
    }
}
