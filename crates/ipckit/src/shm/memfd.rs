//! memfd: anonymous shared memory behind a file descriptor, with seals. `memfd_create(2)`,
//! `ftruncate(2)`, `fcntl(F_ADD_SEALS / F_GET_SEALS)`, `mmap(2)`.
//! See [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html).
//!
//! A memfd has no name anything can find it by (the name given is only a label shown in
//! `/proc/PID/fd` and `/proc/PID/maps`), so it cannot leak: it vanishes with its last
//! descriptor and its last mapping, whatever happens to the processes. That makes it the
//! anonymous rendezvous: a process shares one by letting a child inherit the descriptor, or
//! by passing it over a Unix socket with
//! [`ipckit::socket::ancillary::send_fds`](crate::socket::ancillary::send_fds); the receiver
//! wraps it with [`Memfd::from_fd`].
//!
//! Seals ([`Seals`], see
//! [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html#File_Sealing)) make a
//! memfd safe to accept from a process you do not trust: once it is sealed with
//! `SHRINK | GROW | WRITE` (and `SEAL`, so no one can change that), its size and contents
//! are fixed for everyone, so a receiver can map it without fearing it will shrink under the
//! mapping (`SIGBUS`) or change while being read.
//!
//! A memfd has no mode to choose and no name to remove, so it takes no `Options` and has no
//! `open`, `persist` or `remove`: who holds the descriptor has it. Its access is chosen per
//! mapping ([`Memfd::map`]).
//!
//! ```
//! use ipckit::Access;
//! use ipckit::shm::memfd::{Memfd, Seals};
//! let m = Memfd::create("doc-memfd", 4096).unwrap();
//! m.map(Access::ReadWrite).unwrap().write_at(0, b"fixed").unwrap(); // unmapped here
//! m.add_seals(Seals::SHRINK | Seals::GROW | Seals::WRITE | Seals::SEAL).unwrap();
//! // Now nobody can change it, and a reader can rely on that.
//! assert!(m.set_len(0).is_err());
//! let mut buf = [0u8; 5];
//! m.map(Access::ReadOnly).unwrap().read_at(0, &mut buf).unwrap();
//! assert_eq!(&buf, b"fixed");
//! // The memory goes with the last descriptor: there is nothing to clean up.
//! ```

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::fs::{MemfdFlags, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, ErrorKind, Result};
use crate::object::Access;
use crate::shm::mapping::Mapping;

/// File seals (`F_SEAL_*`), rustix's [`SealFlags`](rustix::fs::SealFlags):
/// - `SHRINK`: the size cannot go down; `GROW`: it cannot go up.
/// - `WRITE`: the contents cannot change (`write`, writable mappings). Adding it fails with
///   EBUSY while a writable shared mapping exists.
/// - `FUTURE_WRITE`: no new writes or writable mappings, but those that exist keep working.
/// - `SEAL`: no more seals can be added.
///
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html#File_Sealing).
pub use rustix::fs::SealFlags as Seals;

/// A memfd: anonymous memory with a descriptor. Freed with its last descriptor and mapping;
/// nothing to remove.
#[derive(Debug)]
pub struct Memfd {
    fd: OwnedFd,
    /// What errors call it: the name given, or the descriptor number.
    label: String,
}

crate::impl_fd!(Memfd, fd);

