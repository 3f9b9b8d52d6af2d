//! The background compaction worker: a fixed pool of threads (default 1) fed by a bounded,
//! de-duplicated queue of stores that may need compacting.
//!
//! Flushes (and the periodic tick) call [`Worker::schedule`] with a store; a thread takes it
//! and calls [`CompactionTarget::compact_once`] until the store reports nothing left to do.
//! A store already queued is not queued twice, so the queue holds at most one entry per
//! store and `max_queued` is a hard bound: beyond it `schedule` refuses and counts the
//! refusal (the next flush of that store schedules it again). Compaction work never holds a
//! lock readers or writers need: the target installs its new file set atomically.
//!
//! This module only schedules; what a compaction does is the target's business.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;

use crate::error::Result;

/// Something the worker can compact: in the engine, one store of one region.
pub trait CompactionTarget: Send + Sync {
    /// A stable key naming the target (de-duplicates the queue).
    fn key(&self) -> String;

    /// Runs at most one compaction; `Ok(true)` if it did one (the worker calls again),
    /// `Ok(false)` when nothing is worth doing.
    ///
    /// # Errors
    /// Any failure of the compaction; the target must have kept its old files.
    fn compact_once(&self) -> Result<bool>;
}

/// Counters of the worker.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Compactions completed.
    pub completed: u64,
    /// Compactions that returned an error.
    pub failed: u64,
    /// `schedule` calls refused because the queue was full.
    pub refused: u64,
    /// Regions queued for compaction or being compacted now.
    pub queued: u64,
}

struct Shared {
    queued: Mutex<HashSet<String>>,
    completed: AtomicU64,
    failed: AtomicU64,
    refused: AtomicU64,
}

