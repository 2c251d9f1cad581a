//! Unix domain sockets: stream, seqpacket and datagram; filesystem paths and abstract names;
//! socket pairs; listeners that own their socket file.
//!
//! - A stream socket ([`UnixStream`]) is a byte stream: no message boundaries.
//! - A seqpacket socket ([`UnixSeqpacket`]) is connected and keeps boundaries.
//! - A datagram socket ([`UnixDatagram`]) keeps boundaries, needs no connection, and is
//!   reliable and ordered on Unix (unlike UDP).
//!
//! A socket bound to a path leaves a file that outlives the process. The binding handle owns
//! it: the file is removed on drop (only if the path still names the same socket) unless
//! `persist()`ed. Binding over an existing socket file takes it over only after a connect
//! proves no one listens; a live listener's path is refused with an error naming its pid (the
//! live listener then accepts that probe as a connection that is already closed).
//! Socket files are created 0600 unless [`BindOptions::mode`] says otherwise.
//!
//! ```
//! use std::io::{Read, Write};
//! use ipckit::socket::unix::{UnixAddr, UnixListener, UnixStream};
//! let addr = UnixAddr::abstract_name(ipckit::name::unique("doc").as_bytes());
//! let listener = UnixListener::bind(&addr).unwrap();
//! let mut client = UnixStream::connect(&addr).unwrap();
//! let mut server = listener.accept().unwrap();
//! client.write_all(b"ping").unwrap();
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"ping");
//! assert_eq!(server.peer_cred().unwrap().pid, std::process::id() as i32);
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, Shutdown, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::error::{Context, Error, ErrorKind, Result};
use crate::socket::ancillary::{self, Credentials};
use crate::transport::{MessageTransport, TimedRead};
use crate::{name, poll};

/// Where a Unix socket lives: a filesystem path, or a name in the abstract namespace (Linux:
/// no file, gone with the last socket, not subject to file permissions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnixAddr {
    /// A filesystem path.
    Path(PathBuf),
    /// An abstract name (written `@name`).
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// A filesystem path address.
    pub fn path(path: impl Into<PathBuf>) -> Self {
        UnixAddr::Path(path.into())
    }

    /// An abstract-namespace address.
    pub fn abstract_name(name: impl Into<Vec<u8>>) -> Self {
        UnixAddr::Abstract(name.into())
    }

    fn to_sockaddr(&self) -> Result<SocketAddrUnix> {
        match self {
            UnixAddr::Path(p) => {
                name::check_socket_path(p)?;
                SocketAddrUnix::new(p.as_path()).during("making socket address", self)
            }
            UnixAddr::Abstract(n) => {
                name::check_abstract_name(n)?;
                SocketAddrUnix::new_abstract_name(n).during("making socket address", self)
            }
        }
    }

    fn from_sockaddr(addr: &SocketAddrUnix) -> Option<Self> {
        if let Some(p) = addr.path_bytes() {
            Some(UnixAddr::Path(PathBuf::from(std::ffi::OsStr::from_bytes(
                p,
            ))))
        } else {
            addr.abstract_name().map(|n| UnixAddr::Abstract(n.to_vec()))
        }
    }
}

impl fmt::Display for UnixAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnixAddr::Path(p) => write!(f, "{}", p.display()),
            UnixAddr::Abstract(n) => write!(f, "@{}", String::from_utf8_lossy(n)),
        }
    }
}

impl From<&Path> for UnixAddr {
    fn from(p: &Path) -> Self {
        UnixAddr::Path(p.to_owned())
    }
}

/// How to bind: the socket file's mode, the listen backlog, and whether a stale file may be
/// taken over.
#[derive(Debug, Clone)]
pub struct BindOptions {
    /// Mode of the socket file (paths only). Default 0600: only the owner may connect.
    pub mode: u32,
    /// `listen(2)` backlog for stream and seqpacket listeners. Default 128.
    pub backlog: i32,
    /// Take over a socket file no one listens on (proved by a refused connect). Default true.
    pub take_over_stale: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            mode: 0o600,
            backlog: 128,
            take_over_stale: true,
        }
    }
}