impl Memfd {
    /// `memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING)` then `ftruncate(len)` and
    /// `fallocate(0, len)`: `len` zeroed bytes, allocated now (see
    /// [`set_len`](Memfd::set_len)). `name` is only a label for `/proc` (at most 249 bytes, no
    /// NUL); names need not be unique. There is no mode to give: `memfd_create` takes none,
    /// and the memory is reached through the descriptor (by a process given it, or one allowed
    /// to open a holder's `/proc/PID/fd/N`, which takes ptrace access to that process).
    /// See [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html).
    pub fn create(name: &str, len: usize) -> Result<Self> {
        if name.contains('\0') {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "creating memfd",
                "the name contains a NUL byte",
            )
            .object(format!("{name:?}")));
        }
        let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING)
            .map_err(|e| {
                Error::os("creating memfd", e)
                    .object(name)
                    .hint_if(Errno::INVAL, "the name is longer than 249 bytes")
            })?;
        let m = Memfd {
            fd,
            label: format!("memfd {name}"),
        };
        m.set_len(len)?;
        Ok(m)
    }

    /// `fcntl(fd, F_GET_SEALS)` and `readlink("/proc/self/fd/N")`: wraps a memfd received
    /// from another process (inherited, or from
    /// [`ancillary::recv`](crate::socket::ancillary::recv)) after checking that it is one. A
    /// descriptor of anything else (a file, a POSIX shm object, a pipe) is refused with
    /// [`ErrorKind::InvalidInput`] naming what it is. Without `/proc`, only the seals check
    /// is made (a tmpfs file passes it).
    /// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        const OP: &str = "taking up memfd";
        let raw = fd.as_raw_fd();
        let target = rustix::fs::readlink(format!("/proc/self/fd/{raw}"), Vec::new())
            .ok()
            .map(|t| t.to_string_lossy().into_owned());
        let not_memfd = |what: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                OP,
                format!("the descriptor is {what}, not a memfd"),
            )
            .object(format!("descriptor {raw}"))
            .hint("pass a descriptor made by memfd_create (Memfd::create)")
        };
        if let Some(t) = &target
            && !t.starts_with("/memfd:")
        {
            return Err(not_memfd(&t.escape_debug().to_string()));
        }
        rustix::fs::fcntl_get_seals(&fd).map_err(|e| match e {
            Errno::INVAL => not_memfd("without seals"),
            e => Error::os(OP, e).object(format!("descriptor {raw}")),
        })?;
        let label = match target {
            Some(t) => {
                let name = t
                    .trim_start_matches("/memfd:")
                    .trim_end_matches(" (deleted)");
                format!("memfd {} at descriptor {raw}", name.escape_debug())
            }
            None => format!("memfd at descriptor {raw}"),
        };
        Ok(Memfd { fd, label })
    }

    /// Gives the descriptor back (to pass it on, for example).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// `fstat(2)`: the size in bytes now (another process may have resized it).
    /// See [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html).
    pub fn len(&self) -> Result<usize> {
        let st = rustix::fs::fstat(&self.fd).during("reading size of", self.label())?;
        Ok(st.st_size as usize)
    }

    /// True when the size is 0.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// `ftruncate(2)`: sets the size; new bytes read as zero. Fails with EPERM when sealed
    /// against it (`SHRINK` or `GROW`). A process whose mapping reaches past a shrunken end
    /// gets `SIGBUS` on touching it: seal `SHRINK` before handing a memfd to readers.
    ///
    /// Growth is reserved with `fallocate(0, len)`, so touching the new bytes cannot fail
    /// later with `SIGBUS`: a memfd lives on the kernel's own tmpfs, which has no size limit,
    /// so a size over the memory and swap available (`MemAvailable` + `SwapFree` of
    /// `/proc/meminfo`) is refused first with errno ENOSPC and the numbers, and a failed
    /// reservation puts the old size back.
    /// See [ftruncate(2)](https://man7.org/linux/man-pages/man2/ftruncate.2.html),
    /// [fallocate(2)](https://man7.org/linux/man-pages/man2/fallocate.2.html).
    pub fn set_len(&self, len: usize) -> Result<()> {
        let old = self.len()?;
        let object = || format!("{} to {len} bytes", self.label());
        if len > old {
            // Refused before the size changes when it cannot fit.
            let st = rustix::fs::fstat(&self.fd).during("sizing", self.label())?;
            let allocated = (st.st_blocks as u64).saturating_mul(512);
            crate::shm::check_room(
                "sizing",
                &object(),
                (len as u64).saturating_sub(allocated),
                rustix::fs::fstatvfs(&self.fd),
                "memory",
            )?;
        }
        self.truncate(len)?;
        if len > old
            && let Err(e) = crate::shm::reserve(
                self.fd.as_fd(),
                len as u64,
                "reserving space for",
                &object(),
                "memory",
            )
        {
            let _ = rustix::fs::ftruncate(&self.fd, old as u64);
            return Err(e);
        }
        Ok(())
    }

    /// `ftruncate(2)` alone.
    fn truncate(&self, len: usize) -> Result<()> {
        rustix::fs::ftruncate(&self.fd, len as u64).map_err(|e| {
            Error::os("sizing", e)
                .object(format!("{} to {len} bytes", self.label()))
                .hint_if(
                    Errno::PERM,
                    "the memfd is sealed against this change (F_SEAL_SHRINK or F_SEAL_GROW): see seals()",
                )
                .hint_if(Errno::INVAL, "the size is too large for a file offset")
        })
    }

    /// `fcntl(F_ADD_SEALS, seals)`: adds seals, which can never be taken away.
    ///
    /// `Seals::WRITE` fails with EBUSY while any writable shared mapping of the memfd exists,
    /// in any process. `fork` copies mappings, so in a program that forks from several threads
    /// a child may hold a copy of a writable mapping until it execs; write the contents with
    /// `write`/`pwrite` on the descriptor, or retry on EBUSY.
    /// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html#File_Sealing).
    pub fn add_seals(&self, seals: Seals) -> Result<()> {
        rustix::fs::fcntl_add_seals(&self.fd, seals).map_err(|e| {
            Error::os("sealing", e)
                .object(format!("{} with {}", self.label(), seal_names(seals)))
                .hint_if(
                    Errno::BUSY,
                    "F_SEAL_WRITE needs no writable shared mapping to exist, in any process: drop writable mappings first, and read-only ones made on this descriptor with Mapping::map_fd (Memfd::map(Access::ReadOnly) is fine); a child forked meanwhile holds copies until it execs",
                )
                .hint_if(
                    Errno::PERM,
                    "the memfd is sealed with F_SEAL_SEAL (or was made without MFD_ALLOW_SEALING): no seal can be added",
                )
                .hint_if(Errno::INVAL, "the descriptor is not a memfd, or a seal is unknown to this kernel")
        })
    }

    /// `fcntl(F_GET_SEALS)`: the seals in force.
    /// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html#File_Sealing).
    pub fn seals(&self) -> Result<Seals> {
        rustix::fs::fcntl_get_seals(&self.fd).during("reading seals of", self.label())
    }

    /// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, 0)` of the whole memfd at
    /// its size now, read-only for `Access::ReadOnly`, writable too for `Access::ReadWrite`.
    /// `Access::WriteOnly` is refused ([`InvalidInput`](ErrorKind::InvalidInput)): a mapping
    /// is always readable.
    ///
    /// A read-only mapping is made through a read-only descriptor (the memfd reopened through
    /// `/proc/self/fd`), so it does not count as writable: `Seals::WRITE` can be added while it
    /// lives, and it can be made after that seal. A writable mapping of a memfd sealed with
    /// `WRITE` or `FUTURE_WRITE` fails with EPERM.
    /// See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
    pub fn map(&self, access: Access) -> Result<Mapping> {
        access.readable("mapping", self.label())?;
        let len = self.len()?;
        let object = || format!("{} ({len} bytes)", self.label());
        let map = |fd| {
            Mapping::map_fd(fd, len, access).map_err(|e| {
                e.object(object()).hint_if(
                    Errno::PERM,
                    "the memfd is sealed against writing (F_SEAL_WRITE or F_SEAL_FUTURE_WRITE): map it read-only",
                )
            })
        };
        if access.can_write() {
            return map(self.fd.as_fd());
        }
        match self.reopen_read_only() {
            Ok(ro) => map(ro.as_fd()),
            // No /proc: the memfd's own descriptor still gives a read-only mapping, which only
            // keeps F_SEAL_WRITE from being added while it lives.
            Err(_) => map(self.fd.as_fd()),
        }
    }

    /// A new read-only open file description of the same memory.
    fn reopen_read_only(&self) -> rustix::io::Result<OwnedFd> {
        let path = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        rustix::fs::open(
            path.as_str(),
            OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
    }

    fn label(&self) -> &str {
        &self.label
    }
}

/// `F_SEAL_SHRINK|F_SEAL_GROW` for messages.
fn seal_names(seals: Seals) -> String {
    let names: Vec<String> = seals
        .iter_names()
        .map(|(name, _)| format!("F_SEAL_{name}"))
        .collect();
    if names.is_empty() {
        format!("seals {:#x}", seals.bits())
    } else {
        names.join("|")
    }
}
