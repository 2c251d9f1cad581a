//! Socket creation, connect and bind, stale socket file take-over, and [`Listener`].

use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::fs::FileType;
use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use super::{BindOptions, UnixAddr, UnixSeqpacket, UnixStream};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::name::{OwnedPath, Unlinked};
use crate::object::check_mode;
use crate::poll;
use crate::poll::Deadline;
use crate::socket::ancillary;

pub(super) fn type_name(ty: SocketType) -> &'static str {
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

pub(super) fn new_socket(ty: SocketType, flags: SocketFlags) -> Result<OwnedFd> {
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
pub(super) fn connect_new(
    ty: SocketType,
    addr: &UnixAddr,
    deadline: Deadline,
    after: Option<Duration>,
) -> Result<OwnedFd> {
    connect_until(ty, addr, deadline)?.ok_or_else(|| backlog_full(ty, addr, after))
}

/// Binds a socket of type `ty` at `addr`, taking over a stale socket file if allowed, and sets
/// the file's mode before any connection can be made.
pub(super) fn bind_new(
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
            "a socket may be bound there, not listening yet (it may be starting, or be in \
             another network namespace, or in one ipckit cannot read): try again, or remove \
             it with `ipckit rm unix:PATH` if you know it is unused"
                .into(),
        );
    }
    if !opts.take_over_stale {
        return refuse("a stale socket file is there (no socket is bound to it): remove it, or allow take-over".into());
    }
    // Remove only the file that was checked, not one that replaced it meanwhile, through
    // one descriptor of its directory.
    let same = |now: &rustix::fs::Stat| (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino);
    match crate::name::unlink_if(path, same) {
        Ok(Unlinked::Removed | Unlinked::Gone) => Ok(()),
        Ok(Unlinked::Changed) => {
            refuse("the file was replaced while it was being checked: try again".into())
        }
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

/// Who may connect to a listener on an abstract name: what the kernel checks against a
/// socket file's mode and owner for a path, checked here against each peer's `SO_PEERCRED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PeerRule {
    /// The permission bits asked for ([`BindOptions::mode`]).
    mode: u32,
    /// The listener's effective uid and gid at bind: a socket file's owner and group.
    uid: u32,
    gid: u32,
}

/// The most refused peers a listener keeps for [`Listener::take_refused`] between calls.
const REFUSED_KEPT: usize = 64;

/// `SO_PEERGROUPS` (Linux 4.13): the peer's supplementary groups at connect time. Its value on
/// the architectures whose socket options are not the generic ones.
#[cfg(any(target_arch = "mips", target_arch = "mips64"))]
const SO_PEERGROUPS: libc::c_int = 59;
#[cfg(any(target_arch = "sparc", target_arch = "sparc64"))]
const SO_PEERGROUPS: libc::c_int = 0x003d;
#[cfg(not(any(
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const SO_PEERGROUPS: libc::c_int = 59;

