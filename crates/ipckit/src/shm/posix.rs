//! POSIX shared memory: `shm_open(3)`, `ftruncate(2)`, `mmap(2)`, `shm_unlink(3)`.
//! See [shm_overview(7)](https://man7.org/linux/man-pages/man7/shm_overview.7.html).
//!
//! A POSIX shared-memory object is a file in the tmpfs at `/dev/shm` with a name like
//! `/app-state`: any process that knows the name (and passes the mode check) can open and map
//! it. It lives until it is unlinked, whatever happens to the processes that use it, so the
//! handle that created it unlinks it on drop unless [`persist`](PosixShm::persist)ed; a handle
//! that opened it never does. Unlinking only removes the name: every process that still has it
//! open or mapped keeps using the memory until it lets go.
//!
//! The memory is reached through a [`Mapping`], which gives safe code no plain reference into
//! memory another process may change: see [`crate::shm::mapping`].
//!
//! ```
//! use ipckit::Access;
//! use ipckit::shm::posix::{self, PosixShm};
//! let name = ipckit::name::unique_posix("doc-shm");
//! let shm = PosixShm::create(&name, &posix::Options::new(4096).mode(0o600)).unwrap();
//! shm.map().unwrap().write_at(0, b"hello").unwrap();
//!
//! // Another process would do this with the same name.
//! let other = PosixShm::open(&name, Access::ReadOnly).unwrap();
//! let mut buf = [0u8; 5];
//! other.map().unwrap().read_at(0, &mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//!
//! drop(other); // an opener never removes it
//! shm.remove().unwrap(); // or drop it: the creator removes the name
//! assert!(PosixShm::open(&name, Access::ReadOnly).is_err());
//! ```

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::Mode;
use rustix::io::Errno;
use rustix::shm::OFlags;

use crate::error::{Context, Error, Result};
use crate::name;
use crate::object::{
    Access, Existing, PosixKind, PosixName, check_existing, file_id, open_or_create,
};
use crate::shm::check_mode;
use crate::shm::mapping::Mapping;

/// Where Linux keeps POSIX shared-memory objects (glibc and rustix both open `/dev/shm/NAME`).
const SHM_DIR: &str = "/dev/shm";

/// What [`PosixName`] needs to remove a POSIX shared-memory name.
static KIND: PosixKind = PosixKind {
    removing: "removing POSIX shared memory",
    changed: "the name no longer refers to this object (removed, and perhaps made again)",
    changed_hint: None,
    path: shm_file,
    unlink: remove,
};

/// The file a name leads to: `/dev/shm/NAME`.
fn shm_file(name: &str) -> String {
    format!("{SHM_DIR}{name}")
}

/// How [`PosixShm::create`] makes an object: its size and mode (the one
/// [`shm::Options`](crate::shm::Options) of both shared-memory kinds).
pub use super::Options;

/// An open POSIX shared-memory object. The handle that created it unlinks the name on drop
/// (only if the name still refers to the object it made) unless
/// [`persist`](PosixShm::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct PosixShm {
    fd: OwnedFd,
    name: PosixName,
    access: Access,
}

crate::impl_fd!(PosixShm, fd);

/// The flags every open adds: never follow a symbolic link planted at the name (glibc's
/// `shm_open` does the same; `O_CLOEXEC` is implied by `shm_open`).
fn nofollow() -> OFlags {
    OFlags::from_bits_retain(rustix::fs::OFlags::NOFOLLOW.bits())
}

