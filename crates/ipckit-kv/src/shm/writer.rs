//! The server's side: makes (or takes back) the table and keeps it in step with the store.

use std::os::fd::AsFd;
use std::sync::atomic::{Ordering, fence};
use std::time::Duration;

use ipckit::object::{Existing, check_existing};
use ipckit::shm::mapping::Mapping;
use ipckit::shm::posix::{self, PosixShm};
use ipckit::sync::mutex::RobustMutex;
use ipckit::{Access, Errno, Error, ErrorKind};
use rustix::fs::AtFlags;

use super::MirrorOptions;
use super::layout::*;
use crate::store::{Store, Value};

const CREATING: &str = "creating the kv mirror";

/// How [`Mirror::create`] found the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Free: a new table was made.
    New,
    /// A table a killed server left, of the same shape: emptied in place (readers that still
    /// have it mapped go on with it). `writer_died` is true when that server died in the
    /// middle of an update (its robust mutex said `EOWNERDEAD`).
    Rebuilt {
        /// The last writer died holding the table's mutex.
        writer_died: bool,
    },
    /// A table a killed server left, of another shape (or half made): marked retired (its
    /// readers are told to open again), removed, and a new one made.
    Replaced,
}

/// The server's side: creates the table (and removes it on drop), and keeps it in step.
///
/// Every change takes the table's robust mutex for its duration: a writer that dies in the
/// middle of one is told to the next (`EOWNERDEAD`), which repairs the table. A second server
/// on the same name is refused at [`create`](Mirror::create) (the creator holds `flock` on the
/// object for its life).
///
/// A new table is **incomplete** until the server says it holds every key: a miss is then
/// [`NotMirrored`](super::Lookup::NotMirrored), never a wrong `Absent`. After loading the
/// store, call [`sync_all`](Mirror::sync_all) (which mirrors it whole and marks the table
/// complete), or, for a server that created the mirror before loading and mirrored every
/// change since, [`mark_complete`](Mirror::mark_complete).
#[derive(Debug)]
pub struct Mirror {
    /// The object; `None` only while dropping.
    shm: Option<PosixShm>,
    map: Mapping,
    mem: Memory,
    name: String,
    start: Start,
    error: Option<Error>,
}

// SAFETY: `mem` points into `map`, which the mirror owns; changes are made through `&mut self`
// only, with atomic stores.
unsafe impl Send for Mirror {}
// SAFETY: `&self` methods only load.
unsafe impl Sync for Mirror {}

/// Where a key is, or may go, in the table.
enum Find {
    At(u64),
    Free(u64),
    Full,
}

/// One entry copied out of the table during a rebuild.
struct Entry {
    state: u32,
    hash: u64,
    expires: u64,
    key: Vec<u8>,
    value: Vec<u8>,
}

fn expiry(expires_ms: Option<u64>) -> u64 {
    // 0 means "none" in a bucket: a time of 0 (long past) is 1 (as past).
    expires_ms.map(|t| t.max(1)).unwrap_or(0)
}

/// The table, to change (the caller holds the mutex).
#[derive(Clone, Copy)]
struct Table(Memory);

impl Table {
    fn n(&self) -> u64 {
        self.0.geo.buckets
    }

    fn next(&self, i: u64) -> u64 {
        if i + 1 == self.n() { 0 } else { i + 1 }
    }

    fn prev(&self, i: u64) -> u64 {
        if i == 0 { self.n() - 1 } else { i - 1 }
    }

    fn state(&self, i: u64) -> u32 {
        self.0.b32(i, B_STATE).load(Ordering::Relaxed)
    }

    fn add(&self, off: usize, d: i64) {
        let c = self.0.h64(off);
        c.store(
            c.load(Ordering::Relaxed).wrapping_add_signed(d),
            Ordering::Relaxed,
        );
    }

    fn count(&self, off: usize) -> u64 {
        self.0.h64(off).load(Ordering::Relaxed)
    }

    fn set_flag(&self, flag: u32, on: bool) {
        let f = self.0.h32(H_FLAGS);
        if on {
            f.fetch_or(flag, Ordering::Release);
        } else {
            f.fetch_and(!flag, Ordering::Release);
        }
    }

