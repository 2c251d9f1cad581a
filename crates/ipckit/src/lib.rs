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
//! | hand a socket end, memfd or pipe end to a child started with `std::process::Command` | inherited descriptor, by name | [`inherit`] |
//!
//! Shared memory is the fastest and the one where you own the synchronisation; the benchmark
//! (`ipckit bench`) measures all of them on your machine.
//!
//! [`host`] lists what is on the host now: every IPC object, who holds it, and whether it is
//! an orphan nobody can come back to (what `ipckit ls` and `ipckit gc` show).
//!
//! # Conventions
//! - Every descriptor is an [`OwnedFd`](std::os::fd::OwnedFd) opened with `O_CLOEXEC`, and
//!   every handle implements [`AsFd`](std::os::fd::AsFd), so it fits your own epoll loop.
//! - A handle that *created* a named object removes it on drop; one that *opened* it never
//!   does; `persist()` keeps an object past its creator.
//! - Every blocking call has a timed and a non-blocking form. `Ok(None)` means "nothing within
//!   the time given" for reads and waits; a timed open or connect fails with
//!   [`ErrorKind::TimedOut`].
//! - Errors name the operation, the object, the errno and what to do ([`Error`]).

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
