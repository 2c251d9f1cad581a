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
//! `persist()`ed; `remove()` removes it now and reports the error. Binding over an existing
//! socket file takes it over only after a connect proves no one listens; a live listener's
//! path is refused with an error naming its pid (the live listener then accepts that probe as
//! a connection that is already closed).
//! Socket files are created 0600 unless [`BindOptions::mode`] says otherwise.
//!
//! ```
//! use std::io::{Read, Write};
//! use ipckit::socket::unix::{BindOptions, UnixAddr, UnixListener, UnixStream};
//! let addr = UnixAddr::abstract_name(ipckit::name::unique("doc").as_bytes());
//! let listener = UnixListener::bind(&addr, &BindOptions::default()).unwrap();
//! let mut client = UnixStream::connect(&addr).unwrap();
//! let mut server = listener.accept().unwrap();
//! client.write_all(b"ping").unwrap();
//! let mut buf = [0; 4];
//! server.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"ping");
//! assert_eq!(server.peer_cred().unwrap().pid, std::process::id());
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::net::{
    AddressFamily, RecvFlags, SendFlags, Shutdown, SocketAddrUnix, SocketFlags, SocketType,
};

use crate::error::{Context, Error, ErrorKind, Result};
use crate::name::OwnedPath;
use crate::object::{DEFAULT_MODE, check_mode};
use crate::poll::Deadline;
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
/// taken over. `Default`: mode `0o600`, backlog 128, take-over on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindOptions {
    mode: u32,
    backlog: i32,
    take_over_stale: bool,
}

impl Default for BindOptions {
    fn default() -> Self {
        BindOptions {
            mode: DEFAULT_MODE,
            backlog: 128,
            take_over_stale: true,
        }
    }
}

impl BindOptions {
    /// Mode of the socket file (paths only; checked for abstract names too): permission bits
    /// only, bits outside `0o777` are refused. Default `0o600`: only the owner may connect.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// `listen(2)` backlog for stream and seqpacket listeners. Default 128.
    pub fn backlog(mut self, backlog: i32) -> Self {
        self.backlog = backlog;
        self
    }

    /// Take over a socket file no one is bound to (proved by a refused connect and the
    /// kernel's table). Default true.
    pub fn take_over_stale(mut self, on: bool) -> Self {
        self.take_over_stale = on;
        self
    }
}

fn type_name(ty: SocketType) -> &'static str {
    match ty {
        SocketType::STREAM => "Unix stream socket",
        SocketType::SEQPACKET => "Unix seqpacket socket",
        _ => "Unix datagram socket",
    }
}

/// "Unix stream socket to /path", the object of connect and bind errors.
fn socket_to(ty: SocketType, addr: &UnixAddr) -> String {
    format!("{} to {addr}", type_name(ty))
}

fn new_socket(ty: SocketType, flags: SocketFlags) -> Result<OwnedFd> {
    rustix::net::socket_with(AddressFamily::UNIX, ty, SocketFlags::CLOEXEC | flags, None)
        .during("creating", type_name(ty))
}

fn connect_error(ty: SocketType, addr: &UnixAddr, e: Errno) -> Error {
    Error::os("connecting", e)
        .object(socket_to(ty, addr))
        .hint_if(Errno::NOENT, "no socket there: start the listener first")
        .hint_if(
            Errno::CONNREFUSED,
            "nothing listens there: the socket file is stale or the listener is gone",
        )
        .hint_if(
            Errno::PROTOTYPE,
            "the listener there is of another socket type (stream, seqpacket, datagram)",
        )
}

