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
//! | `open_or_create(name, Access, &Options)` | joins one that is this user's and no wider than `Options::mode`, else makes it | on drop, if it made it |
//! | `persist(self)` | keeps it after the handle, the one way to let it outlive its creator | never |
//! | `remove(self)` | removes it now and gives the error, if any | now |
//!
//! Each `Options` has a `mode` (permission bits only, `0o600` by default, applied exactly:
//! the umask does not narrow it) and whatever the kind needs (a size, a queue's limits, a
//! semaphore's value).
//!
//! # Objects someone else made
//!
//! `open` joins whatever has the name: naming an existing object is asking for it, and the
//! kernel's mode check is the only one made. An object that is world-writable and owned by
//! another user can be anybody's, though: a peer that opens it trusts whoever made it (and
//! everyone the mode lets in) with what it sends and reads.
//!
//! `open_or_create` (POSIX and System V shared memory and message queues, and a FIFO's
//! reader, [`crate::stream::fifo::try_open_read_or_create`]) is for a program that means to
//! use *its own* object, made now or by an earlier run. So it refuses an existing one that
//! is not: owned (or, for System V, created) by another user than the caller's effective uid,
//! or with any permission bit the `mode` asked for lacks. The check is made on the object
//! opened (`fstat` of its descriptor, or `IPC_STAT`), never on the name looked up before, and
//! its error ([`check_existing`]) names the owner, the mode and the way out: remove it
//! (`ipckit rm URI`) if it is not yours, or `Options::trust_existing(true)` (the CLI's
//! `--trust-existing`) to use it anyway.
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

use crate::error::{Errno, Error, ErrorKind, Result};

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
    pub(crate) trust_existing: bool,
}

impl Default for ModeOptions {
    /// Mode `0o600`: only the owner may open it. An existing object another user made is
    /// refused by `open_or_create`.
    fn default() -> Self {
        ModeOptions {
            mode: DEFAULT_MODE,
            trust_existing: false,
        }
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

    /// Whether `open_or_create` may use an existing object that another user owns, or that
    /// is wider than [`mode`](ModeOptions::mode) (default false: refused, see
    /// [`check_existing`]).
    pub fn trust_existing(mut self, on: bool) -> Self {
        self.trust_existing = on;
        self
    }
}

/// What an existing object is, as `fstat(2)` of its descriptor or `IPC_STAT` gave it: what
/// [`check_existing`] judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Existing {
    /// The owner's uid (`st_uid`, `ipc_perm.uid`).
    pub uid: u32,
    /// For System V, the creator's uid (`ipc_perm.cuid`), who may change the owner and mode
    /// too; the owner's uid again for a file.
    pub cuid: u32,
    /// The permission bits (`0o777`).
    pub mode: u32,
}

impl Existing {
    /// `fstat(fd)`'s owner and permission bits: a POSIX shared-memory object, a POSIX
    /// message queue (its descriptor is a file of the mqueue filesystem), a FIFO.
    /// See [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html).
    pub(crate) fn of_fd(fd: impl std::os::fd::AsFd) -> rustix::io::Result<Self> {
        let st = rustix::fs::fstat(fd)?;
        Ok(Existing {
            uid: st.st_uid,
            cuid: st.st_uid,
            mode: st.st_mode & 0o777,
        })
    }
}

/// `user (uid N)`, or `uid N` for a uid without a name.
fn who(uid: u32) -> String {
    match crate::host::user_name(uid) {
        Some(name) => format!("{} (uid {uid})", crate::name::escape_str(&name)),
        None => format!("uid {uid}"),
    }
}

/// The policy of every `open_or_create` on an object it did not make: `found` must be owned
/// (and, for System V, created) by the caller's effective uid, and have no permission bit
/// that `asked_mode` lacks. Otherwise an error of kind [`ErrorKind::Os`] with errno `EPERM`
/// naming `op` and `object`, the owner (user name and uid), the mode found and the mode
/// asked, with the hint to remove it with `ipckit rm URI` (`rm_uri`) if it is not the
/// caller's, or to trust it (`--trust-existing`, `Options::trust_existing(true)`).
/// `trust` true accepts anything.
///
/// ```
/// use ipckit::object::{Existing, check_existing};
/// let me = rustix::process::geteuid().as_raw();
/// let mine = Existing { uid: me, cuid: me, mode: 0o600 };
/// assert!(check_existing("opening", "/x", "shm:/x", mine, 0o600, false).is_ok());
/// assert!(check_existing("opening", "/x", "shm:/x", mine, 0o644, false).is_ok());
/// let wide = Existing { mode: 0o666, ..mine };
/// let e = check_existing("opening", "/x", "shm:/x", wide, 0o600, false).unwrap_err();
/// assert_eq!(e.errno(), Some(ipckit::Errno::PERM));
/// assert!(e.to_string().contains("0666"));
/// assert!(check_existing("opening", "/x", "shm:/x", wide, 0o600, true).is_ok());
/// ```
pub fn check_existing(
    op: &'static str,
    object: impl std::fmt::Display,
    rm_uri: &str,
    found: Existing,
    asked_mode: u32,
    trust: bool,
) -> Result<()> {
    if trust {
        return Ok(());
    }
    let me = rustix::process::geteuid().as_raw();
    let foreign = [found.uid, found.cuid].into_iter().find(|&u| u != me);
    let wider = found.mode & !asked_mode & 0o777 != 0;
    if foreign.is_none() && !wider {
        return Ok(());
    }
    let mut why = Vec::new();
    if let Some(uid) = foreign {
        let role = if uid == found.uid { "owned" } else { "made" };
        why.push(format!(
            "{role} by {}, not by this user, {}",
            who(uid),
            who(me)
        ));
    }
    if wider {
        why.push(format!(
            "its mode {:04o} is wider than the {asked_mode:04o} asked for",
            found.mode
        ));
    }
    Err(Error::os(op, Errno::PERM)
        .with_detail(format!(
            "it exists already, {}: it may not be this program's",
            why.join(", and ")
        ))
        .object(object)
        .hint(format!(
            "if it is not yours, remove it with `ipckit rm {rm_uri}` (as its owner or root); \
             to use it anyway, pass --trust-existing (Options::trust_existing(true))"
        )))
}

