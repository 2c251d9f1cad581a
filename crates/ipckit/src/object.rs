//! What every named kernel object shares: how it is opened ([`Access`]), who removes it
//! (the creator, once), which modes it takes, and the one pid type.
//!
//! Every kind with a name (POSIX shared memory, message queues and semaphores, System V
//! segments, queues and semaphore sets, FIFOs, socket files, named channels) has one shape:
//!
//! | call | does | removes the object |
//! |---|---|---|
//! | `create(name, &Options)` | makes it with `O_EXCL` (`IPC_EXCL`): an existing one is an error, never adopted | on drop |
//! | `open(name, Access)` | joins an existing one | never |
//! | `persist(self)` | keeps it after the handle, the one way to let it outlive its creator | never |
//! | `remove(self)` | removes it now and gives the error, if any | now |
//!
//! Each `Options` has a `mode` (permission bits only, `0o600` by default, applied exactly:
//! the umask does not narrow it) and whatever the kind needs (a size, a queue's limits, a
//! semaphore's value).
//!
//! ```
//! use ipckit::Access;
//! use ipckit::shm::posix::{self, PosixShm};
//! let name = ipckit::name::unique_posix("doc-object");
//! let shm = PosixShm::create(&name, &posix::Options::new(4096)).unwrap();
//! let other = PosixShm::open(&name, Access::ReadOnly).unwrap(); // never removes it
//! drop(other);
//! shm.remove().unwrap(); // or drop it: the creator removes the name
//! assert!(PosixShm::open(&name, Access::ReadOnly).is_err());
//! ```

use crate::error::{Error, ErrorKind, Result};

/// A process id, as `std::process::Child::id` gives it. The kernel's `pid_t` is signed only
/// so that `kill(2)` can take a process group as a negative number; ipckit spells that as a
/// function of its own ([`crate::notify::signal::kill_group`]).
pub type Pid = u32;

/// How an existing object is opened: the same three words for every kind that maps or
/// opens (shared memory, memfd mappings, message queues, semaphores, System V objects).
/// A kind that has no write-only form (a mapping, a semaphore) refuses `WriteOnly` with
/// [`ErrorKind::InvalidInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// Read (receive) only.
    ReadOnly,
    /// Write (send) only.
    WriteOnly,
    /// Both.
    ReadWrite,
}

impl Access {
    /// True for `ReadOnly` and `ReadWrite`.
    pub fn can_read(self) -> bool {
        matches!(self, Access::ReadOnly | Access::ReadWrite)
    }

    /// True for `WriteOnly` and `ReadWrite`.
    pub fn can_write(self) -> bool {
        matches!(self, Access::WriteOnly | Access::ReadWrite)
    }

    /// The `open(2)` access mode: `O_RDONLY`, `O_WRONLY` or `O_RDWR`.
    pub fn oflag(self) -> libc::c_int {
        match self {
            Access::ReadOnly => libc::O_RDONLY,
            Access::WriteOnly => libc::O_WRONLY,
            Access::ReadWrite => libc::O_RDWR,
        }
    }

    /// `self`, or an [`ErrorKind::InvalidInput`] error naming `op` and `object` for
    /// `WriteOnly`: for the kinds that are always readable (a mapping, a semaphore).
    pub(crate) fn readable(self, op: &'static str, object: impl std::fmt::Display) -> Result<Self> {
        if self.can_read() {
            return Ok(self);
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            "it has no write-only access: what is mapped (or waited on) can always be read",
        )
        .object(object)
        .hint("ask for Access::ReadWrite, or Access::ReadOnly to only read"))
    }

    /// The System V permission bits a `msgget`/`shmget`/`semget` of an existing object asks
    /// for (the kernel checks them against the object's mode): `0o400`, `0o200` or `0o600`.
    pub(crate) fn ipc_perms(self) -> libc::c_int {
        match self {
            Access::ReadOnly => 0o400,
            Access::WriteOnly => 0o200,
            Access::ReadWrite => 0o600,
        }
    }
}

