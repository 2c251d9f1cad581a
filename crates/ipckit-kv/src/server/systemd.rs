//! systemd's two protocols a service speaks: socket activation (`LISTEN_FDS`, `LISTEN_PID`:
//! listening sockets inherited from descriptor 3 on) and readiness (`READY=1`, `STOPPING=1`
//! sent as datagrams to `NOTIFY_SOCKET`). See
//! [sd_listen_fds(3)](https://man7.org/linux/man-pages/man3/sd_listen_fds.3.html) and
//! [sd_notify(3)](https://man7.org/linux/man-pages/man3/sd_notify.3.html).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use ipckit::socket::unix::{UnixAddr, UnixDatagram};
use ipckit::{Error, ErrorKind, Result};
use rustix::net::{AddressFamily, SocketType};

/// The first inherited descriptor (`SD_LISTEN_FDS_START`).
const FIRST_FD: i32 = 3;

/// A listening socket inherited from the service manager.
#[derive(Debug)]
pub struct Inherited {
    /// The descriptor (now `FD_CLOEXEC`, non-blocking).
    pub fd: OwnedFd,
    /// `AF_UNIX` (peers have credentials) rather than `AF_INET`/`AF_INET6`.
    pub unix: bool,
    /// Where it listens, for the ready line and INFO: `unix:/run/x.sock`, `tcp:127.0.0.1:6379`,
    /// or `fd:3` when the address cannot be told.
    pub name: String,
}

fn refuse(fd: i32, what: impl Into<String>) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "taking the sockets systemd passed (LISTEN_FDS)",
        what.into(),
    )
    .object(format!("descriptor {fd}"))
    .hint("pass only listening stream sockets (ListenStream= in the .socket unit)")
}

/// Takes the listening sockets the service manager passed (`LISTEN_FDS` from descriptor 3,
/// for this process only: `LISTEN_PID` must be its pid), and removes `LISTEN_PID`,
/// `LISTEN_FDS` and `LISTEN_FDNAMES` from the environment so children do not take them again.
/// Empty when the variables are unset or name another process.
///
/// Each descriptor is checked with `fstat` and `getsockopt(SO_DOMAIN, SO_TYPE,
/// SO_ACCEPTCONN)`: a listening stream socket of `AF_UNIX`, `AF_INET` or `AF_INET6`; anything
/// else is refused. Call it first thing in `main`, before any thread starts (it changes the
/// environment).
pub fn listen_fds() -> Result<Vec<Inherited>> {
    let pid = std::env::var("LISTEN_PID").ok();
    let fds = std::env::var("LISTEN_FDS").ok();
    // SAFETY: the caller runs this before starting any thread (documented above), so no other
    // thread reads or writes the environment meanwhile.
    unsafe {
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
    }
    let (Some(pid), Some(fds)) = (pid, fds) else {
        return Ok(Vec::new());
    };
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = fds.trim().parse().map_err(|_| {
        Error::new(
            ErrorKind::InvalidInput,
            "reading LISTEN_FDS",
            format!("{fds:?} is not a count"),
        )
    })?;
    let mut out = Vec::new();
    for fd in FIRST_FD..FIRST_FD.saturating_add(n.clamp(0, 1024)) {
        if rustix::io::fcntl_getfd(
            // SAFETY: only a query of the descriptor's flags; an unopened number fails EBADF.
            unsafe { BorrowedFd::borrow_raw(fd) },
        )
        .is_err()
        {
            return Err(refuse(fd, "it is not open"));
        }
        // SAFETY: LISTEN_FDS hands descriptors 3..3+N to this process (LISTEN_PID checked);
        // nothing else in it owns them, and each is taken once.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        out.push(check(owned)?);
    }
    Ok(out)
}

fn check(fd: OwnedFd) -> Result<Inherited> {
    let raw = fd.as_raw_fd();
    let st = rustix::fs::fstat(&fd).map_err(|e| Error::os("checking descriptor", e).object(raw))?;
    if rustix::fs::FileType::from_raw_mode(st.st_mode) != rustix::fs::FileType::Socket {
        return Err(refuse(raw, "it is not a socket"));
    }
    let opt_err = |e| Error::os("checking inherited socket", e).object(raw);
    let domain = rustix::net::sockopt::socket_domain(&fd).map_err(opt_err)?;
    let ty = rustix::net::sockopt::socket_type(&fd).map_err(opt_err)?;
    let listening = rustix::net::sockopt::socket_acceptconn(&fd).map_err(opt_err)?;
    if ty != SocketType::STREAM {
        return Err(refuse(raw, "it is not a stream socket"));
    }
    if !listening {
        return Err(refuse(raw, "it is not listening"));
    }
    let unix = domain == AddressFamily::UNIX;
    if !unix && domain != AddressFamily::INET && domain != AddressFamily::INET6 {
        return Err(refuse(raw, "it is neither a Unix nor a TCP socket"));
    }
    rustix::io::fcntl_setfd(&fd, rustix::io::FdFlags::CLOEXEC).map_err(opt_err)?;
    ipckit::poll::set_nonblocking(&fd, true)?;
    let name = local_name(fd.as_fd(), unix).unwrap_or_else(|| format!("fd:{raw}"));
    Ok(Inherited { fd, unix, name })
}

/// `unix:PATH`, `unix:@NAME` or `tcp:ADDR` for a bound socket.
pub(crate) fn local_name(fd: BorrowedFd<'_>, unix: bool) -> Option<String> {
    let addr = rustix::net::getsockname(fd).ok()?;
    if unix {
        let u = rustix::net::SocketAddrUnix::try_from(addr).ok()?;
        if let Some(p) = u.path_bytes() {
            return Some(format!("unix:{}", String::from_utf8_lossy(p)));
        }
        return u
            .abstract_name()
            .map(|n| format!("unix:@{}", String::from_utf8_lossy(n)));
    }
    let a = std::net::SocketAddr::try_from(addr).ok()?;
    Some(format!("tcp:{a}"))
}

/// Where readiness is reported: the socket `NOTIFY_SOCKET` names.
#[derive(Debug)]
pub struct Notifier {
    sock: UnixDatagram,
    addr: UnixAddr,
}

impl Notifier {
    /// The notifier `NOTIFY_SOCKET` asks for (a path, or `@NAME` for an abstract name); `None`
    /// when it is unset or names something else (a vsock address).
    pub fn from_env() -> Result<Option<Notifier>> {
        let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
            return Ok(None);
        };
        use std::os::unix::ffi::OsStrExt;
        let bytes = target.as_bytes();
        let addr = match bytes.first() {
            Some(b'@') => UnixAddr::abstract_name(&bytes[1..]),
            Some(b'/') => UnixAddr::path(std::path::PathBuf::from(&target)),
            _ => return Ok(None),
        };
        Ok(Some(Notifier {
            sock: UnixDatagram::unbound()?,
            addr,
        }))
    }

    /// Sends `state` (`READY=1`, `STOPPING=1`, ...) in one datagram, without waiting (a full
    /// manager's queue drops it, as `sd_notify` would fail).
    pub fn notify(&self, state: &str) -> Result<()> {
        self.sock
            .try_send_to(state.as_bytes(), &self.addr)
            .map(|_| ())
    }
}
