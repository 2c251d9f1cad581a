//! pidfd: a process as a descriptor. It becomes readable when the process exits, so a process
//! exit can sit in the same poll set as sockets and timers, with no SIGCHLD handler and no
//! pid-reuse race.
//!
//! ```
//! use std::time::Duration;
//! use ipckit::notify::pidfd::PidFd;
//! let mut child = std::process::Command::new("true").spawn().unwrap();
//! let pidfd = PidFd::open(child.id()).unwrap();
//! assert!(pidfd.wait_exit_timeout(Duration::from_secs(10)).unwrap());
//! child.wait().unwrap();
//! ```

use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::process::PidfdFlags;

use crate::Pid;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll::{self, Deadline};

/// A descriptor that refers to one process.
#[derive(Debug)]
pub struct PidFd {
    fd: OwnedFd,
    pid: Pid,
}

crate::impl_fd!(PidFd, fd);

impl PidFd {
    /// `pidfd_open(pid, 0)`. Fails with ESRCH if no such process exists (a zombie still does).
    /// See [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
    pub fn open(pid: Pid) -> Result<Self> {
        let raw = i32::try_from(pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        let p = raw.ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                "opening pidfd",
                "a pid is 1 to 2^31 - 1",
            )
            .object(pid)
        })?;
        let fd = rustix::process::pidfd_open(p, PidfdFlags::empty()).map_err(|e| {
            Error::os("opening pidfd for process", e)
                .object(pid)
                .hint_if(
                    rustix::io::Errno::SRCH,
                    "no such process: it has exited and been reaped",
                )
                .hint_if(
                    rustix::io::Errno::NOSYS,
                    "pidfd_open needs Linux 5.3 or later",
                )
        })?;
        Ok(PidFd { fd, pid })
    }

    /// The pid this descriptor refers to.
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// `poll(2)` on the pidfd: waits for the process to exit (it need not be reaped).
    /// See [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
    pub fn wait_exit(&self) -> Result<()> {
        while !self.wait_exit_deadline(Deadline::NEVER)? {}
        Ok(())
    }

    /// `poll(2)` with no wait: true if the process has exited.
    /// See [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
    pub fn try_wait_exit(&self) -> Result<bool> {
        self.wait_exit_deadline(Deadline::now())
    }

    /// `poll(2)` on the pidfd: waits at most `timeout` for the process to exit; true once it
    /// has, `Ok(false)` while it runs.
    /// See [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
    pub fn wait_exit_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_exit_deadline(Deadline::after(timeout))
    }

    /// `poll(2)` on the pidfd: as [`wait_exit_timeout`](Self::wait_exit_timeout), giving up
    /// at `deadline`. See [pidfd_open(2)](https://man7.org/linux/man-pages/man2/pidfd_open.2.html).
    pub fn wait_exit_deadline(&self, deadline: impl Into<Deadline>) -> Result<bool> {
        poll::readable_deadline(&self.fd, deadline)
    }

    /// `pidfd_send_signal(pidfd, signal, NULL, 0)`: sends `signal` to exactly this process,
    /// even if its pid has been reused since (then it fails with ESRCH instead of hitting
    /// another process).
    /// See [pidfd_send_signal(2)](https://man7.org/linux/man-pages/man2/pidfd_send_signal.2.html).
    pub fn send_signal(&self, signal: i32) -> Result<()> {
        crate::notify::signal::check_signal(signal)?;
        // SAFETY: pidfd_send_signal(fd, sig, NULL, 0) reads no memory; the fd is valid for the
        // call's duration. rustix's Signal type excludes real-time signals, hence libc here.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                std::os::fd::AsRawFd::as_raw_fd(&self.fd),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r == -1 {
            return Err(std::io::Error::last_os_error()).during("signalling process", self.pid);
        }
        Ok(())
    }
}
