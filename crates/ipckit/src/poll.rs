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

/// The moment `timeout` from now; `None` (wait for ever) for no timeout or one too large to
/// represent, so `Duration::MAX` means "for ever" and never overflows.
pub fn deadline(timeout: Option<Duration>) -> Option<Instant> {
    timeout.and_then(|t| Instant::now().checked_add(t))
}

/// Time left until `deadline` (zero once passed); `None` for no deadline.
pub fn remaining(deadline: Option<Instant>) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(Instant::now()))
}

/// True once `deadline` has passed (never for no deadline).
pub fn expired(deadline: Option<Instant>) -> bool {
    deadline.is_some_and(|d| Instant::now() >= d)
}

/// `poll(2)` on several descriptors until one reports an event or `deadline` passes. EINTR is
/// retried with the time left. Returns how many descriptors reported events (0 on timeout).
pub fn poll_until(fds: &mut [PollFd<'_>], deadline: Option<Instant>) -> Result<usize> {
    loop {
        let ts = remaining(deadline).map(|d| Timespec {
            tv_sec: d.as_secs().min(i64::MAX as u64) as _,
            tv_nsec: d.subsec_nanos() as _,
        });
        match rustix::event::poll(fds, ts.as_ref()) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e).during("polling", "descriptors"),
        }
    }
}

/// `poll(2)` for one descriptor until any of `events` (or an error/hang-up) is reported, or
/// until `timeout` passes (`None` waits for ever). Returns the events seen, empty on timeout.
/// EINTR is retried with the remaining time. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn wait<Fd: AsFd>(fd: Fd, events: PollFlags, timeout: Option<Duration>) -> Result<PollFlags> {
    let mut fds = [PollFd::new(&fd, events)];
    poll_until(&mut fds, deadline(timeout))?;
    Ok(fds[0].revents())
}

/// Calls `attempt` until it gives `Some`, the descriptor being polled for `events` in between,
/// until `deadline`: the body of every timed operation on a descriptor that is non-blocking
/// (the attempt comes first, so it must not block). `Ok(None)` on timeout.
pub(crate) fn until_ready<T>(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    loop {
        if let Some(v) = attempt()? {
            return Ok(Some(v));
        }
        if expired(deadline) {
            return Ok(None);
        }
        let mut fds = [PollFd::from_borrowed_fd(fd, events)];
        poll_until(&mut fds, deadline)?;
    }
}

/// Calls `attempt` until it gives `Some` or `deadline` passes, sleeping 1 ms, then longer up to
/// 50 ms, in between: for the few calls that have neither a descriptor to poll nor a timed
/// form (a Unix connect to a full backlog, a System V queue). `Ok(None)` on timeout.
pub(crate) fn with_backoff<T>(
    deadline: Option<Instant>,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = attempt()? {
            return Ok(Some(v));
        }
        let left = remaining(deadline);
        if left == Some(Duration::ZERO) {
            return Ok(None);
        }
        std::thread::sleep(left.map_or(pause, |l| l.min(pause)));
        pause = (pause * 2).min(Duration::from_millis(50));
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

/// `poll` then `read` on any readable descriptor, until `timeout`: the shared body of every
/// `read_with_timeout`. Polls first, so it never blocks on a blocking descriptor while nothing
/// is there. `Ok(None)` on timeout, `Ok(Some(0))` at end of file.
pub(crate) fn read_timeout(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    timeout: Option<Duration>,
) -> Result<Option<usize>> {
    let deadline = deadline(timeout);
    loop {
        let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::IN)];
        if poll_until(&mut fds, deadline)? == 0 {
            return Ok(None);
        }
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(Some(n)),
            // Interrupted, or another reader took the data first: wait again for what is left.
            Err(rustix::io::Errno::INTR | rustix::io::Errno::AGAIN) => continue,
            Err(e) => return Err(e).during("reading", "descriptor"),
        }
    }
}
