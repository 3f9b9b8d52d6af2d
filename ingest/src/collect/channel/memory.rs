//! The memory channel: a bounded in-memory queue (capacity in events, counting an
//! outstanding take), `put` blocks when full. Fast, but its contents die with the process;
//! use the file channel where a kill -9 must not lose data.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Channel;
use crate::collect::Event;
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Event>,
    in_flight: usize,
    closed: bool,
}

/// A bounded in-memory channel.
#[derive(Debug)]
pub struct MemoryChannel {
    name: String,
    capacity: usize,
    state: Mutex<State>,
    not_empty: Condvar,
    not_full: Condvar,
}

impl MemoryChannel {
    /// A channel holding at most `capacity` events (at least 1).
    pub fn new(name: &str, capacity: usize) -> Self {
        MemoryChannel {
            name: name.to_owned(),
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }
    }
}

impl Channel for MemoryChannel {
    fn name(&self) -> &str {
        &self.name
    }

    fn put(&self, events: Vec<Event>) -> Result<()> {
        let mut rest = events.into_iter().peekable();
        while rest.peek().is_some() {
            let mut st = self.state.lock();
            loop {
                if st.closed {
                    return Err(Error::Shutdown {
                        component: format!("channel {}", self.name),
                    });
                }
                if st.queue.len() + st.in_flight < self.capacity {
                    break;
                }
                self.not_full.wait(&mut st);
            }
            let room = self.capacity - st.queue.len() - st.in_flight;
            st.queue.extend(rest.by_ref().take(room));
            self.not_empty.notify_one();
        }
        Ok(())
    }

    fn take(&self, max: usize, wait: Duration) -> Result<Vec<Event>> {
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        while st.queue.is_empty() && !st.closed {
            if self.not_empty.wait_until(&mut st, deadline).timed_out() {
                break;
            }
        }
        let n = max.min(st.queue.len());
        let out: Vec<Event> = st.queue.drain(..n).collect();
        st.in_flight += out.len();
        Ok(out)
    }

    fn commit(&self) -> Result<()> {
        let mut st = self.state.lock();
        st.in_flight = 0;
        self.not_full.notify_all();
        Ok(())
    }

    fn rollback(&self, events: Vec<Event>) -> Result<()> {
        let mut st = self.state.lock();
        st.in_flight = 0;
        for e in events.into_iter().rev() {
            st.queue.push_front(e);
        }
        self.not_empty.notify_one();
        Ok(())
    }

    fn len(&self) -> usize {
        let st = self.state.lock();
        st.queue.len() + st.in_flight
    }

    fn close(&self) {
        self.state.lock().closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn ev(i: usize) -> Event {
        Event::new(format!("{i}").into_bytes())
    }

    #[test]
    fn rollback_keeps_order_and_commit_frees_space() {
        let c = MemoryChannel::new("m", 3);
        c.put(vec![ev(1), ev(2), ev(3)]).unwrap();
        let t = c.take(2, Duration::ZERO).unwrap();
        assert_eq!(t, vec![ev(1), ev(2)]);
        assert_eq!(c.len(), 3);
        c.rollback(t).unwrap();
        let t = c.take(10, Duration::ZERO).unwrap();
        assert_eq!(t, vec![ev(1), ev(2), ev(3)]);
        c.commit().unwrap();
        assert!(c.is_empty());
    }

    #[test]
    fn put_blocks_when_full_until_a_commit() {
        let c = Arc::new(MemoryChannel::new("m", 2));
        c.put(vec![ev(1), ev(2)]).unwrap();
        let c2 = c.clone();
        let h = std::thread::spawn(move || c2.put(vec![ev(3)]));
        let t = c.take(2, Duration::ZERO).unwrap();
        assert_eq!(t.len(), 2);
        // The blocked put cannot finish while the take is outstanding (it still counts).
        assert!(!h.is_finished());
        c.commit().unwrap();
        h.join().unwrap().unwrap();
        assert_eq!(c.take(5, Duration::from_secs(1)).unwrap(), vec![ev(3)]);
    }

    #[test]
    fn close_fails_blocked_put() {
        let c = Arc::new(MemoryChannel::new("m", 1));
        c.put(vec![ev(1)]).unwrap();
        let c2 = c.clone();
        let h = std::thread::spawn(move || c2.put(vec![ev(2)]));
        c.close();
        assert!(matches!(h.join().unwrap(), Err(Error::Shutdown { .. })));
    }
}
