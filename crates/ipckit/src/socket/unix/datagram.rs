//! [`UnixDatagram`]: connectionless, bound or unbound.

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::io::Errno;
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketAddrUnix, SocketFlags, SocketType};

use super::io::{
    check_truncated, recv_blocking, recv_into_vec, recv_until, send_retry, send_until,
    timed_message_io,
};
use super::listener::{bind_new, close_and_unlink, connect_new, keep_file, new_socket};
use super::{BindOptions, UnixAddr};
use crate::error::{Context, Error, Result};
// Named only in doc links.
#[cfg(doc)]
use crate::error::ErrorKind;
use crate::name::OwnedPath;
use crate::poll;
use crate::poll::Deadline;
use crate::transport::MessageTransport;

/// A Unix datagram socket: no connection needed, boundaries kept, reliable on Unix.
/// Owns its socket file when bound to a path.
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
    file: Option<OwnedPath>,
}

crate::impl_fd!(UnixDatagram, fd);
crate::impl_nonblocking!(UnixDatagram, fd);

impl UnixDatagram {
    /// `socket(2)` + `bind(2)`: a datagram socket bound to `addr` (to receive), with the
    /// options given (the backlog does not apply).
    /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn bind(addr: &UnixAddr, opts: &BindOptions) -> Result<Self> {
        let (fd, file) = bind_new(SocketType::DGRAM, addr, opts)?;
        Ok(UnixDatagram { fd, file })
    }

    /// `socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC)`: an unbound datagram socket (to send with
    /// [`send_to`](Self::send_to)). See [socket(2)](https://man7.org/linux/man-pages/man2/socket.2.html).
    pub fn unbound() -> Result<Self> {
        Ok(UnixDatagram {
            fd: new_socket(SocketType::DGRAM, SocketFlags::empty())?,
            file: None,
        })
    }

