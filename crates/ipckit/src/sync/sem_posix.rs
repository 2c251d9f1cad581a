//! POSIX semaphores: named (`sem_open(3)`, a file `/dev/shm/sem.NAME` that unrelated processes
//! open by name) and unnamed (`sem_init(3)` with `pshared = 1`, living inside a shared
//! [`Mapping`]). See
//! [sem_overview(7)](https://man7.org/linux/man-pages/man7/sem_overview.7.html).
//!
//! Both are a counter: [`wait`](PosixSem::wait) takes one (sleeping while it is 0),
//! [`post`](PosixSem::post) gives one back. The kernel does not know who took what, so a
//! process that dies between `wait` and `post` leaves the count taken for ever: when that
//! matters, use a System V set with `SEM_UNDO` ([`crate::sync::sem_sysv`]) or a robust mutex
//! ([`crate::sync::mutex`]).
//!
//! libc is used here: rustix has no POSIX semaphores.
//!
//! ```
//! use ipckit::sync::sem_posix::{self, PosixSem};
//! use std::time::Duration;
//! let name = ipckit::name::unique_posix("doc-sem");
//! let sem = PosixSem::create(&name, &sem_posix::Options::new(1)).unwrap();
//! // Another process opens it by name (and never removes it).
//! let other = PosixSem::open(&name).unwrap();
//! assert!(other.try_wait().unwrap());
//! assert!(!sem.wait_timeout(Duration::from_millis(10)).unwrap()); // the count is 0
//! other.post().unwrap();
//! assert_eq!(sem.value().unwrap(), 1);
//! drop(other);
//! sem.remove().unwrap(); // or drop it: the creator unlinks the name
//! assert!(PosixSem::open(&name).is_err());
//! ```
//!
//! An unnamed semaphore in memory that a `fork`ed child (or any process mapping the same
//! object) shares:
//!
//! ```
//! use ipckit::shm::mapping::Mapping;
//! use ipckit::sync::sem_posix::SharedSem;
//! let m = Mapping::anonymous_shared(4096).unwrap();
//! let sem = SharedSem::init(&m, 0, 0).unwrap();
//! SharedSem::attach(&m, 0).unwrap().post().unwrap();
//! sem.wait().unwrap();
//! assert_eq!(sem.value().unwrap(), 0);
//! ```

use std::marker::PhantomData;
use std::os::fd::AsRawFd;
use std::time::Duration;

use rustix::fs::{FileType, Mode, OFlags};

use crate::error::{Context, Errno, Error, ErrorKind, Result};
use crate::name;
use crate::object::{DEFAULT_MODE, FileId, PosixKind, PosixName, check_mode};
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::sync::{CLOCK, Until, last_errno, sem_clockwait};

/// The largest value a POSIX semaphore holds (`SEM_VALUE_MAX`).
pub const SEM_VALUE_MAX: u32 = i32::MAX as u32;

/// What [`PosixName`] needs to remove a POSIX semaphore's name.
static KIND: PosixKind = PosixKind {
    removing: "removing POSIX semaphore",
    changed: "the name refers to another semaphore now",
    changed_hint: Some(|name| {
        format!(
            "it was removed and made again: remove it by name (`ipckit rm sem:{name}`) if it is yours"
        )
    }),
    path: sem_file,
    unlink: remove,
};

/// The operations both kinds share: one implementation over a `sem_t` pointer, with the words
/// that name the semaphore in errors.
#[derive(Debug)]
struct Sem {
    ptr: *mut libc::sem_t,
    label: String,
}

impl Sem {
    fn err(&self, op: &'static str, e: Errno) -> Error {
        Error::os(op, e)
            .object(&self.label)
            .hint_if(
                Errno::INVAL,
                "this is not a valid semaphore: was the memory initialised with SharedSem::init?",
            )
            .hint_if(
                Errno::OVERFLOW,
                "the value is at SEM_VALUE_MAX: more posts than waits",
            )
    }

