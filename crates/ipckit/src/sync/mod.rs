//! Synchronisation across processes: futexes, events, POSIX and System V semaphores, robust
//! mutexes and read-write locks living in shared memory.
//!
//! | you need | use | survives a holder's death |
//! |---|---|---|
//! | a one-bit "it happened" flag many processes wait on | [`event::Event`] | yes (it has no holder) |
//! | a counter by name, unrelated processes | [`sem_posix::PosixSem`] | no: a dead process's `wait` stays taken |
//! | a counter inside a shared mapping | [`sem_posix::SharedSem`] | no |
//! | several counters changed atomically, undone if a process dies | [`sem_sysv::SysvSemSet`] | yes, with `SEM_UNDO` (the default) |
//! | a typed value behind a lock, in memory the handle owns (`Mutex<T>`-like) | [`shared::SharedMutex`] | yes: the next locker is told (`EOWNERDEAD`) |
//! | a typed value read and written whole, no lock | [`shared::Shared`] | yes (it has no holder) |
//! | mutual exclusion at an offset of a shared mapping | [`mutex::RobustMutex`] | yes: the next locker is told (`EOWNERDEAD`) |
//! | many readers or one writer in a shared mapping | [`rwlock::SharedRwLock`] | no: use the timed forms |
//! | your own primitive | [`futex`] | up to you |
//!
//! The objects that live in a [`Mapping`](crate::shm::mapping::Mapping) (events, unnamed
//! semaphores, mutexes, rwlocks) are set up once with `init` by one process, before any other
//! process uses them, and reached with `attach` by the others. Every process that maps the
//! memory is trusted: one that scribbles over a lock breaks it for all.
//!
//! Every wait has the same four forms: `wait()` (as long as it takes), `try_wait()` (never
//! waits), `wait_timeout(Duration)` and `wait_deadline(impl Into<Deadline>)`; locks spell them
//! `lock`/`try_lock`/`lock_timeout`/`lock_deadline` (and `read_*`, `write_*`), System V sets
//! `op`/`try_op`/`op_timeout`/`op_deadline`. "Not in time" is `Ok(false)` or `Ok(None)`, never
//! an error.
//!
//! ```
//! use ipckit::Deadline;
//! use ipckit::sync::sem_posix::{self, PosixSem};
//! use std::time::Duration;
//! let name = ipckit::name::unique_posix("doc-sync");
//! let sem = PosixSem::create(&name, &sem_posix::Options::new(2)).unwrap();
//! sem.wait().unwrap(); // as long as it takes
//! assert!(sem.try_wait().unwrap()); // never waits
//! assert!(!sem.wait_timeout(Duration::from_millis(10)).unwrap()); // the count is 0 now
//! // One deadline for several waits in a row: each gets the time that is left.
//! let deadline = Deadline::after(Duration::from_millis(10));
//! assert!(!sem.wait_deadline(deadline).unwrap());
//! sem.post().unwrap();
//! assert!(sem.wait_deadline(deadline).unwrap()); // taken at once, even past the deadline
//! ```

pub mod event;
pub mod futex;
pub mod mutex;
pub mod rwlock;
pub mod sem_posix;
pub mod sem_sysv;
pub mod shared;

use std::time::Duration;

