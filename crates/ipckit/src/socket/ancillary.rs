//! Ancillary data on Unix sockets: passing open descriptors (`SCM_RIGHTS`) and credentials
//! (`SO_PEERCRED`, `SCM_CREDENTIALS`).
//!
//! Received descriptors arrive as [`OwnedFd`], so none can leak: if the sender passed more
//! than there was room for (`MSG_CTRUNC`), every descriptor that did arrive is closed and the
//! call fails with [`ErrorKind::Truncated`]; the kernel has already closed the rest.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::os::fd::AsFd;
//! use ipckit::socket::{ancillary, unix::UnixStream};
//! use ipckit::stream::pipe;
//! let (a, b) = UnixStream::pair().unwrap();
//! let (r, w) = pipe::pipe().unwrap();
//! ancillary::send_fds(&a, b"w", &[w.as_fd()]).unwrap();
//! drop(w);
//! let mut buf = [0u8; 1];
//! let got = ancillary::recv(&b, &mut buf, 1).unwrap();
//! let mut w = pipe::PipeWriter::from_fd(got.fds.into_iter().next().unwrap());
//! w.write_all(b"via fd").unwrap();
//! drop(w);
//! let mut s = String::new();
//! (&r).read_to_string(&mut s).unwrap();
//! assert_eq!(s, "via fd");
//! ```

use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, ReturnFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, UCred,
};

use crate::error::{Context, Error, ErrorKind, Result};

/// The most descriptors one message may carry on Linux (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// A process's identity as the kernel vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Process id (0 when the kernel does not know it, e.g. across pid namespaces).
    pub pid: i32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl From<UCred> for Credentials {
    fn from(c: UCred) -> Self {
        Credentials {
            pid: c.pid.as_raw_nonzero().get(),
            uid: c.uid.as_raw(),
            gid: c.gid.as_raw(),
        }
    }
}

impl Credentials {
    /// This process's own credentials.
    pub fn current() -> Self {
        Credentials {
            pid: rustix::process::getpid().as_raw_nonzero().get(),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }
}

/// `getsockopt(SO_PEERCRED)`: who is at the other end of a connected stream or seqpacket
/// socket, as recorded at connect (or socketpair) time.
/// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
pub fn peer_cred<S: AsFd>(sock: S) -> Result<Credentials> {
    let c = rustix::net::sockopt::socket_peercred(&sock)
        .during("reading peer credentials", "(SO_PEERCRED)")?;
    Ok(Credentials {
        pid: c.pid.as_raw_nonzero().get(),
        uid: c.uid.as_raw(),
        gid: c.gid.as_raw(),
    })
}

/// `setsockopt(SO_PASSCRED)`: with it on, every message received on this socket carries the
/// sender's credentials (see [`recv`]).
pub fn set_pass_credentials<S: AsFd>(sock: S, on: bool) -> Result<()> {
    rustix::net::sockopt::set_socket_passcred(&sock, on).during("setting", "SO_PASSCRED")
}

/// `sendmsg` with `SCM_RIGHTS`: sends `data` (at least one byte on a stream socket) and
/// duplicates of `fds` into the receiving process. The caller keeps its own descriptors.
pub fn send_fds<S: AsFd>(sock: S, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    if fds.len() > MAX_FDS {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sending descriptors",
            format!(
                "{} descriptors is over the kernel's {MAX_FDS} per message",
                fds.len()
            ),
        )
        .hint("send them in several messages"));
    }
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() {
        control.push(SendAncillaryMessage::ScmRights(fds));
    }
    sendmsg_retry(
        &sock,
        data,
        &mut control,
        "sending descriptors (SCM_RIGHTS)",
    )
}

/// `sendmsg` with `SCM_CREDENTIALS` carrying this process's own pid, uid and gid (the kernel
/// checks them). The receiver must have [`set_pass_credentials`] on.
pub fn send_credentials<S: AsFd>(sock: S, data: &[u8]) -> Result<usize> {
    let me = UCred {
        pid: rustix::process::getpid(),
        uid: rustix::process::getuid(),
        gid: rustix::process::getgid(),
    };
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    control.push(SendAncillaryMessage::ScmCredentials(me));
    sendmsg_retry(
        &sock,
        data,
        &mut control,
        "sending credentials (SCM_CREDENTIALS)",
    )
}

fn sendmsg_retry<S: AsFd>(
    sock: &S,
    data: &[u8],
    control: &mut SendAncillaryBuffer<'_, '_, '_>,
    op: &'static str,
) -> Result<usize> {
    loop {
        match rustix::net::sendmsg(sock, &[IoSlice::new(data)], control, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => {
                return Err(Error::os(op, e)
                    .hint_if(Errno::PIPE, "the peer closed the connection")
                    .hint_if(
                        Errno::TOOMANYREFS,
                        "too many descriptors in flight: the receiver must collect them",
                    ));
            }
        }
    }
}

/// What one [`recv`] delivered.
#[derive(Debug, Default)]
pub struct Received {
    /// Data bytes received into the buffer (0 at end of stream).
    pub bytes: usize,
    /// Descriptors passed with the data, owned by this process now, close-on-exec.
    pub fds: Vec<OwnedFd>,
    /// The sender's credentials, when [`set_pass_credentials`] is on or the sender sent them.
    pub credentials: Option<Credentials>,
}

/// `recvmsg` with room for `max_fds` descriptors and credentials (`MSG_CMSG_CLOEXEC`).
///
/// Control data that did not fit (`MSG_CTRUNC`) is an error of kind
/// [`Truncated`](ErrorKind::Truncated), and every descriptor that did arrive has been closed
/// by then. A datagram or packet larger than `buf` is likewise a `Truncated` error.
pub fn recv<S: AsFd>(sock: S, buf: &mut [u8], max_fds: usize) -> Result<Received> {
    let max_fds = max_fds.min(MAX_FDS);
    let mut space =
        vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(max_fds), ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let msg = loop {
        let mut iov = [IoSliceMut::new(&mut *buf)];
        match rustix::net::recvmsg(&sock, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
            Ok(m) => break m,
            Err(Errno::INTR) => continue,
            Err(e) => return Err(e).during("receiving with ancillary data", "(recvmsg)"),
        }
    };
    let mut got = Received {
        bytes: msg.bytes,
        ..Received::default()
    };
    for cmsg in control.drain() {
        match cmsg {
            RecvAncillaryMessage::ScmRights(fds) => got.fds.extend(fds),
            RecvAncillaryMessage::ScmCredentials(c) => got.credentials = Some(c.into()),
            _ => {}
        }
    }
    // The control buffer is rounded up for alignment, so a few more than `max_fds` may fit
    // without MSG_CTRUNC: the limit is the caller's, so that is refused the same way.
    if msg.flags.contains(ReturnFlags::CTRUNC) || got.fds.len() > max_fds {
        let arrived = got.fds.len();
        drop(got); // closes every descriptor that arrived
        return Err(Error::new(
            ErrorKind::Truncated,
            "receiving descriptors",
            format!(
                "the sender passed more descriptors than the {max_fds} there was room for; \
                 the {arrived} that arrived were closed and the kernel discarded the rest"
            ),
        )
        .hint("receive with room for more descriptors"));
    }
    if msg.flags.contains(ReturnFlags::TRUNC) {
        return Err(Error::new(
            ErrorKind::Truncated,
            "receiving with ancillary data",
            format!(
                "the message did not fit the {}-byte buffer and was cut",
                buf.len()
            ),
        )
        .hint("receive into a larger buffer"));
    }
    Ok(got)
}