/// The socket file a bound socket owns: removed on drop if the path still names it.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev_ino: (u64, u64),
    keep: bool,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // The path may have been replaced since (and a freed inode number may be reused at
        // once, so the type is checked too).
        if let Ok(st) = rustix::fs::lstat(&self.path) {
            let socket =
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket;
            if socket && (st.st_dev, st.st_ino) == self.dev_ino {
                let _ = rustix::fs::unlink(&self.path);
            }
        }
    }
}

fn type_name(ty: SocketType) -> &'static str {
    match ty {
        SocketType::STREAM => "Unix stream socket",
        SocketType::SEQPACKET => "Unix seqpacket socket",
        _ => "Unix datagram socket",
    }
}

fn new_socket(ty: SocketType) -> Result<OwnedFd> {
    rustix::net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC, None)
        .during("creating socket", type_name(ty))
}

/// Connects a new socket of type `ty` to `addr`, retrying EINTR.
fn connect_new(ty: SocketType, addr: &UnixAddr) -> Result<OwnedFd> {
    let sa = addr.to_sockaddr()?;
    let fd = new_socket(ty)?;
    loop {
        match rustix::net::connect(&fd, &sa) {
            Ok(()) => return Ok(fd),
            Err(Errno::INTR) => continue,
            Err(e) => {
                return Err(Error::os(
                    match ty {
                        SocketType::STREAM => "connecting Unix stream socket to",
                        SocketType::SEQPACKET => "connecting Unix seqpacket socket to",
                        _ => "connecting Unix datagram socket to",
                    },
                    e,
                )
                .object(addr)
                .hint_if(Errno::NOENT, "no socket there: start the listener first")
                .hint_if(
                    Errno::CONNREFUSED,
                    "nothing listens there: the socket file is stale or the listener is gone",
                )
                .hint_if(
                    Errno::PROTOTYPE,
                    "the listener there is of another socket type (stream, seqpacket, datagram)",
                )
                .hint_if(Errno::AGAIN, "the listener's backlog is full: try again"));
            }
        }
    }
}

/// Binds a socket of type `ty` at `addr`, taking over a stale socket file if allowed.
fn bind_new(
    ty: SocketType,
    addr: &UnixAddr,
    opts: &BindOptions,
) -> Result<(OwnedFd, Option<SocketFile>)> {
    let sa = addr.to_sockaddr()?;
    let fd = new_socket(ty)?;
    let op = match ty {
        SocketType::STREAM => "binding Unix stream socket to",
        SocketType::SEQPACKET => "binding Unix seqpacket socket to",
        _ => "binding Unix datagram socket to",
    };
    match rustix::net::bind(&fd, &sa) {
        Ok(()) => {}
        Err(Errno::ADDRINUSE) => match addr {
            UnixAddr::Abstract(_) => {
                return Err(Error::os(op, Errno::ADDRINUSE)
                    .object(addr)
                    .hint("a live socket holds this abstract name (abstract names vanish with their last socket, so it is never stale): pick another name"));
            }
            UnixAddr::Path(path) => {
                take_over_stale(ty, addr, path, op, opts)?;
                rustix::net::bind(&fd, &sa).during(op, addr)?;
            }
        },
        Err(e) => {
            return Err(Error::os(op, e).object(addr).hint_if(
                Errno::NOENT,
                "the directory does not exist: create it first",
            ));
        }
    }
    let file = match addr {
        UnixAddr::Abstract(_) => None,
        UnixAddr::Path(path) => {
            let st = rustix::fs::lstat(path).during("checking socket file", path.display())?;
            let file = SocketFile {
                path: path.clone(),
                dev_ino: (st.st_dev, st.st_ino),
                keep: false,
            };
            // Before listen(), no one can connect, so setting the mode here leaves no window
            // for stream and seqpacket sockets.
            rustix::fs::chmod(
                path,
                rustix::fs::Mode::from_bits_truncate(opts.mode & 0o7777),
            )
            .during("setting mode of socket file", path.display())?;
            Some(file)
        }
    };
    Ok((fd, file))
}

