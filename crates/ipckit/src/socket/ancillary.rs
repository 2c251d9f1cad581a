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
//! let mut w = pipe::PipeWriter::from_fd(got.fds.into_iter().next().unwrap()).unwrap();
//! w.write_all(b"via fd").unwrap();
//! drop(w);
//! let mut s = String::new();
//! (&r).read_to_string(&mut s).unwrap();
//! assert_eq!(s, "via fd");
//! ```

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use rustix::io::Errno;
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, UCred};

use std::time::Duration;

use rustix::event::PollFlags;

use crate::Pid;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll::{self, Deadline};

/// The most descriptors one message may carry on Linux (`SCM_MAX_FD`).
pub const MAX_FDS: usize = 253;

/// A process's identity as the kernel vouches for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// Process id (0 when the kernel does not know it, e.g. across pid namespaces).
    pub pid: Pid,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl From<libc::ucred> for Credentials {
    fn from(c: libc::ucred) -> Self {
        Credentials {
            // The kernel never reports a negative pid here; 0 stands for "unknown".
            pid: Pid::try_from(c.pid).unwrap_or(0),
            uid: c.uid,
            gid: c.gid,
        }
    }
}

impl Credentials {
    /// `getpid()`, `getuid()`, `getgid()`: this process's own credentials.
    /// See [getpid(2)](https://man7.org/linux/man-pages/man2/getpid.2.html),
    /// [getuid(2)](https://man7.org/linux/man-pages/man2/getuid.2.html).
    pub fn current() -> Self {
        Credentials {
            pid: std::process::id(),
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }
}

/// `getsockopt(SO_PEERCRED)`: who is at the other end of a connected stream or seqpacket
/// socket, as recorded at connect (or socketpair) time.
/// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
///
/// The pid is 0 when the kernel has none to give: a peer in another pid namespace, or a
/// datagram socket. (libc here, not rustix: rustix's `UCred` cannot hold a pid of 0.)
pub fn peer_cred<S: AsFd>(sock: S) -> Result<Credentials> {
    // SAFETY: all-zero is a valid ucred.
    let mut c: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `c` is writable for `len` bytes and the descriptor is valid for the call.
    let r = unsafe {
        libc::getsockopt(
            sock.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut c as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r == -1 {
        return Err(std::io::Error::last_os_error())
            .during("reading peer credentials", "(SO_PEERCRED)");
    }
    Ok(c.into())
}

/// `setsockopt(SO_PASSCRED)`: with it on, every message received on this socket carries the
/// sender's credentials (see [`recv`]). See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
pub fn set_pass_credentials<S: AsFd>(sock: S, on: bool) -> Result<()> {
    rustix::net::sockopt::set_socket_passcred(&sock, on).during("setting", "SO_PASSCRED")
}

/// `sendmsg(2)` with `SCM_RIGHTS`: sends `data` (at least one byte on a stream socket) and
/// duplicates of `fds` into the receiving process. The caller keeps its own descriptors.
/// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
pub fn send_fds<S: AsFd>(sock: S, data: &[u8], fds: &[BorrowedFd<'_>]) -> Result<usize> {
    if data.is_empty() && !fds.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sending descriptors",
            "no data byte to carry them: on a stream socket the kernel would drop them silently",
        )
        .hint("send at least one byte with the descriptors"));
    }
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

/// `sendmsg(2)` with `SCM_CREDENTIALS` carrying this process's own pid, uid and gid (the
/// kernel checks them). The receiver must have [`set_pass_credentials`] on.
/// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
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
                    .object("on Unix socket")
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

/// `recvmsg(2)` with room for `max_fds` descriptors and credentials (`MSG_CMSG_CLOEXEC`):
/// waits for a message. See [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html)
/// and [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
///
/// Control data that did not fit (`MSG_CTRUNC`), or more descriptors than `max_fds`, is an
/// error of kind [`Truncated`](ErrorKind::Truncated), and every descriptor that did arrive has
/// been closed by then. A datagram or packet larger than `buf` is likewise a `Truncated`
/// error; [`Error::received`] says how many bytes arrived in either case. (libc here, not
/// rustix: rustix's credentials type cannot hold the pid 0 the kernel sends for a sender in
/// another pid namespace.)
///
/// The call is made as the descriptor is: on a non-blocking socket (or one with
/// `SO_RCVTIMEO`) it fails with EAGAIN when nothing came; [`try_recv`] and the timed forms
/// never block whatever the descriptor.
pub fn recv<S: AsFd>(sock: S, buf: &mut [u8], max_fds: usize) -> Result<Received> {
    loop {
        if let Some(got) = recv_once(sock.as_fd(), &mut *buf, max_fds, 0)? {
            return Ok(got);
        }
    }
}

/// `recvmsg(2)` with `MSG_DONTWAIT`: as [`recv`], for a message that is there now;
/// `Ok(None)` when none is. See [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn try_recv<S: AsFd>(sock: S, buf: &mut [u8], max_fds: usize) -> Result<Option<Received>> {
    recv_deadline(sock, buf, max_fds, Deadline::now())
}

/// `poll(2)` then `recvmsg(2)`: as [`recv`], waiting at most `timeout`; `Ok(None)` when no
/// message came. See [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn recv_timeout<S: AsFd>(
    sock: S,
    buf: &mut [u8],
    max_fds: usize,
    timeout: Duration,
) -> Result<Option<Received>> {
    recv_deadline(sock, buf, max_fds, Deadline::after(timeout))
}