impl PosixShm {
    /// `statvfs("/dev/shm")`, `shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW, mode)`,
    /// then `ftruncate(len)`, `fallocate(0, len)` and `fchmod(mode)` so the umask does not
    /// narrow the mode: a new object of `len` zeroed bytes that this handle owns. Fails with
    /// EEXIST if the name is taken (an existing object is opened with
    /// [`open`](PosixShm::open), never adopted).
    ///
    /// The space is reserved (see [`crate::shm`]'s notes on space): a `len` over the free
    /// space of `/dev/shm` is refused before anything is made, with errno ENOSPC and the
    /// numbers; a full filesystem is ENOSPC here, never `SIGBUS` at the first write. Every
    /// failure after `shm_open` unlinks the new object again.
    /// See [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [posix_fallocate(3)](https://man7.org/linux/man-pages/man3/posix_fallocate.3.html).
    pub fn create(name: &str, opts: &Options) -> Result<Self> {
        const OP: &str = "creating POSIX shared memory";
        let Options { len, mode, .. } = *opts;
        name::check_posix_name(name)?;
        check_mode(OP, mode).map_err(|e| e.object(name))?;
        let object = || format!("{name} of {len} bytes");
        // Refused before anything exists, so a size that cannot fit leaves nothing behind.
        crate::shm::check_room(
            OP,
            &object(),
            len as u64,
            rustix::fs::statvfs(SHM_DIR),
            SHM_DIR,
        )?;
        let fd = rustix::shm::open(
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | nofollow(),
            Mode::from_raw_mode(mode),
        )
        .map_err(|e| {
            Error::os(OP, e).object(name).hint_if(
                Errno::EXIST,
                format!(
                    "the name is taken: open it instead, or remove it (`ipckit rm shm:{}`)",
                    crate::name::escape_str(name)
                ),
            )
        })?;
        // From here on, a failure drops `shm`, which unlinks what was made.
        let shm = PosixShm {
            fd,
            name: PosixName::created(name, &KIND),
            access: Access::ReadWrite,
        };
        rustix::fs::ftruncate(&shm.fd, len as u64).map_err(|e| {
            Error::os("sizing POSIX shared memory", e)
                .object(format!("{name} to {len} bytes"))
                .hint_if(
                    Errno::FBIG,
                    "the size is over what /dev/shm allows: see `df /dev/shm`",
                )
                .hint_if(Errno::INVAL, "the size is too large for a file offset")
        })?;
        crate::shm::reserve(
            shm.fd.as_fd(),
            len as u64,
            "reserving space for POSIX shared memory",
            &object(),
            SHM_DIR,
        )?;
        rustix::fs::fchmod(&shm.fd, Mode::from_raw_mode(mode))
            .during("setting mode of POSIX shared memory", name)?;
        Ok(shm)
    }

    /// [`open`](PosixShm::open) with `access` if the name exists and the object passes
    /// [`check_existing`] (this user's, no wider than `opts`' mode; its size is its own, not
    /// `opts`'), else [`create`](PosixShm::create) with `opts`: the handle then owns the new
    /// object (removes it on drop, unless [`persist`](PosixShm::persist)ed) and has it
    /// `ReadWrite`. Two processes racing to make it both succeed: the one that loses opens
    /// (and checks) what the other made. The check is made on the descriptor opened
    /// (`fstat`), so a name swapped in between cannot slip past it;
    /// [`Options::trust_existing`] skips it.
    /// See [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html),
    /// [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html).
    ///
    /// ```
    /// use ipckit::Access;
    /// use ipckit::shm::posix::{self, PosixShm};
    /// let name = ipckit::name::unique_posix("doc-shm-ooc");
    /// let opts = posix::Options::new(4096);
    /// let made = PosixShm::open_or_create(&name, Access::ReadWrite, &opts).unwrap(); // made
    /// let joined = PosixShm::open_or_create(&name, Access::ReadOnly, &opts).unwrap(); // joined
    /// assert_eq!(joined.len().unwrap(), 4096);
    /// // Asking for 0o400 finds an object with more bits (0o600): not the one meant.
    /// let narrower = posix::Options::new(4096).mode(0o400);
    /// assert!(PosixShm::open_or_create(&name, Access::ReadOnly, &narrower).is_err());
    /// drop((joined, made)); // the maker removes it
    /// ```
    pub fn open_or_create(name: &str, access: Access, opts: &Options) -> Result<Self> {
        let op = if access.can_write() {
            "opening POSIX shared memory for writing"
        } else {
            "opening POSIX shared memory for reading"
        };
        open_or_create(
            || PosixShm::open(name, access),
            || PosixShm::create(name, opts),
            |shm| {
                let found = Existing::of_fd(&shm.fd).during(op, name)?;
                check_existing(
                    op,
                    name,
                    &format!("shm:{name}"),
                    found,
                    opts.mode,
                    opts.trust_existing,
                )
            },
        )
    }