/// Something is bound at `path`: remove it only if it is a socket file nobody listens on.
fn take_over_stale(
    ty: SocketType,
    addr: &UnixAddr,
    path: &Path,
    op: &'static str,
    opts: &BindOptions,
) -> Result<()> {
    let st = rustix::fs::lstat(path).during(op, addr)?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return Err(Error::os(op, Errno::ADDRINUSE)
            .object(addr)
            .hint("a file that is not a socket is there: ipckit will not remove it"));
    }
    let probe = new_socket(ty)?;
    let sa = addr.to_sockaddr()?;
    let refused = loop {
        match rustix::net::connect(&probe, &sa) {
            Err(Errno::INTR) => continue,
            Err(Errno::CONNREFUSED) => break true,
            Ok(()) => {
                let who = ancillary::peer_cred(&probe)
                    .ok()
                    .filter(|c| c.pid > 0)
                    .map(|c| format!("process {} (uid {})", c.pid, c.uid))
                    .unwrap_or_else(|| "another process".into());
                return Err(Error::os(op, Errno::ADDRINUSE).object(addr).hint(format!(
                    "{who} is listening there: stop it, or use another path"
                )));
            }
            Err(e) => {
                return Err(Error::os(op, Errno::ADDRINUSE).object(addr).hint(format!(
                    "a live socket is there (a probe connect got {}): stop its owner, or use another path",
                    crate::error::errno_name(e)
                )));
            }
        }
    };
    if refused && !opts.take_over_stale {
        return Err(Error::os(op, Errno::ADDRINUSE)
            .object(addr)
            .hint("a stale socket file is there (no listener): remove it, or allow take-over"));
    }
    match rustix::fs::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::os("removing stale socket file", e).object(addr)),
    }
}

/// A kind of connected Unix socket a [`Listener`] accepts.
pub trait SocketKind: Sized {
    /// The socket type.
    const TYPE: SocketType;
    /// Wraps an accepted or connected descriptor.
    fn from_connected(fd: OwnedFd) -> Self;
}

/// A bound, listening Unix socket of kind `T`. Owns its socket file.
#[derive(Debug)]
pub struct Listener<T> {
    fd: OwnedFd,
    addr: UnixAddr,
    file: Option<SocketFile>,
    _kind: PhantomData<fn() -> T>,
}

/// A listener for [`UnixStream`] connections.
pub type UnixListener = Listener<UnixStream>;
/// A listener for [`UnixSeqpacket`] connections.
pub type SeqpacketListener = Listener<UnixSeqpacket>;

impl<T: SocketKind> Listener<T> {
    /// `socket` + `bind` + `listen` with default [`BindOptions`] (mode 0600, stale take-over).
    /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn bind(addr: &UnixAddr) -> Result<Self> {
        Self::bind_with(addr, &BindOptions::default())
    }

    /// `socket` + `bind` + `listen` with the options given.
    pub fn bind_with(addr: &UnixAddr, opts: &BindOptions) -> Result<Self> {
        let (fd, file) = bind_new(T::TYPE, addr, opts)?;
        rustix::net::listen(&fd, opts.backlog).during("listening on", addr)?;
        Ok(Listener {
            fd,
            addr: addr.clone(),
            file,
            _kind: PhantomData,
        })
    }

    /// `accept4(SOCK_CLOEXEC)`: waits for the next connection.
    pub fn accept(&self) -> Result<T> {
        loop {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => return Ok(T::from_connected(fd)),
                Err(Errno::INTR | Errno::CONNABORTED) => continue,
                Err(e) => return Err(e).during("accepting connection on", &self.addr),
            }
        }
    }

    /// Waits at most `timeout` for a connection; `Ok(None)` if none came.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        if !poll::readable(&self.fd, Some(timeout))? {
            return Ok(None);
        }
        match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(fd) => {
                poll::set_nonblocking(&fd, false)?;
                Ok(Some(T::from_connected(fd)))
            }
            Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
            Err(e) => Err(e).during("accepting connection on", &self.addr),
        }
    }

    /// The address bound.
    pub fn local_addr(&self) -> &UnixAddr {
        &self.addr
    }

    /// Keeps the socket file after this listener is dropped.
    pub fn persist(&mut self) {
        if let Some(f) = &mut self.file {
            f.keep = true;
        }
    }
}