// The clock-choosing timed waits (glibc 2.30 and later), which the libc crate does not
// declare for Linux. With CLOCK_MONOTONIC, setting the wall clock neither stretches nor cuts a
// timeout, as it would the CLOCK_REALTIME deadline of sem_timedwait and *_timedlock.
unsafe extern "C" {
    pub(crate) fn sem_clockwait(
        sem: *mut libc::sem_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
    pub(crate) fn pthread_mutex_clocklock(
        mutex: *mut libc::pthread_mutex_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
    pub(crate) fn pthread_rwlock_clockrdlock(
        lock: *mut libc::pthread_rwlock_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
    pub(crate) fn pthread_rwlock_clockwrlock(
        lock: *mut libc::pthread_rwlock_t,
        clock: libc::clockid_t,
        abstime: *const libc::timespec,
    ) -> libc::c_int;
}

/// The clock every timed wait here measures against.
pub(crate) const CLOCK: libc::clockid_t = libc::CLOCK_MONOTONIC;

/// The `CLOCK_MONOTONIC` moment `timeout` from now, as the absolute `timespec` that
/// `sem_clockwait`, `pthread_mutex_clocklock` and `pthread_rwlock_clock*lock` take. Saturates
/// instead of overflowing, so `Duration::MAX` means "for ever".
pub(crate) fn deadline_after(timeout: Duration) -> libc::timespec {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    let mut sec = now.tv_sec.saturating_add(secs);
    let mut nsec = now.tv_nsec as i64 + i64::from(timeout.subsec_nanos());
    if nsec >= 1_000_000_000 {
        nsec -= 1_000_000_000;
        sec = sec.saturating_add(1);
    }
    timespec(sec, nsec)
}

/// How a wait with a [`Deadline`](crate::poll::Deadline) is made: with the call that waits
/// for ever, with the one that never waits (a deadline already passed), or with the timed call
/// and the `CLOCK_MONOTONIC` time to give up at.
pub(crate) enum Until {
    Forever,
    Once,
    At(libc::timespec),
}

impl Until {
    pub(crate) fn from(deadline: crate::poll::Deadline) -> Self {
        match deadline.remaining() {
            None => Until::Forever,
            Some(left) if left.is_zero() => Until::Once,
            Some(left) => Until::At(deadline_after(left)),
        }
    }
}

/// A relative `timespec` for `timeout`, saturating (for `semtimedop`).
pub(crate) fn relative(timeout: Duration) -> libc::timespec {
    timespec(
        i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        i64::from(timeout.subsec_nanos()),
    )
}

fn timespec(sec: i64, nsec: i64) -> libc::timespec {
    // SAFETY: timespec is plain integers (and, on some targets, padding); all zeroes is valid.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    ts.tv_sec = sec as libc::time_t;
    ts.tv_nsec = nsec as _;
    ts
}

/// The errno a pthread or libc call returned (pthread calls return it instead of setting it).
pub(crate) fn errno(raw: libc::c_int) -> crate::Errno {
    crate::Errno::from_raw_os_error(raw)
}

/// The errno a libc call that returned -1 left in `errno`.
pub(crate) use crate::error::last_errno;

/// A pthread call's result: 0, or the errno it returned (pthread calls return it rather than
/// set it).
pub(crate) fn check(r: libc::c_int, op: &'static str) -> crate::Result<()> {
    if r == 0 {
        Ok(())
    } else {
        Err(crate::Error::os(op, errno(r)))
    }
}

/// Zeroed memory is a valid but *process-private* pthread mutex, rwlock or semaphore, whose
/// wake-ups do not cross processes: attaching to memory nobody initialised would lose wake-ups
/// silently. So `init` writes a marker word right after the object (the object occupies
/// [`footprint`] bytes), and `attach` refuses memory without it.
pub(crate) fn footprint<T>() -> usize {
    std::mem::size_of::<T>().next_multiple_of(4) + 4
}

fn marker<T>(
    mapping: &crate::shm::mapping::Mapping,
    offset: usize,
) -> crate::Result<&std::sync::atomic::AtomicU32> {
    let at = offset
        .checked_add(std::mem::size_of::<T>().next_multiple_of(4))
        .ok_or_else(|| {
            crate::Error::new(
                crate::ErrorKind::InvalidInput,
                "placing shared object",
                "offset too large",
            )
        })?;
    mapping.atomic_u32(at)
}

/// Marks the `T` at `offset` initialised (after `pthread_*_init` / `sem_init` returned).
pub(crate) fn mark_initialised<T>(
    mapping: &crate::shm::mapping::Mapping,
    offset: usize,
    magic: u32,
) -> crate::Result<()> {
    marker::<T>(mapping, offset)?.store(magic, std::sync::atomic::Ordering::Release);
    Ok(())
}

/// Refuses to attach to a `T` at `offset` that no `init` marked.
pub(crate) fn check_initialised<T>(
    mapping: &crate::shm::mapping::Mapping,
    offset: usize,
    magic: u32,
    what: &'static str,
) -> crate::Result<()> {
    if marker::<T>(mapping, offset)?.load(std::sync::atomic::Ordering::Acquire) != magic {
        return Err(crate::Error::new(
            crate::ErrorKind::InvalidInput,
            "attaching to",
            format!("no {what} was initialised there"),
        )
        .object(format!("offset {offset} of the mapping"))
        .hint("initialise it first (init) in one process, then attach in the others"));
    }
    Ok(())
}
