//! A robust, process-shared mutex: a `pthread_mutex_t` in a shared
//! [`Mapping`], made with `PTHREAD_PROCESS_SHARED` and
//! `PTHREAD_MUTEX_ROBUST`. See
//! [pthread_mutexattr_setrobust(3)](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html).
//!
//! # When the holder dies
//! Robust means the kernel notices when a thread or process dies holding the mutex: the next
//! locker gets it anyway, and its [`MutexGuard::owner_died`] is true (`EOWNERDEAD`). The data
//! the mutex guards may be half-updated: check or repair it, then call
//! [`MutexGuard::make_consistent`] before the guard is dropped. A guard dropped without it
//! leaves the mutex **unrecoverable**: every later lock fails with `ENOTRECOVERABLE` (an error
//! whose hint says so), in every process, until the memory is initialised again with
//! [`RobustMutex::init`] while no process uses it.
//!
//! The mutex is also error-checking (`PTHREAD_MUTEX_ERRORCHECK`): a thread locking it twice
//! gets `EDEADLK` instead of hanging. A [`MutexGuard`] unlocks on drop, in the thread that
//! locked (it cannot be sent to another thread).
//!
//! A `RobustMutex` borrows the mapping it lives in and guards nothing by itself: the data sits
//! at offsets of the same mapping. To keep the mutex, its mapping and a typed value together
//! in one owned handle whose guard derefs to the value, use
//! [`SharedMutex`](crate::sync::shared::SharedMutex).
//!
//! libc is used here: rustix has no pthread mutexes.
//!
//! ```
//! use ipckit::shm::mapping::Mapping;
//! use ipckit::sync::mutex::RobustMutex;
//! use std::time::Duration;
//! let m = Mapping::anonymous_shared(4096).unwrap();
//! let mutex = RobustMutex::init(&m, 0).unwrap();
//! // The data it guards lives in the same mapping, here a counter at offset 64.
//! {
//!     let guard = mutex.lock().unwrap();
//!     assert!(!guard.owner_died());
//!     let n: u64 = m.read_pod(64).unwrap();
//!     m.write_pod(64, &(n + 1)).unwrap();
//!     // Held: another attempt from a second handle (another process would `attach`) fails.
//!     std::thread::scope(|s| {
//!         s.spawn(|| {
//!             let other = RobustMutex::attach(&m, 0).unwrap();
//!             assert!(other.try_lock().unwrap().is_none());
//!             assert!(other.lock_timeout(Duration::from_millis(10)).unwrap().is_none());
//!         });
//!     });
//! } // unlocked here
//! assert!(mutex.try_lock().unwrap().is_some());
//! ```

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::Duration;

use crate::error::{Errno, Error, ErrorKind, Result};
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::sync::{CLOCK, Until, errno, pthread_mutex_clocklock};

use super::check;

/// A `pthread_mutex_t` made robust and process-shared, at an offset of a shared mapping, which
/// it borrows. See
/// [pthread_mutexattr_setrobust(3)](https://man7.org/linux/man-pages/man3/pthread_mutexattr_setrobust.3.html).
#[derive(Debug)]
pub struct RobustMutex<'a> {
    raw: RawMutex,
    _mapping: PhantomData<&'a Mapping>,
}

/// The mutex itself, without the borrow: a pointer into a mapping that whoever holds a
/// `RawMutex` keeps mapped ([`RobustMutex`] by its borrow, `SharedMutex` by owning the
/// mapping).
#[derive(Debug)]
pub(crate) struct RawMutex {
    ptr: *mut libc::pthread_mutex_t,
    offset: usize,
}

// SAFETY: a process-shared pthread mutex is made to be locked from any thread and process; the
// borrow keeps its memory mapped.
unsafe impl Send for RobustMutex<'_> {}
// SAFETY: as above.
unsafe impl Sync for RobustMutex<'_> {}

/// A `pthread_mutexattr_t`, destroyed on drop.
struct Attr(MaybeUninit<libc::pthread_mutexattr_t>);

impl Attr {
    fn new() -> Result<Self> {
        let mut a = Attr(MaybeUninit::uninit());
        // SAFETY: pthread_mutexattr_init initialises the attribute object it is given.
        check(
            unsafe { libc::pthread_mutexattr_init(a.0.as_mut_ptr()) },
            "initialising mutex attributes",
        )?;
        Ok(a)
    }

    fn ptr(&mut self) -> *mut libc::pthread_mutexattr_t {
        self.0.as_mut_ptr()
    }
}

impl Drop for Attr {
    fn drop(&mut self) {
        // SAFETY: initialised in `new` (an Attr exists only once it is).
        unsafe { libc::pthread_mutexattr_destroy(self.0.as_mut_ptr()) };
    }
}