/// `getsockopt(SO_PEERGROUPS)`: the supplementary groups the peer had when it connected;
/// empty when the kernel cannot say (before Linux 4.13).
fn peer_groups(sock: impl AsFd) -> Vec<u32> {
    use std::os::fd::AsRawFd;
    let mut groups = vec![0 as libc::gid_t; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: `groups` is writable for `len` bytes and the descriptor is valid for the call.
        let r = unsafe {
            libc::getsockopt(
                sock.as_fd().as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let n = len as usize / std::mem::size_of::<libc::gid_t>();
        if r == 0 {
            groups.truncate(n);
            return groups;
        }
        // ERANGE: `len` now says how much room the list needs.
        if crate::error::last_errno() == Errno::RANGE && n > groups.len() {
            groups.resize(n, 0);
            continue;
        }
        return Vec::new();
    }
}

impl PeerRule {
    /// Whether the mode lets `peer` connect, as it would a socket file's: root always; the
    /// owner by the owner's write bit only; a member of the group (its effective group, or
    /// one of the supplementary groups it had at connect) by the group's only; anyone else by
    /// the others'. As the kernel's permission check, the first class that matches decides:
    /// a group member is not let in by the others' bits (mode 0606 keeps the group out).
    fn allows(&self, peer: &ancillary::Credentials, sock: impl AsFd) -> bool {
        if peer.uid == 0 {
            return true;
        }
        let bits = if peer.uid == self.uid {
            self.mode >> 6
        } else if peer.gid == self.gid || peer_groups(sock).contains(&self.gid) {
            self.mode >> 3
        } else {
            self.mode
        };
        bits & 0o2 != 0
    }
}

/// A bound, listening Unix socket of kind `T`. Owns its socket file.
///
/// On an abstract name the kernel checks no permission: anyone who knows (or lists, in
/// `/proc/net/unix`) the name can connect. So a listener on an abstract name holds each peer
/// to [`BindOptions::mode`] itself, as the kernel does for a socket file: a peer the mode does
/// not let in (by its `SO_PEERCRED` uid and gid, and its `SO_PEERGROUPS`) is accepted and
/// closed at once, never returned by `accept`, and recorded for
/// [`take_refused`](Listener::take_refused). The default mode `0o600` means this user (and
/// root) only. A refused peer's `connect` has already succeeded (the kernel completes it
/// before the listener sees it): it finds the connection closed (EPIPE or ECONNRESET on
/// writing, end of stream on reading), and nothing it sent is read.
#[derive(Debug)]
pub struct Listener<T> {
    fd: OwnedFd,
    addr: UnixAddr,
    file: Option<OwnedPath>,
    peers: Option<PeerRule>,
    refused: std::sync::Mutex<Vec<ancillary::Credentials>>,
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
        let peers = matches!(addr, UnixAddr::Abstract(_)).then(|| PeerRule {
            mode: opts.mode,
            uid: rustix::process::geteuid().as_raw(),
            gid: rustix::process::getegid().as_raw(),
        });
        Ok(Listener {
            fd,
            addr: addr.clone(),
            file,
            peers,
            refused: std::sync::Mutex::new(Vec::new()),
            _kind: PhantomData,
        })
    }

    /// The peers this listener refused since the last call (on an abstract name, those
    /// [`BindOptions::mode`] does not let in: see [`Listener`]), oldest first, at most 64
    /// (later ones are dropped uncounted): what a server logs. Always empty for a path,
    /// where the kernel refuses them at `connect`.
    pub fn take_refused(&self) -> Vec<ancillary::Credentials> {
        match self.refused.lock() {
            Ok(mut r) => std::mem::take(&mut *r),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Whether an accepted connection may stay: always for a path; for an abstract name, if
    /// the mode lets its peer in (a peer whose credentials cannot be read is refused).
    fn admit(&self, conn: &OwnedFd) -> bool {
        let Some(rule) = &self.peers else {
            return true;
        };
        let Ok(peer) = ancillary::peer_cred(conn) else {
            return false;
        };
        if rule.allows(&peer, conn) {
            return true;
        }
        let mut refused = match self.refused.lock() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        if refused.len() < REFUSED_KEPT {
            refused.push(peer);
        }
        false
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
    /// poll and accept means waiting again, never blocking past the deadline. A refused peer
    /// (see [`Listener`]) is closed and the wait goes on through the poll, which checks the
    /// deadline: a flood of refused peers cannot hold `accept_timeout` past its time.
    fn accept_until(&self, deadline: Deadline) -> Result<Option<T>> {
        poll::until_ready(self.fd.as_fd(), PollFlags::IN, deadline, || {
            loop {
                match rustix::net::accept_with(&self.fd, SocketFlags::CLOEXEC) {
                    Ok(fd) if self.admit(&fd) => return Ok(Some(T::from_connected(fd))),
                    Ok(_refused) => return Ok(None),
                    Err(Errno::INTR) => continue,
                    Err(Errno::AGAIN | Errno::CONNABORTED) => return Ok(None),
                    Err(e) => return Err(e).during("accepting connection on", &self.addr),
                }
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
        keep_file(&mut self.file);
        self
    }

    /// Closes the listener and `unlink(2)`s its socket file now, if the path still names the
    /// socket bound (else an error of kind [`Changed`](ErrorKind::Changed)). Nothing to remove
    /// for an abstract name. See [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html).
    pub fn remove(self) -> Result<()> {
        let Listener { fd, file, .. } = self;
        close_and_unlink(fd, file)
    }
}

/// What `persist` does to a bound socket's file (a listener's or a datagram socket's): it
/// stays after the handle.
pub(super) fn keep_file(file: &mut Option<OwnedPath>) {
    if let Some(f) = file {
        f.release();
    }
}

/// What `remove` does: closes the socket, then unlinks its file, if it has one and the path
/// still names it (else an error of kind [`Changed`](crate::ErrorKind::Changed)).
pub(super) fn close_and_unlink(fd: OwnedFd, file: Option<OwnedPath>) -> Result<()> {
    drop(fd);
    file.map_or(Ok(()), |mut f| f.remove("removing socket file"))
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
