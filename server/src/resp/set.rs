//! [`Set`]: the members of one set key, stored densely and indexed by hash.
//!
//! Members sit in a vector in no particular order; a hash table maps each member to its
//! position with 4 bytes per bucket. That gives what Redis's dict gives (O(1) add, remove
//! and membership) plus two things a plain hash set cannot do cheaply:
//! - a uniformly random member in O(1), for SPOP and SRANDMEMBER;
//! - a cursor that is a position, so SSCAN costs O(COUNT) rather than a pass over the set.
//!
//! Removing a member moves the last member into the hole (swap-remove). SSCAN therefore
//! walks positions from the end towards the start: a move only ever carries a member from
//! the end, which is already visited, into the part not yet visited. So a member present
//! for the whole scan is returned at least once (Redis's SCAN guarantee); one moved during
//! the scan may come twice, which Redis allows too.
//!
//! Bounds: at most [`Set::MAX_LEN`] members (2^32 - 1, Redis's documented limit for a
//! set); inserting beyond it fails with [`SetFull`]. The vector and the table shrink when
//! less than an eighth of their room is used, so a set emptied by SPOP or SREM gives its
//! memory back.

use std::hash::BuildHasher;
use std::sync::LazyLock;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry as Slot;
use rand::Rng;

use super::member::Member;

/// One seed for the process (SipHash, as `std`'s `HashMap` uses): members chosen by
/// clients cannot be crafted to collide.
static HASHER: LazyLock<std::hash::RandomState> = LazyLock::new(std::hash::RandomState::new);

fn hash(m: &[u8]) -> u64 {
    HASHER.hash_one(m)
}

/// Below this many members SSCAN returns the whole set in one reply, as Redis does for
/// its small (listpack-encoded) sets.
pub const SMALL_SET: usize = 128;

/// Room below which a set is not shrunk.
const MIN_SHRINK_ROOM: usize = 64;

/// A set cannot take another member: it holds [`Set::MAX_LEN`] already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetFull;

impl std::fmt::Display for SetFull {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "set is full: a set holds at most {} members",
            Set::MAX_LEN
        )
    }
}

impl std::error::Error for SetFull {}

/// The members of one set.
#[derive(Clone, Default)]
pub struct Set {
    members: Vec<Member>,
    /// Position of each member in `members`.
    index: HashTable<u32>,
}

impl Set {
    /// Most members one set holds.
    pub const MAX_LEN: usize = u32::MAX as usize;

    /// An empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// An empty set with room for `n` members (capped at [`Set::MAX_LEN`]).
    pub fn with_capacity(n: usize) -> Set {
        let n = n.min(Set::MAX_LEN);
        Set {
            members: Vec::with_capacity(n),
            index: HashTable::with_capacity(n),
        }
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there are no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// True if `m` is a member.
    pub fn contains(&self, m: &[u8]) -> bool {
        let members = &self.members;
        self.index
            .find(hash(m), |&i| members[i as usize].as_bytes() == m)
            .is_some()
    }

    /// Adds `m`; true if it was not a member.
    ///
    /// # Errors
    /// [`SetFull`] when `m` is new and the set holds [`Set::MAX_LEN`] members.
    pub fn insert(&mut self, m: &[u8]) -> Result<bool, SetFull> {
        let Set { members, index } = self;
        let slot = index.entry(
            hash(m),
            |&i| members[i as usize].as_bytes() == m,
            |&i| hash(members[i as usize].as_bytes()),
        );
        match slot {
            Slot::Occupied(_) => Ok(false),
            Slot::Vacant(v) => {
                if members.len() >= Set::MAX_LEN {
                    return Err(SetFull);
                }
                // Below MAX_LEN = u32::MAX, so the position fits.
                v.insert(members.len() as u32);
                members.push(Member::new(m));
                Ok(true)
            }
        }
    }

    /// Removes `m`; true if it was a member.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        let members = &self.members;
        let Ok(found) = self
            .index
            .find_entry(hash(m), |&i| members[i as usize].as_bytes() == m)
        else {
            return false;
        };
        let (pos, _) = found.remove();
        self.take_at(pos as usize);
        true
    }

    /// Removes and returns a uniformly random member, in O(1).
    pub fn pop_random<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Member> {
        if self.members.is_empty() {
            return None;
        }
        let pos = rng.random_range(0..self.members.len());
        let h = hash(self.members[pos].as_bytes());
        if let Ok(found) = self.index.find_entry(h, |&i| i as usize == pos) {
            found.remove();
        }
        Some(self.take_at(pos))
    }