/// The marker `init` writes after the mutex ("IPKM").
const MAGIC: u32 = 0x4950_4b4d;

impl RawMutex {
    pub(crate) fn footprint() -> usize {
        super::footprint::<libc::pthread_mutex_t>()
    }

    /// Makes the memory at `offset` an unlocked robust mutex. The caller keeps `mapping`
    /// mapped as long as the returned value is used.
    pub(crate) fn init(mapping: &Mapping, offset: usize) -> Result<Self> {
        let ptr = mapping.ptr_at::<libc::pthread_mutex_t>(offset)?;
        let op = "initialising robust mutex";
        let obj = format!("at offset {offset}");
        let mut attr = Attr::new()?;
        // SAFETY: `attr` is initialised; these setters only write it.
        unsafe {
            check(
                libc::pthread_mutexattr_setpshared(attr.ptr(), libc::PTHREAD_PROCESS_SHARED),
                op,
            )?;
            check(
                libc::pthread_mutexattr_setrobust(attr.ptr(), libc::PTHREAD_MUTEX_ROBUST),
                op,
            )?;
            check(
                libc::pthread_mutexattr_settype(attr.ptr(), libc::PTHREAD_MUTEX_ERRORCHECK),
                op,
            )?;
        }
        // SAFETY: `ptr` is in bounds, aligned and writable (checked by ptr_at) and stays
        // mapped while `mapping` is; `attr` is initialised.
        check(unsafe { libc::pthread_mutex_init(ptr, attr.ptr()) }, op)
            .map_err(|e| e.object(&obj))?;
        super::mark_initialised::<libc::pthread_mutex_t>(mapping, offset, MAGIC)?;
        Ok(RawMutex { ptr, offset })
    }

    /// The mutex an `init` made at `offset`; memory no `init` marked is refused.
    pub(crate) fn attach(mapping: &Mapping, offset: usize) -> Result<Self> {
        let ptr = mapping.ptr_at::<libc::pthread_mutex_t>(offset)?;
        super::check_initialised::<libc::pthread_mutex_t>(mapping, offset, MAGIC, "robust mutex")?;
        Ok(RawMutex { ptr, offset })
    }

    /// One lock attempt under `deadline`: `Some(owner_died)` when this thread holds the mutex,
    /// `None` when another held it past the deadline.
    pub(crate) fn lock_until(&self, deadline: Deadline) -> Result<Option<bool>> {
        let (r, op) = match Until::from(deadline) {
            // SAFETY: `ptr` is a mutex in memory that stays mapped while `self` is used.
            Until::Forever => (unsafe { libc::pthread_mutex_lock(self.ptr) }, "locking"),
            // SAFETY: as above.
            Until::Once => (unsafe { libc::pthread_mutex_trylock(self.ptr) }, "trying"),
            // SAFETY: as above; `at` is a valid timespec for the duration of the call.
            Until::At(at) => (
                unsafe { pthread_mutex_clocklock(self.ptr, CLOCK, &at) },
                "locking",
            ),
        };
        match r {
            0 => Ok(Some(false)),
            libc::EOWNERDEAD => Ok(Some(true)),
            libc::EBUSY | libc::ETIMEDOUT => Ok(None),
            r => Err(Error::os(
                if op == "trying" {
                    "trying robust mutex"
                } else {
                    "locking robust mutex"
                },
                errno(r),
            )
            .object(format!("at offset {}", self.offset))
            .hint_if(
                Errno::NOTRECOVERABLE,
                "a holder died and the next one unlocked without make_consistent(): the \
                 mutex can never be locked again; once no process uses it, init it again \
                 and check the data it guarded",
            )
            .hint_if(
                Errno::DEADLK,
                "this thread holds it already: drop that guard first",
            )
            .hint_if(
                Errno::INVAL,
                "this is not an initialised mutex: was it initialised with init?",
            )),
        }
    }

    /// `pthread_mutex_consistent`, by the thread that holds the mutex after `EOWNERDEAD`.
    pub(crate) fn make_consistent(&self) -> Result<()> {
        // SAFETY: the caller holds this robust mutex, locked with EOWNERDEAD.
        check(
            unsafe { libc::pthread_mutex_consistent(self.ptr) },
            "marking robust mutex consistent",
        )
    }

    /// `pthread_mutex_unlock`, by the thread that holds the mutex.
    pub(crate) fn unlock(&self) {
        // SAFETY: the caller holds the mutex, which stays mapped while `self` is used.
        unsafe { libc::pthread_mutex_unlock(self.ptr) };
    }
}

impl<'a> RobustMutex<'a> {
    /// Bytes the mutex occupies at its offset: the `pthread_mutex_t` and a marker word.
    pub fn footprint() -> usize {
        RawMutex::footprint()
    }

