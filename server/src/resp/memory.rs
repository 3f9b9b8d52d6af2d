//! Memory accounting for `INFO memory`: a counting global allocator.
//!
//! The binary installs [`CountingAlloc`] so `used_memory` is the bytes the process holds
//! from malloc, counted as `malloc_usable_size` (what the allocator really handed out,
//! size-class rounding included), like Redis's `zmalloc` counter over jemalloc. In-process
//! tests do not install it and INFO falls back to the keyspace's own estimate. This is not a
//! limiter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// The system allocator, counting live bytes.
#[derive(Debug, Default)]
pub struct CountingAlloc;

impl CountingAlloc {
    /// Marks the counter as meaningful (call once from `main`).
    pub fn activate() {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// # Safety
/// `p` must be a live pointer returned by the system allocator (the malloc family).
unsafe fn usable(p: *mut u8) -> usize {
    // SAFETY: guaranteed by the caller.
    unsafe { libc::malloc_usable_size(p.cast()) }
}

// SAFETY: every method forwards to `System` with the caller's layout and only adds
// bookkeeping on an atomic counter.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by `System`.
            ALLOCATED.fetch_add(unsafe { usable(p) }, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is live until the `dealloc` below.
        ALLOCATED.fetch_sub(unsafe { usable(ptr) }, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) };
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            // SAFETY: `p` was just returned by `System`.
            ALLOCATED.fetch_add(unsafe { usable(p) }, Ordering::Relaxed);
        }
        p
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is live until the `realloc` below.
        let old = unsafe { usable(ptr) };
        // SAFETY: forwarded unchanged.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_sub(old, Ordering::Relaxed);
            // SAFETY: `p` was just returned by `System`.
            ALLOCATED.fetch_add(unsafe { usable(p) }, Ordering::Relaxed);
        }
        p
    }
}

/// Bytes currently allocated, when the counting allocator is installed.
pub fn allocated() -> Option<usize> {
    INSTALLED
        .load(Ordering::Relaxed)
        .then(|| ALLOCATED.load(Ordering::Relaxed))
}