/// Connects a new socket of type `ty` to `addr`. Before `deadline`, a full backlog (EAGAIN)
/// is retried; with [`Deadline::NEVER`], the connect blocks as long as the backlog stays full.
/// `Ok(None)` when the deadline passed.
fn connect_until(ty: SocketType, addr: &UnixAddr, deadline: Deadline) -> Result<Option<OwnedFd>> {
    let sa = addr.to_sockaddr()?;
    if deadline == Deadline::NEVER {
        let fd = new_socket(ty, SocketFlags::empty())?;
        loop {
            match rustix::net::connect(&fd, &sa) {
                // EISCONN: an interrupted connect completed meanwhile.
                Ok(()) | Err(Errno::ISCONN) => return Ok(Some(fd)),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(connect_error(ty, addr, e)),
            }
        }
    }
    let fd = new_socket(ty, SocketFlags::NONBLOCK)?;
    let connected = poll::with_backoff(deadline, || match rustix::net::connect(&fd, &sa) {
        Ok(()) | Err(Errno::ISCONN) => Ok(Some(())),
        Err(Errno::AGAIN | Errno::INTR) => Ok(None),
        Err(e) => Err(connect_error(ty, addr, e)),
    })?;
    if connected.is_none() {
        return Ok(None);
    }
    poll::set_nonblocking(&fd, false)?;
    Ok(Some(fd))
}

/// The error of a timed connect whose time ran out: `after` for a timeout, `None` for a
/// deadline.
fn backlog_full(ty: SocketType, addr: &UnixAddr, after: Option<Duration>) -> Error {
    let when = after.map_or_else(
        || "the deadline passed".to_string(),
        |t| format!("timed out after {t:?}"),
    );
    Error::new(
        ErrorKind::TimedOut,
        "connecting",
        format!("{when}: the listener's backlog stayed full"),
    )
    .object(socket_to(ty, addr))
    .hint("the listener is not accepting connections")
}

/// `socket(2)` + `connect(2)` for each timed form: `Ok(None)` becomes the TimedOut error.
fn connect_new(
    ty: SocketType,
    addr: &UnixAddr,
    deadline: Deadline,
    after: Option<Duration>,
) -> Result<OwnedFd> {
    connect_until(ty, addr, deadline)?.ok_or_else(|| backlog_full(ty, addr, after))
}

/// Binds a socket of type `ty` at `addr`, taking over a stale socket file if allowed, and sets
/// the file's mode before any connection can be made.
fn bind_new(
    ty: SocketType,
    addr: &UnixAddr,
    opts: &BindOptions,
) -> Result<(OwnedFd, Option<OwnedPath>)> {
    check_mode("binding Unix socket", opts.mode)?;
    let sa = addr.to_sockaddr()?;
    let fd = new_socket(ty, SocketFlags::empty())?;
    let bind_error = |e: Errno| {
        Error::os("binding", e).object(socket_to(ty, addr)).hint_if(
            Errno::NOENT,
            "the directory does not exist: create it first",
        )
    };
    match rustix::net::bind(&fd, &sa) {
        Ok(()) => {}
        Err(Errno::ADDRINUSE) => match addr {
            UnixAddr::Abstract(_) => {
                return Err(bind_error(Errno::ADDRINUSE).hint(
                    "a live socket holds this abstract name (abstract names vanish with their last \
                     socket, so it is never stale): pick another name",
                ));
            }
            UnixAddr::Path(path) => {
                take_over_stale(ty, addr, path, opts)?;
                rustix::net::bind(&fd, &sa).map_err(|e| {
                    bind_error(e).hint_if(
                        Errno::ADDRINUSE,
                        "another process bound it while the stale file was being replaced: try again",
                    )
                })?;
            }
        },
        Err(e) => return Err(bind_error(e)),
    }
    let file = match addr {
        UnixAddr::Abstract(_) => None,
        UnixAddr::Path(path) => {
            let owned = OwnedPath::adopt(path, FileType::Socket)?;
            // Before listen(), no one can connect to a stream or seqpacket socket, so the mode
            // is in force before the first connection. (A datagram socket can be sent to from
            // the moment it is bound, with the mode the umask gave.)
            owned.set_mode(opts.mode)?;
            Some(owned)
        }
    };
    Ok((fd, file))
}

