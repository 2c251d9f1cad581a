//! eventfd: a 64-bit kernel counter behind a pollable descriptor, for wake-ups between
//! threads or (inherited or passed over a Unix socket) processes.
//!
//! In counter mode a read returns the whole count and resets it to zero; in semaphore mode a
//! read returns 1 and decrements by one.
//!
//! ```
//! use ipckit::notify::eventfd::{EventFd, Mode};
//! let ev = EventFd::new(0, Mode::Counter).unwrap();
//! ev.add(3).unwrap();
//! ev.add(4).unwrap();
//! assert_eq!(ev.try_read().unwrap(), Some(7));
//! assert_eq!(ev.try_read().unwrap(), None);
//! ```

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::{EventfdFlags, PollFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll::{self, Deadline};

/// How reads consume the counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A read returns the whole count and resets it to zero.
    Counter,
    /// A read returns 1 and decrements the count by one (`EFD_SEMAPHORE`).
    Semaphore,
}

/// An eventfd counter. The descriptor is non-blocking inside; every wait goes through poll,
/// so each operation has a blocking, a timed and a non-blocking form.
#[derive(Debug)]
pub struct EventFd {
    fd: OwnedFd,
}

crate::impl_fd!(EventFd, fd);

impl EventFd {
    /// `eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK [| EFD_SEMAPHORE])`.
    /// See [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html).
    pub fn new(initial: u32, mode: Mode) -> Result<Self> {
        let mut flags = EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK;
        if mode == Mode::Semaphore {
            flags |= EventfdFlags::SEMAPHORE;
        }
        let fd = rustix::event::eventfd(initial, flags)
            .during("creating eventfd", format!("({mode:?})"))?;
        Ok(EventFd { fd })
    }

    /// Wraps an eventfd descriptor received from another process, checked by
    /// `readlink("/proc/self/fd/N")` (`anon_inode:[eventfd]`): any other descriptor is refused
    /// with [`ErrorKind::InvalidInput`]. It is made non-blocking (`fcntl(F_SETFL)`), which
    /// changes the open file description that every duplicate shares (harmless to another
    /// `EventFd`, which is non-blocking too).
    /// See [proc_pid_fd(5)](https://man7.org/linux/man-pages/man5/proc_pid_fd.5.html).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        crate::sys::fd::check_anon_inode(fd.as_fd(), "eventfd", "an eventfd")?;
        poll::set_nonblocking(&fd, true)?;
        Ok(EventFd { fd })
    }

    /// `write(2)` of `n`: adds it to the counter, waking readers. Fails with EAGAIN (kind Os)
    /// if the counter would pass `u64::MAX - 1`.
    /// See [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html).
    pub fn add(&self, n: u64) -> Result<()> {
        if n == u64::MAX {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "adding to eventfd",
                "u64::MAX cannot be added",
            ));
        }
        loop {
            match rustix::io::write(&self.fd, &n.to_ne_bytes()) {
                Ok(_) => return Ok(()),
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::os("adding to eventfd", e).hint_if(
                        Errno::AGAIN,
                        "the counter is full: a reader must consume it first",
                    ));
                }
            }
        }
    }

    /// `read(2)` on the non-blocking eventfd: takes the count (counter mode) or one
    /// (semaphore mode) if it is non-zero now; `Ok(None)` when it is zero.
    /// See [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html).
    pub fn try_read(&self) -> Result<Option<u64>> {
        let mut b = [0u8; 8];
        loop {
            match rustix::io::read(&self.fd, &mut b) {
                Ok(_) => return Ok(Some(u64::from_ne_bytes(b))),
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => return Ok(None),
                Err(e) => return Err(e).during("reading", "eventfd"),
            }
        }
    }

    /// `poll(2)` then `read(2)`: waits at most `timeout` for a non-zero count and takes it;
    /// `Ok(None)` when it stayed zero.
    /// See [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html).
    pub fn read_timeout(&self, timeout: Duration) -> Result<Option<u64>> {
        self.read_deadline(Deadline::after(timeout))
    }

    /// `poll(2)` then `read(2)`: as [`read_timeout`](Self::read_timeout), giving up at
    /// `deadline`. See [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html).
    pub fn read_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<u64>> {
        poll::until_ready(self.fd.as_fd(), PollFlags::IN, deadline.into(), || {
            self.try_read()
        })
    }

    /// `poll(2)` then `read(2)`: waits for a non-zero count and takes it.
    /// See [eventfd(2)](https://man7.org/linux/man-pages/man2/eventfd.2.html).
    pub fn read(&self) -> Result<u64> {
        loop {
            if let Some(v) = self.read_deadline(Deadline::NEVER)? {
                return Ok(v);
            }
        }
    }

    /// `fcntl(F_DUPFD_CLOEXEC)`: a second handle on the same counter, e.g. to give to a child
    /// process. See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
    pub fn try_clone(&self) -> Result<Self> {
        let fd = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).during("duplicating", "eventfd")?;
        Ok(EventFd { fd })
    }

    /// Gives back the descriptor (to pass with `SCM_RIGHTS`, say).
    pub fn into_fd(self) -> OwnedFd {
        self.fd
    }

    /// Borrows the descriptor.
    pub fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}
