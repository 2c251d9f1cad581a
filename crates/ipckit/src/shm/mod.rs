//! Shared memory: POSIX (`shm_open`), System V (`shmget`), memfd (anonymous, sealable) and
//! mappings of files or anonymous memory. The fastest way between processes, and the one where
//! you own the synchronisation: see [`crate::sync`].
//!
//! | you need | use | module |
//! |---|---|---|
//! | a name any process can open, listed in `/dev/shm` | POSIX shared memory | [`posix`] |
//! | a numeric key, or code that already speaks `shmget`/`shmat` | System V segment | [`sysv`] |
//! | no name at all, nothing to leak, sealable against change | memfd, inherited or passed | [`memfd`] |
//! | memory shared only with a `fork`ed child | anonymous shared mapping | [`mapping`] |
//!
//! Every kind is reached through a [`mapping::Mapping`], mapped with an [`Access`](crate::Access)
//! (`ReadOnly` or `ReadWrite`: a mapping is always readable, so `WriteOnly` is refused). The
//! named kinds have one shape: `create(name or key, &Options::new(len))`, `open(.., Access)`,
//! `persist(self)`, `remove(self)`.
//!
//! ```
//! use ipckit::Access;
//! use ipckit::name::SysvKey;
//! use ipckit::shm::{memfd::Memfd, posix, sysv};
//!
//! let name = ipckit::name::unique_posix("doc-shm-mod");
//! let p = posix::PosixShm::create(&name, &posix::Options::new(4096)).unwrap();
//! let s = sysv::SysvShm::create(SysvKey::Private, &sysv::Options::new(4096)).unwrap();
//! let m = Memfd::create("doc-shm-mod", 4096).unwrap();
//! for map in [p.map().unwrap(), s.attach().unwrap(), m.map(Access::ReadWrite).unwrap()] {
//!     map.write_at(0, b"same shape").unwrap();
//!     assert_eq!(map.len(), 4096);
//! }
//! // The creators remove the named ones on drop; the memfd goes with its descriptor.
//! ```

pub mod mapping;
pub mod memfd;
pub mod posix;
pub mod sysv;

pub(crate) use crate::object::check_mode;

use crate::object::DEFAULT_MODE;

/// How [`PosixShm::create`](posix::PosixShm::create) and
/// [`SysvShm::create`](sysv::SysvShm::create) make shared memory: its size (no default:
/// `Options::new(len)`) and mode (`0o600` unless [`mode`](Options::mode) says otherwise). The
/// same type is [`posix::Options`] and [`sysv::Options`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    len: usize,
    mode: u32,
}

impl Options {
    /// An object (segment) of `len` zeroed bytes, mode `0o600`.
    pub fn new(len: usize) -> Self {
        Options {
            len,
            mode: DEFAULT_MODE,
        }
    }

    /// The permission bits (at most `0o777`), applied exactly: the umask does not narrow them
    /// (POSIX shared memory is given them again with `fchmod`; System V IPC has no umask).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}