/// Something is bound at `path`: remove it only if it is a socket file that no socket is
/// bound to any more.
fn take_over_stale(ty: SocketType, addr: &UnixAddr, path: &Path, opts: &BindOptions) -> Result<()> {
    let object = socket_to(ty, addr);
    let refuse = |hint: String| {
        Err(Error::os("binding", Errno::ADDRINUSE)
            .object(&object)
            .hint(hint))
    };
    let st = rustix::fs::lstat(path).during("binding", &object)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return refuse("a file that is not a socket is there: ipckit will not remove it".into());
    }
    // Is anyone there? A non-blocking probe: a full backlog answers EAGAIN (live) at once.
    let probe = new_socket(ty, SocketFlags::NONBLOCK)?;
    let sa = addr.to_sockaddr()?;
    loop {
        match rustix::net::connect(&probe, &sa) {
            Err(Errno::INTR) => continue,
            Err(Errno::CONNREFUSED) => break,
            Ok(()) => {
                let who = ancillary::peer_cred(&probe)
                    .ok()
                    .filter(|c| c.pid > 0)
                    .map(|c| format!("process {} (uid {})", c.pid, c.uid))
                    .unwrap_or_else(|| "another process".into());
                return refuse(format!(
                    "{who} is listening there: stop it, or use another path"
                ));
            }
            Err(e) => {
                return refuse(format!(
                    "a live socket is there (a probe connect got {}): stop its owner, or use another path",
                    crate::error::errno_name(e)
                ));
            }
        }
    }
    // A socket that is bound but not yet listening refuses connections too: the kernel's own
    // table says whether any socket is still bound to this path.
    if crate::sys::procfs::bound_in_kernel(path) {
        return refuse(
            "a socket is bound there but not listening (it may be starting): try again".into(),
        );
    }
    if !opts.take_over_stale {
        return refuse("a stale socket file is there (no socket is bound to it): remove it, or allow take-over".into());
    }
    // Remove only the file that was checked, not one that replaced it meanwhile.
    match rustix::fs::lstat(path) {
        Ok(now) if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino) => {}
        Ok(_) => {
            return refuse("the file was replaced while it was being checked: try again".into());
        }
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::os("checking stale socket file", e).object(path.display())),
    }
    match rustix::fs::unlink(path) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(Error::os("removing stale socket file", e).object(path.display())),
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
    file: Option<OwnedPath>,
    _kind: PhantomData<fn() -> T>,
}

/// A listener for [`UnixStream`] connections.
pub type UnixListener = Listener<UnixStream>;
/// A listener for [`UnixSeqpacket`] connections.
pub type SeqpacketListener = Listener<UnixSeqpacket>;

impl<T: SocketKind> Listener<T> {
    /// `socket(2)` + `bind(2)` + `listen(2)` at `addr` with the options given (a stale socket
    /// file is taken over only as [`BindOptions::take_over_stale`] allows; a live listener's
    /// path is refused). See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn bind(addr: &UnixAddr, opts: &BindOptions) -> Result<Self> {
        let (fd, file) = bind_new(T::TYPE, addr, opts)?;
        rustix::net::listen(&fd, opts.backlog).during("listening on", addr)?;
        poll::set_nonblocking(&fd, true)?;
        Ok(Listener {
            fd,
            addr: addr.clone(),
            file,
            _kind: PhantomData,
        })
    }

    /// `accept4(SOCK_CLOEXEC)`: waits for the next connection.
    /// See [accept(2)](https://man7.org/linux/man-pages/man2/accept.2.html).
    pub fn accept(&self) -> Result<T> {
        loop {
            if let Some(conn) = self.accept_until(Deadline::NEVER)? {
                return Ok(conn);
            }
        }
    }

    /// `accept4(SOCK_CLOEXEC)` with no wait: a connection that is waiting, `Ok(None)` when
    /// none is. See [accept(2)](https://man7.org/linux/man-pages/man2/accept.2.html).
    pub fn try_accept(&self) -> Result<Option<T>> {
        self.accept_until(Deadline::now())
    }

    /// `poll(2)` then `accept4(SOCK_CLOEXEC)`: waits at most `timeout` for a connection;
    /// `Ok(None)` if none came. See [accept(2)](https://man7.org/linux/man-pages/man2/accept.2.html).
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<T>> {
        self.accept_until(Deadline::after(timeout))
    }

    /// `poll(2)` then `accept4(SOCK_CLOEXEC)`: as [`accept_timeout`](Self::accept_timeout),
    /// giving up at `deadline`. See [accept(2)](https://man7.org/linux/man-pages/man2/accept.2.html).
    pub fn accept_deadline(&self, deadline: impl Into<Deadline>) -> Result<Option<T>> {
        self.accept_until(deadline.into())
    }

    /// The listening descriptor is non-blocking inside, so a connection that vanishes between
    /// poll and accept means waiting again, never blocking past the deadline.
    fn accept_until(&self, deadline: Deadline) -> Result<Option<T>> {
        poll::until_ready(self.fd.as_fd(), PollFlags::IN, deadline, || {
            match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                Ok(fd) => Ok(Some(T::from_connected(fd))),
                Err(Errno::AGAIN | Errno::INTR | Errno::CONNABORTED) => Ok(None),
                Err(e) => Err(e).during("accepting connection on", &self.addr),
            }
        })
    }

    /// The address bound.
    pub fn local_addr(&self) -> &UnixAddr {
        &self.addr
    }

    /// Keeps the socket file after this listener is dropped (the socket itself closes with
    /// the listener; the file then is stale, to be taken over by the next bind).
    #[must_use]
    pub fn persist(mut self) -> Self {
        if let Some(f) = &mut self.file {
            f.release();
        }
        self
    }

    /// Closes the listener and `unlink(2)`s its socket file now, if the path still names the
    /// socket bound (else an error of kind [`Changed`](ErrorKind::Changed)). Nothing to remove
    /// for an abstract name. See [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html).
    pub fn remove(self) -> Result<()> {
        let Listener { fd, file, .. } = self;
        drop(fd);
        file.map_or(Ok(()), |mut f| f.remove("removing socket file"))
    }
}

