//! A sorted set: members ordered by (score, member), as Redis orders them.
//!
//! (Helper K4 fills this in: a member -> score map and an ordered index.)

/// A sorted set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ZSet {
    // Filled in by helper K4.
    len: usize,
}

impl ZSet {
    /// An empty sorted set.
    pub fn new() -> ZSet {
        ZSet::default()
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it has no members.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Roughly how many bytes it takes.
    pub fn approx_bytes(&self) -> u64 {
        self.len as u64 * 48
    }
}
