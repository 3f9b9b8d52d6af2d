//! The replication stream's backlog: its last bytes, bounded, with their offsets
//! (`server/docs/replication.md`). Offsets count every byte ever appended; the byte at
//! offset `o` (1-based, as Redis's `repl_backlog_off`) is kept while `o > start`.

use std::collections::VecDeque;

/// The last `capacity` bytes of the stream.
#[derive(Debug)]
pub struct Backlog {
    buf: VecDeque<u8>,
    /// Offset of the byte before `buf[0]`: `buf` holds offsets `start + 1 ..= end`.
    start: u64,
    end: u64,
    capacity: usize,
}

impl Backlog {
    /// An empty backlog keeping at most `capacity` bytes (at least 1).
    pub fn new(capacity: usize) -> Backlog {
        Backlog {
            buf: VecDeque::new(),
            start: 0,
            end: 0,
            capacity: capacity.max(1),
        }
    }

    /// Appends `bytes`, dropping the oldest beyond the capacity.
    pub fn append(&mut self, bytes: &[u8]) {
        self.buf.extend(bytes);
        self.end += bytes.len() as u64;
        let over = self.buf.len().saturating_sub(self.capacity);
        if over > 0 {
            self.buf.drain(..over);
            self.start += over as u64;
        }
    }

    /// Offset of the last byte appended (`master_repl_offset`).
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Offset of the first byte kept (`repl_backlog_first_byte_offset`).
    pub fn first(&self) -> u64 {
        self.start + 1
    }

    /// Bytes kept (`repl_backlog_histlen`).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The capacity (`repl_backlog_size`).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Copies into `out` at most `max` bytes from offset `from` (the next byte a reader
    /// needs) on; `None` if `from` has left the backlog or is past its end + 1.
    pub fn read_from(&self, from: u64, max: usize, out: &mut Vec<u8>) -> Option<()> {
        if from <= self.start || from > self.end + 1 {
            return None;
        }
        let skip = usize::try_from(from - self.start - 1).ok()?;
        let (a, b) = self.buf.as_slices();
        let mut left = max;
        let mut take = |s: &[u8], skip: &mut usize| {
            if *skip >= s.len() {
                *skip -= s.len();
                return;
            }
            let part = &s[*skip..];
            *skip = 0;
            let n = part.len().min(left);
            out.extend_from_slice(&part[..n]);
            left -= n;
        };
        let mut skip = skip;
        take(a, &mut skip);
        take(b, &mut skip);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::Backlog;

    #[test]
    fn keeps_the_last_bytes_with_their_offsets() {
        let mut b = Backlog::new(8);
        let mut out = Vec::new();
        assert_eq!(b.read_from(1, 100, &mut out), Some(()));
        assert!(out.is_empty());
        b.append(b"abcdef");
        assert_eq!((b.first(), b.end(), b.len()), (1, 6, 6));
        b.read_from(3, 100, &mut out).unwrap();
        assert_eq!(out, b"cdef");
        b.append(b"ghijk");
        assert_eq!((b.first(), b.end(), b.len()), (4, 11, 8));
        out.clear();
        b.read_from(4, 3, &mut out).unwrap();
        assert_eq!(out, b"def");
        out.clear();
        b.read_from(12, 3, &mut out).unwrap();
        assert!(out.is_empty(), "the next byte to come");
        assert_eq!(b.read_from(3, 3, &mut out), None, "left the backlog");
        assert_eq!(b.read_from(13, 3, &mut out), None, "past the end");
    }
}
