//! Send and receive helpers shared by the seqpacket and datagram sockets.

use std::os::fd::{AsFd, OwnedFd};

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{RecvFlags, SendFlags};

use crate::error::{Error, ErrorKind, Result};
use crate::poll;
use crate::poll::Deadline;

fn send_error(op: &'static str, e: Errno) -> Error {
    Error::os(op, e)
        .hint_if(
            Errno::MSGSIZE,
            "the message is larger than the socket's send buffer (SO_SNDBUF)",
        )
        .hint_if(Errno::PIPE, "the peer closed the connection")
        .hint_if(Errno::CONNREFUSED, "the peer socket is gone")
}

pub(super) fn send_retry(fd: &OwnedFd, msg: &[u8], op: &'static str) -> Result<usize> {
    loop {
        match rustix::net::send(fd, msg, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => return Err(send_error(op, e)),
        }
    }
}

/// Sends one message with `MSG_DONTWAIT`, polling for room until `deadline`: true once sent.
/// Poll sees the connected peer's queue (seqpacket, connected datagram), so no back-off.
pub(super) fn send_until(
    fd: &OwnedFd,
    msg: &[u8],
    deadline: Deadline,
    op: &'static str,
) -> Result<bool> {
    let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
    let sent = poll::until_ready(
        fd.as_fd(),
        PollFlags::OUT,
        deadline,
        || match rustix::net::send(fd, msg, flags) {
            Ok(n) => Ok(Some(n)),
            Err(Errno::INTR | Errno::AGAIN) => Ok(None),
            Err(e) => Err(send_error(op, e)),
        },
    )?;
    Ok(sent.is_some())
}

/// Receives one message with `MSG_DONTWAIT | MSG_TRUNC`, polling until `deadline`.
pub(super) fn recv_until(
    fd: &OwnedFd,
    buf: &mut [u8],
    deadline: Deadline,
    op: &'static str,
) -> Result<Option<usize>> {
    let got = poll::until_ready(
        fd.as_fd(),
        PollFlags::IN,
        deadline,
        || match rustix::net::recv(fd, &mut *buf, RecvFlags::TRUNC | RecvFlags::DONTWAIT) {
            Ok(r) => Ok(Some(r)),
            Err(Errno::INTR | Errno::AGAIN) => Ok(None),
            Err(e) => Err(Error::os(op, e)),
        },
    )?;
    let Some((n, full)) = got else {
        return Ok(None);
    };
    check_truncated(n, full, op)?;
    Ok(Some(n))
}

/// The blocking receive: one `recv(2)` as the descriptor is (so `O_NONBLOCK` and
/// `SO_RCVTIMEO` keep their meaning, and no poll is added to the path), retried on EINTR.
pub(super) fn recv_blocking(fd: &OwnedFd, buf: &mut [u8], op: &'static str) -> Result<usize> {
    recv_checked(fd, buf, op)
}

pub(super) fn check_truncated(got: usize, full: usize, op: &'static str) -> Result<()> {
    if full > got {
        return Err(Error::new(
            ErrorKind::Truncated,
            op,
            format!("a {full}-byte message did not fit the {got}-byte buffer and was cut"),
        )
        .hint("receive into a larger buffer")
        .with_received(got));
    }
    Ok(())
}

fn recv_checked(fd: &OwnedFd, buf: &mut [u8], op: &'static str) -> Result<usize> {
    let (n, full) = loop {
        match rustix::net::recv(fd, &mut *buf, RecvFlags::TRUNC) {
            Ok(r) => break r,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os(op, e)),
        }
    };
    check_truncated(n, full, op)?;
    Ok(n)
}

/// Receives one message into `buf`, sized so that any message the kernel can carry fits.
pub(super) fn recv_into_vec(fd: &OwnedFd, buf: &mut Vec<u8>, op: &'static str) -> Result<usize> {
    // Learn the size first (MSG_PEEK | MSG_TRUNC returns the real length), so nothing is cut.
    let (_, full) = loop {
        match rustix::net::recv(fd, &mut [0u8; 0][..], RecvFlags::PEEK | RecvFlags::TRUNC) {
            Ok(r) => break r,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(Error::os(op, e)),
        }
    };
    buf.clear();
    buf.resize(full, 0);
    let n = recv_checked(fd, buf, op)?;
    buf.truncate(n);
    Ok(n)
}

/// The timed and non-blocking forms of a message socket's send and receive (seqpacket and
/// datagram sockets have the same six), over [`send_until`] and [`recv_until`]: `$what` names
/// one message ("packet", "datagram"), `$send` and `$recv` the operations in errors.
macro_rules! timed_message_io {
    ($what:literal, $send:expr, $recv:expr) => {
        #[doc = concat!("`send(2)` with `MSG_DONTWAIT`: sends one ", $what, " if the peer's queue has room")]
        /// now; `Ok(false)` (nothing sent) when it is full.
        /// See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
        pub fn try_send(&self, msg: &[u8]) -> Result<bool> {
            send_until(&self.fd, msg, Deadline::now(), $send)
        }

        /// `poll(2)` then `send(2)`: waits at most `timeout` for room in the peer's queue;
        /// `Ok(false)` when there was none (nothing sent).
        /// See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
        pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<bool> {
            send_until(&self.fd, msg, Deadline::after(timeout), $send)
        }

        /// `poll(2)` then `send(2)`: as [`send_timeout`](Self::send_timeout), giving up at
        /// `deadline`. See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
        pub fn send_deadline(&self, msg: &[u8], deadline: impl Into<Deadline>) -> Result<bool> {
            send_until(&self.fd, msg, deadline.into(), $send)
        }

        #[doc = concat!("`recv(2)` with `MSG_DONTWAIT`: a ", $what, " that is there now; `Ok(None)` when none is.")]
        /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
        pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>> {
            recv_until(&self.fd, buf, Deadline::now(), $recv)
        }

        #[doc = concat!("`poll(2)` then `recv(2)`: waits at most `timeout` for a ", $what, "; `Ok(None)` when none came.")]
        /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
        pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
            recv_until(&self.fd, buf, Deadline::after(timeout), $recv)
        }

        /// `poll(2)` then `recv(2)`: as [`recv_timeout`](Self::recv_timeout), giving up at
        /// `deadline`. See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
        pub fn recv_deadline(
            &self,
            buf: &mut [u8],
            deadline: impl Into<Deadline>,
        ) -> Result<Option<usize>> {
            recv_until(&self.fd, buf, deadline.into(), $recv)
        }
    };
}
pub(super) use timed_message_io;