    /// One take under `deadline`: `sem_wait`, `sem_trywait` (a deadline passed) or
    /// `sem_clockwait`. A signal is retried with the same absolute `CLOCK_MONOTONIC` time, so
    /// the total wait stays what was asked, whatever happens to the wall clock.
    fn wait_until(&self, deadline: Deadline) -> Result<bool> {
        let until = Until::from(deadline);
        loop {
            // SAFETY: `ptr` is a semaphore that stays valid while its handle lives (sem_open's
            // mapping, or memory inside a borrowed Mapping); `at` is a valid timespec for the
            // duration of the call.
            let r = unsafe {
                match &until {
                    Until::Forever => libc::sem_wait(self.ptr),
                    Until::Once => libc::sem_trywait(self.ptr),
                    Until::At(at) => sem_clockwait(self.ptr, CLOCK, at),
                }
            };
            if r == 0 {
                return Ok(true);
            }
            match last_errno() {
                Errno::INTR => continue,
                Errno::AGAIN | Errno::TIMEDOUT => return Ok(false),
                e => return Err(self.err("waiting on POSIX semaphore", e)),
            }
        }
    }

    fn post(&self) -> Result<()> {
        // SAFETY: as in `wait`.
        if unsafe { libc::sem_post(self.ptr) } == 0 {
            return Ok(());
        }
        Err(self.err("posting POSIX semaphore", last_errno()))
    }

    fn value(&self) -> Result<u32> {
        let mut v: libc::c_int = 0;
        // SAFETY: as in `wait`; `v` is writable.
        if unsafe { libc::sem_getvalue(self.ptr, &mut v) } == 0 {
            // POSIX allows a negative count of waiters here; glibc reports 0 instead.
            return Ok(v.max(0) as u32);
        }
        Err(self.err("reading value of POSIX semaphore", last_errno()))
    }
}

macro_rules! sem_ops {
    ($ty:ident $(<$lt:lifetime>)?) => {
        impl$(<$lt>)? $ty$(<$lt>)? {
            /// `sem_wait(3)`: takes one from the count, sleeping while it is 0 (a signal does
            /// not end the wait). See
            /// [sem_wait(3)](https://man7.org/linux/man-pages/man3/sem_wait.3.html).
            pub fn wait(&self) -> Result<()> {
                if self.sem.wait_until(Deadline::NEVER)? {
                    Ok(())
                } else {
                    Err(self.sem.err("waiting on POSIX semaphore", Errno::AGAIN))
                }
            }

            /// `sem_trywait(3)`: takes one if the count is above 0; `Ok(false)` (`EAGAIN`) if
            /// not. See [sem_wait(3)](https://man7.org/linux/man-pages/man3/sem_wait.3.html).
            pub fn try_wait(&self) -> Result<bool> {
                self.sem.wait_until(Deadline::now())
            }

            /// `sem_clockwait(3)` (the `sem_timedwait` that takes a clock): takes one, waiting at
            /// most `timeout`; `Ok(false)` when the count stayed 0 (`ETIMEDOUT`). The deadline
            /// is on `CLOCK_MONOTONIC`, kept across signals: setting the wall clock does not
            /// move it.
            /// See [sem_wait(3)](https://man7.org/linux/man-pages/man3/sem_wait.3.html).
            pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
                self.sem.wait_until(Deadline::after(timeout))
            }

            /// `sem_clockwait(3)` until `deadline` (`sem_trywait` for one already passed,
            /// `sem_wait` for [`Deadline::NEVER`]): takes one; `Ok(false)` when the count
            /// stayed 0 until then.
            /// See [sem_wait(3)](https://man7.org/linux/man-pages/man3/sem_wait.3.html).
            pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<bool> {
                self.sem.wait_until(deadline.into())
            }

            /// `sem_post(3)`: adds one to the count, waking one waiter. Fails with `EOVERFLOW`
            /// at [`SEM_VALUE_MAX`].
            /// See [sem_post(3)](https://man7.org/linux/man-pages/man3/sem_post.3.html).
            pub fn post(&self) -> Result<()> {
                self.sem.post()
            }

            /// `sem_getvalue(3)`: the count now (0 while processes wait), already stale when
            /// it returns if other processes use the semaphore.
            /// See [sem_getvalue(3)](https://man7.org/linux/man-pages/man3/sem_getvalue.3.html).
            pub fn value(&self) -> Result<u32> {
                self.sem.value()
            }
        }
    };
}

