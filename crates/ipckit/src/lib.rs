//! ipckit: every Linux IPC mechanism, safe, owned and measured.
//!
//! # Which mechanism for which constraint
//!
//! | you need | use | module |
//! |---|---|---|
//! | parent → child bytes, one way | anonymous pipe | [`stream::pipe`] |
//! | unrelated processes, one way, a name on disk, works with `cat` | FIFO | [`stream::fifo`] |
//! | two-way, many clients, a server | Unix stream socket | [`socket::unix`] |
//! | message boundaries | Unix seqpacket or datagram socket | [`socket::unix`] |
//! | pass an open file or the caller's pid/uid | Unix socket + ancillary data | [`socket::ancillary`] |
//! | the same code over a network later | TCP (loopback here) | [`socket::tcp`] |
//! | a wake-up counter, pollable | eventfd | [`notify::eventfd`] |
//! | signals without async-signal-safety traps | signalfd, self-pipe | [`notify::signal`] |
//! | know when a process exits, pollable | pidfd | [`notify::pidfd`] |
//! | messages with priorities, pollable, survive the sender | POSIX message queue | [`mq::posix`] |
//! | messages with types a receiver filters on | System V message queue | [`mq::sysv`] |
//! | messages at the hardware's speed between ipckit processes, zero copy, peer death seen | ipckit's channel | [`channel`] |
//! | the most bandwidth, by name | POSIX shared memory | [`shm::posix`] |
//! | shared memory other (C) programs find by key | System V shared memory | [`shm::sysv`] |
//! | shared memory with no name to leak, sealable | memfd | [`shm::memfd`] |
//! | parent and child share memory | anonymous shared mapping | [`shm::mapping`] |
//! | count resources across processes | POSIX or System V semaphore | [`sync::sem_posix`], [`sync::sem_sysv`] |
//! | a semaphore the kernel releases when its holder dies | System V semaphore with `SEM_UNDO` | [`sync::sem_sysv`] |
//! | a lock that survives its holder's death | robust process-shared mutex | [`sync::mutex`] |
//! | many readers, one writer | process-shared rwlock (not robust) | [`sync::rwlock`] |
//! | wake a waiting process, no descriptor needed | futex event | [`sync::event`] |
//! | a plain struct in shared memory behind a lock, like `std::sync::Mutex<T>` | owned robust mutex over a `Pod` value | [`sync::shared`] |
//! | hand a socket end, memfd or pipe end to a child started with `std::process::Command` | inherited descriptor, by name | [`inherit`] |
//!
//! Shared memory is the fastest and the one where you own the synchronisation; the benchmark
//! (`ipckit bench`) measures all of them on your machine.
//!
//! [`host`] lists what is on the host now: every IPC object, who holds it, and whether it is
//! an orphan nobody can come back to (what `ipckit ls` and `ipckit gc` show).
//!
//! [`files`] writes and reads the files ipckit makes for a user (reports, manual pages) so
//! that another user's symlink or directory cannot redirect them.
//!
//! # Conventions: learn one mechanism, know them all
//! - **Waiting.** Every blocking operation `x` has `try_x()` (never waits), `x_timeout(Duration)`
//!   and, where waits chain, `x_deadline(impl Into<`[`Deadline`]`>)`: one deadline for a
//!   sequence of calls. Waiting for data or a count reports "nothing in time" as `Ok(None)` or
//!   `Ok(false)`; waiting to establish something (open, connect, rendezvous) fails with
//!   [`ErrorKind::TimedOut`]. No timeout is an `Option<Duration>`.
//! - **Named objects.** `create(name, &Options)` makes the object with `O_EXCL` (an existing one
//!   is an error, never adopted) and owns it: it is removed when the handle drops.
//!   `open(name, `[`Access`]`)` joins an existing one and never removes it. `persist(self)`
//!   gives back a handle that leaves the object in place; `remove(self)` removes it now and
//!   reports the error; a module-level `remove(name)` removes a name nobody holds. See
//!   [`object`].
//! - **Modes.** Objects are created `0600` unless `Options::mode` asks for more; bits outside
//!   `0o777` are refused, and the mode is applied exactly (the umask does not narrow it).
//! - **Objects inside a mapping** (locks, semaphores, events, [`sync::shared`]) have `init`
//!   (format) and `attach` (join).
//! - **Descriptors.** Every descriptor is an [`OwnedFd`](std::os::fd::OwnedFd) opened with
//!   `O_CLOEXEC`, every handle implements [`AsFd`](std::os::fd::AsFd) so it fits your own epoll
//!   loop, and every `from_fd` checks the descriptor is of the right kind. [`inherit`] hands one
//!   to an exec'd child.
//! - **Pids** are [`Pid`] (`u32`, as `std::process::Child::id` gives them).
//! - **Errors** name the operation, the object, the errno and what to do ([`Error`]); their
//!   `Debug` is the same one line.
//! - **Docs** of every function that wraps a system call open with the C call and link its
//!   man page.

#![warn(missing_docs)]

/// Implements `set_nonblocking` for a handle whose descriptor is in `$field`. Not for handles
/// that rely on `O_NONBLOCK` inside (eventfd, signalfd, queues), which wait through poll.
macro_rules! impl_nonblocking {
    ($name:ident, $field:tt) => {
        impl $name {
            /// Sets or clears `O_NONBLOCK` on the open file description (shared with every
            /// duplicate, in other processes too): operations then fail with `WouldBlock`
            /// instead of waiting.
            pub fn set_nonblocking(&self, on: bool) -> $crate::Result<()> {
                $crate::poll::set_nonblocking(&self.$field, on)
            }
        }
    };
}

/// Implements `AsFd` and `AsRawFd` for a handle whose descriptor is in `$field`.
macro_rules! impl_fd {
    ($name:ident, $field:tt) => {
        impl std::os::fd::AsFd for $name {
            fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
                std::os::fd::AsFd::as_fd(&self.$field)
            }
        }

        impl std::os::fd::AsRawFd for $name {
            fn as_raw_fd(&self) -> std::os::fd::RawFd {
                std::os::fd::AsRawFd::as_raw_fd(&self.$field)
            }
        }
    };
}

// Internal macros: used as `crate::impl_fd!`, never exported from the crate root.
pub(crate) use {impl_fd, impl_nonblocking};

pub mod channel;
pub mod error;
pub mod files;
pub mod host;
pub mod inherit;
pub mod mq;
pub mod name;
pub mod notify;
pub mod object;
pub mod poll;
pub mod shm;
pub mod socket;
pub mod stream;
pub mod sync;
mod sys;
pub mod transport;

pub use error::{Errno, Error, ErrorKind, Result};
pub use object::{Access, Pid};
pub use poll::Deadline;

/// The README's Rust examples, compiled and run as doc tests so they stay true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExamples;