    /// A change of many buckets begins: the generation goes odd, so readers' misses meanwhile
    /// are not believed.
    fn begin(&self) -> u64 {
        let g = self.0.h64(H_GENERATION);
        let odd = g.load(Ordering::Relaxed) | 1;
        g.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        odd
    }

    fn end(&self, odd: u64) {
        self.0.h64(H_GENERATION).store(odd + 1, Ordering::Release);
    }

    /// Writes bucket `i` whole, seqlock-style: version odd, fence, fields, version even.
    fn write(&self, i: u64, state: u32, h: u64, key: &[u8], value: &[u8], expires: u64) {
        let m = &self.0;
        let version = m.b64(i, B_VERSION);
        let odd = version.load(Ordering::Relaxed) | 1;
        version.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        m.b64(i, B_HASH).store(h, Ordering::Relaxed);
        m.b64(i, B_EXPIRES).store(expires, Ordering::Relaxed);
        m.b32(i, B_KEY_LEN)
            .store(key.len() as u32, Ordering::Relaxed);
        m.b32(i, B_VAL_LEN)
            .store(value.len() as u32, Ordering::Relaxed);
        m.b32(i, B_STATE).store(state, Ordering::Relaxed);
        for w in 0..key.len().div_ceil(8) {
            m.key_word(i, w).store(word(key, w), Ordering::Relaxed);
        }
        for w in 0..value.len().div_ceil(8) {
            m.value_word(i, w).store(word(value, w), Ordering::Relaxed);
        }
        version.store(odd + 1, Ordering::Release);
    }

    /// Sets bucket `i`'s state alone (empty, tombstone), seqlock-style.
    fn mark(&self, i: u64, state: u32) {
        let version = self.0.b64(i, B_VERSION);
        let odd = version.load(Ordering::Relaxed) | 1;
        version.store(odd, Ordering::Relaxed);
        fence(Ordering::Release);
        self.0.b32(i, B_STATE).store(state, Ordering::Relaxed);
        version.store(odd + 1, Ordering::Release);
    }

    fn holds(&self, i: u64, h: u64, key: &[u8]) -> bool {
        let m = &self.0;
        m.b64(i, B_HASH).load(Ordering::Relaxed) == h
            && m.b32(i, B_KEY_LEN).load(Ordering::Relaxed) as usize == key.len()
            && (0..key.len().div_ceil(8))
                .all(|w| m.key_word(i, w).load(Ordering::Relaxed) == word(key, w))
    }

    fn find(&self, key: &[u8], h: u64) -> Find {
        let mut i = home(h, self.n());
        let mut free = None;
        for _ in 0..self.0.geo.max_probe {
            match self.state(i) {
                EMPTY => return Find::Free(free.unwrap_or(i)),
                TOMBSTONE => {
                    free.get_or_insert(i);
                }
                FOUND | NOT_MIRRORED if self.holds(i, h, key) => return Find::At(i),
                _ => {}
            }
            i = self.next(i);
        }
        free.map_or(Find::Full, Find::Free)
    }

    /// `key` now has this entry. Returns false when it could not be placed (the table is
    /// then marked incomplete).
    fn put(&self, key: &[u8], state: u32, value: &[u8], expires: u64) -> bool {
        let h = hash(self.0.h64(H_SEED).load(Ordering::Relaxed), key);
        let mut rebuilt = false;
        loop {
            match self.find(key, h) {
                Find::At(i) => {
                    self.write(i, state, h, key, value, expires);
                    return true;
                }
                Find::Free(i) if self.count(H_LIVE) < self.0.geo.capacity => {
                    if self.state(i) == TOMBSTONE {
                        self.add(H_TOMBSTONES, -1);
                    }
                    self.write(i, state, h, key, value, expires);
                    self.add(H_LIVE, 1);
                    return true;
                }
                Find::Full if !rebuilt && self.count(H_TOMBSTONES) >= (self.n() / 16).max(1) => {
                    self.rebuild();
                    rebuilt = true;
                }
                _ => {
                    self.set_flag(INCOMPLETE, true);
                    return false;
                }
            }
        }
    }

