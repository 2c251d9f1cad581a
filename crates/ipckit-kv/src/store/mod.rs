//! The keyspace: every key's value and expiry, memory accounting, and the record of which
//! keys changed (what the shared-memory mirror follows; the log follows the commands'
//! `Outcome::propagate`).
//!
//! Expiry is lazy (a key past its time is gone the moment it is looked up: every accessor
//! takes `now_ms`) and active: the server calls [`Store::active_expire`] about ten times a
//! second, which samples keys with a time to live and removes the expired ones, as Redis
//! does, so they do not pile up unread.
//!
//! Times are Unix milliseconds passed in by the caller, so tests and the property model can
//! run on a clock of their own.
//!
//! Change tracking ([`Store::take_changed`]) costs an allocation per changed key, so it is off
//! until [`Store::track_changes`] turns it on (the server does when the mirror is on).
//!
//! ```
//! use ipckit_kv::store::{Store, Value};
//! let mut s = Store::new();
//! s.track_changes(true);
//! s.set(b"k".to_vec(), Value::Str(b"v".to_vec()), Some(1_000));
//! assert!(matches!(s.get(b"k", 999), Some(Value::Str(v)) if v == b"v"));
//! assert!(s.get(b"k", 1_000).is_none()); // expired at 1000: gone when looked at
//! assert_eq!(s.take_changed(), vec![b"k".to_vec()]);
//! ```

use std::collections::hash_map::{Entry as MapEntry, RandomState};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;

pub mod glob;
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

/// What one element of an aggregate costs besides its bytes, in the memory estimate.
pub const ITEM_BYTES: u64 = 32;

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

    /// Roughly how many bytes it takes (for `--maxmemory` and INFO memory). Commands that
    /// change an aggregate in place report the difference with [`Store::adjust_used`], using
    /// the same figures: an element's bytes plus [`ITEM_BYTES`].
    pub fn approx_bytes(&self) -> u64 {
        (match self {
            Value::Str(s) => s.len() as u64,
            Value::List(l) => l.iter().map(|e| e.len() as u64 + ITEM_BYTES).sum(),
            Value::Hash(h) => h
                .iter()
                .map(|(k, v)| (k.len() + v.len()) as u64 + ITEM_BYTES)
                .sum(),
            Value::Set(s) => s.iter().map(|e| e.len() as u64 + ITEM_BYTES).sum(),
            Value::ZSet(z) => z.approx_bytes(),
        }) + ITEM_BYTES
    }
}

/// The reply Redis gives an operation on a key of the wrong type.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";

/// No index in the volatile list.
const NO_VIDX: usize = usize::MAX;

#[derive(Debug)]
struct Entry {
    value: Value,
    /// Unix ms at which the key expires.
    expires: Option<u64>,
    /// Where the key sits in `Store::volatile` (when it has an expiry).
    vidx: usize,
}

/// What changed, for the mirror (`changed`) and for WATCH (`watched`): kept apart from the
/// map so a write can borrow both at once.
#[derive(Debug, Default)]
struct Journal {
    track: bool,
    changed: Vec<Vec<u8>>,
    changed_set: HashSet<Vec<u8>>,
    /// Keys some client WATCHes: how many watchers, and the clock at the key's last change.
    watched: HashMap<Vec<u8>, (usize, u64)>,
    clock: u64,
}

impl Journal {
    #[inline]
    fn touch(&mut self, key: &[u8]) {
        if self.track && !self.changed_set.contains(key) {
            self.changed_set.insert(key.to_vec());
            self.changed.push(key.to_vec());
        }
        if !self.watched.is_empty()
            && let Some(w) = self.watched.get_mut(key)
        {
            self.clock += 1;
            w.1 = self.clock;
        }
    }
}

/// The sorted key snapshot SCAN walks (see [`Store::scan`]).
#[derive(Debug, Default)]
struct ScanIndex {
    keys: Vec<(u64, Vec<u8>)>,
}

/// The keyspace (one database: `SELECT 0` is the only one).
#[derive(Debug, Default)]
pub struct Store {
    map: HashMap<Vec<u8>, Entry>,
    /// Keys with a time to live, for active expiry's sampling (each entry knows its index).
    volatile: Vec<Vec<u8>>,
    journal: Journal,
    used: u64,
    /// Where active expiry's scan goes on from.
    cursor: usize,
    /// Off: commands leave `Outcome::propagate` empty (no log to feed).
    no_propagate: bool,
    scan: Option<ScanIndex>,
    scan_hasher: RandomState,
    /// Loading (the log's replay): nothing expires, lazily or actively.
    loading: bool,
    /// Keys expiry removed since [`Store::take_expired`] (recorded only when commands
    /// propagate: the log is told with a DEL).
    expired: Vec<Vec<u8>>,
}

