//! The reader's side: a read-only mapping of the table and a GET that makes no system call.

use std::sync::atomic::{AtomicU64, Ordering, fence};
use std::time::{Duration, Instant};

use ipckit::shm::mapping::Mapping;
use ipckit::shm::posix::PosixShm;
use ipckit::{Access, Error, ErrorKind};

use super::layout::*;
use super::{Lookup, Presence};

/// How long a reader waits, by default, for a bucket a writer holds mid-update (or keeps
/// changing) before it gives up with an error.
pub const DEFAULT_PATIENCE: Duration = Duration::from_millis(50);

/// Busy-wait rounds before the slow path (`sched_yield`, the clock) starts: a writer's update
/// takes well under a microsecond unless it is preempted or dead.
const SPINS: u32 = 1 << 10;
/// Probes of the whole table that may meet a rebuild before a miss is `NotMirrored`.
const TABLE_RETRIES: u32 = 8;

const READING: &str = "reading the kv mirror";

/// A reader's side: opens the table read-only.
///
/// A `ShmReader` is `Send` and `Sync`: [`get`](ShmReader::get) takes `&self`, so threads may
/// share one.
#[derive(Debug)]
pub struct ShmReader {
    mem: Memory,
    seed: u64,
    /// Keeps `mem` mapped.
    _map: Mapping,
    name: String,
    patience: Duration,
    /// A bucket found stuck mid-update (its index + 1, and its odd version): the next lookup
    /// that meets it there, unchanged, fails at once instead of waiting again.
    stuck_at: AtomicU64,
    stuck_version: AtomicU64,
}

// SAFETY: `mem` points into `_map`, which the reader owns and keeps mapped; every access
// through it is an atomic load.
unsafe impl Send for ShmReader {}
// SAFETY: as above: `&self` methods only load atomically and update the reader's own atomics.
unsafe impl Sync for ShmReader {}

/// What one probe of the table found.
enum Probe {
    /// An answer (a value, not mirrored, or expired).
    Hit(Presence),
    /// The key is not in the table (as far as this probe saw).
    Miss,
}

/// Where the bounded waiting of one lookup stands.
struct Wait {
    rounds: u32,
    deadline: Option<Instant>,
}

