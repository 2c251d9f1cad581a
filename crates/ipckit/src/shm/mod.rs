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
//! `open_or_create(.., Access, &Options)`, `persist(self)`, `remove(self)`.
//!
//! # Space
//!
//! Memory backed by a file (POSIX shared memory in the tmpfs at `/dev/shm`, a memfd, a file)
//! is allocated page by page when first touched, so on a full filesystem a plain
//! `ftruncate` + `mmap` succeeds and the process dies of `SIGBUS` later, at the first write
//! (or read) of a page that cannot be had, leaving the object behind. ipckit reserves the
//! space instead: every object it creates or grows (POSIX shared memory, a memfd and so the
//! channel's ring and its bulk payloads) is `fallocate`d right after `ftruncate`, and every
//! writable mapping of a file ([`Mapping::map_fd`](mapping::Mapping::map_fd)) reserves what it
//! maps and is not yet allocated. A size the filesystem cannot hold is an error with errno
//! `ENOSPC` that gives the numbers ("needs N bytes, /dev/shm has M free"), refused before
//! anything is made when the free space already says so; whatever a failed `create` made is
//! removed. A memfd lives on the kernel's own tmpfs, which has no size limit: it is held to the
//! memory and swap available (`MemAvailable` + `SwapFree`) instead.
//!
//! What reservation cannot cover: a read-only mapping of an object someone else made sparse
//! (its holes are allocated when read, and a read-only descriptor cannot reserve them), a
//! filesystem without `fallocate` (the error then comes as `SIGBUS`, as before), and another
//! process shrinking the object under the mapping (seal a memfd against it). System V segments
//! and anonymous shared mappings are not in any filesystem one can fill: the kernel charges a
//! segment at `shmget` (ENOMEM when the overcommit policy refuses it; `kernel.shmmax` and
//! `kernel.shmall` bound it) and their pages come from memory, so running out of memory there
//! is the OOM killer's business, not a `SIGBUS`; ipckit does not populate them in advance.
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
    trust_existing: bool,
}

impl Options {
    /// An object (segment) of `len` zeroed bytes, mode `0o600`.
    pub fn new(len: usize) -> Self {
        Options {
            len,
            mode: DEFAULT_MODE,
            trust_existing: false,
        }
    }

    /// Whether `open_or_create` may use an existing object (segment) another user owns, or
    /// one wider than [`mode`](Options::mode). Default false: refused (see
    /// [`check_existing`](crate::object::check_existing)).
    pub fn trust_existing(mut self, on: bool) -> Self {
        self.trust_existing = on;
        self
    }

    /// The permission bits (at most `0o777`), applied exactly: the umask does not narrow them
    /// (POSIX shared memory is given them again with `fchmod`; System V IPC has no umask).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// `MemAvailable` + `SwapFree` of `/proc/meminfo`, in bytes: what a tmpfs without a size
/// limit (the kernel's own, where memfds live) can still be given.
fn memory_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| {
                rest.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
    };
    let avail = field("MemAvailable:")?;
    Some(
        avail
            .saturating_add(field("SwapFree:").unwrap_or(0))
            .saturating_mul(1024),
    )
}

/// Below this, a request on a filesystem without a size is not checked against memory.
const UNSIZED_CHECK_FROM: u64 = 16 << 20;

/// What the filesystem `vfs` describes can still hold, and how to say so: the free bytes of a
/// filesystem with a size (`"/dev/shm has M free"`), or the memory and swap available for a
/// tmpfs without one. `None` when it cannot be told.
fn room(vfs: &rustix::fs::StatVfs, place: &str) -> Option<(u64, String)> {
    if vfs.f_blocks > 0 {
        let free = vfs.f_bavail.saturating_mul(vfs.f_frsize);
        return Some((free, format!("{place} has {free} free")));
    }
    memory_available().map(|m| (m, format!("memory and swap have {m} available")))
}

/// Refuses `need` bytes more than the filesystem (`vfs`, from `statvfs` or `fstatvfs`) can
/// hold: an error with errno ENOSPC naming `op`, `object` and the numbers. Nothing is refused
/// when the free space cannot be read (the allocation itself still tells).
pub(crate) fn check_room(
    op: &'static str,
    object: &dyn std::fmt::Display,
    need: u64,
    vfs: rustix::io::Result<rustix::fs::StatVfs>,
    place: &str,
) -> crate::Result<()> {
    let Ok(vfs) = vfs else {
        return Ok(());
    };
    // Without a size (a memfd's tmpfs) the bound is memory: reading /proc/meminfo costs more
    // than a channel's bulk message of a few hundred KiB is worth, and so small a request
    // cannot be what exhausts it (fallocate and the OOM killer still tell).
    if vfs.f_blocks == 0 && need < UNSIZED_CHECK_FROM {
        return Ok(());
    }
    let Some((free, says)) = room(&vfs, place) else {
        return Ok(());
    };
    if need <= free {
        return Ok(());
    }
    Err(crate::Error::os(op, crate::Errno::NOSPC)
        .with_detail(format!("needs {need} bytes, {says}"))
        .object(object)
        .hint(no_room_hint(place)))
}

fn no_room_hint(place: &str) -> String {
    match place {
        "memory" => "ask for less, or free memory or swap".to_string(),
        "/dev/shm" => {
            "ask for less, or make room in /dev/shm: `ipckit ls --kind posix-shm` shows what \
                       is there, `ipckit gc` removes orphans, `df /dev/shm` shows its size"
                .to_string()
        }
        other => format!("ask for less, or make room in {other} (`df` shows it)"),
    }
}

/// `fallocate(fd, 0, 0, len)`, posix_fallocate's semantics: allocates now every page of the
/// first `len` bytes that is not allocated yet, so that touching them later cannot fail (with
/// `SIGBUS`). First refuses, as [`check_room`], a `len` the filesystem cannot hold. A
/// filesystem without `fallocate` is left to allocate as pages are touched. On tmpfs a
/// failed `fallocate` gives back what it allocated.
/// See [fallocate(2)](https://man7.org/linux/man-pages/man2/fallocate.2.html).
pub(crate) fn reserve(
    fd: std::os::fd::BorrowedFd<'_>,
    len: u64,
    op: &'static str,
    object: &dyn std::fmt::Display,
    place: &str,
) -> crate::Result<()> {
    use crate::error::Context;
    let st = rustix::fs::fstat(fd).during(op, object)?;
    let allocated = (st.st_blocks as u64).saturating_mul(512);
    if allocated >= len {
        return Ok(());
    }
    check_room(op, object, len - allocated, rustix::fs::fstatvfs(fd), place)?;
    loop {
        return match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            Err(crate::Errno::INTR) => continue,
            Err(crate::Errno::OPNOTSUPP | crate::Errno::NOSYS) => Ok(()),
            Err(crate::Errno::NOSPC) => Err(crate::Error::os(op, crate::Errno::NOSPC)
                .object(object)
                .hint(no_room_hint(place))),
            Err(e) => Err(crate::Error::os(op, e).object(object).hint_if(
                crate::Errno::FBIG,
                "the size is over what the filesystem allows for a file",
            )),
        };
    }
}
