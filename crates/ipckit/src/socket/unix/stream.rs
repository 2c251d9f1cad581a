//! The connected kinds: [`UnixStream`] and [`UnixSeqpacket`].

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::net::{AddressFamily, RecvFlags, SendFlags, Shutdown, SocketFlags, SocketType};

use super::UnixAddr;
use super::io::{
    recv_blocking, recv_into_vec, recv_until, send_retry, send_until, timed_message_io,
};
use super::listener::{SocketKind, connect_new, type_name};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll;
use crate::poll::Deadline;
use crate::socket::ancillary::{self, Credentials};
use crate::transport::{MessageTransport, TimedRead, TimedWrite};

/// Socket operations shared by the connected kinds.
macro_rules! connected_socket {
    ($name:ident, $ty:expr) => {
        impl SocketKind for $name {
            const TYPE: SocketType = $ty;
            fn from_connected(fd: OwnedFd) -> Self {
                $name { fd }
            }
        }

        impl $name {
            /// `socket(2)` + `connect(2)` to a listener at `addr`, waiting as long as its
            /// backlog is full. See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
            pub fn connect(addr: &UnixAddr) -> Result<Self> {
                connect_new($ty, addr, Deadline::NEVER, None).map(|fd| $name { fd })
            }

            /// `socket(2)` + `connect(2)`: as [`connect`](Self::connect), failing with
            /// [`ErrorKind::TimedOut`] if the listener's backlog stays full for `timeout`.
            /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
            pub fn connect_timeout(addr: &UnixAddr, timeout: Duration) -> Result<Self> {
                connect_new($ty, addr, Deadline::after(timeout), Some(timeout))
                    .map(|fd| $name { fd })
            }

            /// `socket(2)` + `connect(2)`: as [`connect`](Self::connect), failing with
            /// [`ErrorKind::TimedOut`] if the listener's backlog stays full until `deadline`.
            /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
            pub fn connect_deadline(
                addr: &UnixAddr,
                deadline: impl Into<Deadline>,
            ) -> Result<Self> {
                connect_new($ty, addr, deadline.into(), None).map(|fd| $name { fd })
            }

            /// `socketpair(AF_UNIX, SOCK_CLOEXEC)`: two connected sockets, e.g. one for a child
            /// process. See [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html).
            pub fn pair() -> Result<(Self, Self)> {
                let (a, b) =
                    rustix::net::socketpair(AddressFamily::UNIX, $ty, SocketFlags::CLOEXEC, None)
                        .during("creating socket pair", type_name($ty))?;
                Ok(($name { fd: a }, $name { fd: b }))
            }

            /// `getsockopt(SO_DOMAIN, SO_TYPE)`: wraps a connected descriptor of this type (one
            /// inherited or received, say). Any other descriptor (not a socket, not
            /// `AF_UNIX`, another socket type) is refused with
            /// [`ErrorKind::InvalidInput`], the error saying what it is.
            /// See [getsockopt(2)](https://man7.org/linux/man-pages/man2/getsockopt.2.html).
            pub fn from_fd(fd: OwnedFd) -> Result<Self> {
                crate::sys::fd::check_unix_socket(
                    fd.as_fd(),
                    $ty,
                    concat!("a ", stringify!($name)),
                )?;
                Ok($name { fd })
            }

            /// `getsockopt(SO_PEERCRED)`: the peer's pid, uid and gid at connect time.
            /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
            pub fn peer_cred(&self) -> Result<Credentials> {
                ancillary::peer_cred(&self.fd)
            }

            /// `shutdown(SHUT_WR)`: the peer reads end of stream; this side can still read.
            /// See [shutdown(2)](https://man7.org/linux/man-pages/man2/shutdown.2.html).
            pub fn shutdown_write(&self) -> Result<()> {
                rustix::net::shutdown(&self.fd, Shutdown::Write)
                    .during("shutting down", type_name($ty))
            }

            /// Gives back the descriptor.
            pub fn into_fd(self) -> OwnedFd {
                self.fd
            }
        }

        crate::impl_fd!($name, fd);
        crate::impl_nonblocking!($name, fd);
    };
}