impl<T> std::os::fd::AsRawFd for Listener<T> {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
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

    /// `send(2)` with `MSG_DONTWAIT`: sends one packet if there is room now; `Ok(false)`
    /// (nothing sent) when the peer's queue is full.
    /// See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn try_send(&self, msg: &[u8]) -> Result<bool> {
        send_until(&self.fd, msg, Deadline::now(), SEQPACKET_SEND)
    }

    /// `poll(2)` then `send(2)`: waits at most `timeout` for room; `Ok(false)` when there was
    /// none (nothing sent). See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<bool> {
        send_until(&self.fd, msg, Deadline::after(timeout), SEQPACKET_SEND)
    }

    /// `poll(2)` then `send(2)`: as [`send_timeout`](Self::send_timeout), giving up at
    /// `deadline`. See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn send_deadline(&self, msg: &[u8], deadline: impl Into<Deadline>) -> Result<bool> {
        send_until(&self.fd, msg, deadline.into(), SEQPACKET_SEND)
    }

    /// `recv(2)` with `MSG_TRUNC`: waits for one packet and receives it into `buf`; `Ok(0)` at
    /// end of stream. A packet larger than `buf` is an error of kind
    /// [`Truncated`](ErrorKind::Truncated) (its tail is lost, as the kernel discards it; the
    /// error's [`received`](Error::received) says how much arrived).
    /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv_blocking(&self.fd, buf, SEQPACKET_RECV)
    }

    /// `recv(2)` with `MSG_DONTWAIT`: a packet that is there now; `Ok(None)` when none is.
    /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        recv_until(&self.fd, buf, Deadline::now(), SEQPACKET_RECV)
    }

    /// `poll(2)` then `recv(2)`: waits at most `timeout` for a packet; `Ok(None)` when none
    /// came. See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        recv_until(&self.fd, buf, Deadline::after(timeout), SEQPACKET_RECV)
    }

    /// `poll(2)` then `recv(2)`: as [`recv_timeout`](Self::recv_timeout), giving up at
    /// `deadline`. See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv_deadline(
        &self,
        buf: &mut [u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Option<usize>> {
        recv_until(&self.fd, buf, deadline.into(), SEQPACKET_RECV)
    }
}

