//! db_bench's value generator: compressible random values served from a 1 MiB pool.
//!
//! RocksDB's `RandomGenerator` fills a 1 MiB buffer with 100-byte pieces, each made of
//! `100 × compression_ratio` random printable characters repeated to length, so values
//! compress to about `compression_ratio` of their size; each value is the next
//! `value_size` bytes of that pool, wrapping to the start. We do the same, and hand the
//! value out as a zero-copy [`Bytes`] slice of the pool.
//!
//! This module is not a source of incompressible data: lz4 will shrink these values.

use bytes::Bytes;
use rand::{Rng, SeedableRng, rngs::StdRng};

/// Size of the shared value pool, as in db_bench.
pub const POOL_BYTES: usize = 1 << 20;

/// Hands out db_bench-style compressible values.
pub struct ValueGenerator {
    pool: Bytes,
    pos: usize,
}

/// One piece of `len` bytes that compresses to about `ratio` of its length: `len × ratio`
/// random printable characters, repeated.
fn compressible_piece(rng: &mut StdRng, ratio: f64, len: usize) -> Vec<u8> {
    let raw = ((len as f64 * ratio) as usize).max(1);
    let seed: Vec<u8> = (0..raw).map(|_| b' ' + rng.random_range(0..95u8)).collect();
    seed.iter().copied().cycle().take(len).collect()
}

impl ValueGenerator {
    /// Builds the pool from `seed`; `compression_ratio` is clamped to `(0, 1]`.
    pub fn new(compression_ratio: f64, seed: u64) -> ValueGenerator {
        let ratio = if compression_ratio.is_finite() {
            compression_ratio.clamp(0.01, 1.0)
        } else {
            0.5
        };
        let mut rng = StdRng::seed_from_u64(seed);
        let mut pool = Vec::with_capacity(POOL_BYTES + 100);
        while pool.len() < POOL_BYTES {
            pool.extend_from_slice(&compressible_piece(&mut rng, ratio, 100));
        }
        ValueGenerator {
            pool: Bytes::from(pool),
            pos: 0,
        }
    }

    /// The next value of `len` bytes (a slice of the pool; no copy).
    ///
    /// Values longer than the pool are built by copying, which only matters for
    /// `--value_size` above 1 MiB.
    pub fn next_value(&mut self, len: usize) -> Bytes {
        if len > self.pool.len() {
            return self.pool.iter().copied().cycle().take(len).collect();
        }
        if self.pos + len > self.pool.len() {
            self.pos = 0;
        }
        let value = self.pool.slice(self.pos..self.pos + len);
        self.pos += len;
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_the_requested_length_and_are_printable() {
        let mut values = ValueGenerator::new(0.5, 7);
        for len in [0usize, 1, 100, 4096, POOL_BYTES + 10] {
            let v = values.next_value(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|b| (b' '..=b'~').contains(b)));
        }
    }

    #[test]
    fn pieces_repeat_so_values_compress_to_about_the_ratio() {
        let mut values = ValueGenerator::new(0.5, 7);
        let v = values.next_value(100);
        // 50 random characters then the same 50 again.
        assert_eq!(v[..50], v[50..]);
        let compressed = lz4_flex::compress(&values.next_value(64 * 1024));
        let ratio = compressed.len() as f64 / (64.0 * 1024.0);
        assert!(
            (0.4..0.7).contains(&ratio),
            "lz4 ratio {ratio} should be near 0.5"
        );
    }

    #[test]
    fn consecutive_values_differ_and_wrap_around_the_pool() {
        let mut values = ValueGenerator::new(0.5, 1);
        let a = values.next_value(100);
        let b = values.next_value(100);
        assert_ne!(a, b);
        for _ in 0..(POOL_BYTES / 100) {
            values.next_value(100);
        }
        assert_eq!(values.next_value(100).len(), 100);
    }
}
