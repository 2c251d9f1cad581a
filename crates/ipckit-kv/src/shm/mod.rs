//! The shared-memory read path: the server mirrors string keys into a POSIX shared-memory
//! hash table that local readers open read-only and GET from without a system call.
//!
//! # Who does what
//! - The server owns a [`Mirror`]: it [creates](Mirror::create) the table (`shm_open`,
//!   `0o600` unless `--shm-mode` widens it, the space reserved with `fallocate`), is its only
//!   writer, and removes the name on drop. After every batch of commands it brings the
//!   changed keys in step ([`Mirror::follow`], or `set` / `set_unmirrored` / `remove` /
//!   `clear` one by one), before the replies go: a reader never sees an older value than a
//!   client was told about.
//! - Any number of readers open it with [`ShmReader::open`] (a `PROT_READ` mapping: they
//!   cannot write it) and call [`ShmReader::get`] or, without allocating,
//!   [`ShmReader::get_into`]. Writers never wait for readers.
//!
//! # Layout
//! ```text
//!  0                                                                          4096
//!  +------------------------------ header (one page) ------------------------------+
//!  | 0 magic "IPKVSHM\1" | 8 layout (1) | 12 header length | 16 buckets | 24 slot    |
//!  | 32 max_key | 36 max_value | 40 max_probe | 48 hash seed | 56 flags | 60 writer |
//!  | 64 generation | 72 live entries | 80 tombstones | 88 capacity | 128 robust mutex |
//!  +-------------------------------------------------------------------------------+
//!  +-- bucket 0 (slot bytes, whole cache lines) --+-- bucket 1 --+ ... +-- bucket n-1 --+
//!  | 0  version   u64  seqlock: odd while written |
//!  | 8  hash      u64  of the key, seeded         |
//!  | 16 expires   u64  Unix ms, 0 for none        |
//!  | 24 key len   u32 | 28 value len u32          |
//!  | 32 state     u32  empty, tombstone, found,   |
//!  |                   not mirrored               |
//!  | 40 key       max_key bytes, to a word        |
//!  | .. value     max_value bytes, to a word      |
//!  +----------------------------------------------+
//! ```
//! Open addressing with linear probing: a key lives within `max_probe` (64) buckets of its
//! home `hash * buckets / 2^64`; a deleted key leaves a tombstone (or an empty bucket, when
//! the next one is empty) and the writer rebuilds the table in place when tombstones pile up.
//! There are half as many buckets again as the capacity (at most two thirds full), so a hit
//! is one or two buckets away. The hash (FxHash's round and MurmurHash3's finaliser) is
//! seeded per table; the header has the seed, so readers compute it with no call.
//!
//! Flags: *incomplete* (a miss may be a key the table lacks: a new table until the server
//! says it is loaded, a table that filled up), *retired* (the server stopped or replaced the
//! table: readers must open again), *broken* (the writer lost its mutex: ask the socket).
//!
//! # Reading without tearing (seqlock)
//! The writer takes the robust mutex, then for each bucket it changes: stores the version
//! odd, a release fence, the fields and bytes (word-sized atomic stores), the version even
//! (release). A reader loads the version (acquire): odd, it waits; even, it copies the
//! fields and the key and value words (relaxed atomic loads), an acquire fence, and loads
//! the version again: changed, the copy is thrown away and made again. So a value returned
//! was, whole, the key's value at one moment. A change of many buckets (a rebuild, a clear,
//! a load) makes the header's generation odd for its duration: a miss seen while it changed
//! is probed again (a few times, then `NotMirrored`), hits stay right throughout.
//!
//! Waiting is bounded: about a microsecond of spinning, then `sched_yield` (the only system
//! call, on that slow path alone) until the reader's patience (50 ms by default) runs out;
//! then an [`ErrorKind::TimedOut`](ipckit::ErrorKind::TimedOut) error says a writer holds the
//! bucket mid-update (killed or stopped there). A reader remembers that bucket, so the next
//! lookup through it fails at once until it changes. The next [`Mirror::create`] on the name
//! takes the table back: the dead writer's mutex answers `EOWNERDEAD` (reported in
//! [`Start::Rebuilt`]), every bucket is emptied (a bucket left odd made even), and readers
//! still mapping it go on with the new content.
//!
//! # Absent or not mirrored
//! [`Lookup::Absent`] is said only when the table is known complete: the server mirrors
//! every string key within the limits, and any other key as *not mirrored* (a bucket that
//! says "ask the socket"). A key longer than `max_key` is `NotMirrored` without a look. A
//! value longer than `max_value`, a list, a hash..., or any miss while the table is
//! incomplete is [`Lookup::NotMirrored`]. An entry past its expiry is `Absent` (the clock is
//! read through the vDSO, only for keys with an expiry): expired and deleted keys disappear
//! from readers' view in the same operation as from the server's.
//!
//! # Hostile memory
//! A reader trusts nothing it reads: the header's shape is checked once, at open, against
//! the mapping's size, and kept; every address is computed from that shape and a bucket index
//! below the bucket count; lengths read from a bucket are compared with the key's, or
//! checked against `max_value` before any copy. A corrupt or hostile table can make a
//! lookup wrong or fail, never read outside the mapping, panic or wait without bound.
//! What the memory's content cannot do, a process allowed to write the object could:
//! shrink it (`ftruncate`) under the mapping, and a read past its new end is `SIGBUS`. So
//! [`ShmReader::open`] refuses an object other users may write (mode `& 0o022`); its owner,
//! who can do anything to the reader's files anyway, is trusted that far.
//!
//! ```
//! use ipckit_kv::shm::{Lookup, Mirror, MirrorOptions, ShmReader};
//! let name = ipckit::name::unique_posix("doc-kv-mirror");
//! let mut mirror = Mirror::create(&name, &MirrorOptions { capacity: 64, ..Default::default() }).unwrap();
//! mirror.mark_complete(); // nothing to load: every key (none) is mirrored
//! mirror.set(b"greeting", b"hello", None);
//!
//! // In another process, as well:
//! let reader = ShmReader::open(&name).unwrap();
//! assert_eq!(reader.get(b"greeting").unwrap(), Lookup::Found(b"hello".to_vec()));
//! assert_eq!(reader.get(b"nobody").unwrap(), Lookup::Absent);
//! mirror.set_unmirrored(b"a-list");
//! assert_eq!(reader.get(b"a-list").unwrap(), Lookup::NotMirrored);
//!
//! let mut buf = Vec::new(); // reused: no allocation per GET
//! reader.get_into(b"greeting", &mut buf).unwrap();
//! assert_eq!(buf, b"hello");
//! drop(mirror); // removes the name; the reader is told the table is retired
//! assert!(reader.get(b"greeting").is_err());
//! ```