    /// `socket(2)` + `connect(2)`: an unbound socket whose [`send`](Self::send) goes to `addr`
    /// (a datagram connect never waits). See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn connect(addr: &UnixAddr) -> Result<Self> {
        Ok(UnixDatagram {
            fd: connect_new(SocketType::DGRAM, addr, Deadline::NEVER, None)?,
            file: None,
        })
    }

    /// `getsockopt(SO_DOMAIN, SO_TYPE)`: a datagram socket from a descriptor (one received
    /// over a socket, say). It owns no socket file. Any other descriptor is refused with
    /// [`ErrorKind::InvalidInput`], the error saying what it is.
    /// See [getsockopt(2)](https://man7.org/linux/man-pages/man2/getsockopt.2.html).
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        crate::sys::fd::check_unix_socket(fd.as_fd(), SocketType::DGRAM, "a UnixDatagram")?;
        Ok(UnixDatagram { fd, file: None })
    }

    /// Gives back the descriptor (to pass with `SCM_RIGHTS`, say). A socket file it owned is
    /// left in place, as [`persist`](Self::persist) would.
    pub fn into_fd(self) -> OwnedFd {
        let UnixDatagram { fd, file } = self;
        if let Some(mut f) = file {
            f.release();
        }
        fd
    }

    /// `socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC)`: two connected datagram sockets.
    /// See [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html).
    pub fn pair() -> Result<(Self, Self)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .during("creating socket pair", "Unix datagram socket")?;
        Ok((
            UnixDatagram { fd: a, file: None },
            UnixDatagram { fd: b, file: None },
        ))
    }

    /// `send(2)` with `MSG_NOSIGNAL`: sends one datagram to the connected peer, waiting while
    /// its queue is full. See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn send(&self, msg: &[u8]) -> Result<usize> {
        send_retry(&self.fd, msg, DGRAM_SEND)
    }

    /// `sendto(2)`: sends one datagram to `addr`, waiting as long as the receiver's queue is
    /// full. See [sendto(2)](https://man7.org/linux/man-pages/man2/sendto.2.html).
    pub fn send_to(&self, msg: &[u8], addr: &UnixAddr) -> Result<usize> {
        let sa = addr.to_sockaddr()?;
        loop {
            match rustix::net::sendto(&self.fd, msg, SendFlags::NOSIGNAL, &sa) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(send_to_error(e, addr)),
            }
        }
    }

    /// `sendto(2)` with `MSG_DONTWAIT`: sends one datagram to `addr` if the receiver's queue
    /// has room now; `Ok(false)` (nothing sent) when it is full.
    /// See [sendto(2)](https://man7.org/linux/man-pages/man2/sendto.2.html).
    pub fn try_send_to(&self, msg: &[u8], addr: &UnixAddr) -> Result<bool> {
        self.send_to_deadline(msg, addr, Deadline::now())
    }

    /// `sendto(2)` with `MSG_DONTWAIT`, retried: sends one datagram to `addr`, waiting at most
    /// `timeout` while the receiver's queue is full. `Ok(false)` on timeout (nothing was sent).
    /// See [sendto(2)](https://man7.org/linux/man-pages/man2/sendto.2.html).
    pub fn send_to_timeout(&self, msg: &[u8], addr: &UnixAddr, timeout: Duration) -> Result<bool> {
        self.send_to_deadline(msg, addr, Deadline::after(timeout))
    }

    /// `sendto(2)` with `MSG_DONTWAIT`, retried: as [`send_to_timeout`](Self::send_to_timeout),
    /// giving up at `deadline`. (A sender cannot poll for room in another socket's queue, so
    /// the retries back off from 1 to 50 ms.)
    /// See [sendto(2)](https://man7.org/linux/man-pages/man2/sendto.2.html).
    pub fn send_to_deadline(
        &self,
        msg: &[u8],
        addr: &UnixAddr,
        deadline: impl Into<Deadline>,
    ) -> Result<bool> {
        let sa = addr.to_sockaddr()?;
        let flags = SendFlags::NOSIGNAL | SendFlags::DONTWAIT;
        let sent = poll::with_backoff(deadline.into(), || {
            match rustix::net::sendto(&self.fd, msg, flags, &sa) {
                Ok(n) => Ok(Some(n)),
                Err(Errno::AGAIN | Errno::INTR) => Ok(None),
                Err(e) => Err(send_to_error(e, addr)),
            }
        })?;
        Ok(sent.is_some())
    }

    timed_message_io!("datagram", DGRAM_SEND, DGRAM_RECV);

    /// `recv(2)` with `MSG_TRUNC`: waits for one datagram and receives it into `buf`. A
    /// datagram larger than `buf` is an error of kind [`Truncated`](ErrorKind::Truncated).
    /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv_blocking(&self.fd, buf, DGRAM_RECV)
    }

    /// `recvfrom(2)`: waits for one datagram; returns its length and the sender's address,
    /// when the sender is bound. See [recvfrom(2)](https://man7.org/linux/man-pages/man2/recvfrom.2.html).
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, Option<UnixAddr>)> {
        let got = loop {
            match rustix::net::recvfrom(&self.fd, &mut *buf, RecvFlags::TRUNC) {
                Ok(r) => break r,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e).during("receiving on", "Unix datagram socket"),
            }
        };
        sender(got)
    }

    /// `recvfrom(2)` with `MSG_DONTWAIT`: a datagram that is there now and its sender;
    /// `Ok(None)` when none is. See [recvfrom(2)](https://man7.org/linux/man-pages/man2/recvfrom.2.html).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> Result<Option<(usize, Option<UnixAddr>)>> {
        self.recv_from_deadline(buf, Deadline::now())
    }

    /// `poll(2)` then `recvfrom(2)`: waits at most `timeout` for a datagram; `Ok(None)` when
    /// none came. See [recvfrom(2)](https://man7.org/linux/man-pages/man2/recvfrom.2.html).
    pub fn recv_from_timeout(
        &self,
        buf: &mut [u8],
        timeout: Duration,
    ) -> Result<Option<(usize, Option<UnixAddr>)>> {
        self.recv_from_deadline(buf, Deadline::after(timeout))
    }

    /// `poll(2)` then `recvfrom(2)`: as [`recv_from_timeout`](Self::recv_from_timeout), giving
    /// up at `deadline`. See [recvfrom(2)](https://man7.org/linux/man-pages/man2/recvfrom.2.html).
    pub fn recv_from_deadline(
        &self,
        buf: &mut [u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Option<(usize, Option<UnixAddr>)>> {
        let flags = RecvFlags::TRUNC | RecvFlags::DONTWAIT;
        let got = poll::until_ready(self.fd.as_fd(), PollFlags::IN, deadline.into(), || {
            match rustix::net::recvfrom(&self.fd, &mut *buf, flags) {
                Ok(r) => Ok(Some(r)),
                Err(Errno::INTR | Errno::AGAIN) => Ok(None),
                Err(e) => Err(e).during("receiving on", "Unix datagram socket"),
            }
        })?;
        got.map(sender).transpose()
    }

    /// Keeps the socket file after this socket is dropped.
    #[must_use]
    pub fn persist(mut self) -> Self {
        keep_file(&mut self.file);
        self
    }

    /// Closes the socket and `unlink(2)`s its socket file now, if it has one and the path
    /// still names it (else an error of kind [`Changed`](ErrorKind::Changed)).
    /// See [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html).
    pub fn remove(self) -> Result<()> {
        let UnixDatagram { fd, file } = self;
        close_and_unlink(fd, file)
    }
}

impl MessageTransport for UnixDatagram {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg).map(drop)
    }

    /// To the connected peer, as [`send_deadline`](UnixDatagram::send_deadline).
    fn send_msg_deadline(&mut self, msg: &[u8], deadline: Deadline) -> Result<bool> {
        send_until(&self.fd, msg, deadline, DGRAM_SEND)
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Deadline,
    ) -> Result<Option<usize>> {
        if !poll::readable_deadline(&self.fd, deadline)? {
            return Ok(None);
        }
        recv_into_vec(&self.fd, buf, DGRAM_RECV).map(Some)
    }

    /// `SO_SNDBUF` less the kernel's 32 bytes: the largest datagram a send takes.
    fn max_msg_len(&self) -> Option<usize> {
        rustix::net::sockopt::socket_send_buffer_size(&self.fd)
            .ok()
            .map(|n| n.saturating_sub(super::stream::SNDBUF_OVERHEAD))
    }
}

/// What `recvfrom` gave: the length, checked for truncation, and the sender's address.
fn sender(
    (n, full, from): (usize, usize, Option<rustix::net::SocketAddrAny>),
) -> Result<(usize, Option<UnixAddr>)> {
    check_truncated(n, full, DGRAM_RECV)?;
    let from = from
        .and_then(|a| SocketAddrUnix::try_from(a).ok())
        .and_then(|a| UnixAddr::from_sockaddr(&a));
    Ok((n, from))
}

const DGRAM_SEND: &str = "sending on Unix datagram socket";
const DGRAM_RECV: &str = "receiving on Unix datagram socket";

fn send_to_error(e: Errno, addr: &UnixAddr) -> Error {
    Error::os("sending datagram to", e)
        .object(addr)
        .hint_if(Errno::NOENT, "no socket there: start the receiver first")
        .hint_if(
            Errno::CONNREFUSED,
            "no socket is bound there: the socket file is stale",
        )
        .hint_if(
            Errno::MSGSIZE,
            "the datagram is larger than the socket's send buffer",
        )
}