impl<T> AsFd for Listener<T> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

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
            /// `socket` + `connect` to a listener at `addr`.
            pub fn connect(addr: &UnixAddr) -> Result<Self> {
                connect_new($ty, addr).map(|fd| $name { fd })
            }

            /// `socketpair(2)`: two connected sockets, e.g. one for a child process.
            pub fn pair() -> Result<(Self, Self)> {
                let (a, b) =
                    rustix::net::socketpair(AddressFamily::UNIX, $ty, SocketFlags::CLOEXEC, None)
                        .during("creating socket pair", type_name($ty))?;
                Ok(($name { fd: a }, $name { fd: b }))
            }

            /// Wraps a connected descriptor of this type (one inherited or received, say).
            pub fn from_fd(fd: OwnedFd) -> Self {
                $name { fd }
            }

            /// The peer's pid, uid and gid at connect time (`SO_PEERCRED`).
            pub fn peer_cred(&self) -> Result<Credentials> {
                ancillary::peer_cred(&self.fd)
            }

            /// `shutdown(SHUT_WR)`: the peer reads end of stream; this side can still read.
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
    fn read_with_timeout(
        &mut self,
        buf: &mut [u8],
        timeout: Option<Duration>,
    ) -> Result<Option<usize>> {
        poll::read_timeout(self.fd.as_fd(), buf, timeout)
    }
}

/// A connected Unix seqpacket socket: reliable, ordered, and one send is one receive.
#[derive(Debug)]
pub struct UnixSeqpacket {
    fd: OwnedFd,
}

connected_socket!(UnixSeqpacket, SocketType::SEQPACKET);

impl UnixSeqpacket {
    /// Sends one packet.
    pub fn send(&self, msg: &[u8]) -> Result<usize> {
        send_retry(&self.fd, msg, "sending on Unix seqpacket socket")
    }

    /// Receives one packet into `buf`; `Ok(0)` at end of stream. A packet larger than `buf` is
    /// an error of kind [`Truncated`](ErrorKind::Truncated) (its tail is lost, as the kernel
    /// discards it).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv_checked(&self.fd, buf, "receiving on Unix seqpacket socket")
    }
}

impl MessageTransport for UnixSeqpacket {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg).map(drop)
    }

    fn recv_msg(&mut self, buf: &mut Vec<u8>, timeout: Option<Duration>) -> Result<Option<usize>> {
        if !poll::readable(&self.fd, timeout)? {
            return Ok(None);
        }
        let n = recv_into_vec(&self.fd, buf, "receiving on Unix seqpacket socket")?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Disconnected,
                "receiving on Unix seqpacket socket",
                "the peer closed the connection",
            ));
        }
        Ok(Some(n))
    }

    fn max_msg_len(&self) -> Option<usize> {
        rustix::net::sockopt::socket_send_buffer_size(&self.fd).ok()
    }
}

/// A Unix datagram socket: no connection needed, boundaries kept, reliable on Unix.
/// Owns its socket file when bound to a path.
#[derive(Debug)]
pub struct UnixDatagram {
    fd: OwnedFd,
    file: Option<SocketFile>,
}

crate::impl_fd!(UnixDatagram, fd);

impl UnixDatagram {
    /// A datagram socket bound to `addr` (to receive). Default [`BindOptions`].
    pub fn bind(addr: &UnixAddr) -> Result<Self> {
        Self::bind_with(addr, &BindOptions::default())
    }

    /// A datagram socket bound to `addr` with the options given.
    pub fn bind_with(addr: &UnixAddr, opts: &BindOptions) -> Result<Self> {
        let (fd, file) = bind_new(SocketType::DGRAM, addr, opts)?;
        Ok(UnixDatagram { fd, file })
    }