impl Store {
    /// An empty keyspace.
    pub fn new() -> Store {
        Store::default()
    }

    /// Turns the record of changed keys ([`Store::take_changed`]) on or off (off at first: it
    /// costs an allocation per changed key; the server turns it on for the shm mirror).
    pub fn track_changes(&mut self, on: bool) {
        self.journal.track = on;
        if !on {
            self.journal.changed.clear();
            self.journal.changed_set.clear();
        }
    }

    /// Whether changed keys are recorded.
    pub fn tracks_changes(&self) -> bool {
        self.journal.track
    }

    /// Whether commands fill `Outcome::propagate` (on at first; the server turns it off when
    /// there is no append-only log, so writes do not build commands nobody reads).
    pub fn set_propagate(&mut self, on: bool) {
        self.no_propagate = !on;
    }

    /// See [`Store::set_propagate`].
    pub fn propagates(&self) -> bool {
        !self.no_propagate
    }

    /// Turns loading on or off: while the log is replayed nothing expires (neither when
    /// looked up nor by [`Store::active_expire`] or [`Store::purge_expired`]), as in Redis,
    /// so a key whose time has passed keeps its value and its (absolute) expiry until the
    /// replay ends; then purge with [`Store::purge_expired`]. Commands that drop a key set to
    /// expire in the past ask [`Store::loading`] and keep it instead.
    pub fn set_loading(&mut self, on: bool) {
        self.loading = on;
    }

    /// See [`Store::set_loading`].
    #[inline]
    pub fn loading(&self) -> bool {
        self.loading
    }

