//! The keyspace: every key's value and expiry, memory accounting, and the record of which
//! keys changed (what the append-only log and the shared-memory mirror follow).
//!
//! Expiry is lazy (a key past its time is gone the moment it is looked up) and active: the
//! server calls [`Store::active_expire`] about ten times a second, which samples keys with a
//! time to live and removes the expired ones, as Redis does, so they do not pile up unread.
//!
//! Times are Unix milliseconds passed in by the caller, so tests and the property model can
//! run on a clock of their own.

/// The keyspace (one database: `SELECT 0` is the only one).
#[derive(Debug, Default)]
pub struct Store {
    // Filled in with the commands (helper K2).
}

impl Store {
    /// An empty keyspace.
    pub fn new() -> Store {
        Store::default()
    }

    /// Removes expired keys, sampling as Redis's active expiry does: at most `budget` keys
    /// looked at. Returns how many were removed.
    pub fn active_expire(&mut self, _now_ms: u64, _budget: usize) -> usize {
        0
    }

    /// The keys changed (set, modified, deleted, expired) since the last call, each once.
    pub fn take_changed(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }

    /// Approximately how many bytes the keys and values take (for `--maxmemory` and INFO).
    pub fn used_memory(&self) -> u64 {
        0
    }

    /// How many keys there are (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        0
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