/// A connected Unix stream socket: a two-way byte stream.
#[derive(Debug)]
pub struct UnixStream {
    fd: OwnedFd,
}

connected_socket!(UnixStream, SocketType::STREAM);

impl Read for UnixStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::net::recv(&self.fd, buf, RecvFlags::empty())?.0)
    }
}

impl Write for UnixStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // MSG_NOSIGNAL: a closed peer is an EPIPE error, never a SIGPIPE that kills the process.
        Ok(rustix::net::send(&self.fd, buf, SendFlags::NOSIGNAL)?)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TimedRead for UnixStream {
    fn read_deadline(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<Option<usize>> {
        poll::read_until(self.fd.as_fd(), buf, deadline)
    }
}

/// `send(2)` with `MSG_DONTWAIT | MSG_NOSIGNAL`, polled for room: never blocks and never
/// changes the descriptor's flags. See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
impl TimedWrite for UnixStream {
    fn write_deadline(&mut self, buf: &[u8], deadline: Deadline) -> Result<Option<usize>> {
        poll::send_until(
            self.fd.as_fd(),
            buf,
            deadline,
            "sending on Unix stream socket",
        )
    }
}

/// How much less than `SO_SNDBUF` the largest Unix datagram or seqpacket message is: the
/// kernel refuses a message over `sk_sndbuf - 32` with EMSGSIZE (`unix_dgram_sendmsg`).
pub(super) const SNDBUF_OVERHEAD: usize = 32;

/// A connected Unix seqpacket socket: reliable, ordered, and one send is one receive.
#[derive(Debug)]
pub struct UnixSeqpacket {
    fd: OwnedFd,
}

connected_socket!(UnixSeqpacket, SocketType::SEQPACKET);

const SEQPACKET_SEND: &str = "sending on Unix seqpacket socket";
const SEQPACKET_RECV: &str = "receiving on Unix seqpacket socket";

impl UnixSeqpacket {
    /// `send(2)` with `MSG_NOSIGNAL`: sends one packet, waiting while the peer's queue is full.
    /// See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn send(&self, msg: &[u8]) -> Result<usize> {
        send_retry(&self.fd, msg, SEQPACKET_SEND)
    }

    timed_message_io!("packet", SEQPACKET_SEND, SEQPACKET_RECV);

    /// `recv(2)` with `MSG_TRUNC`: waits for one packet and receives it into `buf`; `Ok(0)` at
    /// end of stream. A packet larger than `buf` is an error of kind
    /// [`Truncated`](ErrorKind::Truncated) (its tail is lost, as the kernel discards it; the
    /// error's [`received`](Error::received) says how much arrived).
    /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv_blocking(&self.fd, buf, SEQPACKET_RECV)
    }
}

impl MessageTransport for UnixSeqpacket {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg).map(drop)
    }

    fn send_msg_deadline(&mut self, msg: &[u8], deadline: Deadline) -> Result<bool> {
        send_until(&self.fd, msg, deadline, SEQPACKET_SEND)
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Deadline,
    ) -> Result<Option<usize>> {
        if !poll::readable_deadline(&self.fd, deadline)? {
            return Ok(None);
        }
        let n = recv_into_vec(&self.fd, buf, SEQPACKET_RECV)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Disconnected,
                SEQPACKET_RECV,
                "the peer closed the connection",
            ));
        }
        Ok(Some(n))
    }

    /// `SO_SNDBUF` less the kernel's 32 bytes: the largest packet a send takes.
    fn max_msg_len(&self) -> Option<usize> {
        rustix::net::sockopt::socket_send_buffer_size(&self.fd)
            .ok()
            .map(|n| n.saturating_sub(SNDBUF_OVERHEAD))
    }
}