impl MessageTransport for UnixSeqpacket {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg).map(drop)
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Deadline,
    ) -> Result<Option<usize>> {
        if !poll::readable_deadline(&self.fd, deadline)? {
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

    /// `send(2)` with `MSG_DONTWAIT`: sends one datagram to the connected peer if its queue
    /// has room now; `Ok(false)` (nothing sent) when it is full.
    /// See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn try_send(&self, msg: &[u8]) -> Result<bool> {
        send_until(&self.fd, msg, Deadline::now(), DGRAM_SEND)
    }

    /// `poll(2)` then `send(2)`: waits at most `timeout` for room in the connected peer's
    /// queue; `Ok(false)` when there was none (nothing sent).
    /// See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn send_timeout(&self, msg: &[u8], timeout: Duration) -> Result<bool> {
        send_until(&self.fd, msg, Deadline::after(timeout), DGRAM_SEND)
    }

    /// `poll(2)` then `send(2)`: as [`send_timeout`](Self::send_timeout), giving up at
    /// `deadline`. See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
    pub fn send_deadline(&self, msg: &[u8], deadline: impl Into<Deadline>) -> Result<bool> {
        send_until(&self.fd, msg, deadline.into(), DGRAM_SEND)
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

    /// `recv(2)` with `MSG_TRUNC`: waits for one datagram and receives it into `buf`. A
    /// datagram larger than `buf` is an error of kind [`Truncated`](ErrorKind::Truncated).
    /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize> {
        recv_blocking(&self.fd, buf, DGRAM_RECV)
    }

    /// `recv(2)` with `MSG_DONTWAIT`: a datagram that is there now; `Ok(None)` when none is.
    /// See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn try_recv(&self, buf: &mut [u8]) -> Result<Option<usize>> {
        recv_until(&self.fd, buf, Deadline::now(), DGRAM_RECV)
    }

    /// `poll(2)` then `recv(2)`: waits at most `timeout` for a datagram; `Ok(None)` when none
    /// came. See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv_timeout(&self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        recv_until(&self.fd, buf, Deadline::after(timeout), DGRAM_RECV)
    }

    /// `poll(2)` then `recv(2)`: as [`recv_timeout`](Self::recv_timeout), giving up at
    /// `deadline`. See [recv(2)](https://man7.org/linux/man-pages/man2/recv.2.html).
    pub fn recv_deadline(
        &self,
        buf: &mut [u8],
        deadline: impl Into<Deadline>,
    ) -> Result<Option<usize>> {
        recv_until(&self.fd, buf, deadline.into(), DGRAM_RECV)
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
        if let Some(f) = &mut self.file {
            f.release();
        }
        self
    }

    /// Closes the socket and `unlink(2)`s its socket file now, if it has one and the path
    /// still names it (else an error of kind [`Changed`](ErrorKind::Changed)).
    /// See [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html).
    pub fn remove(self) -> Result<()> {
        let UnixDatagram { fd, file } = self;
        drop(fd);
        file.map_or(Ok(()), |mut f| f.remove("removing socket file"))
    }
}

impl MessageTransport for UnixDatagram {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg).map(drop)
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Deadline,
    ) -> Result<Option<usize>> {
        if !poll::readable_deadline(&self.fd, deadline)? {
            return Ok(None);
        }
        recv_into_vec(&self.fd, buf, "receiving on Unix datagram socket").map(Some)
    }

    fn max_msg_len(&self) -> Option<usize> {
        rustix::net::sockopt::socket_send_buffer_size(&self.fd).ok()
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

fn send_error(op: &'static str, e: Errno) -> Error {
    Error::os(op, e)
        .hint_if(
            Errno::MSGSIZE,
            "the message is larger than the socket's send buffer (SO_SNDBUF)",
        )
        .hint_if(Errno::PIPE, "the peer closed the connection")
        .hint_if(Errno::CONNREFUSED, "the peer socket is gone")
}

fn send_retry(fd: &OwnedFd, msg: &[u8], op: &'static str) -> Result<usize> {
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
fn send_until(fd: &OwnedFd, msg: &[u8], deadline: Deadline, op: &'static str) -> Result<bool> {
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
fn recv_until(
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
fn recv_blocking(fd: &OwnedFd, buf: &mut [u8], op: &'static str) -> Result<usize> {
    recv_checked(fd, buf, op)
}

fn check_truncated(got: usize, full: usize, op: &'static str) -> Result<()> {
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
