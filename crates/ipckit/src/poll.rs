//! Waiting on a descriptor with a timeout: the one place every timed operation goes through.
//!
//! ```
//! use ipckit::{poll, stream::pipe};
//! use std::time::Duration;
//! let (r, _w) = pipe::pipe().unwrap();
//! // Nothing written yet: not readable within 10 ms.
//! assert!(!poll::readable(&r, Some(Duration::from_millis(10))).unwrap());
//! ```

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::error::{Context, Result};

/// `poll(2)` for one descriptor until any of `events` (or an error/hang-up) is reported, or
/// until `timeout` passes (`None` waits for ever). Returns the events seen, empty on timeout.
/// EINTR is retried with the remaining time. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn wait<Fd: AsFd>(fd: Fd, events: PollFlags, timeout: Option<Duration>) -> Result<PollFlags> {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let mut fds = [PollFd::new(&fd, events)];
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let ts = left.map(|d| Timespec {
            tv_sec: d.as_secs() as _,
            tv_nsec: d.subsec_nanos() as _,
        });
        match rustix::event::poll(&mut fds, ts.as_ref()) {
            Ok(0) => return Ok(PollFlags::empty()),
            Ok(_) => return Ok(fds[0].revents()),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).during("polling descriptor", "for readiness"),
        }
    }
}

/// True when `fd` is readable (data, end of file, or a pending error) within `timeout`.
pub fn readable<Fd: AsFd>(fd: Fd, timeout: Option<Duration>) -> Result<bool> {
    Ok(!wait(fd, PollFlags::IN, timeout)?.is_empty())
}

/// True when `fd` is writable (or the peer is gone, so a write will fail at once) within `timeout`.
pub fn writable<Fd: AsFd>(fd: Fd, timeout: Option<Duration>) -> Result<bool> {
    Ok(!wait(fd, PollFlags::OUT, timeout)?.is_empty())
}

/// Sets or clears `O_NONBLOCK` on a descriptor.
pub fn set_nonblocking<Fd: AsFd>(fd: Fd, on: bool) -> Result<()> {
    use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
    let flags = fcntl_getfl(&fd).during("reading descriptor flags", "(F_GETFL)")?;
    let flags = if on {
        flags | OFlags::NONBLOCK
    } else {
        flags - OFlags::NONBLOCK
    };
    fcntl_setfl(&fd, flags).during("setting descriptor flags", "(F_SETFL O_NONBLOCK)")
}

/// `poll` then `read` on any readable descriptor: the shared body of every `read_timeout`.
pub(crate) fn read_timeout(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> Result<Option<usize>> {
    loop {
        if !readable(fd, timeout)? {
            return Ok(None);
        }
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(Some(n)),
            // Another reader took the data, or the fd is non-blocking: wait again.
            Err(rustix::io::Errno::AGAIN) if timeout.is_none() => continue,
            Err(rustix::io::Errno::AGAIN) => return Ok(None),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).during("reading", "descriptor"),
        }
    }
}