    fn remove(&self, key: &[u8]) {
        let h = hash(self.0.h64(H_SEED).load(Ordering::Relaxed), key);
        let Find::At(i) = self.find(key, h) else {
            return;
        };
        if self.n() > 1 && self.state(self.next(i)) == EMPTY {
            // Nothing probes past an empty bucket, so this one and the tombstones just before
            // it can be empty too (no key's probe sequence runs through them).
            self.mark(i, EMPTY);
            let mut j = self.prev(i);
            while j != i && self.state(j) == TOMBSTONE {
                self.mark(j, EMPTY);
                self.add(H_TOMBSTONES, -1);
                j = self.prev(j);
            }
        } else {
            self.mark(i, TOMBSTONE);
            self.add(H_TOMBSTONES, 1);
        }
        self.add(H_LIVE, -1);
        if self.count(H_TOMBSTONES) > self.n() / 4 {
            self.rebuild();
        }
    }

    /// Empties every bucket (repairing any a dead writer left odd).
    fn empty_all(&self) {
        for i in 0..self.n() {
            let odd = self.0.b64(i, B_VERSION).load(Ordering::Relaxed) & 1 == 1;
            if odd || self.state(i) != EMPTY {
                self.mark(i, EMPTY);
            }
        }
        self.0.h64(H_LIVE).store(0, Ordering::Relaxed);
        self.0.h64(H_TOMBSTONES).store(0, Ordering::Relaxed);
    }

    /// Places a key known not to be in the table.
    fn place(&self, state: u32, h: u64, key: &[u8], value: &[u8], expires: u64) -> bool {
        if self.count(H_LIVE) >= self.0.geo.capacity {
            return false;
        }
        let mut i = home(h, self.n());
        for _ in 0..self.0.geo.max_probe {
            if self.state(i) == EMPTY {
                self.write(i, state, h, key, value, expires);
                self.add(H_LIVE, 1);
                return true;
            }
            i = self.next(i);
        }
        false
    }

    fn read_entry(&self, i: u64, state: u32) -> Entry {
        let m = &self.0;
        let klen =
            (m.b32(i, B_KEY_LEN).load(Ordering::Relaxed) as usize).min(m.geo.max_key as usize);
        let vlen =
            (m.b32(i, B_VAL_LEN).load(Ordering::Relaxed) as usize).min(m.geo.max_value as usize);
        let words = |n: usize, f: &dyn Fn(usize) -> u64| {
            let mut v: Vec<u8> = (0..n.div_ceil(8))
                .flat_map(|w| f(w).to_le_bytes())
                .collect();
            v.truncate(n);
            v
        };
        Entry {
            state,
            hash: m.b64(i, B_HASH).load(Ordering::Relaxed),
            expires: m.b64(i, B_EXPIRES).load(Ordering::Relaxed),
            key: words(klen, &|w| m.key_word(i, w).load(Ordering::Relaxed)),
            value: if state == FOUND {
                words(vlen, &|w| m.value_word(i, w).load(Ordering::Relaxed))
            } else {
                Vec::new()
            },
        }
    }

    /// Reinserts every entry, dropping the tombstones (and any bucket left mid-update, which
    /// marks the table incomplete). Readers' misses meanwhile are not believed (the
    /// generation is odd); their hits stay right.
    fn rebuild(&self) {
        let odd = self.begin();
        let mut entries = Vec::with_capacity(self.count(H_LIVE) as usize);
        let mut lost = false;
        for i in 0..self.n() {
            if self.0.b64(i, B_VERSION).load(Ordering::Relaxed) & 1 == 1 {
                lost = true;
                continue;
            }
            let s = self.state(i);
            if s == FOUND || s == NOT_MIRRORED {
                entries.push(self.read_entry(i, s));
            }
        }
        self.empty_all();
        for e in &entries {
            lost |= !self.place(e.state, e.hash, &e.key, &e.value, e.expires);
        }
        if lost {
            self.set_flag(INCOMPLETE, true);
        }
        self.end(odd);
    }

