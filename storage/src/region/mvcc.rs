//! Multi-version concurrency control of one region: sequence numbers and the read point.
//!
//! A write takes a contiguous range of sequence numbers (`begin`), appends to the WAL and
//! inserts into the memstore, then `complete`s. The read point advances over completed
//! writes strictly in sequence order, so a reader that sees sequence `s` sees every write
//! numbered below `s` in full: never half of a batch. It does not order WAL appends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use crate::cell::SeqNo;

/// Sequence allocator and read point of a region.
#[derive(Debug)]
pub struct Mvcc {
    read_point: AtomicU64,
    state: Mutex<State>,
    /// Signalled when the read point advances (writers wait to see their own write).
    advanced: Condvar,
}

#[derive(Debug)]
struct State {
    next: SeqNo,
    /// In-flight writes in sequence order: (last seq of the write, completed?).
    pending: VecDeque<(SeqNo, bool)>,
}

impl Mvcc {
    /// Starts after `last_seq` (everything up to it is visible).
    pub fn new(last_seq: SeqNo) -> Self {
        Mvcc {
            read_point: AtomicU64::new(last_seq),
            state: Mutex::new(State {
                next: last_seq + 1,
                pending: VecDeque::new(),
            }),
            advanced: Condvar::new(),
        }
    }

    /// Moves the next sequence number up to `floor + 1` (everything up to `floor` counts as
    /// visible), if no write is in flight and it is below. Cluster mode calls it once when a
    /// region is opened for a new epoch, so that the new owner's sequence numbers (and WAL
    /// segment names) never meet a deposed owner's. Returns whether it moved.
    pub fn raise_floor(&self, floor: SeqNo) -> bool {
        let mut st = self.state.lock();
        if !st.pending.is_empty() || st.next > floor {
            return false;
        }
        st.next = floor + 1;
        self.read_point.store(floor, Ordering::Release);
        true
    }

    /// Reserves `n ≥ 1` sequence numbers; returns the first. Must be `complete`d.
    pub fn begin(&self, n: u64) -> SeqNo {
        let mut st = self.state.lock();
        let first = st.next;
        st.next += n;
        st.pending.push_back((first + n - 1, false));
        first
    }

    /// Marks the write ending at `last` done and advances the read point over every
    /// completed write at the head of the queue.
    pub fn complete(&self, last: SeqNo) {
        let mut st = self.state.lock();
        if let Some(e) = st.pending.iter_mut().find(|e| e.0 == last) {
            e.1 = true;
        }
        let mut advanced = None;
        while let Some(&(end, true)) = st.pending.front() {
            advanced = Some(end);
            st.pending.pop_front();
        }
        if let Some(end) = advanced {
            // IMPORTANT: Release pairs with the Acquire in `read_point`: a reader that
            // sees `end` also sees the memstore inserts made before `complete`.
            self.read_point.store(end, Ordering::Release);
            self.advanced.notify_all();
        }
    }

    /// Waits until the read point covers `last`, so a writer returns only once its write
    /// is readable (read-your-writes; HBase's `completeAndWait`). Earlier writers are
    /// between their sequence allocation and `complete`, so the wait is short.
    pub fn wait_visible(&self, last: SeqNo) {
        let mut st = self.state.lock();
        while self.read_point.load(Ordering::Acquire) < last {
            self.advanced.wait(&mut st);
        }
    }

    /// The highest sequence a new reader may see.
    pub fn read_point(&self) -> SeqNo {
        self.read_point.load(Ordering::Acquire)
    }

    /// The last sequence handed out (visible or not).
    pub fn last_allocated(&self) -> SeqNo {
        self.state.lock().next - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_point_waits_for_earlier_writes() {
        let m = Mvcc::new(10);
        let a = m.begin(3); // 11..=13
        let b = m.begin(1); // 14
        assert_eq!((a, b), (11, 14));
        m.complete(14);
        assert_eq!(
            m.read_point(),
            10,
            "14 done but 11..13 not: nothing visible"
        );
        m.complete(13);
        assert_eq!(m.read_point(), 14);
        assert_eq!(m.last_allocated(), 14);
    }

    #[test]
    fn wait_visible_returns_once_earlier_writes_complete() {
        let m = std::sync::Arc::new(Mvcc::new(0));
        let a = m.begin(1);
        let b = m.begin(1);
        m.complete(b);
        let waiter = {
            let m = std::sync::Arc::clone(&m);
            std::thread::spawn(move || {
                m.wait_visible(b);
                m.read_point()
            })
        };
        m.complete(a);
        assert_eq!(waiter.join().unwrap(), b);
    }
}