impl ShmReader {
    /// Opens the mirror at `/NAME` read-only.
    ///
    /// `shm_open(3)` with `O_RDONLY`, `mmap(2)` with `PROT_READ` (the table cannot be written
    /// through this mapping), then the header is checked: the magic, the layout version, and
    /// a shape that fits the object's size, so that no offset a lookup computes can leave the
    /// mapping, whatever the memory holds.
    ///
    /// An object other users may write is refused: any of them could shrink it under the
    /// mapping, and a read of a page past its end kills the reader with `SIGBUS`.
    pub fn open(name: &str) -> ipckit::Result<ShmReader> {
        let shm = PosixShm::open(name, Access::ReadOnly)?;
        let st = rustix::fs::fstat(std::os::fd::AsFd::as_fd(&shm))
            .map_err(|e| Error::os("opening the kv mirror", e).object(name))?;
        let mode = st.st_mode & 0o777;
        if mode & 0o022 != 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "opening the kv mirror",
                format!("its mode {mode:04o} lets other users write it"),
            )
            .object(name)
            .hint(
                "another user could shrink it under this reader: have the server make it \
                 0600, 0640 or 0644 (--shm-mode)",
            ));
        }
        let map = shm.map()?;
        ShmReader::from_mapping(map, name)
    }

    /// A reader over a mapping of a table got some other way (a descriptor passed over a
    /// socket, a copy in memory), checked as [`open`](ShmReader::open) checks it; `name` is
    /// for messages.
    pub fn from_mapping(map: Mapping, name: &str) -> ipckit::Result<ShmReader> {
        let bad =
            |why: String| {
                Err(Error::new(ErrorKind::InvalidInput, "opening the kv mirror", why)
                .object(name)
                .hint(
                    "it is not a table an ipckit kv server made (or one of another version): \
                     check the name given to --shm",
                ))
            };
        if map.len() < HEADER_LEN || !(map.as_ptr() as usize).is_multiple_of(64) {
            return bad(format!("it has {} bytes, less than a header", map.len()));
        }
        let probe = Geometry {
            buckets: 1,
            slot: 64,
            max_key: 1,
            max_value: 0,
            max_probe: 1,
            capacity: 1,
        };
        // SAFETY: the mapping has at least HEADER_LEN bytes and is page-aligned; only header
        // fields are read through this `Memory` (its geometry is not used).
        let head = unsafe { Memory::new(map.as_ptr(), probe) };
        let magic = head.h64(H_MAGIC).load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if magic != MAGIC {
            return bad(if magic == 0 {
                "it holds no table yet (its first word is zero): the server may still be \
                 making it"
                    .into()
            } else {
                format!("its first word is {magic:#018x}, not the mirror's magic")
            });
        }
        let layout = head.h32(H_LAYOUT).load(Ordering::Relaxed);
        let header = head.h32(H_HEADER_LEN).load(Ordering::Relaxed);
        if layout != LAYOUT || header as usize != HEADER_LEN {
            return bad(format!(
                "its layout is version {layout} with a {header}-byte header, this reader knows \
                 version {LAYOUT} with {HEADER_LEN}"
            ));
        }
        let geo = Geometry {
            buckets: head.h64(H_BUCKETS).load(Ordering::Relaxed),
            slot: head.h64(H_SLOT).load(Ordering::Relaxed),
            max_key: head.h32(H_MAX_KEY).load(Ordering::Relaxed),
            max_value: head.h32(H_MAX_VALUE).load(Ordering::Relaxed),
            max_probe: head.h32(H_MAX_PROBE).load(Ordering::Relaxed),
            capacity: head.h64(H_CAPACITY).load(Ordering::Relaxed),
        };
        if !geo.fits(map.len()) {
            return bad(format!(
                "its header describes {} buckets of {} bytes (keys to {}, values to {}, probes \
                 to {}), which do not fit its {} bytes",
                geo.buckets,
                geo.slot,
                geo.max_key,
                geo.max_value,
                geo.max_probe,
                map.len()
            ));
        }
        let seed = head.h64(H_SEED).load(Ordering::Relaxed);
        // SAFETY: the geometry fits the mapping (checked), which `_map` keeps mapped.
        let mem = unsafe { Memory::new(map.as_ptr(), geo) };
        Ok(ShmReader {
            mem,
            seed,
            _map: map,
            name: name.to_string(),
            patience: DEFAULT_PATIENCE,
            stuck_at: AtomicU64::new(0),
            stuck_version: AtomicU64::new(0),
        })
    }

    /// How long a lookup waits for a bucket a writer holds mid-update (or keeps changing)
    /// before failing with [`ErrorKind::TimedOut`] (default [`DEFAULT_PATIENCE`]). Zero: only
    /// the busy-wait of about a microsecond.
    pub fn with_patience(mut self, patience: Duration) -> ShmReader {
        self.patience = patience;
        self
    }

    /// The longest key the table mirrors: longer keys are always
    /// [`NotMirrored`](Lookup::NotMirrored).
    pub fn max_key(&self) -> usize {
        self.mem.geo.max_key as usize
    }

    /// The largest value the table mirrors.
    pub fn max_value(&self) -> usize {
        self.mem.geo.max_value as usize
    }

    /// How many entries the table holds at most.
    pub fn capacity(&self) -> usize {
        self.mem.geo.capacity as usize
    }

    /// Whether a miss means the key is absent now: the table holds every string key the
    /// server has (within the limits), or the writer has not said so yet, or it filled up.
    pub fn is_complete(&self) -> bool {
        let flags = self.mem.h32(H_FLAGS).load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        flags & (INCOMPLETE | BROKEN | RETIRED) == 0
    }

    /// GET through shared memory: no system call.
    ///
    /// A copy of the value ([`get_into`](ShmReader::get_into) reuses a buffer instead).
    pub fn get(&self, key: &[u8]) -> ipckit::Result<Lookup> {
        let mut out = Vec::new();
        Ok(match self.get_into(key, &mut out)? {
            Presence::Found => Lookup::Found(out),
            Presence::Absent => Lookup::Absent,
            Presence::NotMirrored => Lookup::NotMirrored,
        })
    }

    /// GET into `out` (cleared first; the value when [`Presence::Found`]): no system call and,
    /// once `out` has grown to the values' size, no allocation.
    ///
    /// The bucket's version is read, the entry copied, and the version read again: a copy
    /// that overlapped a write is thrown away and made again, so a torn value is never
    /// returned. A bucket a writer holds mid-update is waited for, a microsecond busy, then
    /// yielding the CPU (the only system calls, on that slow path alone), at most the
    /// [patience](ShmReader::with_patience); then the lookup fails with
    /// [`ErrorKind::TimedOut`]: the writer was killed (or stopped) mid-update, and the next
    /// server start repairs the table. A table the server has left fails with
    /// [`ErrorKind::Disconnected`].
    pub fn get_into(&self, key: &[u8], out: &mut Vec<u8>) -> ipckit::Result<Presence> {
        out.clear();
        if key.len() > self.mem.geo.max_key as usize {
            return Ok(Presence::NotMirrored);
        }
        let flags = self.mem.h32(H_FLAGS);
        let generation = self.mem.h64(H_GENERATION);
        let f = flags.load(Ordering::Relaxed);
        fence(Ordering::Acquire);
        if f & RETIRED != 0 {
            return Err(self.retired());
        }
        if f & BROKEN != 0 {
            return Ok(Presence::NotMirrored);
        }
        let h = hash(self.seed, key);
        let mut wait = Wait {
            rounds: 0,
            deadline: None,
        };
        for _ in 0..TABLE_RETRIES {
            let g1 = generation.load(Ordering::Relaxed);
            fence(Ordering::Acquire);
            match self.probe(key, h, out, &mut wait)? {
                Probe::Hit(p) => return Ok(p),
                Probe::Miss => {
                    fence(Ordering::Acquire);
                    let g2 = generation.load(Ordering::Relaxed);
                    let f = flags.load(Ordering::Relaxed);
                    if f & RETIRED != 0 {
                        return Err(self.retired());
                    }
                    if g1 == g2 && g1 & 1 == 0 {
                        return Ok(if f & (INCOMPLETE | BROKEN) != 0 {
                            Presence::NotMirrored
                        } else {
                            Presence::Absent
                        });
                    }
                    // The table was rebuilt or cleared under the probe: again.
                }
            }
        }
        Ok(Presence::NotMirrored)
    }

    /// Probes for `key` (hash `h`) from its home bucket, at most `max_probe` buckets.
    #[inline]
    fn probe(
        &self,
        key: &[u8],
        h: u64,
        out: &mut Vec<u8>,
        wait: &mut Wait,
    ) -> ipckit::Result<Probe> {
        let geo = self.mem.geo;
        let mut i = home(h, geo.buckets);
        let words = key.len().div_ceil(8);
        for _ in 0..geo.max_probe {
            let version = self.mem.b64(i, B_VERSION);
            loop {
                let v1 = version.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                if v1 & 1 == 1 {
                    self.pause(wait, i, Some(v1))?;
                    continue;
                }
                let state = self.mem.b32(i, B_STATE).load(Ordering::Relaxed);
                // What this bucket says, if the version holds.
                let step = match state {
                    EMPTY => Step::Stop,
                    FOUND | NOT_MIRRORED => {
                        let same = self.mem.b64(i, B_HASH).load(Ordering::Relaxed) == h
                            && self.mem.b32(i, B_KEY_LEN).load(Ordering::Relaxed) as usize
                                == key.len()
                            && (0..words).all(|w| {
                                self.mem.key_word(i, w).load(Ordering::Relaxed) == word(key, w)
                            });
                        if !same {
                            Step::Next
                        } else {
                            let expires = self.mem.b64(i, B_EXPIRES).load(Ordering::Relaxed);
                            if state == NOT_MIRRORED {
                                Step::Hit(Presence::NotMirrored, expires)
                            } else {
                                let len = self.mem.b32(i, B_VAL_LEN).load(Ordering::Relaxed);
                                if len > geo.max_value {
                                    Step::Corrupt(len)
                                } else {
                                    self.copy_value(i, len as usize, out);
                                    Step::Hit(Presence::Found, expires)
                                }
                            }
                        }
                    }
                    _ => Step::Next,
                };
                fence(Ordering::Acquire);
                if version.load(Ordering::Relaxed) != v1 {
                    out.clear();
                    self.pause(wait, i, None)?;
                    continue;
                }
                match step {
                    Step::Stop => return Ok(Probe::Miss),
                    Step::Next => break,
                    Step::Hit(p, expires) => {
                        if expires != 0 && expires <= now_ms() {
                            out.clear();
                            return Ok(Probe::Hit(Presence::Absent));
                        }
                        return Ok(Probe::Hit(p));
                    }
                    Step::Corrupt(len) => return Err(self.corrupt(i, len)),
                }
            }
            i += 1;
            if i == geo.buckets {
                i = 0;
            }
        }
        Ok(Probe::Miss)
    }

    /// Copies bucket `i`'s value of `len` bytes (`len <= max_value`) into `out`, a word at a
    /// time.
    #[inline]
    fn copy_value(&self, i: u64, len: usize, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(len);
        let dst = out.as_mut_ptr();
        let mut at = 0;
        let mut w = 0;
        while at < len {
            let bytes = self
                .mem
                .value_word(i, w)
                .load(Ordering::Relaxed)
                .to_le_bytes();
            let n = (len - at).min(8);
            // SAFETY: `out` has room for `len` bytes (reserved), `at + n <= len`, and the
            // source is a local array.
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.add(at), n) };
            at += n;
            w += 1;
        }
        // SAFETY: the first `len` bytes were all written above.
        unsafe { out.set_len(len) };
    }

    /// One more round of waiting for bucket `i` (held mid-update at version `odd`, or changed
    /// under a copy): busy at first, then yielding, until the patience runs out.
    #[cold]
    fn pause(&self, wait: &mut Wait, i: u64, odd: Option<u64>) -> ipckit::Result<()> {
        wait.rounds += 1;
        if wait.rounds < SPINS {
            std::hint::spin_loop();
            return Ok(());
        }
        if let Some(v) = odd
            && self.stuck_at.load(Ordering::Relaxed) == i + 1
            && self.stuck_version.load(Ordering::Relaxed) == v
        {
            return Err(self.mid_update(i));
        }
        let now = Instant::now();
        let deadline = *wait.deadline.get_or_insert(now + self.patience);
        if now >= deadline {
            if let Some(v) = odd {
                self.stuck_version.store(v, Ordering::Relaxed);
                self.stuck_at.store(i + 1, Ordering::Relaxed);
                return Err(self.mid_update(i));
            }
            return Err(Error::new(
                ErrorKind::TimedOut,
                READING,
                format!(
                    "bucket {i} changed under every copy for {:?}: a writer rewrites it \
                     without pause",
                    self.patience
                ),
            )
            .object(&self.name)
            .hint("try again, or ask the server over its socket"));
        }
        std::thread::yield_now();
        Ok(())
    }

    #[cold]
    fn mid_update(&self, i: u64) -> Error {
        let pid = self.mem.h32(H_WRITER).load(Ordering::Relaxed);
        // The slow path may make system calls: is the writer still there?
        let writer = match rustix::process::Pid::from_raw(pid as i32) {
            Some(p) if rustix::process::test_kill_process(p) == Err(rustix::io::Errno::SRCH) => {
                format!("the writer (pid {pid}) is gone: it was killed mid-update")
            }
            Some(_) => format!("the writer (pid {pid}) was stopped or killed mid-update"),
            None => "the writer was killed mid-update".to_string(),
        };
        Error::new(
            ErrorKind::TimedOut,
            READING,
            format!(
                "a writer holds this key's bucket ({i}) mid-update and has not finished in \
                 {:?}: {writer}",
                self.patience
            ),
        )
        .object(&self.name)
        .hint(
            "ask the server over its socket; the next server start (Mirror::create on the same \
             name) repairs the table",
        )
    }

    #[cold]
    fn retired(&self) -> Error {
        Error::new(
            ErrorKind::Disconnected,
            READING,
            "the server that wrote it has stopped, or replaced it with a new table",
        )
        .object(&self.name)
        .hint("open it again (ShmReader::open) once a server runs, or ask over the socket")
    }

    #[cold]
    fn corrupt(&self, i: u64, len: u32) -> Error {
        Error::new(
            ErrorKind::InvalidInput,
            READING,
            format!(
                "bucket {i} holds a value of {len} bytes, over the table's {}: the table is \
                 corrupt",
                self.mem.geo.max_value
            ),
        )
        .object(&self.name)
        .hint("something other than the server wrote it: restart the server, which rebuilds it")
    }
}

/// What a consistent read of one bucket said.
enum Step {
    /// Empty: the key is not further on.
    Stop,
    /// Another key or a tombstone: probe on.
    Next,
    /// The key, with its expiry (Unix ms, 0 for none).
    Hit(Presence, u64),
    /// A value length over the table's limit.
    Corrupt(u32),
}

/// Now, Unix milliseconds: `clock_gettime(CLOCK_REALTIME)`, which the vDSO answers without
/// entering the kernel.
#[inline]
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