/// A System V time field (`shm_atime`, `msg_stime`, `sem_otime`, ...) as a `SystemTime`,
/// `None` for 0 (never).
pub(crate) fn ipc_time(t: libc::time_t) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(t).ok().filter(|&s| s > 0)?;
    Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}

/// The default mode of every object ipckit creates: the owner alone reads and writes.
pub const DEFAULT_MODE: u32 = 0o600;

/// The options of a kind whose creation takes a mode and nothing else: a FIFO
/// ([`crate::stream::fifo::Options`]) and a System V message queue
/// ([`crate::mq::sysv::Options`]) are this type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeOptions {
    pub(crate) mode: u32,
}

impl Default for ModeOptions {
    /// Mode `0o600`: only the owner may open it.
    fn default() -> Self {
        ModeOptions { mode: DEFAULT_MODE }
    }
}

impl ModeOptions {
    /// The permission bits (bits outside `0o777` are refused by `create`), applied exactly:
    /// the umask does not narrow them (a FIFO is given them again with `chmod`; System V IPC
    /// has no umask).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// Refuses mode bits that are not permission bits (System V would read them as flags, and
/// a POSIX call would pass set-id bits on): the one check every kind makes.
pub(crate) fn check_mode(op: &'static str, mode: u32) -> Result<()> {
    if mode & !0o777 != 0 {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            format!("mode {mode:#o} has bits other than the permission bits 0o777"),
        )
        .hint("give permission bits only, like 0o600"));
    }
    Ok(())
}

/// Who removes a named object: the one spelling of ownership inside ipckit. A creator
/// `owns` it until it `release`s it (persist) or removes it; an opener never owns.
#[derive(Debug)]
pub(crate) struct Ownership(bool);

impl Ownership {
    /// The handle made the object: it removes it on drop.
    pub(crate) fn created() -> Self {
        Ownership(true)
    }

    /// The handle joined an existing object: it never removes it.
    pub(crate) fn joined() -> Self {
        Ownership(false)
    }

    /// True while the handle is to remove the object.
    pub(crate) fn owns(&self) -> bool {
        self.0
    }

    /// Hands the object over (persist, or removed already): the drop leaves it alone.
    /// Returns whether the handle owned it.
    pub(crate) fn release(&mut self) -> bool {
        std::mem::replace(&mut self.0, false)
    }
}

/// A file's identity, `(st_dev, st_ino)`: what tells a POSIX object from one made again
/// under the same name.
pub(crate) type FileId = (u64, u64);

/// `fstat(fd)`'s identity, `None` when `fstat` fails.
pub(crate) fn file_id(fd: impl std::os::fd::AsFd) -> Option<FileId> {
    rustix::fs::fstat(fd).ok().map(|st| (st.st_dev, st.st_ino))
}

/// What a POSIX kind (shared memory, message queue, semaphore) gives [`PosixName`]: where its
/// names lead in the filesystem, how one is removed, and the words of its errors.
#[derive(Debug)]
pub(crate) struct PosixKind {
    /// The operation a removal names in errors ("removing POSIX shared memory").
    pub(crate) removing: &'static str,
    /// Why a removal refuses a name that leads to another object now.
    pub(crate) changed: &'static str,
    /// The hint of that refusal, if the kind gives one.
    pub(crate) changed_hint: Option<&'static str>,
    /// The file a name leads to (`/dev/shm/NAME`, `/dev/mqueue/NAME`, ...).
    pub(crate) path: fn(&str) -> String,
    /// The kind's `remove(name)`: unlinks a name.
    pub(crate) unlink: fn(&str) -> Result<()>,
}

/// The name of a POSIX object and whether this handle removes it: the one implementation of
/// "remove it now, or on drop, only while the name still refers to this object" that every
/// POSIX kind uses. Which object the handle has (a descriptor's identity, or one recorded at
/// creation) is the kind's to say: it passes the answer in as `ours`.
#[derive(Debug)]
pub(crate) struct PosixName {
    name: String,
    owner: Ownership,
    kind: &'static PosixKind,
}

