//! Futexes: `futex(2)` `FUTEX_WAIT` and `FUTEX_WAKE` on a 32-bit word, the kernel primitive
//! under every Linux lock. See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html)
//! and [futex(7)](https://man7.org/linux/man-pages/man7/futex.7.html).
//!
//! The word may live in memory shared with other processes (a
//! [`Mapping`](crate::shm::mapping::Mapping)), so these calls never use `FUTEX_PRIVATE_FLAG`:
//! the kernel keys the wait queue by the physical page, and a wake in one process reaches a
//! waiter in another. This is the one place ipckit makes futex system calls.
//!
//! A futex is not a lock by itself: [`wait`] (and its timed forms [`wait_timeout`] and
//! [`wait_deadline`]) sleeps only while the word still holds the value
//! the caller saw, and may return early for no reason, so every caller re-checks its own
//! condition in a loop (see [`crate::sync::event`] for a complete example).
//!
//! ```
//! use ipckit::shm::mapping::Mapping;
//! use ipckit::sync::futex;
//! use std::sync::atomic::Ordering;
//! use std::time::Duration;
//! let m = Mapping::anonymous_shared(4096).unwrap();
//! let word = m.atomic_u32(0).unwrap();
//! // The word is 0, not 1: no sleep at all.
//! futex::wait(word, 1).unwrap();
//! // The word is 0 and nobody wakes us: the wait times out.
//! assert!(!futex::wait_timeout(word, 0, Duration::from_millis(10)).unwrap());
//! word.store(1, Ordering::Release);
//! assert_eq!(futex::wake(word, u32::MAX).unwrap(), 0); // nobody was waiting
//! ```

use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rustix::thread::futex::{self as sys, Flags, Timespec};

use crate::error::{Context, Errno, Result};
use crate::poll::Deadline;

/// `futex(word, FUTEX_WAIT, expected, NULL)`: sleeps while `*word == expected`, until a
/// [`wake`] on the same word. Returns at once when the word does not hold `expected`
/// (`EAGAIN`); wake-ups can be spurious, so re-check the condition. A signal (`EINTR`) does
/// not end the wait. See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
pub fn wait(word: &AtomicU32, expected: u32) -> Result<()> {
    wait_until(word, expected, Deadline::NEVER).map(drop)
}

/// `futex(word, FUTEX_WAIT, expected, timeout)`: as [`wait`], giving up after `timeout`.
/// `Ok(true)` when woken (or the word did not hold `expected`), `Ok(false)` when `timeout`
/// passed first. See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
pub fn wait_timeout(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<bool> {
    wait_until(word, expected, Deadline::after(timeout))
}

/// `futex(word, FUTEX_WAIT, expected, time left)`: as [`wait_timeout`], giving up at
/// `deadline` (for callers that chain several waits under one deadline). A deadline already
/// passed still compares the word: `Ok(true)` if it did not hold `expected`.
/// See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
pub fn wait_deadline(
    word: &AtomicU32,
    expected: u32,
    deadline: impl Into<Deadline>,
) -> Result<bool> {
    wait_until(word, expected, deadline.into())
}

fn wait_until(word: &AtomicU32, expected: u32, deadline: Deadline) -> Result<bool> {
    loop {
        let ts = deadline.remaining().map(|d| Timespec {
            tv_sec: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(d.subsec_nanos()),
        });
        // A deadline already passed: the kernel still checks the value first, then times out.
        match sys::wait(word, Flags::empty(), expected, ts.as_ref()) {
            Ok(()) | Err(Errno::AGAIN) => return Ok(true),
            Err(Errno::TIMEDOUT) => return Ok(false),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e).during("waiting on futex", format!("{word:p}")),
        }
    }
}

/// `futex(word, FUTEX_WAKE, n)`: wakes up to `n` processes or threads waiting on `word`
/// (`u32::MAX` for all of them, capped by the kernel at `i32::MAX`); returns how many woke.
/// See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
pub fn wake(word: &AtomicU32, n: u32) -> Result<usize> {
    sys::wake(word, Flags::empty(), n.min(i32::MAX as u32))
        .during("waking futex waiters", format!("{word:p}"))
}
