//! A process-shared read-write lock: a `pthread_rwlock_t` in a shared
//! [`Mapping`], made with `PTHREAD_PROCESS_SHARED`. See
//! [pthread_rwlockattr_setpshared(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlockattr_setpshared.3p.html).
//!
//! Many readers or one writer at a time. Two things to know before choosing it:
//!
//! - **No robustness.** POSIX has no robust read-write lock: if a process dies holding it (for
//!   reading or writing), nobody is told and the lock stays held **for ever**. Use the timed
//!   forms ([`SharedRwLock::read_timeout`], [`SharedRwLock::write_timeout`]) so that a dead
//!   holder shows up as a timeout you can act on (re-initialise once no process uses it), or
//!   use a [`RobustMutex`](crate::sync::mutex::RobustMutex) when holders may crash.
//! - **Readers first.** glibc's default (`PTHREAD_RWLOCK_PREFER_READER_NP`) lets a new reader
//!   in while a writer waits, so a steady stream of overlapping readers can starve a writer
//!   indefinitely. See
//!   [pthread_rwlockattr_setkind_np(3)](https://man7.org/linux/man-pages/man3/pthread_rwlockattr_setkind_np.3.html).
//!
//! A guard unlocks on drop, in the thread that locked (guards cannot be sent to another
//! thread). A thread that holds the write lock and asks for it again gets `EDEADLK`; one that
//! holds a read lock and asks for the write lock waits for ever (glibc does not track readers),
//! so only [`SharedRwLock::try_write`] or [`SharedRwLock::write_timeout`] get it out.
//!
//! libc is used here: rustix has no pthread read-write locks.
//!
//! ```
//! use ipckit::shm::mapping::Mapping;
//! use ipckit::sync::rwlock::SharedRwLock;
//! use std::time::Duration;
//! let m = Mapping::anonymous_shared(4096).unwrap();
//! let lock = SharedRwLock::init(&m, 0).unwrap();
//! {
//!     let _r1 = lock.read().unwrap();
//!     let _r2 = lock.try_read().unwrap().expect("readers share");
//!     // Another process would `SharedRwLock::attach`; a thread does here.
//!     std::thread::scope(|s| {
//!         s.spawn(|| {
//!             let other = SharedRwLock::attach(&m, 0).unwrap();
//!             assert!(other.try_write().unwrap().is_none());
//!             assert!(other.write_timeout(Duration::from_millis(10)).unwrap().is_none());
//!         });
//!     });
//! } // both read locks released here
//! let _w = lock.write().unwrap();
//! ```

use std::marker::PhantomData;
use std::mem::MaybeUninit;
use std::time::Duration;

use crate::error::{Errno, Error, ErrorKind, Result};
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::sync::{CLOCK, Until, errno, pthread_rwlock_clockrdlock, pthread_rwlock_clockwrlock};

/// A `pthread_rwlock_t` made process-shared, at an offset of a shared mapping, which it
/// borrows. Not robust: see the [module docs](self).
/// See [pthread_rwlockattr_setpshared(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlockattr_setpshared.3p.html).
#[derive(Debug)]
pub struct SharedRwLock<'a> {
    ptr: *mut libc::pthread_rwlock_t,
    offset: usize,
    _mapping: PhantomData<&'a Mapping>,
}

// SAFETY: a process-shared pthread rwlock is made to be locked from any thread and process;
// the borrow keeps its memory mapped.
unsafe impl Send for SharedRwLock<'_> {}
// SAFETY: as above.
unsafe impl Sync for SharedRwLock<'_> {}

use super::check;

/// The marker `init` writes after the rwlock ("IPKR").
const MAGIC: u32 = 0x4950_4b52;

impl<'a> SharedRwLock<'a> {
    /// Bytes the rwlock occupies at its offset: the `pthread_rwlock_t` and a marker word.
    pub fn footprint() -> usize {
        super::footprint::<libc::pthread_rwlock_t>()
    }