    /// The keys expiry removed (lazily when looked up, by active expiry, by a purge) since
    /// the last call, in order: the server logs a `DEL` of each (Redis propagates an
    /// expiry as a DEL), or a replay would bring the key back. Recorded only while commands
    /// propagate ([`Store::set_propagate`]).
    pub fn take_expired(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.expired)
    }

    /// Whether [`Store::take_expired`] has keys to give.
    #[inline]
    pub fn has_expired(&self) -> bool {
        !self.expired.is_empty()
    }

    fn expired(e: &Entry, now_ms: u64) -> bool {
        e.expires.is_some_and(|t| t <= now_ms)
    }

    /// Removes `key` because it expired, and records it for [`Store::take_expired`].
    fn remove_expired(&mut self, key: &[u8]) {
        self.remove(key);
        if !self.no_propagate {
            self.expired.push(key.to_vec());
        }
    }

    /// Removes `key` if it has expired by `now_ms` (lazy expiry; none while loading).
    #[inline]
    fn expire_if_due(&mut self, key: &[u8], now_ms: u64) {
        if !self.volatile.is_empty()
            && !self.loading
            && self.map.get(key).is_some_and(|e| Self::expired(e, now_ms))
        {
            self.remove_expired(key);
        }
    }

    /// The value at `key`, if it exists and has not expired.
    #[inline]
    pub fn get(&mut self, key: &[u8], now_ms: u64) -> Option<&Value> {
        self.expire_if_due(key, now_ms);
        self.map.get(key).map(|e| &e.value)
    }

    /// The value at `key` to change in place; the key is marked changed whether or not the
    /// caller changes it, so call it only to write. An aggregate left empty must be removed
    /// with [`Store::remove_if_empty`]; a size change reported with [`Store::adjust_used`].
    #[inline]
    pub fn get_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Value> {
        self.expire_if_due(key, now_ms);
        let e = self.map.get_mut(key)?;
        self.journal.touch(key);
        Some(&mut e.value)
    }

    /// The value at `key` to change in place, without marking it changed: a command that
    /// may refuse (a wrong type, a bad argument) looks with this, and calls
    /// [`Store::mark_changed`] once it has changed the value.
    #[inline]
    pub fn lookup_mut(&mut self, key: &[u8], now_ms: u64) -> Option<&mut Value> {
        self.expire_if_due(key, now_ms);
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    /// Records that `key` changed (for the mirror and for WATCH) after a change made through
    /// [`Store::lookup_mut`].
    #[inline]
    pub fn mark_changed(&mut self, key: &[u8]) {
        self.journal.touch(key);
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
        self.journal.touch(key);
        if !self.map.contains_key(key) {
            let value = make();
            self.used += value.approx_bytes() + key.len() as u64;
            self.map.insert(
                key.to_vec(),
                Entry {
                    value,
                    expires: None,
                    vidx: NO_VIDX,
                },
            );
        }
        &mut self.map.get_mut(key).expect("inserted above").value
    }

    fn set_volatile(
        volatile: &mut Vec<Vec<u8>>,
        map: &mut HashMap<Vec<u8>, Entry>,
        key: &[u8],
        expires: Option<u64>,
    ) {
        let Some(e) = map.get_mut(key) else { return };
        e.expires = expires;
        match (expires.is_some(), e.vidx != NO_VIDX) {
            (true, false) => {
                e.vidx = volatile.len();
                volatile.push(key.to_vec());
            }
            (false, true) => {
                let i = e.vidx;
                e.vidx = NO_VIDX;
                volatile.swap_remove(i);
                if let Some(moved) = volatile.get(i)
                    && let Some(m) = map.get_mut(moved)
                {
                    m.vidx = i;
                }
            }
            _ => {}
        }
    }

    /// Sets `key` to `value` with `expires` (Unix ms, or none), replacing any value and time.
    pub fn set(&mut self, key: Vec<u8>, value: Value, expires: Option<u64>) {
        self.journal.touch(&key);
        let add = value.approx_bytes() + key.len() as u64;
        match self.map.entry(key) {
            MapEntry::Occupied(mut o) => {
                let e = o.get_mut();
                let old = std::mem::replace(&mut e.value, value);
                let had = e.expires;
                self.used = self
                    .used
                    .saturating_sub(old.approx_bytes() + o.key().len() as u64);
                self.used += add;
                if had != expires {
                    let key = o.key().clone();
                    Self::set_volatile(&mut self.volatile, &mut self.map, &key, expires);
                }
            }
            MapEntry::Vacant(v) => {
                let vidx = if expires.is_some() {
                    self.volatile.push(v.key().clone());
                    self.volatile.len() - 1
                } else {
                    NO_VIDX
                };
                v.insert(Entry {
                    value,
                    expires,
                    vidx,
                });
                self.used += add;
            }
        }
    }

    /// SET's fast path: `key` now holds the string `value`, the existing allocations reused
    /// when they fit. `keep_ttl`: the key keeps its time to live (`expires` ignored), as
    /// `SET ... KEEPTTL` (a key already past its time counts as missing: `now_ms`);
    /// otherwise the key expires at `expires`.
    pub fn set_str(
        &mut self,
        key: &[u8],
        value: &[u8],
        now_ms: u64,
        expires: Option<u64>,
        keep_ttl: bool,
    ) {
        if keep_ttl {
            self.expire_if_due(key, now_ms);
        }
        self.journal.touch(key);
        let ttl_now = if let Some(e) = self.map.get_mut(key) {
            let old = e.value.approx_bytes();
            match &mut e.value {
                Value::Str(s) if s.capacity() <= 2 * value.len() + 64 => {
                    s.clear();
                    s.extend_from_slice(value);
                }
                other => *other = Value::Str(value.to_vec()),
            }
            self.used = self.used.saturating_sub(old) + value.len() as u64 + ITEM_BYTES;
            e.expires
        } else {
            self.used += key.len() as u64 + value.len() as u64 + ITEM_BYTES;
            self.map.insert(
                key.to_vec(),
                Entry {
                    value: Value::Str(value.to_vec()),
                    expires: None,
                    vidx: NO_VIDX,
                },
            );
            None
        };
        let want = if keep_ttl { ttl_now } else { expires };
        if want != ttl_now {
            Self::set_volatile(&mut self.volatile, &mut self.map, key, want);
        }
    }

    /// Removes `key`; its value if it was there (expired or not).
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        let e = self.map.remove(key)?;
        if e.vidx != NO_VIDX {
            self.volatile.swap_remove(e.vidx);
            if let Some(moved) = self.volatile.get(e.vidx)
                && let Some(m) = self.map.get_mut(moved)
            {
                m.vidx = e.vidx;
            }
        }
        self.used = self
            .used
            .saturating_sub(e.value.approx_bytes() + key.len() as u64);
        self.journal.touch(key);
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
        if !self.map.contains_key(key) {
            return false;
        }
        Self::set_volatile(&mut self.volatile, &mut self.map, key, expires);
        self.journal.touch(key);
        true
    }

    /// Adds `delta` bytes (or takes them away) from the memory estimate: what a command that
    /// changed an aggregate in place through [`Store::get_mut`] reports.
    #[inline]
    pub fn adjust_used(&mut self, delta: i64) {
        self.used = self.used.saturating_add_signed(delta);
    }

    /// WATCH: registers `key` as watched (once per call: pair each with [`Store::unwatch`])
    /// and returns its token, which [`Store::watch_token`] compares later.
    pub fn watch(&mut self, key: &[u8], now_ms: u64) -> u64 {
        self.expire_if_due(key, now_ms);
        let clock = self.journal.clock;
        let w = self
            .journal
            .watched
            .entry(key.to_vec())
            .or_insert((0, clock));
        w.0 += 1;
        w.1
    }

    /// Ends one [`Store::watch`] of `key`.
    pub fn unwatch(&mut self, key: &[u8]) {
        if let Some(w) = self.journal.watched.get_mut(key) {
            w.0 -= 1;
            if w.0 == 0 {
                self.journal.watched.remove(key);
            }
        }
    }

    /// WATCH's token for a key registered with [`Store::watch`]: it changes whenever the key
    /// is set, changed, deleted, expired or the database flushed. (For a key nobody watches
    /// it is `u64::MAX`.)
    pub fn watch_token(&mut self, key: &[u8], now_ms: u64) -> u64 {
        self.expire_if_due(key, now_ms);
        self.journal.watched.get(key).map_or(u64::MAX, |w| w.1)
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

    /// The value and expiry at `key` without expiring it or marking anything (INFO, the
    /// model tests).
    pub fn peek(&self, key: &[u8], now_ms: u64) -> Option<(&Value, Option<u64>)> {
        self.map
            .get(key)
            .filter(|e| !Self::expired(e, now_ms))
            .map(|e| (&e.value, e.expires))
    }

    /// FLUSHDB / FLUSHALL: every key gone (each one marked changed when changes are
    /// tracked; every WATCH broken).
    pub fn clear(&mut self) {
        if self.journal.track {
            let keys: Vec<Vec<u8>> = self.map.keys().cloned().collect();
            for k in keys {
                self.journal.touch(&k);
            }
        }
        self.map.clear();
        self.volatile.clear();
        self.used = 0;
        self.scan = None;
        self.journal.clock += 1;
        let clock = self.journal.clock;
        for w in self.journal.watched.values_mut() {
            w.1 = clock;
        }
    }

    /// Removes expired keys, sampling as Redis's active expiry does: at most `budget` keys
    /// with a time to live looked at. Returns how many were removed.
    pub fn active_expire(&mut self, now_ms: u64, budget: usize) -> usize {
        if self.loading {
            return 0;
        }
        let mut removed = 0;
        let mut looked = 0;
        while looked < budget && !self.volatile.is_empty() {
            let i = self.cursor % self.volatile.len();
            looked += 1;
            let due = self
                .map
                .get(&self.volatile[i])
                .is_some_and(|e| Self::expired(e, now_ms));
            if due {
                // The last key moves into slot i: look at i again next.
                let k = self.volatile[i].clone();
                self.remove_expired(&k);
                removed += 1;
            } else {
                self.cursor = i + 1;
            }
        }
        removed
    }

    /// Removes every expired key now (DBSIZE's exact count): O(keys with a time to live).
    pub fn purge_expired(&mut self, now_ms: u64) -> usize {
        if self.loading {
            return 0;
        }
        let due: Vec<Vec<u8>> = self
            .volatile
            .iter()
            .filter(|k| self.map.get(*k).is_some_and(|e| Self::expired(e, now_ms)))
            .cloned()
            .collect();
        for k in &due {
            self.remove_expired(k);
        }
        due.len()
    }

    /// The keys changed (set, modified, deleted, expired) since the last call, each once, in
    /// the order they first changed. Empty unless [`Store::track_changes`] is on.
    pub fn take_changed(&mut self) -> Vec<Vec<u8>> {
        self.journal.changed_set.clear();
        std::mem::take(&mut self.journal.changed)
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

    fn scan_hash(&self, key: &[u8]) -> u64 {
        self.scan_hasher.hash_one(key).max(1)
    }

    /// SCAN: up to about `count` keys from `cursor` on, and the cursor to go on with (0 when
    /// done).
    ///
    /// The cursor is a position in the order of a keyed hash of the key: a scan walks a
    /// snapshot of the keys sorted by that hash, made when a scan starts (cursor 0) or when
    /// the snapshot is gone. Because the cursor is a hash value, not an index, it stays
    /// valid across a new snapshot. The guarantee is Redis's: a key that exists for the whole
    /// scan is returned (at least once, normally once); a key added or removed during it may
    /// or may not be. Keys removed since the snapshot are skipped.
    pub fn scan(&mut self, cursor: u64, count: usize, now_ms: u64) -> (u64, Vec<Vec<u8>>) {
        if cursor == 0 || self.scan.is_none() {
            let mut keys: Vec<(u64, Vec<u8>)> = self
                .map
                .keys()
                .map(|k| (self.scan_hash(k), k.clone()))
                .collect();
            keys.sort_unstable();
            self.scan = Some(ScanIndex { keys });
        }
        let index = self.scan.as_ref().expect("made above");
        let mut i = index.keys.partition_point(|(h, _)| *h < cursor);
        let mut out = Vec::new();
        let mut looked = 0;
        while i < index.keys.len() {
            if looked >= count.max(1) && index.keys[i].0 != index.keys[i - 1].0 {
                break;
            }
            let (_, k) = &index.keys[i];
            if self.map.get(k).is_some_and(|e| !Self::expired(e, now_ms)) {
                out.push(k.clone());
            }
            looked += 1;
            i += 1;
        }
        let next = match index.keys.get(i) {
            Some((h, _)) => *h,
            None => {
                self.scan = None;
                0
            }
        };
        (next, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Value {
        Value::Str(v.as_bytes().to_vec())
    }

    #[test]
    fn volatile_index_follows_swaps() {
        let mut st = Store::new();
        for i in 0..10u64 {
            st.set(format!("k{i}").into_bytes(), s("v"), Some(100 + i));
        }
        assert_eq!(st.volatile_len(), 10);
        st.set(b"k3".to_vec(), s("v"), None);
        st.remove(b"k0");
        assert!(st.set_expiry(b"k5", 0, None));
        assert_eq!(st.volatile_len(), 7);
        // Every remaining volatile key's index points at itself.
        for (i, k) in st.volatile.iter().enumerate() {
            assert_eq!(st.map[k].vidx, i);
        }
        assert_eq!(st.purge_expired(106), 4); // k1 k2 k4 k6
        assert_eq!(st.volatile_len(), 3);
        assert_eq!(st.active_expire(1_000, 100), 3);
        assert_eq!(st.len(), 2);
    }

    #[test]
    fn set_str_reuses_and_keeps_ttl() {
        let mut st = Store::new();
        st.set_str(b"k", b"one", 0, Some(50), false);
        st.set_str(b"k", b"two", 0, None, true);
        assert_eq!(st.expires_at(b"k", 0), Some(50));
        st.set_str(b"k", b"two", 50, None, true);
        assert_eq!(
            st.expires_at(b"k", 50),
            None,
            "past its time: KEEPTTL keeps nothing"
        );
        st.set_str(b"k", b"one", 0, Some(50), false);
        st.set_str(b"k", b"three", 0, None, false);
        assert_eq!(st.expires_at(b"k", 0), None);
        assert_eq!(st.volatile_len(), 0);
        assert_eq!(st.used_memory(), st.recount());
    }

    #[test]
    fn watch_sees_set_delete_expire_and_flush() {
        let mut st = Store::new();
        let t = st.watch(b"k", 0);
        assert_eq!(st.watch_token(b"k", 0), t);
        st.set(b"k".to_vec(), s("v"), None);
        st.remove(b"k");
        assert_ne!(st.watch_token(b"k", 0), t, "create then delete is a change");
        st.set(b"e".to_vec(), s("v"), Some(10));
        let te = st.watch(b"e", 5);
        assert_ne!(st.watch_token(b"e", 10), te, "expiry is a change");
        let tf = st.watch(b"f", 10);
        st.clear();
        assert_ne!(st.watch_token(b"f", 10), tf);
        st.unwatch(b"k");
        st.unwatch(b"e");
        st.unwatch(b"f");
        assert!(st.journal.watched.is_empty());
    }

    #[test]
    fn scan_returns_every_key_present_throughout() {
        let mut st = Store::new();
        for i in 0..100 {
            st.set(format!("k{i}").into_bytes(), s("v"), None);
        }
        let mut seen = HashSet::new();
        let (mut cursor, first) = st.scan(0, 7, 0);
        seen.extend(first);
        let mut round = 0;
        while cursor != 0 {
            // Churn: add and remove keys between calls, and drop the snapshot sometimes.
            st.set(format!("new{round}").into_bytes(), s("v"), None);
            st.remove(format!("k{}", 99 - round % 10).as_bytes());
            if round % 3 == 0 {
                st.scan = None;
            }
            let (c, keys) = st.scan(cursor, 7, 0);
            seen.extend(keys);
            cursor = c;
            round += 1;
        }
        for i in 0..90 {
            assert!(seen.contains(format!("k{i}").as_bytes()), "k{i} missing");
        }
    }
}