    /// A uniformly random member, in O(1).
    pub fn random<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<&Member> {
        if self.members.is_empty() {
            return None;
        }
        Some(&self.members[rng.random_range(0..self.members.len())])
    }

    /// `n` distinct random members (all of them when `n` ≥ the size), in O(n).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R, n: usize) -> Vec<&Member> {
        if n >= self.members.len() {
            return self.members.iter().collect();
        }
        rand::seq::index::sample(rng, self.members.len(), n)
            .into_iter()
            .map(|i| &self.members[i])
            .collect()
    }

    /// Takes every member out, leaving the set empty (and its memory freed).
    pub fn take_all(&mut self) -> Vec<Member> {
        self.index = HashTable::new();
        std::mem::take(&mut self.members)
    }

    /// The members, in storage order.
    pub fn iter(&self) -> std::slice::Iter<'_, Member> {
        self.members.iter()
    }

    /// One SSCAN step: the members at positions `[next, end)` where `end` is where
    /// `cursor` stopped (cursor 0 starts at the end of the set), and the cursor to pass
    /// next (0 when the scan is complete). A set of at most [`SMALL_SET`] members comes
    /// whole from cursor 0. Positions only move towards the start (see the module docs).
    pub fn scan_page(&self, cursor: u64, count: usize) -> (u64, &[Member]) {
        let len = self.members.len();
        if cursor == 0 && len <= SMALL_SET {
            return (0, &self.members);
        }
        let (start, end) = page_bounds(len, cursor, count);
        (start as u64, &self.members[start..end])
    }

    /// Bytes this set holds on the heap: the member slots, the table, long members.
    pub fn heap_bytes(&self) -> usize {
        self.members.capacity() * std::mem::size_of::<Member>()
            + self.index.allocation_size()
            + self.members.iter().map(Member::heap_size).sum::<usize>()
    }

    /// Removes the member at `pos` whose table entry is already gone: the last member
    /// moves into `pos` and its table entry follows it.
    fn take_at(&mut self, pos: usize) -> Member {
        let last = self.members.len() - 1;
        let taken = self.members.swap_remove(pos);
        if pos != last {
            let h = hash(self.members[pos].as_bytes());
            if let Some(i) = self.index.find_mut(h, |&i| i as usize == last) {
                // `pos` < `last` ≤ u32::MAX, so it fits.
                *i = pos as u32;
            }
        }
        self.shrink_if_sparse();
        taken
    }

    fn shrink_if_sparse(&mut self) {
        let room = self.members.capacity();
        if room <= MIN_SHRINK_ROOM || self.members.len() * 8 >= room {
            return;
        }
        let keep = (self.members.len() * 2).max(MIN_SHRINK_ROOM / 2);
        self.members.shrink_to(keep);
        let members = &self.members;
        self.index
            .shrink_to(keep, |&i| hash(members[i as usize].as_bytes()));
    }
}

/// One page of a positional scan over `len` slots that are walked from the end: the slots
/// `[start, end)` to return, where `start` is also the next cursor (0 = done). Cursor 0
/// starts at the end; a cursor past the end (the collection shrank) resumes at the end.
/// At least one slot per page.
pub fn page_bounds(len: usize, cursor: u64, count: usize) -> (usize, usize) {
    let end = match usize::try_from(cursor) {
        Ok(c) if c > 0 => c.min(len),
        _ => len,
    };
    (end.saturating_sub(count.max(1)), end)
}

impl<'a> IntoIterator for &'a Set {
    type Item = &'a Member;
    type IntoIter = std::slice::Iter<'a, Member>;

    fn into_iter(self) -> Self::IntoIter {
        self.members.iter()
    }
}