/// The pool. Dropping it (or [`Worker::shutdown`]) lets running compactions finish and
/// stops the threads; queued work is abandoned (it is re-derived from the file sets).
pub struct Worker {
    tx: Option<Sender<Arc<dyn CompactionTarget>>>,
    threads: Vec<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("threads", &self.threads.len())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// Starts `threads` (at least 1) compaction threads with a queue of at most
    /// `max_queued` (at least 1) stores.
    ///
    /// # Errors
    /// `Io` if a thread cannot be spawned.
    pub fn start(threads: usize, max_queued: usize) -> Result<Worker> {
        let (tx, rx) = crossbeam_channel::bounded::<Arc<dyn CompactionTarget>>(max_queued.max(1));
        let shared = Arc::new(Shared {
            queued: Mutex::new(HashSet::new()),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        });
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let rx: Receiver<Arc<dyn CompactionTarget>> = rx.clone();
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("compaction-{i}"))
                .spawn(move || run(&rx, &shared))
                .map_err(|e| crate::error::Error::io("<compaction thread>", e))?;
            handles.push(handle);
        }
        Ok(Worker {
            tx: Some(tx),
            threads: handles,
            shared,
        })
    }

    /// Queues `target` unless it is already queued. Returns false if the queue is full or
    /// the worker is shut down (counted in `refused`).
    pub fn schedule(&self, target: Arc<dyn CompactionTarget>) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        let key = target.key();
        let mut queued = self.shared.queued.lock();
        if queued.contains(&key) {
            return true;
        }
        match tx.try_send(target) {
            Ok(()) => {
                queued.insert(key);
                true
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.refused.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Current counters.
    pub fn stats(&self) -> WorkerStats {
        WorkerStats {
            completed: self.shared.completed.load(Ordering::Relaxed),
            failed: self.shared.failed.load(Ordering::Relaxed),
            refused: self.shared.refused.load(Ordering::Relaxed),
            queued: self.shared.queued.lock().len() as u64,
        }
    }

    /// Stops taking work and waits for the threads to finish their current compaction.
    pub fn shutdown(&mut self) {
        self.tx = None;
        for h in self.threads.drain(..) {
            if h.join().is_err() {
                tracing::error!("a compaction thread panicked");
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run(rx: &Receiver<Arc<dyn CompactionTarget>>, shared: &Shared) {
    while let Ok(target) = rx.recv() {
        let key = target.key();
        // Unmark first: a flush during this run re-queues the store, so nothing is missed.
        shared.queued.lock().remove(&key);
        loop {
            match target.compact_once() {
                Ok(true) => {
                    shared.completed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => break,
                Err(e) => {
                    shared.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(store = %key, error = %e, "compaction failed; old files kept");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use crossbeam_channel::bounded;

    use super::*;
    use crate::error::Error;

    /// A target that has `todo` compactions to do, each waiting for a permit.
    struct Fake {
        name: String,
        todo: AtomicUsize,
        permits: Receiver<()>,
        running: Arc<AtomicUsize>,
        max_running: Arc<AtomicUsize>,
        fail: bool,
    }

    impl CompactionTarget for Fake {
        fn key(&self) -> String {
            self.name.clone()
        }
        fn compact_once(&self) -> Result<bool> {
            if self.todo.load(Ordering::SeqCst) == 0 {
                return Ok(false);
            }
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_running.fetch_max(now, Ordering::SeqCst);
            let permit = self.permits.recv();
            self.running.fetch_sub(1, Ordering::SeqCst);
            if self.fail || permit.is_err() {
                return Err(Error::InvalidArgument("injected".into()));
            }
            self.todo.fetch_sub(1, Ordering::SeqCst);
            Ok(true)
        }
    }

    #[test]
    fn runs_until_done_with_bounded_concurrency() {
        let (permit_tx, permit_rx) = bounded(100);
        let running = Arc::new(AtomicUsize::new(0));
        let max_running = Arc::new(AtomicUsize::new(0));
        let mut w = Worker::start(1, 4).unwrap();
        let targets: Vec<Arc<Fake>> = (0..3)
            .map(|i| {
                Arc::new(Fake {
                    name: format!("s{i}"),
                    todo: AtomicUsize::new(2),
                    permits: permit_rx.clone(),
                    running: Arc::clone(&running),
                    max_running: Arc::clone(&max_running),
                    fail: i == 2,
                })
            })
            .collect();
        for t in &targets {
            assert!(w.schedule(Arc::clone(t) as Arc<dyn CompactionTarget>));
            // Scheduling again while queued is accepted without a second entry.
            assert!(w.schedule(Arc::clone(t) as Arc<dyn CompactionTarget>));
        }
        for _ in 0..5 {
            permit_tx.send(()).unwrap();
        }
        drop(permit_tx);
        w.shutdown();
        let s = w.stats();
        assert_eq!(s.completed, 4, "two targets, two compactions each");
        assert_eq!(s.failed, 1, "the failing target fails once and stops");
        assert_eq!(max_running.load(Ordering::SeqCst), 1, "one thread");
        assert_eq!(targets[0].todo.load(Ordering::SeqCst), 0);
        assert_eq!(targets[1].todo.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn full_queue_refuses_and_counts() {
        let (permit_tx, permit_rx) = bounded::<()>(1);
        let running = Arc::new(AtomicUsize::new(0));
        let mut w = Worker::start(1, 1).unwrap();
        let make = |name: &str| {
            Arc::new(Fake {
                name: name.into(),
                todo: AtomicUsize::new(1),
                permits: permit_rx.clone(),
                running: Arc::clone(&running),
                max_running: Arc::new(AtomicUsize::new(0)),
                fail: false,
            }) as Arc<dyn CompactionTarget>
        };
        assert!(w.schedule(make("a")));
        // Wait until the thread has taken "a" (it blocks on its permit), so the queue
        // slot is free again; then one more fits and the next is refused.
        while running.load(Ordering::SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert!(w.schedule(make("b")));
        assert!(!w.schedule(make("c")));
        assert_eq!(w.stats().refused, 1);
        permit_tx.send(()).unwrap();
        permit_tx.send(()).unwrap();
        w.shutdown();
        assert_eq!(w.stats().completed, 2);
        assert!(!w.schedule(make("d")), "refused after shutdown");
    }
}