mod layout;
mod reader;
mod writer;

pub use layout::{MAX_CAPACITY, MAX_KEY_LIMIT, MAX_VALUE_LIMIT};
pub use reader::{DEFAULT_PATIENCE, ShmReader};
pub use writer::{Mirror, Start};

/// What a reader found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The key holds this string.
    Found(Vec<u8>),
    /// The key does not exist (or has expired).
    Absent,
    /// The mirror cannot say (the value is too large or not a string, or the table is full):
    /// ask the server over its socket.
    NotMirrored,
}

/// What [`ShmReader::get_into`] found (the value, when found, is in the caller's buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// The key holds the string now in the buffer.
    Found,
    /// The key does not exist (or has expired).
    Absent,
    /// The mirror cannot say: ask the server over its socket.
    NotMirrored,
}

/// How the server makes its mirror.
#[derive(Debug, Clone)]
pub struct MirrorOptions {
    /// How many entries the table holds.
    pub capacity: usize,
    /// The largest value mirrored, in bytes.
    pub max_value: usize,
    /// The mode of the shared memory (readers need read permission).
    pub mode: u32,
    /// The longest key mirrored, in bytes (longer keys are always `NotMirrored`).
    pub max_key: usize,
}

impl Default for MirrorOptions {
    /// 65536 entries of keys up to 64 bytes and values up to 1 KiB (a table of about 108
    /// MiB, reserved in `/dev/shm` when made), mode `0o600`.
    fn default() -> Self {
        MirrorOptions {
            capacity: 1 << 16,
            max_value: 1024,
            mode: 0o600,
            max_key: 64,
        }
    }
}

impl MirrorOptions {
    /// The bytes the table takes in `/dev/shm` with these options (`None` if they are out of
    /// range).
    pub fn table_len(&self) -> Option<usize> {
        layout::Geometry::for_options(self).ok()?.len()
    }
}