    /// `pthread_rwlock_init` with `PTHREAD_PROCESS_SHARED`: makes the `pthread_rwlock_t` at
    /// `offset` (aligned for it, 56 bytes on x86-64) an unlocked lock. Do it once, before other
    /// processes [`attach`](SharedRwLock::attach): initialising a lock in use breaks it.
    /// See [pthread_rwlock_init(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_init.3p.html).
    pub fn init(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        let ptr = mapping.ptr_at::<libc::pthread_rwlock_t>(offset)?;
        let op = "initialising shared rwlock";
        let mut attr = MaybeUninit::<libc::pthread_rwlockattr_t>::uninit();
        // SAFETY: pthread_rwlockattr_init initialises the attribute object it is given.
        check(
            unsafe { libc::pthread_rwlockattr_init(attr.as_mut_ptr()) },
            op,
        )?;
        // SAFETY: `attr` is initialised; `ptr` is in bounds, aligned and writable (checked by
        // ptr_at) and stays mapped while `mapping` is borrowed. `attr` is destroyed once, after
        // its last use.
        let r = unsafe {
            let r = match libc::pthread_rwlockattr_setpshared(
                attr.as_mut_ptr(),
                libc::PTHREAD_PROCESS_SHARED,
            ) {
                0 => libc::pthread_rwlock_init(ptr, attr.as_ptr()),
                e => e,
            };
            libc::pthread_rwlockattr_destroy(attr.as_mut_ptr());
            r
        };
        check(r, op).map_err(|e| e.object(format!("at offset {offset}")))?;
        super::mark_initialised::<libc::pthread_rwlock_t>(mapping, offset, MAGIC)?;
        Ok(Self::at(ptr, offset))
    }

    /// The lock another process [`init`](SharedRwLock::init)ed at `offset` of its mapping of
    /// the same memory (no system call).
    /// Memory no `init` marked is refused (zeroed memory would be a private rwlock whose
    /// wake-ups do not reach other processes).
    pub fn attach(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        let ptr = mapping.ptr_at::<libc::pthread_rwlock_t>(offset)?;
        super::check_initialised::<libc::pthread_rwlock_t>(
            mapping,
            offset,
            MAGIC,
            "shared rwlock",
        )?;
        Ok(Self::at(ptr, offset))
    }

    fn at(ptr: *mut libc::pthread_rwlock_t, offset: usize) -> Self {
        SharedRwLock {
            ptr,
            offset,
            _mapping: PhantomData,
        }
    }

    /// `Ok(true)` locked, `Ok(false)` busy or timed out.
    fn outcome(&self, r: libc::c_int, op: &'static str) -> Result<bool> {
        match r {
            0 => Ok(true),
            libc::EBUSY | libc::ETIMEDOUT => Ok(false),
            r => Err(Error::os(op, errno(r))
                .object(format!("at offset {}", self.offset))
                .hint_if(
                    Errno::DEADLK,
                    "this thread holds it already: drop that guard first",
                )
                .hint_if(Errno::AGAIN, "too many read locks are held")
                .hint_if(
                    Errno::INVAL,
                    "this is not an initialised lock: was SharedRwLock::init called on it?",
                )),
        }
    }