    /// `pthread_mutex_init` with `PTHREAD_PROCESS_SHARED`, `PTHREAD_MUTEX_ROBUST` and
    /// `PTHREAD_MUTEX_ERRORCHECK`: makes the `pthread_mutex_t` at `offset` (aligned for it, 40
    /// bytes on x86-64) an unlocked mutex. Do it once, before other processes
    /// [`attach`](RobustMutex::attach): initialising a mutex in use breaks it for its holder and
    /// waiters. See [pthread_mutex_init(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_init.3p.html).
    pub fn init(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(Self::wrap(RawMutex::init(mapping, offset)?))
    }

    /// The mutex another process [`init`](RobustMutex::init)ed at `offset` of its mapping of
    /// the same memory (no system call).
    /// Memory no `init` marked is refused (zeroed memory would be a private mutex whose
    /// wake-ups do not reach other processes).
    pub fn attach(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(Self::wrap(RawMutex::attach(mapping, offset)?))
    }

    fn wrap(raw: RawMutex) -> Self {
        RobustMutex {
            raw,
            _mapping: PhantomData,
        }
    }

    fn guard(&self, owner_died: Option<bool>) -> Option<MutexGuard<'_>> {
        owner_died.map(|owner_died| MutexGuard {
            raw: &self.raw,
            owner_died,
            inconsistent: owner_died,
            _not_send: PhantomData,
        })
    }

    /// `pthread_mutex_lock`: waits for the mutex as long as it takes. The guard tells whether
    /// the previous holder died holding it. Fails with `ENOTRECOVERABLE` for a mutex left
    /// unrecoverable, `EDEADLK` if this thread holds it already.
    /// See [pthread_mutex_lock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_lock.3p.html).
    pub fn lock(&self) -> Result<MutexGuard<'_>> {
        let got = self.raw.lock_until(Deadline::NEVER)?;
        self.guard(got).ok_or_else(|| {
            Error::new(
                ErrorKind::Os,
                "locking robust mutex",
                "pthread_mutex_lock returned without the mutex",
            )
        })
    }

    /// `pthread_mutex_trylock`: the mutex if it is free now, `Ok(None)` if another holds it
    /// (`EBUSY`). See [pthread_mutex_lock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_lock.3p.html).
    pub fn try_lock(&self) -> Result<Option<MutexGuard<'_>>> {
        self.lock_deadline(Deadline::now())
    }

    /// `pthread_mutex_clocklock` (the `pthread_mutex_timedlock` that takes a clock): waits at
    /// most `timeout`; `Ok(None)` when another still held it (`ETIMEDOUT`). The deadline is on
    /// `CLOCK_MONOTONIC`, so setting the wall clock does not move it.
    /// See [pthread_mutex_timedlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_timedlock.3p.html).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<MutexGuard<'_>>> {
        self.lock_deadline(Deadline::after(timeout))
    }

    /// `pthread_mutex_clocklock` until `deadline` (`pthread_mutex_trylock` for one already
    /// passed, `pthread_mutex_lock` for [`Deadline::NEVER`]); `Ok(None)` when another still
    /// held it.
    /// See [pthread_mutex_timedlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_timedlock.3p.html).
    pub fn lock_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<MutexGuard<'_>>> {
        Ok(self.guard(self.raw.lock_until(deadline.into())?))
    }
}

/// `pthread_mutex_unlock` on drop: a held [`RobustMutex`]. Not `Send`: a pthread mutex is
/// unlocked by the thread that locked it.
/// See [pthread_mutex_unlock(3p)](https://man7.org/linux/man-pages/man3/pthread_mutex_unlock.3p.html).
#[derive(Debug)]
pub struct MutexGuard<'m> {
    raw: &'m RawMutex,
    owner_died: bool,
    inconsistent: bool,
    _not_send: PhantomData<*mut ()>,
}

impl MutexGuard<'_> {
    /// True when the previous holder died holding the mutex (the lock returned `EOWNERDEAD`):
    /// the guarded data may be half-updated. Stays true after
    /// [`make_consistent`](MutexGuard::make_consistent).
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// `pthread_mutex_consistent`: after repairing the data, marks the mutex usable again.
    /// Without it, dropping this guard makes the mutex unrecoverable for ever. Does nothing
    /// when the previous holder did not die.
    /// See [pthread_mutex_consistent(3)](https://man7.org/linux/man-pages/man3/pthread_mutex_consistent.3.html).
    pub fn make_consistent(&mut self) -> Result<()> {
        if self.inconsistent {
            self.raw.make_consistent()?;
            self.inconsistent = false;
        }
        Ok(())
    }
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        // This thread holds the mutex (the guard is not Send), which stays mapped for the
        // guard's lifetime.
        self.raw.unlock();
    }
}
