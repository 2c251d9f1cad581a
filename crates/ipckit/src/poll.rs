//! Waiting on descriptors: the one place every timed operation goes through, and the
//! [`Deadline`] every `_deadline` form takes.
//!
//! ```
//! use ipckit::{poll, stream::pipe};
//! use std::time::Duration;
//! let (r, _w) = pipe::pipe().unwrap();
//! // Nothing written yet: not readable within 10 ms.
//! assert!(!poll::readable_timeout(&r, Duration::from_millis(10)).unwrap());
//! ```

use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::Timespec;
pub use rustix::event::{PollFd, PollFlags};

use crate::error::{Context, Result};

/// When a wait gives up: at an instant, or never. Every `x_timeout(Duration)` is
/// `x_deadline(now + timeout)`; a caller that chains several waits computes one deadline and
/// hands it to each (crossbeam's `send_deadline` shape). A timeout too large to represent
/// (`Duration::MAX`) is [`Deadline::NEVER`], so nothing overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(Option<Instant>);

impl Deadline {
    /// Waits for ever.
    pub const NEVER: Deadline = Deadline(None);

    /// Gives up at `at`.
    pub fn at(at: Instant) -> Self {
        Deadline(Some(at))
    }

    /// Gives up `timeout` from now; [`NEVER`](Deadline::NEVER) when that is not
    /// representable.
    pub fn after(timeout: Duration) -> Self {
        Deadline(Instant::now().checked_add(timeout))
    }

    /// Already passed: one attempt, no wait (what every `try_` form does).
    pub fn now() -> Self {
        Deadline(Some(Instant::now()))
    }

    /// The instant, `None` for never.
    pub fn instant(self) -> Option<Instant> {
        self.0
    }