/// `poll(2)` then `recvmsg(2)`: as [`recv_timeout`], giving up at `deadline`.
/// See [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
pub fn recv_deadline<S: AsFd>(
    sock: S,
    buf: &mut [u8],
    max_fds: usize,
    deadline: impl Into<Deadline>,
) -> Result<Option<Received>> {
    let fd = sock.as_fd();
    poll::until_ready(fd, PollFlags::IN, deadline.into(), || {
        recv_once(fd, &mut *buf, max_fds, libc::MSG_DONTWAIT)
    })
}

/// One `recvmsg` with `flags` added: `Ok(None)` when a signal interrupted it, or nothing was
/// there for an `MSG_DONTWAIT` call.
fn recv_once(
    sock: BorrowedFd<'_>,
    buf: &mut [u8],
    max_fds: usize,
    flags: libc::c_int,
) -> Result<Option<Received>> {
    let max_fds = max_fds.min(MAX_FDS);
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe {
        libc::CMSG_SPACE((max_fds * std::mem::size_of::<libc::c_int>()) as u32)
            + libc::CMSG_SPACE(std::mem::size_of::<libc::ucred>() as u32)
    } as usize;
    // u64 words: the control buffer must be aligned for cmsghdr.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: all-zero is a valid msghdr (no name, no iovecs, no control).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = space as _;
    // SAFETY: `msg` points at `iov` (into `buf`) and `control`, all live and writable for
    // the lengths given.
    let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC | flags) };
    if n < 0 {
        let err = std::io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => Ok(None),
            Some(libc::EAGAIN) if flags & libc::MSG_DONTWAIT != 0 => Ok(None),
            _ => Err(err).during("receiving with ancillary data on", "Unix socket"),
        };
    }
    let n = n as usize;
    let mut got = Received {
        bytes: n,
        ..Received::default()
    };
    // SAFETY: the kernel filled `msg_controllen` bytes of well-formed control messages; the
    // CMSG_* macros walk them within that length, and each payload is read unaligned.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    for i in 0..len / std::mem::size_of::<libc::c_int>() {
                        let fd = std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                        // Each one is a new descriptor in this process, ours to close.
                        got.fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS)
                    if len >= std::mem::size_of::<libc::ucred>() =>
                {
                    got.credentials =
                        Some(std::ptr::read_unaligned(data.cast::<libc::ucred>()).into());
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    if msg.msg_flags & libc::MSG_CTRUNC != 0 || got.fds.len() > max_fds {
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
        .hint("receive with room for more descriptors")
        .with_received(n));
    }
    if msg.msg_flags & libc::MSG_TRUNC != 0 {
        return Err(Error::new(
            ErrorKind::Truncated,
            "receiving with ancillary data",
            format!(
                "the message did not fit the {}-byte buffer and was cut",
                buf.len()
            ),
        )
        .hint("receive into a larger buffer")
        .with_received(n));
    }
    Ok(Some(got))
}