impl std::fmt::Debug for Set {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.members.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashSet};

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    /// The set agrees with a model through random inserts, removes and pops, and every
    /// table entry points at its member.
    #[test]
    fn random_operations_match_a_model() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut set = Set::new();
        let mut model: HashSet<Vec<u8>> = HashSet::new();
        for step in 0..200_000u32 {
            let m = format!("m{}", rng.random_range(0..5_000u32)).into_bytes();
            match rng.random_range(0..10) {
                0..=4 => assert_eq!(set.insert(&m), Ok(model.insert(m.clone()))),
                5..=7 => assert_eq!(set.remove(&m), model.remove(&m)),
                8 => {
                    if let Some(p) = set.pop_random(&mut rng) {
                        assert!(model.remove(p.as_bytes()), "popped a non-member");
                    } else {
                        assert!(model.is_empty());
                    }
                }
                _ => assert_eq!(set.contains(&m), model.contains(&m)),
            }
            if step % 10_000 == 0 {
                check_consistent(&set, &model);
            }
        }
        check_consistent(&set, &model);
        // Emptying shrinks.
        while set.pop_random(&mut rng).is_some() {}
        assert!(set.is_empty());
        assert!(set.members.capacity() <= MIN_SHRINK_ROOM);
    }

    fn check_consistent(set: &Set, model: &HashSet<Vec<u8>>) {
        assert_eq!(set.len(), model.len());
        assert_eq!(set.index.len(), set.len());
        for &i in set.index.iter() {
            let m = &set.members[i as usize];
            let found = set.index.find(hash(m.as_bytes()), |&j| j == i).copied();
            assert_eq!(found, Some(i));
        }
        let got: HashSet<Vec<u8>> = set.iter().map(|m| m.as_bytes().to_vec()).collect();
        assert_eq!(&got, model);
    }

    /// Every member of a 10,000-member set is about equally likely to be popped first.
    #[test]
    fn pop_random_is_uniform() {
        let mut rng = StdRng::seed_from_u64(11);
        let mut hits = [0u32; 10];
        for _ in 0..20_000 {
            let mut set = Set::new();
            for i in 0..10u8 {
                set.insert(&[i]).unwrap();
            }
            set.remove(&[3]);
            set.insert(&[3]).unwrap();
            hits[usize::from(set.pop_random(&mut rng).unwrap().as_bytes()[0])] += 1;
        }
        for h in hits {
            assert!((1_700..2_300).contains(&h), "{hits:?}");
        }
    }

    #[test]
    fn sample_is_distinct_and_bounded() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut set = Set::new();
        for i in 0..1_000u32 {
            set.insert(&i.to_le_bytes()).unwrap();
        }
        let s = set.sample(&mut rng, 100);
        let distinct: HashSet<&[u8]> = s.iter().map(|m| m.as_bytes()).collect();
        assert_eq!((s.len(), distinct.len()), (100, 100));
        assert_eq!(set.sample(&mut rng, 5_000).len(), 1_000);
    }

    /// Members present for the whole scan come back even while others are removed and
    /// added between the steps.
    #[test]
    fn scan_returns_every_member_present_throughout() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut set = Set::new();
        for i in 0..10_000u32 {
            set.insert(format!("keep{i}").as_bytes()).unwrap();
            set.insert(format!("churn{i}").as_bytes()).unwrap();
        }
        let mut seen = BTreeSet::new();
        let (mut cursor, mut steps) = (0u64, 0);
        loop {
            let (next, page) = set.scan_page(cursor, 25);
            seen.extend(page.iter().map(|m| m.as_bytes().to_vec()));
            // Churn: remove some churn members, add new ones.
            for _ in 0..10 {
                let i = rng.random_range(0..10_000u32);
                set.remove(format!("churn{i}").as_bytes());
                set.insert(format!("new{steps}-{i}").as_bytes()).unwrap();
            }
            steps += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        for i in 0..10_000u32 {
            assert!(
                seen.contains(format!("keep{i}").as_bytes()),
                "keep{i} missed"
            );
        }
        assert!(steps < 2_000, "{steps} steps for COUNT 25");
    }

    #[test]
    fn small_sets_scan_whole_and_counts_stay_small() {
        let mut set = Set::new();
        for i in 0..SMALL_SET as u32 {
            set.insert(&i.to_le_bytes()).unwrap();
        }
        assert_eq!(set.scan_page(0, 10), (0, &set.members[..]));
        set.insert(b"one more").unwrap();
        let (next, page) = set.scan_page(0, 10);
        assert_eq!((next, page.len()), (SMALL_SET as u64 - 9, 10));
        // A cursor past the end (the set shrank) resumes at the end.
        let (next, page) = set.scan_page(u64::MAX, 10);
        assert_eq!((next, page.len()), (SMALL_SET as u64 - 9, 10));
    }
}
