//! A manual-reset event in shared memory: one `u32` in a
//! [`Mapping`], waited on with `futex(2)`. See
//! [futex(7)](https://man7.org/linux/man-pages/man7/futex.7.html).
//!
//! [`Event::set`] wakes every waiter, and the event stays set (later waits return at once)
//! until [`Event::reset`]. It has no holder, so a process dying does not break it: at worst the
//! event is never set, which is why every wait has a timed form.
//!
//! The word holds 0 (not set, nobody waiting), 2 (not set, someone may be waiting) or 1 (set):
//! `set` makes the wake-up system call only when someone may be waiting.
//!
//! ```
//! use ipckit::shm::mapping::Mapping;
//! use ipckit::sync::event::Event;
//! use std::time::Duration;
//! let m = Mapping::anonymous_shared(4096).unwrap();
//! let ev = Event::init(&m, 0).unwrap();
//! assert!(!ev.wait_timeout(Duration::from_millis(10)).unwrap());
//! // Another process would `Event::attach(&its_mapping, 0)` and set it; a thread does here.
//! std::thread::scope(|s| {
//!     s.spawn(|| Event::attach(&m, 0).unwrap().set().unwrap());
//!     ev.wait().unwrap();
//! });
//! assert!(ev.try_wait());
//! ev.reset();
//! assert!(!ev.is_set());
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::Result;
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::sync::futex;

const UNSET: u32 = 0;
const SET: u32 = 1;
const UNSET_WAITERS: u32 = 2;

/// A `futex(2)` word used as an event: the `u32` at an offset of a shared mapping, which it
/// borrows (so the memory stays mapped while the event is used).
/// See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    word: &'a AtomicU32,
}

impl<'a> Event<'a> {
    /// Initialises the 4-byte aligned word at `offset` to "not set" (a plain atomic store, no
    /// system call). Do it once, before other processes [`attach`](Event::attach): it forgets
    /// an earlier state and strands waiters.
    pub fn init(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        let word = mapping.atomic_u32(offset)?;
        word.store(UNSET, Ordering::Release);
        Ok(Event { word })
    }

    /// The event another process [`init`](Event::init)ialised at `offset` of its mapping of
    /// the same memory (no system call). An event has no marker: zeroed memory is an event
    /// that is not set.
    pub fn attach(mapping: &'a Mapping, offset: usize) -> Result<Self> {
        Ok(Event {
            word: mapping.atomic_u32(offset)?,
        })
    }

    /// `futex(FUTEX_WAKE, INT_MAX)` if anyone may wait: sets the event and wakes every waiter,
    /// in every process. See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
    pub fn set(&self) -> Result<()> {
        if self.word.swap(SET, Ordering::AcqRel) == UNSET_WAITERS {
            futex::wake(self.word, u32::MAX)?;
        }
        Ok(())
    }

    /// Clears a set event (no system call); waits after this block again. A waiter that `set`
    /// woke but that has not run yet can see the reset state and sleep again: to hand over
    /// every occurrence, use a semaphore instead.
    pub fn reset(&self) {
        let _ = self
            .word
            .compare_exchange(SET, UNSET, Ordering::AcqRel, Ordering::Acquire);
    }

    /// True while the event is set (a load, no system call).
    pub fn is_set(&self) -> bool {
        self.word.load(Ordering::Acquire) == SET
    }

    /// The wait that never waits: true if the event is set now (the same answer as
    /// [`is_set`](Event::is_set)).
    pub fn try_wait(&self) -> bool {
        self.is_set()
    }

    /// `futex(FUTEX_WAIT)` until the event is set (at once if it is).
    /// See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
    pub fn wait(&self) -> Result<()> {
        self.wait_until(Deadline::NEVER).map(drop)
    }

    /// `futex(FUTEX_WAIT, timeout)`: waits at most `timeout` for the event to be set; `Ok(false)`
    /// when it was not set in time. See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_until(Deadline::after(timeout))
    }

    /// `futex(FUTEX_WAIT, time left)`: waits until `deadline` for the event to be set;
    /// `Ok(false)` when it was not set in time.
    /// See [futex(2)](https://man7.org/linux/man-pages/man2/futex.2.html).
    pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<bool> {
        self.wait_until(deadline.into())
    }

    fn wait_until(&self, deadline: Deadline) -> Result<bool> {
        loop {
            match self.word.load(Ordering::Acquire) {
                SET => return Ok(true),
                UNSET_WAITERS => {}
                // Not set (or a value no event writes): tell `set` that someone is about to
                // sleep, and look again if the state moved meanwhile.
                seen => {
                    if self
                        .word
                        .compare_exchange(seen, UNSET_WAITERS, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        continue;
                    }
                }
            }
            if deadline.expired() {
                return Ok(false);
            }
            // Sleeps only while the word is still UNSET_WAITERS; a `set` in between changes it.
            if !futex::wait_deadline(self.word, UNSET_WAITERS, deadline)? {
                return Ok(self.is_set());
            }
        }
    }
}