    /// After a writer died holding the mutex: a bucket it left mid-update becomes a tombstone
    /// (its entry is lost: the table is marked incomplete).
    fn repair(&self) {
        let odd = self.begin();
        for i in 0..self.n() {
            if self.0.b64(i, B_VERSION).load(Ordering::Relaxed) & 1 == 1 {
                self.mark(i, TOMBSTONE);
                self.add(H_TOMBSTONES, 1);
                self.set_flag(INCOMPLETE, true);
            }
        }
        self.end(odd);
    }

    /// Every key gone: empty, and complete.
    fn clear(&self) {
        let odd = self.begin();
        self.empty_all();
        self.set_flag(INCOMPLETE, false);
        self.end(odd);
    }
}

/// A random seed for the table's hash.
fn new_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

/// `flock(LOCK_EX | LOCK_NB)` on the object (held as long as the server has it open), then a
/// check that the name still leads to it: one server per table.
fn claim(shm: &PosixShm, name: &str) -> ipckit::Result<()> {
    crate::aof::flock_claim(shm.as_fd()).map_err(|e| {
        Error::os(CREATING, e).object(name).hint_if(
            Errno::WOULDBLOCK,
            "another server is mirroring into it (it holds the table's lock): give another \
             --shm name, or stop that server",
        )
    })?;
    let mine = rustix::fs::fstat(shm.as_fd()).map_err(|e| Error::os(CREATING, e).object(name))?;
    let there = rustix::fs::statat(
        rustix::fs::CWD,
        format!("/dev/shm{name}").as_str(),
        AtFlags::SYMLINK_NOFOLLOW,
    );
    match there {
        Ok(st) if st.st_dev == mine.st_dev && st.st_ino == mine.st_ino => Ok(()),
        _ => Err(Error::new(
            ErrorKind::Changed,
            CREATING,
            "another process removed or replaced the object while this one was taking it",
        )
        .object(name)
        .hint("another server is starting on the same name: give another --shm name")),
    }
}

