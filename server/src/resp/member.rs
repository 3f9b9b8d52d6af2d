//! [`Member`]: a set member stored inline when short (most car numbers are), on the heap
//! otherwise.
//!
//! 24 bytes per slot with no separate allocation for members up to 22 bytes: this is what
//! keeps our memory per member at or below Redis's. It hashes and compares exactly like the
//! `[u8]` it holds, so sets can be probed with a plain byte slice. It is not a general
//! string type (no mutation).

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};

const INLINE: usize = 22;

/// An immutable byte string, inline up to 22 bytes.
#[derive(Clone)]
pub enum Member {
    /// Short member, stored in place.
    Inline {
        /// Used bytes of `data`.
        len: u8,
        /// The bytes (only the first `len` count).
        data: [u8; INLINE],
    },
    /// Longer member, one heap allocation.
    Heap(Box<[u8]>),
}

impl Member {
    /// Copies `b` into a member.
    pub fn new(b: &[u8]) -> Self {
        if b.len() <= INLINE {
            let mut data = [0u8; INLINE];
            data[..b.len()].copy_from_slice(b);
            Member::Inline {
                len: b.len() as u8,
                data,
            }
        } else {
            Member::Heap(b.into())
        }
    }

    /// The member's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Member::Inline { len, data } => &data[..usize::from(*len)],
            Member::Heap(b) => b,
        }
    }

    /// Heap bytes owned beyond the slot itself (for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Member::Inline { .. } => 0,
            Member::Heap(b) => b.len(),
        }
    }
}

impl Borrow<[u8]> for Member {
    fn borrow(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Hash for Member {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must match `<[u8] as Hash>` so that `Borrow<[u8]>` lookups find it.
        self.as_bytes().hash(state);
    }
}

impl PartialEq for Member {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Member {}

impl std::fmt::Debug for Member {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", String::from_utf8_lossy(self.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn slot_is_24_bytes_and_lookup_by_slice_works() {
        assert_eq!(std::mem::size_of::<Member>(), 24);
        let mut s = HashSet::new();
        s.insert(Member::new(b"V0042"));
        s.insert(Member::new(&[b'x'; 40]));
        assert!(s.contains(&b"V0042"[..]));
        assert!(s.contains(&[b'x'; 40][..]));
        assert!(!s.contains(&b"V0043"[..]));
        assert_eq!(Member::new(b"").as_bytes(), b"");
    }
}