    /// An unbound datagram socket (to send with [`send_to`](Self::send_to)).
    pub fn unbound() -> Result<Self> {
        Ok(UnixDatagram {
            fd: new_socket(SocketType::DGRAM)?,
            file: None,
        })
    }

    /// An unbound socket connected to `addr`: [`send`](Self::send) goes there.
    pub fn connect(addr: &UnixAddr) -> Result<Self> {
        Ok(UnixDatagram {
            fd: connect_new(SocketType::DGRAM, addr)?,
            file: None,
        })
    }

    /// `socketpair(2)` of datagram sockets.
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

    /// Sends one datagram to the connected peer.
    pub fn send(&self, msg: &[u8]) -> Result<usize> {
        send_retry(&self.fd, msg, "sending on Unix datagram socket")
    }

    /// Sends one datagram to `addr`.
    pub fn send_to(&self, msg: &[u8], addr: &UnixAddr) -> Result<usize> {
        let sa = addr.to_sockaddr()?;
        loop {
            match rustix::net::sendto(&self.fd, msg, SendFlags::NOSIGNAL, &sa) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::os("sending datagram to", e)
                        .object(addr)
                        .hint_if(Errno::NOENT, "no socket there: start the receiver first")
                        .hint_if(
                            Errno::CONNREFUSED,
                            "no socket is bound there: the socket file is stale",
                        )
                        .hint_if(
                            Errno::MSGSIZE,
                            "the datagram is larger than the socket's send buffer",
                        ));
                }
            }
        }
    }

    /// Receives one datagram into `buf`. A datagram larger than `buf` is an error of kind
    /// [`Truncated`](ErrorKind::Truncated).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv_checked(&self.fd, buf, "receiving on Unix datagram socket")
    }

    /// Receives one datagram and the sender's address, when the sender is bound.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, Option<UnixAddr>)> {
        let (n, full, from) = loop {
            match rustix::net::recvfrom(&self.fd, &mut *buf, RecvFlags::TRUNC) {
                Ok(r) => break r,
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e).during("receiving on", "Unix datagram socket"),
            }
        };
        check_truncated(n, full, "receiving on Unix datagram socket")?;
        let from = from
            .and_then(|a| SocketAddrUnix::try_from(a).ok())
            .and_then(|a| UnixAddr::from_sockaddr(&a));
        Ok((n, from))
    }

    /// Keeps the socket file after this socket is dropped.
    pub fn persist(&mut self) {
        if let Some(f) = &mut self.file {
            f.keep = true;
        }
    }
}

impl MessageTransport for UnixDatagram {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg).map(drop)
    }

    fn recv_msg(&mut self, buf: &mut Vec<u8>, timeout: Option<Duration>) -> Result<Option<usize>> {
        if !poll::readable(&self.fd, timeout)? {
            return Ok(None);
        }
        recv_into_vec(&self.fd, buf, "receiving on Unix datagram socket").map(Some)
    }

    fn max_msg_len(&self) -> Option<usize> {
        rustix::net::sockopt::socket_send_buffer_size(&self.fd).ok()
    }
}

fn send_retry(fd: &OwnedFd, msg: &[u8], op: &'static str) -> Result<usize> {
    loop {
        match rustix::net::send(fd, msg, SendFlags::NOSIGNAL) {
            Ok(n) => return Ok(n),
            Err(Errno::INTR) => continue,
            Err(e) => {
                return Err(Error::os(op, e)
                    .hint_if(
                        Errno::MSGSIZE,
                        "the message is larger than the socket's send buffer (SO_SNDBUF)",
                    )
                    .hint_if(Errno::PIPE, "the peer closed the connection")
                    .hint_if(Errno::CONNREFUSED, "the peer socket is gone"));
            }
        }
    }
}

fn check_truncated(got: usize, full: usize, op: &'static str) -> Result<()> {
    if full > got {
        return Err(Error::new(
            ErrorKind::Truncated,
            op,
            format!("a {full}-byte message did not fit the {got}-byte buffer and was cut"),
        )
        .hint("receive into a larger buffer"));
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
fn recv_into_vec(fd: &OwnedFd, buf: &mut Vec<u8>, op: &'static str) -> Result<usize> {
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