impl PosixName {
    /// The name of an object this handle made: removed on drop.
    pub(crate) fn created(name: &str, kind: &'static PosixKind) -> Self {
        PosixName {
            name: name.to_string(),
            owner: Ownership::created(),
            kind,
        }
    }

    /// The name of an object this handle joined: never removed on drop.
    pub(crate) fn joined(name: &str, kind: &'static PosixKind) -> Self {
        PosixName {
            name: name.to_string(),
            owner: Ownership::joined(),
            kind,
        }
    }

    /// The name, as given (`/something`).
    pub(crate) fn as_str(&self) -> &str {
        &self.name
    }

    /// Keeps the object after the handle: the drop leaves it alone (`persist`).
    pub(crate) fn persist(&mut self) {
        self.owner.release();
    }

    /// `lstat` of the file the name leads to (never following a link) is the file `id`.
    pub(crate) fn leads_to(&self, id: FileId) -> bool {
        rustix::fs::lstat((self.kind.path)(&self.name).as_str())
            .is_ok_and(|st| (st.st_dev, st.st_ino) == id)
    }

    /// `remove(self)`: the drop removes nothing more, whatever happens; then, when the name
    /// still refers to this object (`ours`), the kind's unlink, or else an
    /// [`ErrorKind::Changed`] error that leaves the other object alone.
    pub(crate) fn remove(&mut self, ours: bool) -> Result<()> {
        self.owner.release();
        if !ours {
            let e = Error::new(ErrorKind::Changed, self.kind.removing, self.kind.changed)
                .object(&self.name);
            return Err(match self.kind.changed_hint {
                Some(hint) => e.hint(hint),
                None => e,
            });
        }
        (self.kind.unlink)(&self.name)
    }

    /// What the drop does: the kind's unlink, errors ignored, if this handle owns the name
    /// and it still refers to this object (`ours` is asked only for an owner).
    pub(crate) fn drop_owned(&self, ours: impl FnOnce() -> bool) {
        if self.owner.owns() && ours() {
            let _ = (self.kind.unlink)(&self.name);
        }
    }
}

/// The public `name()`, `persist(self)` and `remove(self)` of a POSIX kind whose handle keeps
/// its [`PosixName`] in `name` and answers in `name_is_ours()` whether the name still leads
/// to its object: one body for every POSIX kind, each giving the docs (and `must_use`) of its
/// own.
macro_rules! posix_named_methods {
    (
        $kind:ty,
        $(#[$name:meta])* name,
        $(#[$persist:meta])* persist,
        $(#[$remove:meta])* remove $(,)?
    ) => {
        impl $kind {
            $(#[$name])*
            pub fn name(&self) -> &str {
                self.name.as_str()
            }

            $(#[$persist])*
            pub fn persist(mut self) -> Self {
                self.name.persist();
                self
            }

            $(#[$remove])*
            pub fn remove(mut self) -> $crate::error::Result<()> {
                self.name.remove(self.name_is_ours())
            }
        }
    };
}
pub(crate) use posix_named_methods;

impl std::fmt::Display for PosixName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_outside_the_permission_bits_are_refused() {
        assert!(check_mode("x", 0o600).is_ok());
        assert!(check_mode("x", 0o777).is_ok());
        for bad in [0o1000, 0o4600, 0o2600, 0o10600] {
            let e = check_mode("x", bad).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:o}");
        }
    }

    #[test]
    fn ownership_is_released_once() {
        let mut o = Ownership::created();
        assert!(o.owns());
        assert!(o.release());
        assert!(!o.release());
        assert!(!Ownership::joined().owns());
    }

    #[test]
    fn access_words() {
        assert!(Access::ReadOnly.can_read() && !Access::ReadOnly.can_write());
        assert!(!Access::WriteOnly.can_read() && Access::WriteOnly.can_write());
        assert!(Access::ReadWrite.can_read() && Access::ReadWrite.can_write());
        assert!(Access::ReadOnly.readable("x", "y").is_ok());
        let e = Access::WriteOnly.readable("x", "y").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
    }
}