    /// `shm_open(name, O_RDONLY or O_RDWR | O_NOFOLLOW)`: an existing object, mapped with
    /// `access`. Never unlinks it. Whoever made it: the mode is the kernel's only check, so a world-writable object of another user is joined too (see [`crate::object`]); [`open_or_create`](PosixShm::open_or_create) takes only this user's.
    /// `Access::WriteOnly` is refused
    /// ([`InvalidInput`](crate::ErrorKind::InvalidInput)): a mapping is always readable.
    /// See [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html).
    pub fn open(name: &str, access: Access) -> Result<Self> {
        let op = if access.can_write() {
            "opening POSIX shared memory for writing"
        } else {
            "opening POSIX shared memory for reading"
        };
        access.readable(op, name)?;
        name::check_posix_name(name)?;
        let flags = if access.can_write() {
            OFlags::RDWR
        } else {
            OFlags::RDONLY
        };
        let fd = rustix::shm::open(name, flags | nofollow(), Mode::empty()).map_err(|e| {
            Error::os(op, e)
            .object(name)
            .hint_if(
                Errno::NOENT,
                "no such object: create it first, and check the name (objects are listed in /dev/shm)",
            )
            .hint_if(
                Errno::ACCESS,
                "its mode does not let this user have the access asked for: open it read-only, or ask its owner to widen the mode",
            )
            .hint_if(
                Errno::LOOP,
                "a symbolic link is at the name: ipckit does not follow it; remove it",
            )
        })?;
        Ok(PosixShm {
            fd,
            name: PosixName::joined(name, &KIND),
            access,
        })
    }

    /// How the handle has it open, and so how [`map`](PosixShm::map) maps it
    /// (`ReadWrite` for a creator).
    pub fn access(&self) -> Access {
        self.access
    }

    /// `fstat(2)`: the object's size in bytes now (another process may have resized it).
    /// See [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html).
    pub fn len(&self) -> Result<usize> {
        let st = rustix::fs::fstat(&self.fd)
            .during("reading size of POSIX shared memory", &self.name)?;
        Ok(st.st_size as usize)
    }

    /// True when the size is 0 now (`fstat(2)`, as [`len`](PosixShm::len)).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// `mmap(NULL, len, PROT_READ [| PROT_WRITE], MAP_SHARED, fd, 0)` of the whole object, at
    /// its size now, with the handle's [`access`](PosixShm::access). The mapping stays valid
    /// after this handle is dropped or the name removed.
    /// See [mmap(2)](https://man7.org/linux/man-pages/man2/mmap.2.html).
    pub fn map(&self) -> Result<Mapping> {
        let len = self.len()?;
        Mapping::map_fd(&self.fd, len, self.access)
            .map_err(|e| e.object(format!("POSIX shared memory {} ({len} bytes)", self.name)))
    }

    /// True when the name still refers to the object this handle has open.
    fn name_is_ours(&self) -> bool {
        file_id(&self.fd).is_some_and(|id| self.name.leads_to(id))
    }
}

/// `shm_unlink(name)`: removes a name nobody holds a handle to (one a crashed or persisting
/// creator left). Processes that have the object open or mapped keep using it; it is freed
/// when the last lets go.
/// See [shm_unlink(3)](https://man7.org/linux/man-pages/man3/shm_unlink.3.html).
///
/// ```
/// use ipckit::shm::posix::{self, PosixShm};
/// let name = ipckit::name::unique_posix("doc-shm-remove");
/// let _kept = PosixShm::create(&name, &posix::Options::new(4096)).unwrap().persist();
/// posix::remove(&name).unwrap();
/// assert!(posix::remove(&name).is_err()); // gone already
/// ```
pub fn remove(name: &str) -> Result<()> {
    name::check_posix_name(name)?;
    rustix::shm::unlink(name).map_err(|e| {
        Error::os("removing POSIX shared memory", e)
            .object(name)
            .hint_if(
                Errno::NOENT,
                "no such object: it is already removed, or the name is wrong",
            )
    })
}

crate::object::posix_named_methods! {
    PosixShm,
    /// The object's name, as given (`/something`).
    name,
    /// Keeps the object after this handle is dropped: the one way to let it outlive its
    /// creator. Remove it later with [`remove`](PosixShm::remove) on a handle that
    /// [`open`](PosixShm::open)s it, or [`posix::remove`](remove) by name.
    #[must_use]
    persist,
    /// `shm_unlink(name)`, if the name still refers to this object: removes the name now,
    /// whoever created it (a handle from [`open`](PosixShm::open) removes it too). Processes
    /// that have the object open or mapped keep using it; it is freed when the last lets go.
    /// Fails with [`ErrorKind::Changed`](crate::ErrorKind::Changed) when the name was removed
    /// and made again since, and leaves that object alone.
    /// See [shm_unlink(3)](https://man7.org/linux/man-pages/man3/shm_unlink.3.html).
    remove,
}

impl Drop for PosixShm {
    fn drop(&mut self) {
        // Only what this handle made: the name may have been unlinked and reused since.
        self.name.drop_owned(|| self.name_is_ours());
    }
}
