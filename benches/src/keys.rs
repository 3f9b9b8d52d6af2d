//! db_bench's key format, so both engines store and look up byte-identical keys.
//!
//! RocksDB's `db_bench` (`GenerateKeyFromInt` without prefixes) writes the key number as
//! up to 8 big-endian bytes and pads the rest of `key_size` with ASCII `'0'`. With the
//! default 16-byte and our 24-byte keys, the keys therefore sort in numeric order, which
//! is what makes `fillseq` sequential for the engine.
//!
//! This module is not the random choice of key numbers; see [`crate::driver`].

/// Writes the db_bench key for number `n` into `out`, which must be `key_size` long.
///
/// When `key_size < 8` only the low `key_size` bytes of `n` are kept (big-endian), exactly
/// as db_bench truncates.
pub fn write_key(n: u64, out: &mut [u8]) {
    let fill = out.len().min(8);
    for (i, byte) in out[..fill].iter_mut().enumerate() {
        let shift = (fill - i - 1) * 8;
        *byte = (n >> shift) as u8;
    }
    out[fill..].fill(b'0');
}

/// Returns the db_bench key for number `n` with length `key_size`.
pub fn key(n: u64, key_size: usize) -> Vec<u8> {
    let mut out = vec![0u8; key_size];
    write_key(n, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_big_endian_number_then_ascii_zero_padding() {
        let k = key(0x0102_0304_0506_0708, 24);
        assert_eq!(&k[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&k[8..], b"0000000000000000");
    }

    #[test]
    fn keys_sort_in_numeric_order() {
        let mut prev = key(0, 24);
        for n in [1u64, 2, 255, 256, 65_535, 1_000_000, u64::MAX] {
            let k = key(n, 24);
            assert!(prev < k, "key({n}) must sort after its predecessor");
            prev = k;
        }
    }

    #[test]
    fn short_keys_keep_the_low_bytes() {
        assert_eq!(key(0x0102_0304, 2), vec![3, 4]);
    }
}
