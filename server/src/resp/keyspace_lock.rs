//! The keyspace lock: one mutex around the [`Keyspace`], which a transaction's `EXEC` can
//! hold across all its queued commands.
//!
//! Every command handler, background task and persistence step takes the keyspace through
//! [`KeyspaceLock::lock`], briefly and never across an `.await`. `EXEC` takes
//! [`KeyspaceLock::exclusive`] first: until that guard drops, `lock` from any other thread
//! waits, while the thread running the transaction keeps taking the mutex command by
//! command. Nothing else (another client's command, active expiry, an AOF rewrite or the
//! shutdown snapshot) can see or change the keyspace between two commands of a
//! transaction, as nothing interleaves with `EXEC` in single-threaded Redis. Handlers keep
//! their own short `lock()`; none of them needed to change to run inside a transaction.
//!
//! It is not reentrant beyond that: a thread holding a [`KeyspaceGuard`] must not call
//! `lock` again (the mutex would deadlock, as it always has). Lock order: the exclusive
//! gate, then the AOF file lock, then the keyspace mutex; the thread holding the gate
//! never takes the AOF file lock (`INFO` reads the AOF's sizes from atomics for this).

use std::cell::Cell;
use std::ops::{Deref, DerefMut};

use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::keyspace::Keyspace;

thread_local! {
    /// True on the thread that holds the exclusive gate (the one running `EXEC`).
    static EXCLUSIVE_HERE: Cell<bool> = const { Cell::new(false) };
}

/// The keyspace behind its mutex, and the gate a transaction closes around it.
#[derive(Debug)]
pub struct KeyspaceLock {
    gate: RwLock<()>,
    ks: Mutex<Keyspace>,
}

/// Access to the keyspace; dropping it lets others in.
#[derive(Debug)]
pub struct KeyspaceGuard<'a> {
    ks: MutexGuard<'a, Keyspace>,
    _gate: Option<RwLockReadGuard<'a, ()>>,
}

/// Held by the thread running a transaction: nobody else takes the keyspace meanwhile.
#[derive(Debug)]
pub struct Exclusive<'a> {
    _gate: RwLockWriteGuard<'a, ()>,
}

impl KeyspaceLock {
    /// Wraps `ks`.
    pub fn new(ks: Keyspace) -> KeyspaceLock {
        KeyspaceLock {
            gate: RwLock::new(()),
            ks: Mutex::new(ks),
        }
    }

    /// Locks the keyspace, waiting for a transaction running on another thread to finish.
    pub fn lock(&self) -> KeyspaceGuard<'_> {
        if EXCLUSIVE_HERE.with(Cell::get) {
            return KeyspaceGuard {
                ks: self.ks.lock(),
                _gate: None,
            };
        }
        let gate = self.gate.read();
        KeyspaceGuard {
            ks: self.ks.lock(),
            _gate: Some(gate),
        }
    }

    /// Closes the gate for everyone but this thread until the guard drops. The caller must
    /// not hold a [`KeyspaceGuard`] (its gate share would deadlock this), and must not
    /// `.await` while holding the result.
    pub fn exclusive(&self) -> Exclusive<'_> {
        let gate = self.gate.write();
        EXCLUSIVE_HERE.with(|c| c.set(true));
        Exclusive { _gate: gate }
    }
}

impl Drop for Exclusive<'_> {
    fn drop(&mut self) {
        EXCLUSIVE_HERE.with(|c| c.set(false));
    }
}

impl Deref for KeyspaceGuard<'_> {
    type Target = Keyspace;
    fn deref(&self) -> &Keyspace {
        &self.ks
    }
}

impl DerefMut for KeyspaceGuard<'_> {
    fn deref_mut(&mut self) -> &mut Keyspace {
        &mut self.ks
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::resp::clock::ManualClock;

    #[test]
    fn other_threads_wait_while_a_transaction_holds_the_gate() {
        let lock = Arc::new(KeyspaceLock::new(Keyspace::new(Arc::new(
            ManualClock::new(0),
        ))));
        let entered = Arc::new(AtomicBool::new(false));
        let x = lock.exclusive();
        // The holder's own thread still gets the keyspace, command after command.
        lock.lock().add_members(b"k", [&b"a"[..]]).unwrap();
        let t = {
            let (lock, entered) = (lock.clone(), entered.clone());
            std::thread::spawn(move || {
                let n = lock.lock().len();
                entered.store(true, Ordering::SeqCst);
                n
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            !entered.load(Ordering::SeqCst),
            "entered during the transaction"
        );
        lock.lock().add_members(b"k2", [&b"b"[..]]).unwrap();
        drop(x);
        assert_eq!(t.join().unwrap(), 2, "saw both writes of the transaction");
    }
}