    /// Time left (zero once passed); `None` for never.
    pub fn remaining(self) -> Option<Duration> {
        self.0.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True once passed (never for [`NEVER`](Deadline::NEVER)).
    pub fn expired(self) -> bool {
        self.0.is_some_and(|d| Instant::now() >= d)
    }

    /// The earlier of the two.
    pub fn min(self, other: Deadline) -> Deadline {
        match (self.0, other.0) {
            (Some(a), Some(b)) => Deadline(Some(a.min(b))),
            (Some(a), None) | (None, Some(a)) => Deadline(Some(a)),
            (None, None) => Deadline::NEVER,
        }
    }
}

impl From<Instant> for Deadline {
    fn from(at: Instant) -> Self {
        Deadline::at(at)
    }
}

/// `poll(2)` on several descriptors until one reports an event or `deadline` passes. EINTR is
/// retried with the time left. Returns how many descriptors reported events (0 on timeout).
/// See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn poll_until(fds: &mut [PollFd<'_>], deadline: Deadline) -> Result<usize> {
    loop {
        let ts = deadline.remaining().map(|d| Timespec {
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

/// `poll(2)` for one descriptor until any of `events` (or an error/hang-up) is reported.
/// Returns the events seen. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
pub fn wait<Fd: AsFd>(fd: Fd, events: PollFlags) -> Result<PollFlags> {
    wait_deadline(fd, events, Deadline::NEVER)
}

/// `poll(2)` for one descriptor, as [`wait`], giving up after `timeout`: the events seen,
/// empty on timeout.
pub fn wait_timeout<Fd: AsFd>(fd: Fd, events: PollFlags, timeout: Duration) -> Result<PollFlags> {
    wait_deadline(fd, events, Deadline::after(timeout))
}

/// `poll(2)` for one descriptor, as [`wait`], giving up at `deadline`: the events seen, empty
/// on timeout.
pub fn wait_deadline<Fd: AsFd>(
    fd: Fd,
    events: PollFlags,
    deadline: impl Into<Deadline>,
) -> Result<PollFlags> {
    let mut fds = [PollFd::new(&fd, events)];
    poll_until(&mut fds, deadline.into())?;
    Ok(fds[0].revents())
}

/// Calls `attempt` until it gives `Some`, the descriptor being polled for `events` in between,
/// until `deadline`: the body of every timed operation on a descriptor that is non-blocking
/// (the attempt comes first, so it must not block). `Ok(None)` on timeout.
pub(crate) fn until_ready<T>(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    deadline: Deadline,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    loop {
        if let Some(v) = attempt()? {
            return Ok(Some(v));
        }
        if deadline.expired() {
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
    deadline: Deadline,
    mut attempt: impl FnMut() -> Result<Option<T>>,
) -> Result<Option<T>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(v) = attempt()? {
            return Ok(Some(v));
        }
        let left = deadline.remaining();
        if left == Some(Duration::ZERO) {
            return Ok(None);
        }
        std::thread::sleep(left.map_or(pause, |l| l.min(pause)));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// True when `fd` is readable (data, end of file, or a pending error) within `timeout`.
pub fn readable_timeout<Fd: AsFd>(fd: Fd, timeout: Duration) -> Result<bool> {
    Ok(!wait_timeout(fd, PollFlags::IN, timeout)?.is_empty())
}

/// True when `fd` is readable (data, end of file, or a pending error) before `deadline`.
pub fn readable_deadline<Fd: AsFd>(fd: Fd, deadline: impl Into<Deadline>) -> Result<bool> {
    Ok(!wait_deadline(fd, PollFlags::IN, deadline)?.is_empty())
}

/// True when `fd` is writable (or the peer is gone, so a write will fail at once) within
/// `timeout`.
pub fn writable_timeout<Fd: AsFd>(fd: Fd, timeout: Duration) -> Result<bool> {
    Ok(!wait_timeout(fd, PollFlags::OUT, timeout)?.is_empty())
}

/// True when `fd` is writable (or the peer is gone) before `deadline`.
pub fn writable_deadline<Fd: AsFd>(fd: Fd, deadline: impl Into<Deadline>) -> Result<bool> {
    Ok(!wait_deadline(fd, PollFlags::OUT, deadline)?.is_empty())
}

/// `fcntl(F_SETFL)`: sets or clears `O_NONBLOCK` on a descriptor.
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
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

/// `poll` then `read` on any readable descriptor, until `deadline`: the shared body of every
/// timed read. Polls first, so it never blocks on a blocking descriptor while nothing is
/// there. `Ok(None)` on timeout, `Ok(Some(0))` at end of file.
pub(crate) fn read_until(
    fd: BorrowedFd<'_>,
    buf: &mut [u8],
    deadline: Deadline,
) -> Result<Option<usize>> {
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

/// A non-blocking `send(2)` (`MSG_DONTWAIT | MSG_NOSIGNAL`) on a stream socket, polled for
/// room until `deadline`: the shared body of every timed stream-socket write. Never changes
/// the descriptor's flags and never blocks, whatever they are. `Ok(None)` on timeout (nothing
/// sent); a partial send is `Ok(Some(n))`.
pub(crate) fn send_until(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    deadline: Deadline,
    op: &'static str,
) -> Result<Option<usize>> {
    use rustix::io::Errno;
    use rustix::net::SendFlags;
    if buf.is_empty() {
        return Ok(Some(0));
    }
    until_ready(fd, PollFlags::OUT, deadline, || {
        match rustix::net::send(fd, buf, SendFlags::DONTWAIT | SendFlags::NOSIGNAL) {
            Ok(n) => Ok(Some(n)),
            Err(Errno::INTR | Errno::AGAIN) => Ok(None),
            Err(e) => Err(crate::Error::os(op, e)
                .hint_if(Errno::PIPE, "the peer closed the connection")
                .hint_if(Errno::CONNRESET, "the peer closed the connection")),
        }
    })
}

/// `poll(POLLOUT)` then `write(2)` on a pipe or FIFO end, until `deadline`: the shared body
/// of every timed pipe write. `Ok(None)` on timeout (nothing written).
///
/// On a non-blocking end the whole buffer is offered and EAGAIN waits in poll. A blocking end
/// is never made non-blocking (the flag belongs to the open file description, shared with
/// every process holding it): a write there waits inside the kernel until all of it fits, so
/// after poll reports room (one free page) at most [`PIPE_BUF`](crate::stream::pipe::PIPE_BUF)
/// bytes are written, which fit without waiting. (Another writer of the same pipe can take
/// that room between the poll and the write; the write then waits for the reader.)
pub(crate) fn write_until(
    fd: BorrowedFd<'_>,
    buf: &[u8],
    deadline: Deadline,
    op: &'static str,
) -> Result<Option<usize>> {
    use rustix::io::Errno;
    if buf.is_empty() {
        return Ok(Some(0));
    }
    let nonblocking = rustix::fs::fcntl_getfl(fd)
        .during("reading descriptor flags", "(F_GETFL)")?
        .contains(rustix::fs::OFlags::NONBLOCK);
    let chunk = if nonblocking {
        buf
    } else {
        &buf[..buf.len().min(crate::stream::pipe::PIPE_BUF)]
    };
    let mut first = nonblocking;
    loop {
        if !first {
            let mut fds = [PollFd::from_borrowed_fd(fd, PollFlags::OUT)];
            if poll_until(&mut fds, deadline)? == 0 {
                return Ok(None);
            }
        }
        first = false;
        match rustix::io::write(fd, chunk) {
            Ok(n) => return Ok(Some(n)),
            // Interrupted, or another writer took the room: wait again.
            Err(Errno::INTR | Errno::AGAIN) => continue,
            Err(e) => {
                return Err(crate::Error::os(op, e).hint_if(
                    Errno::PIPE,
                    "the reader closed its end: nothing more can be written",
                ));
            }
        }
    }
}