/// How [`PosixSem::create`] makes a semaphore: its first value (0 by default) and its mode
/// (`0o600` by default, applied exactly: the umask does not narrow it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    value: u32,
    mode: u32,
}

impl Default for Options {
    /// Value 0, mode `0o600`.
    fn default() -> Self {
        Options::new(0)
    }
}

impl Options {
    /// A semaphore that starts at `value` (at most [`SEM_VALUE_MAX`]), mode `0o600`.
    pub fn new(value: u32) -> Self {
        Options {
            value,
            mode: DEFAULT_MODE,
        }
    }

    /// The first value.
    pub fn value(mut self, value: u32) -> Self {
        self.value = value;
        self
    }

    /// The permission bits (`0o777` at most; others are refused by `create`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// A named POSIX semaphore: the `sem_t *` of `sem_open(3)`, closed (`sem_close`) on drop. The
/// handle that created it also unlinks the name on drop unless [`persist`](PosixSem::persist)ed;
/// one that opened it never does. Either way the semaphore lives on while a process has it open.
/// See [sem_overview(7)](https://man7.org/linux/man-pages/man7/sem_overview.7.html).
#[derive(Debug)]
pub struct PosixSem {
    sem: Sem,
    name: PosixName,
    /// The file glibc made for it (`/dev/shm/sem.NAME`): drop unlinks only while the name still
    /// leads there, never a semaphore someone made again under the same name.
    made: Option<FileId>,
}

// SAFETY: a sem_t is made to be used from any thread at once (the operations are atomic), and
// the mapping sem_open made lives until this handle's sem_close.
unsafe impl Send for PosixSem {}
// SAFETY: as above.
unsafe impl Sync for PosixSem {}

sem_ops!(PosixSem);

impl PosixSem {
    /// `sem_open(name, O_CREAT | O_EXCL, mode, value)`, then `chmod(mode)` so the umask does not
    /// narrow it: a new semaphore this handle owns, with the count `opts.value` and exactly
    /// `opts.mode`. Fails with `EEXIST` if the name is taken, `InvalidInput` for a mode with
    /// bits outside `0o777`.
    /// See [sem_open(3)](https://man7.org/linux/man-pages/man3/sem_open.3.html).
    pub fn create(name: &str, opts: &Options) -> Result<Self> {
        let op = "creating POSIX semaphore";
        let cname = name::check_posix_name(name)?;
        check_mode(op, opts.mode).map_err(|e| e.object(name))?;
        // SAFETY: `cname` is a valid C string; with O_CREAT, sem_open reads a mode_t and an
        // unsigned int from its variable arguments, which is what is passed.
        let p = unsafe {
            libc::sem_open(
                cname.as_ptr(),
                libc::O_CREAT | libc::O_EXCL,
                opts.mode as libc::c_uint,
                opts.value as libc::c_uint,
            )
        };
        if p == libc::SEM_FAILED {
            return Err(Error::os(op, last_errno())
                .object(name)
                .hint_if(
                    Errno::EXIST,
                    format!(
                        "the name is taken: open it instead, or remove it (`ipckit rm sem:{}`)",
                        crate::name::escape_str(name)
                    ),
                )
                .hint_if(Errno::INVAL, "the value is over SEM_VALUE_MAX (2147483647)"));
        }
        // Owned from here: a failure below drops it, which unlinks the name again.
        let mut sem = PosixSem {
            sem: Sem {
                ptr: p,
                label: name.to_string(),
            },
            name: PosixName::created(name, &KIND),
            made: None,
        };
        if let Err(e) = set_exact_mode(name, opts.mode, &mut sem.made) {
            // Before the file at the name was known to be this semaphore's, the drop must
            // leave it alone (`name_is_ours` says yes to a handle that recorded none).
            if sem.made.is_none() {
                sem.name.persist();
            }
            return Err(e);
        }
        Ok(sem)
    }

