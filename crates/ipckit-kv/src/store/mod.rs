//! The keyspace: every key's value and expiry, memory accounting, and the record of which
//! keys changed (what the append-only log and the shared-memory mirror follow).
//!
//! Expiry is lazy (a key past its time is gone the moment it is looked up: every accessor
//! takes `now_ms`) and active: the server calls [`Store::active_expire`] about ten times a
//! second, which samples keys with a time to live and removes the expired ones, as Redis
//! does, so they do not pile up unread.
//!
//! Times are Unix milliseconds passed in by the caller, so tests and the property model can
//! run on a clock of their own.
//!
//! ```
//! use ipckit_kv::store::{Store, Value};
//! let mut s = Store::new();
//! s.set(b"k".to_vec(), Value::Str(b"v".to_vec()), Some(1_000));
//! assert!(matches!(s.get(b"k", 999), Some(Value::Str(v)) if v == b"v"));
//! assert!(s.get(b"k", 1_000).is_none()); // expired at 1000: gone when looked at
//! assert_eq!(s.take_changed(), vec![b"k".to_vec()]);
//! ```

use std::collections::{HashMap, HashSet, VecDeque};

pub mod zset;

pub use zset::ZSet;

/// A key's value: the five types redis-benchmark's default run and everyday clients use.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Hash(HashMap<Vec<u8>, Vec<u8>>),
    Set(HashSet<Vec<u8>>),
    ZSet(ZSet),
}

impl Value {
    /// TYPE's answer: `string`, `list`, `hash`, `set`, `zset`.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::ZSet(_) => "zset",
        }
    }

    /// Whether an aggregate has emptied (Redis deletes the key then).
    pub fn is_empty_aggregate(&self) -> bool {
        match self {
            Value::Str(_) => false,
            Value::List(l) => l.is_empty(),
            Value::Hash(h) => h.is_empty(),
            Value::Set(s) => s.is_empty(),
            Value::ZSet(z) => z.is_empty(),
        }
    }

    /// Roughly how many bytes it takes (for `--maxmemory` and INFO memory).
    pub fn approx_bytes(&self) -> u64 {
        const ITEM: u64 = 32;
        (match self {
            Value::Str(s) => s.len() as u64,
            Value::List(l) => l.iter().map(|e| e.len() as u64 + ITEM).sum(),
            Value::Hash(h) => h
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64 + ITEM)
                .sum(),
            Value::Set(s) => s.iter().map(|e| e.len() as u64 + ITEM).sum(),
            Value::ZSet(z) => z.approx_bytes(),
        }) + ITEM
    }
}

/// The reply Redis gives an operation on a key of the wrong type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

#[derive(Debug)]
struct Entry {
    value: Value,
    /// Unix ms at which the key expires.
    expires: Option<u64>,
    /// Bumped on every change: what WATCH compares.
    version: u64,
}

/// The keyspace (one database: `SELECT 0` is the only one).
#[derive(Debug, Default)]
pub struct Store {
    map: HashMap<Vec<u8>, Entry>,
    /// Keys with a time to live, for active expiry's sampling.
    volatile: HashSet<Vec<u8>>,
    changed: Vec<Vec<u8>>,
    changed_set: HashSet<Vec<u8>>,
    /// The last version handed out; also the version of a key that does not exist at the
    /// moment it was removed (WATCH of a missing key sees a later create as a change).
    clock: u64,
    /// Bumped by FLUSHDB/FLUSHALL: every WATCH is broken by it.
    flushes: u64,
    used: u64,
    /// Where active expiry's scan goes on from.
    cursor: usize,
}

impl Store {
    /// An empty keyspace.
    pub fn new() -> Store {
        Store::default()
    }

    fn expired(e: &Entry, now_ms: u64) -> bool {
        e.expires.is_some_and(|t| t <= now_ms)
    }

    /// Removes `key` if it has expired by `now_ms` (lazy expiry).
    fn expire_if_due(&mut self, key: &[u8], now_ms: u64) {
        if self.map.get(key).is_some_and(|e| Self::expired(e, now_ms)) {
            self.remove(key);
        }
    }