impl Mirror {
    /// Creates the table at `/NAME` (a leftover of a killed server is rebuilt).
    ///
    /// `shm_open(3)` with `O_CREAT|O_EXCL` (mode `opts.mode`, `0o600` by default), `ftruncate`
    /// and `fallocate` to the table's size (see [`PosixShm::create`]), `flock(2)`, the header,
    /// a robust mutex, and the magic last. When the name is taken: the object must pass
    /// [`check_existing`] (this user's, no wider than `opts.mode`: another's is refused), not
    /// be locked by a live server, and be a mirror (its magic); then it is taken back
    /// ([`Start::Rebuilt`] or [`Start::Replaced`], see [`Mirror::start`]).
    pub fn create(name: &str, opts: &MirrorOptions) -> ipckit::Result<Mirror> {
        let geo = Geometry::for_options(opts).map_err(|e| e.object(name))?;
        let len = geo.len().ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                CREATING,
                "the table's size overflows",
            )
            .object(name)
        })?;
        if RobustMutex::footprint() > HEADER_LEN - H_MUTEX {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                CREATING,
                "this platform's pthread mutex does not fit the header",
            ));
        }
        let shm_opts = posix::Options::new(len).mode(opts.mode);
        match PosixShm::create(name, &shm_opts) {
            Ok(shm) => Mirror::fresh(shm, name, geo, Start::New),
            Err(e) if e.errno() == Some(Errno::EXIST) => {
                Mirror::take_over(name, opts, geo, &shm_opts)
            }
            Err(e) => Err(e),
        }
    }

    /// A new object: its header, mutex and magic.
    fn fresh(shm: PosixShm, name: &str, geo: Geometry, start: Start) -> ipckit::Result<Mirror> {
        claim(&shm, name)?;
        let map = shm.map()?;
        // SAFETY: the mapping is the object's whole `geo.len()` bytes, page-aligned, kept by
        // the returned Mirror.
        let mem = unsafe { Memory::new(map.as_ptr(), geo) };
        let r = Ordering::Relaxed;
        mem.h64(H_BUCKETS).store(geo.buckets, r);
        mem.h64(H_SLOT).store(geo.slot, r);
        mem.h32(H_MAX_KEY).store(geo.max_key, r);
        mem.h32(H_MAX_VALUE).store(geo.max_value, r);
        mem.h32(H_MAX_PROBE).store(geo.max_probe, r);
        mem.h64(H_CAPACITY).store(geo.capacity, r);
        mem.h64(H_SEED).store(new_seed(), r);
        mem.h32(H_FLAGS).store(INCOMPLETE, r);
        mem.h32(H_WRITER).store(std::process::id(), r);
        mem.h64(H_GENERATION).store(0, r);
        mem.h64(H_LIVE).store(0, r);
        mem.h64(H_TOMBSTONES).store(0, r);
        mem.h32(H_LAYOUT).store(LAYOUT, r);
        mem.h32(H_HEADER_LEN).store(HEADER_LEN as u32, r);
        RobustMutex::init(&map, H_MUTEX).map_err(|e| e.object(name))?;
        mem.h64(H_MAGIC).store(MAGIC, Ordering::Release);
        Ok(Mirror {
            shm: Some(shm),
            map,
            mem,
            name: name.to_string(),
            start,
            error: None,
        })
    }

    /// The name is taken: a leftover of ours is taken back, anything else refused.
    fn take_over(
        name: &str,
        opts: &MirrorOptions,
        geo: Geometry,
        shm_opts: &posix::Options,
    ) -> ipckit::Result<Mirror> {
        let shm = PosixShm::open(name, Access::ReadWrite)?;
        let st = rustix::fs::fstat(shm.as_fd()).map_err(|e| Error::os(CREATING, e).object(name))?;
        let found = Existing {
            uid: st.st_uid,
            cuid: st.st_uid,
            mode: st.st_mode & 0o777,
        };
        check_existing(
            CREATING,
            name,
            &format!("shm:{name}"),
            found,
            opts.mode,
            false,
        )?;
        claim(&shm, name)?;
        let size = st.st_size.max(0) as usize;
        if size >= HEADER_LEN {
            let map = shm.map()?;
            // SAFETY: at least HEADER_LEN bytes, page-aligned; only the header is read until
            // the geometry is known to match the size.
            let head = unsafe { Memory::new(map.as_ptr(), geo) };
            let magic = head.h64(H_MAGIC).load(Ordering::Acquire);
            let same = Geometry {
                buckets: head.h64(H_BUCKETS).load(Ordering::Relaxed),
                slot: head.h64(H_SLOT).load(Ordering::Relaxed),
                max_key: head.h32(H_MAX_KEY).load(Ordering::Relaxed),
                max_value: head.h32(H_MAX_VALUE).load(Ordering::Relaxed),
                max_probe: head.h32(H_MAX_PROBE).load(Ordering::Relaxed),
                capacity: head.h64(H_CAPACITY).load(Ordering::Relaxed),
            } == geo
                && head.h32(H_LAYOUT).load(Ordering::Relaxed) == LAYOUT
                && geo.len() == Some(size);
            if magic == MAGIC && same {
                // The mode asked for now (check_existing let through only a narrower one).
                rustix::fs::fchmod(shm.as_fd(), rustix::fs::Mode::from_raw_mode(opts.mode))
                    .map_err(|e| Error::os(CREATING, e).object(name))?;
                return Mirror::rebuild_in_place(shm, map, head, name);
            }
            let layout = head.h32(H_LAYOUT).load(Ordering::Relaxed);
            let half_made = magic == 0 && (layout == 0 || layout == LAYOUT);
            if magic == MAGIC {
                // Its readers are told to open again (they will find the new table).
                head.h32(H_FLAGS).fetch_or(RETIRED, Ordering::Release);
            } else if !half_made {
                return Err(Error::os(CREATING, Errno::EXIST).object(name).hint(format!(
                    "an object of that name exists that is not an ipckit kv mirror: give \
                     another --shm name, or remove it (`ipckit rm shm:{}`)",
                    ipckit::name::escape_str(name)
                )));
            }
        }
        shm.remove()?;
        let shm = PosixShm::create(name, shm_opts)?;
        Mirror::fresh(shm, name, geo, Start::Replaced)
    }

    /// A leftover of the same shape: the mutex taken back (or made again), every bucket
    /// emptied, the table incomplete until the server fills it.
    fn rebuild_in_place(
        shm: PosixShm,
        map: Mapping,
        mem: Memory,
        name: &str,
    ) -> ipckit::Result<Mirror> {
        let mut writer_died = false;
        let usable = match RobustMutex::attach(&map, H_MUTEX) {
            Ok(m) => match m.try_lock() {
                Ok(Some(mut g)) => {
                    writer_died = g.owner_died();
                    g.make_consistent().is_ok()
                }
                // Held by nobody alive that may hold it (this process has the object's
                // lock), or unrecoverable: made again below.
                _ => false,
            },
            Err(_) => false,
        };
        if !usable {
            // No other writer can be using it (this process holds the flock) and readers never
            // touch it: initialising it again is safe.
            RobustMutex::init(&map, H_MUTEX).map_err(|e| e.object(name))?;
        }
        let t = Table(mem);
        let odd = t.begin();
        t.empty_all();
        mem.h32(H_FLAGS).store(INCOMPLETE, Ordering::Release);
        mem.h32(H_WRITER)
            .store(std::process::id(), Ordering::Relaxed);
        t.end(odd);
        Ok(Mirror {
            shm: Some(shm),
            map,
            mem,
            name: name.to_string(),
            start: Start::Rebuilt { writer_died },
            error: None,
        })
    }

    /// Runs `f` on the table holding its mutex. A mutex a dead writer held is repaired first;
    /// a mutex that cannot be taken marks the table broken (readers go to the socket) and is
    /// kept in [`last_error`](Mirror::last_error).
    fn locked<R>(&mut self, f: impl FnOnce(&Table) -> R) -> Option<R> {
        if self.error.is_some() {
            return None;
        }
        let t = Table(self.mem);
        let got = match RobustMutex::attach(&self.map, H_MUTEX) {
            Ok(m) => match m.lock_timeout(Duration::from_secs(1)) {
                Ok(Some(mut g)) => {
                    if g.owner_died() {
                        t.repair();
                        let _ = g.make_consistent();
                    }
                    Ok(f(&t))
                }
                Ok(None) => Err(Error::new(
                    ErrorKind::TimedOut,
                    "updating the kv mirror",
                    "another process held the table's mutex for a second",
                )
                .object(&self.name)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match got {
            Ok(r) => Some(r),
            Err(e) => {
                t.set_flag(BROKEN, true);
                self.error = Some(e);
                None
            }
        }
    }

    /// `key` now holds the string `value` (expiring at `expires_ms`, Unix ms): mirrored if it
    /// fits, else marked not mirrored.
    pub fn set(&mut self, key: &[u8], value: &[u8], expires_ms: Option<u64>) {
        if key.len() > self.mem.geo.max_key as usize {
            return; // readers answer NotMirrored for such keys without looking
        }
        let (state, value) = if value.len() <= self.mem.geo.max_value as usize {
            (FOUND, value)
        } else {
            (NOT_MIRRORED, &[][..])
        };
        let exp = expiry(expires_ms);
        self.locked(|t| t.put(key, state, value, exp));
    }

    /// `key` exists but is not a string (or is too large): readers are sent to the socket.
    pub fn set_unmirrored(&mut self, key: &[u8]) {
        self.set_unmirrored_until(key, None);
    }

    /// [`set_unmirrored`](Mirror::set_unmirrored) with the key's expiry: once it passes,
    /// readers answer `Absent` without asking the server.
    pub fn set_unmirrored_until(&mut self, key: &[u8], expires_ms: Option<u64>) {
        if key.len() > self.mem.geo.max_key as usize {
            return;
        }
        let exp = expiry(expires_ms);
        self.locked(|t| t.put(key, NOT_MIRRORED, &[], exp));
    }

    /// `key` no longer exists.
    pub fn remove(&mut self, key: &[u8]) {
        if key.len() > self.mem.geo.max_key as usize {
            return;
        }
        self.locked(|t| t.remove(key));
    }

    /// Every key gone (FLUSHALL). The table is complete again (it holds every key: none).
    pub fn clear(&mut self) {
        self.locked(|t| t.clear());
    }

    /// Says the table holds every key the server has (within the limits): from now on a miss
    /// is `Absent`. Only for a server that mirrored every change since [`create`](Mirror::create)
    /// (before loading its data); otherwise use [`sync_all`](Mirror::sync_all). A table that
    /// filled up stays incomplete.
    pub fn mark_complete(&mut self) {
        self.locked(|t| t.set_flag(INCOMPLETE, false));
    }

    /// Mirrors the whole store (every key replaced), then marks the table complete if every
    /// key fitted: after loading, or to make a table that filled up complete again once
    /// keys were deleted. O(keys + buckets); readers' misses meanwhile are `NotMirrored`.
    pub fn sync_all(&mut self, store: &Store, now_ms: u64) {
        let max_key = self.mem.geo.max_key as usize;
        let max_value = self.mem.geo.max_value as usize;
        self.locked(|t| {
            let odd = t.begin();
            t.empty_all();
            let seed = t.0.h64(H_SEED).load(Ordering::Relaxed);
            let mut complete = true;
            for (key, value, expires) in store.entries(now_ms) {
                if key.len() > max_key {
                    continue;
                }
                let (state, value) = match value {
                    Value::Str(s) if s.len() <= max_value => (FOUND, &s[..]),
                    _ => (NOT_MIRRORED, &[][..]),
                };
                complete &= t.place(state, hash(seed, key), key, value, expiry(expires));
            }
            t.set_flag(INCOMPLETE, !complete);
            t.end(odd);
        });
    }

    /// Brings the keys `changed` (what [`Store::take_changed`] returned) in step with
    /// `store`, under one lock: a string is set (with its expiry), another type marked not
    /// mirrored, a missing key removed.
    pub fn follow(&mut self, store: &mut Store, changed: &[Vec<u8>], now_ms: u64) {
        let max_key = self.mem.geo.max_key as usize;
        let max_value = self.mem.geo.max_value as usize;
        self.locked(|t| {
            for key in changed.iter().filter(|k| k.len() <= max_key) {
                let exp = expiry(store.expires_at(key, now_ms));
                match store.get(key, now_ms) {
                    Some(Value::Str(v)) if v.len() <= max_value => {
                        t.put(key, FOUND, v, exp);
                    }
                    Some(_) => {
                        t.put(key, NOT_MIRRORED, &[], exp);
                    }
                    None => t.remove(key),
                }
            }
        });
    }

    /// Whether readers' misses are `Absent` (see [`mark_complete`](Mirror::mark_complete)).
    pub fn is_complete(&self) -> bool {
        self.mem.h32(H_FLAGS).load(Ordering::Acquire) & (INCOMPLETE | BROKEN) == 0
    }

    /// How [`create`](Mirror::create) found the name.
    pub fn start(&self) -> Start {
        self.start
    }

    /// Why the mirror stopped being kept (its mutex could not be taken): readers are then
    /// sent to the socket for everything.
    pub fn last_error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The entries in the table now (mirrored and not-mirrored keys).
    pub fn len(&self) -> usize {
        self.mem.h64(H_LIVE).load(Ordering::Relaxed) as usize
    }

    /// Whether the table holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name given to [`create`](Mirror::create).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Kill tests only: takes the mutex and leaves `key`'s bucket mid-update (version odd)
    /// and the mutex held, as a writer killed at that moment would. Kill the process next.
    #[doc(hidden)]
    pub fn debug_stall_mid_update(&mut self, key: &[u8]) {
        self.set(key, b"stalled", None);
        let m = RobustMutex::attach(&self.map, H_MUTEX).expect("the mirror's mutex");
        let guard = m.lock().expect("locking the mirror's mutex");
        std::mem::forget(guard);
        let t = Table(self.mem);
        let h = hash(self.mem.h64(H_SEED).load(Ordering::Relaxed), key);
        if let Find::At(i) = t.find(key, h) {
            let version = self.mem.b64(i, B_VERSION);
            version.store(version.load(Ordering::Relaxed) | 1, Ordering::Release);
        }
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        // Readers still mapping it are told first, then the name goes.
        self.mem.h32(H_FLAGS).fetch_or(RETIRED, Ordering::Release);
        if let Some(shm) = self.shm.take() {
            let _ = shm.remove();
        }
    }
}