/// The one open-or-create of every named kind: `open`; when the name does not exist
/// (ENOENT), `create` it (with `O_EXCL`/`IPC_EXCL`); when another process made it meanwhile
/// (EEXIST), open again. An object opened (not made here) must pass `check` (the kind's
/// [`check_existing`]), or it is let go (a joined handle removes nothing). A name made and
/// removed over and over by another process ends, after a few rounds, in the last EEXIST.
pub(crate) fn open_or_create<T>(
    open: impl Fn() -> Result<T>,
    create: impl Fn() -> Result<T>,
    check: impl Fn(&T) -> Result<()>,
) -> Result<T> {
    let mut raced = None;
    for _ in 0..8 {
        match open() {
            Ok(t) => {
                check(&t)?;
                return Ok(t);
            }
            Err(e) if e.errno() == Some(Errno::NOENT) => match create() {
                Err(e) if e.errno() == Some(Errno::EXIST) => raced = Some(e),
                made => return made,
            },
            Err(e) => return Err(e),
        }
    }
    Err(raced.expect("the loop runs at least once"))
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
    pub(crate) changed_hint: Option<fn(&str) -> String>,
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
                Some(hint) => e.hint(hint(&crate::name::escape_str(&self.name))),
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
    fn an_existing_object_must_be_this_users_and_no_wider_than_asked() {
        let me = rustix::process::geteuid().as_raw();
        let other = if me == 65534 { 65533 } else { 65534 };
        let mine = Existing {
            uid: me,
            cuid: me,
            mode: 0o600,
        };
        let ok = |found, asked| check_existing("opening", "/x", "shm:/x", found, asked, false);
        assert!(ok(mine, 0o600).is_ok());
        assert!(
            ok(
                Existing {
                    mode: 0o400,
                    ..mine
                },
                0o600
            )
            .is_ok()
        );
        assert!(
            ok(
                Existing {
                    mode: 0o660,
                    ..mine
                },
                0o666
            )
            .is_ok()
        );
        // Any bit the mode asked for lacks, even a narrower-looking one.
        for (found, asked) in [
            (0o666, 0o600),
            (0o604, 0o600),
            (0o600, 0o400),
            (0o020, 0o600),
        ] {
            let e = ok(
                Existing {
                    mode: found,
                    ..mine
                },
                asked,
            )
            .unwrap_err();
            assert_eq!(e.errno(), Some(Errno::PERM), "{found:o} {asked:o}");
            let s = e.to_string();
            assert!(s.contains(&format!("{found:04o}")), "{s}");
            assert!(s.contains(&format!("{asked:04o}")), "{s}");
            assert!(
                s.contains("--trust-existing") && s.contains("ipckit rm shm:/x"),
                "{s}"
            );
        }
        // Another owner, or (System V) another creator.
        for found in [
            Existing { uid: other, ..mine },
            Existing {
                cuid: other,
                ..mine
            },
        ] {
            let e = ok(found, 0o600).unwrap_err();
            let s = e.to_string();
            assert_eq!(e.errno(), Some(Errno::PERM));
            assert!(
                s.contains(&format!("uid {other}")) && s.contains(&format!("uid {me}")),
                "{s}"
            );
            assert!(s.starts_with("opening /x: it exists already"), "{s}");
        }
        // Trusted: anything goes.
        let foreign = Existing {
            uid: other,
            cuid: other,
            mode: 0o777,
        };
        assert!(check_existing("opening", "/x", "shm:/x", foreign, 0o600, true).is_ok());
    }

    #[test]
    fn open_or_create_makes_on_enoent_retries_on_eexist_and_checks_what_it_opens() {
        use std::cell::Cell;
        let opens = Cell::new(0);
        // Missing, then another process wins the race: the second open finds its object.
        let got = open_or_create(
            || {
                opens.set(opens.get() + 1);
                if opens.get() == 1 {
                    Err(Error::os("open", Errno::NOENT))
                } else {
                    Ok("theirs")
                }
            },
            || Err(Error::os("create", Errno::EXIST)),
            |_| Ok(()),
        );
        assert_eq!(got.unwrap(), "theirs");
        assert_eq!(opens.get(), 2);
        // What is opened is checked; what is made is not.
        let refused = open_or_create(|| Ok(1), || Ok(2), |_| Err(Error::os("check", Errno::PERM)));
        assert_eq!(refused.unwrap_err().errno(), Some(Errno::PERM));
        let made = open_or_create(
            || Err(Error::os("open", Errno::NOENT)),
            || Ok(2),
            |_| Err(Error::os("check", Errno::PERM)),
        );
        assert_eq!(made.unwrap(), 2);
        // Other errors of open are the answer.
        let e = open_or_create(
            || Err::<u8, _>(Error::os("open", Errno::ACCESS)),
            || Ok(2),
            |_| Ok(()),
        );
        assert_eq!(e.unwrap_err().errno(), Some(Errno::ACCESS));
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