    /// The value at `key`, if it exists and has not expired.
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.expire_if_due(key, now_ms);
        self.map.get(key).map(|e| &e.value)
    }

    /// The value at `key` to change in place; the key is marked changed (and its version
    /// bumped) whether or not the caller changes it, so call it only to write. An aggregate
    /// left empty must be removed with [`Store::remove_if_empty`].
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Value> {
        self.expire_if_due(key, now_ms);
        if !self.map.contains_key(key) {
            return None;
        }
        self.touch(key);
        // The memory estimate is not followed through in-place changes: `recount` refreshes it.
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    /// The value at `key`, made with `make` when missing (its expiry kept when present).
    /// Marks the key changed.
    pub fn get_or_insert_with(
        &mut self,
        key: &[u8],
        now_ms: u64,
        make: impl FnOnce() -> Value,
    ) -> &mut Value {
        self.expire_if_due(key, now_ms);
        if !self.map.contains_key(key) {
            let value = make();
            self.used += value.approx_bytes() + key.len() as u64;
            self.map.insert(
                key.to_vec(),
                Entry {
                    value,
                    expires: None,
                    version: 0,
                },
            );
        }
        self.touch(key);
        &mut self.map.get_mut(key).expect("inserted above").value
    }

    /// Sets `key` to `value` with `expires` (Unix ms, or none), replacing any value and time.
    pub fn set(&mut self, key: Vec<u8>, value: Value, expires: Option<u64>) {
        if let Some(old) = self.map.get(&key) {
            self.used = self
                .used
                .saturating_sub(old.value.approx_bytes() + key.len() as u64);
        }
        self.used += value.approx_bytes() + key.len() as u64;
        if expires.is_some() {
            self.volatile.insert(key.clone());
        } else {
            self.volatile.remove(&key);
        }
        self.map.insert(
            key.clone(),
            Entry {
                value,
                expires,
                version: 0,
            },
        );
        self.touch(&key);
    }

    /// Removes `key`; its value if it was there (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let e = self.map.remove(key)?;
        self.used = self
            .used
            .saturating_sub(e.value.approx_bytes() + key.len() as u64);
        self.volatile.remove(key);
        self.mark_changed(key);
        self.clock += 1;
        Some(e.value)
    }

    /// Removes `key` if its aggregate is now empty, as Redis does after a pop or a remove.
    pub fn remove_if_empty(&mut self, key: &[u8]) {
        if self
            .map
            .get(key)
            .is_some_and(|e| e.value.is_empty_aggregate())
        {
            self.remove(key);
        }
    }

    /// Whether `key` exists (and has not expired).
    pub fn contains(&mut self, key: &[u8], now_ms: u64) -> bool {
        self.get(key, now_ms).is_some()
    }

    /// The key's expiry (Unix ms), if it exists and has one.
    pub fn expires_at(&mut self, key: &[u8], now_ms: u64) -> Option<u64> {
        self.expire_if_due(key, now_ms);
        self.map.get(key).and_then(|e| e.expires)
    }

    /// Sets or clears the key's expiry; false if the key does not exist.
    pub fn set_expiry(&mut self, key: &[u8], now_ms: u64, expires: Option<u64>) -> bool {
        self.expire_if_due(key, now_ms);
        let Some(e) = self.map.get_mut(key) else {
            return false;
        };
        e.expires = expires;
        if expires.is_some() {
            self.volatile.insert(key.to_vec());
        } else {
            self.volatile.remove(key);
        }
        self.touch(key);
        true
    }

    /// WATCH's token for `key`: changes whenever the key is set, changed, deleted, expired or
    /// the database flushed.
    pub fn watch_token(&mut self, key: &[u8], now_ms: u64) -> u64 {
        self.expire_if_due(key, now_ms);
        let v = self.map.get(key).map_or(0, |e| e.version);
        // A missing key's token is the flush count only: creating it makes a version > 0.
        v.wrapping_mul(1 << 20) ^ self.flushes
    }

    /// Every live key (KEYS, SCAN, the log's rewrite). Expired keys are skipped.
    pub fn keys(&self, now_ms: u64) -> impl Iterator<Item = &Vec<u8>> {
        self.map
            .iter()
            .filter(move |(_, e)| !Self::expired(e, now_ms))
            .map(|(k, _)| k)
    }

    /// Every live key with its value and expiry (the log's rewrite, the mirror's rebuild).
    pub fn entries(&self, now_ms: u64) -> impl Iterator<Item = (&Vec<u8>, &Value, Option<u64>)> {
        self.map
            .iter()
            .filter(move |(_, e)| !Self::expired(e, now_ms))
            .map(|(k, e)| (k, &e.value, e.expires))
    }

    /// FLUSHDB / FLUSHALL: every key gone (each one marked changed).
    pub fn clear(&mut self) {
        let keys: Vec<Vec<u8>> = self.map.keys().cloned().collect();
        for k in keys {
            self.remove(&k);
        }
        self.flushes += 1;
    }

    /// Removes expired keys, sampling as Redis's active expiry does: at most `budget` keys
    /// with a time to live looked at. Returns how many were removed.
    pub fn active_expire(&mut self, now_ms: u64, budget: usize) -> usize {
        if self.volatile.is_empty() {
            return 0;
        }
        let n = self.volatile.len();
        let start = self.cursor % n;
        let due: Vec<Vec<u8>> = self
            .volatile
            .iter()
            .cycle()
            .skip(start)
            .take(budget.min(n))
            .filter(|k| self.map.get(*k).is_some_and(|e| Self::expired(e, now_ms)))
            .cloned()
            .collect();
        self.cursor = start + budget.min(n);
        for k in &due {
            self.remove(k);
        }
        due.len()
    }

    /// The keys changed (set, modified, deleted, expired) since the last call, each once, in
    /// the order they first changed.
    pub fn take_changed(&mut self) -> Vec<Vec<u8>> {
        self.changed_set.clear();
        std::mem::take(&mut self.changed)
    }

    /// Records `key` as changed without bumping its version (the caller did).
    fn mark_changed(&mut self, key: &[u8]) {
        if !self.changed_set.contains(key) {
            self.changed_set.insert(key.to_vec());
            self.changed.push(key.to_vec());
        }
    }

    fn touch(&mut self, key: &[u8]) {
        self.clock += 1;
        let clock = self.clock;
        if let Some(e) = self.map.get_mut(key) {
            e.version = clock;
        }
        self.mark_changed(key);
    }

    /// Recomputes the memory estimate from scratch (cheap enough for INFO and maxmemory checks
    /// on the sizes this server is for; O(keys)).
    pub fn recount(&mut self) -> u64 {
        self.used = self
            .map
            .iter()
            .map(|(k, e)| k.len() as u64 + e.value.approx_bytes())
            .sum();
        self.used
    }

    /// Approximately how many bytes the keys and values take (for `--maxmemory` and INFO).
    pub fn used_memory(&self) -> u64 {
        self.used
    }

    /// How many keys there are (expired ones not yet removed included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// How many keys have a time to live (INFO keyspace's `expires`).
    pub fn volatile_len(&self) -> usize {
        self.volatile.len()
    }
}