    /// `sem_open(name, 0)`: an existing semaphore. Never unlinks it.
    ///
    /// There is no access argument: `sem_open` has no access mode (glibc maps the semaphore
    /// read-write, and both `wait` and `post` write it), so opening needs read and write
    /// permission on the semaphore, and a user with less gets `EACCES`.
    /// See [sem_open(3)](https://man7.org/linux/man-pages/man3/sem_open.3.html).
    pub fn open(name: &str) -> Result<Self> {
        let cname = name::check_posix_name(name)?;
        // SAFETY: `cname` is a valid C string; without O_CREAT no further argument is read.
        let p = unsafe { libc::sem_open(cname.as_ptr(), 0) };
        if p == libc::SEM_FAILED {
            return Err(Error::os("opening POSIX semaphore", last_errno())
                .object(name)
                .hint_if(Errno::NOENT, "no such semaphore: create it first")
                .hint_if(
                    Errno::ACCESS,
                    "a semaphore is opened for reading and writing: its mode must grant both",
                ));
        }
        Ok(PosixSem {
            sem: Sem {
                ptr: p,
                label: name.to_string(),
            },
            name: PosixName::joined(name, &KIND),
            made: None,
        })
    }

    /// True while the name leads to the file of the semaphore this handle has open (for an
    /// opener, whatever the name leads to: it did not record which file it opened).
    fn name_is_ours(&self) -> bool {
        self.made.is_none_or(|made| self.name.leads_to(made))
    }
}

crate::object::posix_named_methods! {
    PosixSem,
    /// The semaphore's name.
    name,
    /// Keeps the name after this handle is dropped: the one way to let the semaphore outlive
    /// its creator. Remove it later with [`remove`] (or [`PosixSem::remove`] on a handle).
    #[must_use = "persist gives the handle back: dropping it closes the semaphore"]
    persist,
    /// `sem_unlink(name)`: removes the name now, if it still refers to the semaphore this
    /// handle has open (one made again under the same name is left alone and reported with
    /// [`ErrorKind::Changed`]). Processes that have it open keep using it until they close it.
    /// See [sem_unlink(3)](https://man7.org/linux/man-pages/man3/sem_unlink.3.html).
    remove,
}

impl Drop for PosixSem {
    fn drop(&mut self) {
        // SAFETY: `ptr` came from sem_open and is closed only here.
        unsafe { libc::sem_close(self.sem.ptr) };
        self.name.drop_owned(|| self.name_is_ours());
    }
}

/// `sem_unlink(name)`: removes a named semaphore nobody holds a handle to (one a killed
/// creator left, or one [`persist`](PosixSem::persist)ed). Handles still open keep working
/// until closed. See [sem_unlink(3)](https://man7.org/linux/man-pages/man3/sem_unlink.3.html).
pub fn remove(name: &str) -> Result<()> {
    let cname = name::check_posix_name(name)?;
    // SAFETY: `cname` is a valid C string.
    if unsafe { libc::sem_unlink(cname.as_ptr()) } == -1 {
        return Err(Error::os("removing POSIX semaphore", last_errno())
            .object(name)
            .hint_if(Errno::NOENT, "no such semaphore: already removed?"));
    }
    Ok(())
}

/// Where glibc keeps a named semaphore.
fn sem_file(name: &str) -> String {
    format!("/dev/shm/sem.{}", name.trim_start_matches('/'))
}

/// glibc creates `/dev/shm/sem.NAME` with `mode & ~umask`; this widens it to exactly `mode`.
/// The file is pinned with `O_PATH | O_NOFOLLOW` and must be a regular file of this user:
/// `/dev/shm` is sticky, so nobody else can have replaced it since `sem_open` linked it there.
/// Records the file's (device, inode), the semaphore's identity, in `made` as soon as it is
/// known, before the chmod: a creator that fails before then does not know the file at the
/// name is its own, and must leave it.
fn set_exact_mode(name: &str, mode: u32, made: &mut Option<FileId>) -> Result<()> {
    let op = "setting mode of POSIX semaphore";
    let path = sem_file(name);
    let pinned = rustix::fs::open(
        path.as_str(),
        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .during(op, &path)?;
    let st = rustix::fs::fstat(&pinned).during(op, &path)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile
        || st.st_uid != rustix::process::geteuid().as_raw()
    {
        return Err(Error::new(
            ErrorKind::Os,
            op,
            "the file is not a regular file of this user: it was replaced",
        )
        .object(&path));
    }
    *made = Some((st.st_dev, st.st_ino));
    if st.st_mode & 0o777 == mode {
        return Ok(());
    }
    let via = format!("/proc/self/fd/{}", pinned.as_raw_fd());
    rustix::fs::chmod(via.as_str(), Mode::from_bits_truncate(mode)).during(op, &path)
}

/// An unnamed POSIX semaphore: a `sem_t` made by `sem_init(3)` with `pshared = 1` inside a
/// shared mapping, which it borrows. Nothing to remove: it goes away with the memory.
/// See [sem_init(3)](https://man7.org/linux/man-pages/man3/sem_init.3.html).
#[derive(Debug)]
pub struct SharedSem<'a> {
    sem: Sem,
    _mapping: PhantomData<&'a Mapping>,
}

// SAFETY: a process-shared sem_t is made to be used from any thread and process at once; the
// borrow keeps the memory mapped.
unsafe impl Send for SharedSem<'_> {}
// SAFETY: as above.
unsafe impl Sync for SharedSem<'_> {}

sem_ops!(SharedSem<'a>);

/// The marker `init` writes after the semaphore ("IPKS").
const MAGIC: u32 = 0x4950_4b53;

impl<'a> SharedSem<'a> {
    /// Bytes the semaphore occupies at its offset: the `sem_t` and a marker word.
    pub fn footprint() -> usize {
        super::footprint::<libc::sem_t>()
    }

    /// `sem_init(sem, 1, value)`: makes the `sem_t` at `offset` (8-byte aligned, 32 bytes) a
    /// process-shared semaphore with the count `value`. Do it once, before other processes
    /// [`attach`](SharedSem::attach): initialising a semaphore in use is undefined behaviour in
    /// POSIX terms and strands its waiters.
    /// See [sem_init(3)](https://man7.org/linux/man-pages/man3/sem_init.3.html).
    pub fn init(mapping: &'a Mapping, offset: usize, value: u32) -> Result<Self> {
        let ptr = mapping.ptr_at::<libc::sem_t>(offset)?;
        // SAFETY: `ptr` is in bounds, aligned and writable (checked by ptr_at) and stays mapped
        // while `mapping` is borrowed.
        if unsafe { libc::sem_init(ptr, 1, value as libc::c_uint) } == -1 {
            return Err(Error::os("initialising POSIX semaphore", last_errno())
                .object(format!("at offset {offset}"))
                .hint_if(Errno::INVAL, "the value is over SEM_VALUE_MAX (2147483647)"));
        }
        super::mark_initialised::<libc::sem_t>(mapping, offset, MAGIC)?;
        Ok(Self::at(ptr, offset))
    }

    /// The semaphore another process [`init`](SharedSem::init)ed at `offset` of its mapping of
    /// the same memory (no system call).
    /// Memory no `init` marked is refused (zeroed memory would be a private semaphore whose
    /// wake-ups do not reach other processes).
    pub fn attach(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        let ptr = mapping.ptr_at::<libc::sem_t>(offset)?;
        super::check_initialised::<libc::sem_t>(mapping, offset, MAGIC, "shared semaphore")?;
        Ok(Self::at(ptr, offset))
    }

    fn at(ptr: *mut libc::sem_t, offset: usize) -> Self {
        SharedSem {
            sem: Sem {
                ptr,
                label: format!("(unnamed, at offset {offset})"),
            },
            _mapping: PhantomData,
        }
    }
}