    fn read_guard(&self) -> ReadGuard<'_> {
        ReadGuard {
            ptr: self.ptr,
            _lock: PhantomData,
        }
    }

    fn write_guard(&self) -> WriteGuard<'_> {
        WriteGuard {
            ptr: self.ptr,
            _lock: PhantomData,
        }
    }

    /// One read-lock attempt under `deadline`: true when held.
    fn read_until(&self, deadline: Deadline) -> Result<bool> {
        let r = match Until::from(deadline) {
            // SAFETY: `ptr` is a rwlock in memory that stays mapped while `self` lives.
            Until::Forever => unsafe { libc::pthread_rwlock_rdlock(self.ptr) },
            // SAFETY: as above.
            Until::Once => unsafe { libc::pthread_rwlock_tryrdlock(self.ptr) },
            // SAFETY: as above; `at` is a valid timespec for the duration of the call.
            Until::At(at) => unsafe { pthread_rwlock_clockrdlock(self.ptr, CLOCK, &at) },
        };
        self.outcome(r, "read-locking shared rwlock")
    }

    /// One write-lock attempt under `deadline`: true when held.
    fn write_until(&self, deadline: Deadline) -> Result<bool> {
        let r = match Until::from(deadline) {
            // SAFETY: `ptr` is a rwlock in memory that stays mapped while `self` lives.
            Until::Forever => unsafe { libc::pthread_rwlock_wrlock(self.ptr) },
            // SAFETY: as above.
            Until::Once => unsafe { libc::pthread_rwlock_trywrlock(self.ptr) },
            // SAFETY: as above; `at` is a valid timespec for the duration of the call.
            Until::At(at) => unsafe { pthread_rwlock_clockwrlock(self.ptr, CLOCK, &at) },
        };
        self.outcome(r, "write-locking shared rwlock")
    }

    fn never_busy(&self, op: &'static str) -> Error {
        Error::new(ErrorKind::Os, op, "the lock call returned without the lock")
            .object(format!("at offset {}", self.offset))
    }

    /// `pthread_rwlock_rdlock`: a shared (read) lock, waiting as long as a writer holds it.
    /// See [pthread_rwlock_rdlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_rdlock.3p.html).
    pub fn read(&self) -> Result<ReadGuard<'_>> {
        if !self.read_until(Deadline::NEVER)? {
            return Err(self.never_busy("read-locking shared rwlock"));
        }
        Ok(self.read_guard())
    }

    /// `pthread_rwlock_tryrdlock`: a read lock if no writer holds it now; `Ok(None)` if one
    /// does (`EBUSY`).
    /// See [pthread_rwlock_tryrdlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_tryrdlock.3p.html).
    pub fn try_read(&self) -> Result<Option<ReadGuard<'_>>> {
        self.read_deadline(Deadline::now())
    }

    /// `pthread_rwlock_clockrdlock` (the `pthread_rwlock_timedrdlock` that takes a clock): a
    /// read lock, waiting at most `timeout`; `Ok(None)` when a writer still held it
    /// (`ETIMEDOUT`, or a dead writer). The deadline is on `CLOCK_MONOTONIC`, so setting the
    /// wall clock does not move it.
    /// See [pthread_rwlock_timedrdlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_timedrdlock.3p.html).
    pub fn read_timeout(&self, timeout: Duration) -> Result<Option<ReadGuard<'_>>> {
        self.read_deadline(Deadline::after(timeout))
    }

    /// `pthread_rwlock_clockrdlock` until `deadline` (`pthread_rwlock_tryrdlock` for one
    /// already passed, `pthread_rwlock_rdlock` for [`Deadline::NEVER`]); `Ok(None)` when a
    /// writer still held it.
    /// See [pthread_rwlock_timedrdlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_timedrdlock.3p.html).
    pub fn read_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<ReadGuard<'_>>> {
        Ok(self.read_until(deadline.into())?.then(|| self.read_guard()))
    }

    /// `pthread_rwlock_wrlock`: the exclusive (write) lock, waiting as long as anyone holds it.
    /// See [pthread_rwlock_wrlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_wrlock.3p.html).
    pub fn write(&self) -> Result<WriteGuard<'_>> {
        if !self.write_until(Deadline::NEVER)? {
            return Err(self.never_busy("write-locking shared rwlock"));
        }
        Ok(self.write_guard())
    }

    /// `pthread_rwlock_trywrlock`: the write lock if nobody holds the lock now; `Ok(None)` if
    /// somebody does (`EBUSY`).
    /// See [pthread_rwlock_trywrlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_trywrlock.3p.html).
    pub fn try_write(&self) -> Result<Option<WriteGuard<'_>>> {
        self.write_deadline(Deadline::now())
    }

    /// `pthread_rwlock_clockwrlock` (the `pthread_rwlock_timedwrlock` that takes a clock): the
    /// write lock, waiting at most `timeout`; `Ok(None)` when it was still held (`ETIMEDOUT`,
    /// or a dead holder). The deadline is on `CLOCK_MONOTONIC`.
    /// See [pthread_rwlock_timedwrlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_timedwrlock.3p.html).
    pub fn write_timeout(&self, timeout: Duration) -> Result<Option<WriteGuard<'_>>> {
        self.write_deadline(Deadline::after(timeout))
    }

    /// `pthread_rwlock_clockwrlock` until `deadline` (`pthread_rwlock_trywrlock` for one
    /// already passed, `pthread_rwlock_wrlock` for [`Deadline::NEVER`]); `Ok(None)` when it was
    /// still held.
    /// See [pthread_rwlock_timedwrlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_timedwrlock.3p.html).
    pub fn write_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<WriteGuard<'_>>> {
        Ok(self
            .write_until(deadline.into())?
            .then(|| self.write_guard()))
    }
}

/// `pthread_rwlock_unlock` on drop: a held read lock of a [`SharedRwLock`]. Not `Send`: it is
/// unlocked by the thread that locked it.
/// See [pthread_rwlock_unlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_unlock.3p.html).
#[derive(Debug)]
pub struct ReadGuard<'l> {
    ptr: *mut libc::pthread_rwlock_t,
    _lock: PhantomData<&'l ()>,
}

/// `pthread_rwlock_unlock` on drop: the held write lock of a [`SharedRwLock`]. Not `Send`: it
/// is unlocked by the thread that locked it.
/// See [pthread_rwlock_unlock(3p)](https://man7.org/linux/man-pages/man3/pthread_rwlock_unlock.3p.html).
#[derive(Debug)]
pub struct WriteGuard<'l> {
    ptr: *mut libc::pthread_rwlock_t,
    _lock: PhantomData<&'l ()>,
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this thread holds a read lock (the guard is not Send) on a rwlock that stays
        // mapped for the guard's lifetime.
        unsafe { libc::pthread_rwlock_unlock(self.ptr) };
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        // SAFETY: this thread holds the write lock (the guard is not Send) on a rwlock that
        // stays mapped for the guard's lifetime.
        unsafe { libc::pthread_rwlock_unlock(self.ptr) };
    }
}
