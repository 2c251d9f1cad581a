//! The listeners: Unix sockets bound through ipckit's own [`UnixListener`] (socket file 0600
//! unless asked, a stale file taken over only when no one listens, the file removed when the
//! listener goes), loopback TCP, and sockets inherited from systemd.

use std::net::TcpListener;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::PathBuf;
use std::str::FromStr;

use ipckit::socket::unix::{BindOptions, UnixAddr, UnixListener};
use ipckit::{Error, ErrorKind, Result};
use rustix::io::Errno;
use rustix::net::SocketFlags;

use super::systemd::Inherited;

/// Where the server listens: `unix:PATH` (`unix:@NAME` for an abstract name) or
/// `tcp:HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix stream socket at a path (or, starting with `@`, an abstract name).
    Unix(PathBuf),
    /// A TCP address, `127.0.0.1:6379`; port 0 lets the kernel choose.
    Tcp(String),
}

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Endpoint, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err(format!("'{s}': unix: needs a path"));
            }
            Ok(Endpoint::Unix(PathBuf::from(p)))
        } else if let Some(a) = s.strip_prefix("tcp:") {
            if !a.contains(':') {
                return Err(format!("'{s}': tcp: needs HOST:PORT"));
            }
            Ok(Endpoint::Tcp(a.to_string()))
        } else {
            Err(format!(
                "'{s}' is not an endpoint: use unix:PATH or tcp:127.0.0.1:PORT"
            ))
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// One listening socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
    Inherited(Inherited),
}

/// An accepted connection: its descriptor (non-blocking) and whether it is a Unix one.
pub(crate) struct Accepted {
    pub fd: OwnedFd,
    pub unix: bool,
}

impl Listener {
    /// Binds `ep`. A TCP address that is not loopback is refused unless `allow_remote`: the
    /// server has no TLS, and AUTH sends its password in clear text, so anything beyond this
    /// host is an explicit choice.
    pub fn bind(ep: &Endpoint, mode: u32, allow_remote: bool) -> Result<Listener> {
        match ep {
            Endpoint::Unix(p) => {
                let addr = match p.to_str().and_then(|s| s.strip_prefix('@')) {
                    Some(name) => UnixAddr::abstract_name(name.as_bytes()),
                    None => UnixAddr::path(p),
                };
                let opts = BindOptions::default().mode(mode).backlog(511);
                Ok(Listener::Unix(UnixListener::bind(&addr, &opts)?))
            }
            Endpoint::Tcp(a) => {
                let l = ipckit::socket::tcp::listen(a, allow_remote)?;
                l.set_nonblocking(true).map_err(|e| {
                    Error::new(
                        ErrorKind::Os,
                        "making the TCP listener non-blocking",
                        e.to_string(),
                    )
                    .object(a)
                })?;
                Ok(Listener::Tcp(l))
            }
        }
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        match self {
            Listener::Unix(l) => l.as_fd(),
            Listener::Tcp(l) => l.as_fd(),
            Listener::Inherited(i) => i.fd.as_fd(),
        }
    }

    /// Whether its clients are Unix-socket peers (with credentials).
    pub fn is_unix(&self) -> bool {
        match self {
            Listener::Unix(_) => true,
            Listener::Tcp(_) => false,
            Listener::Inherited(i) => i.unix,
        }
    }

    /// Where it listens, as the ready line says it: `unix:PATH`, `tcp:127.0.0.1:PORT` (the
    /// port the kernel chose for port 0).
    pub fn name(&self) -> String {
        match self {
            Listener::Unix(l) => match l.local_addr() {
                UnixAddr::Path(p) => format!("unix:{}", p.display()),
                UnixAddr::Abstract(n) => format!("unix:@{}", String::from_utf8_lossy(n)),
            },
            Listener::Tcp(l) => match l.local_addr() {
                Ok(a) => format!("tcp:{a}"),
                Err(_) => "tcp:?".into(),
            },
            Listener::Inherited(i) => i.name.clone(),
        }
    }

    /// Takes one waiting connection, non-blocking: `Ok(None)` when none is waiting (or the
    /// one that was waiting was refused by the abstract name's mode check, or vanished).
    pub fn accept(&self) -> Result<Option<Accepted>> {
        let fd = match self {
            Listener::Unix(l) => match l.try_accept()? {
                Some(s) => s.into_fd(),
                None => return Ok(None),
            },
            Listener::Tcp(l) => match raw_accept(l.as_fd())? {
                Some(fd) => {
                    let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
                    return Ok(Some(Accepted { fd, unix: false }));
                }
                None => return Ok(None),
            },
            Listener::Inherited(i) => match raw_accept(i.fd.as_fd())? {
                Some(fd) => {
                    if !i.unix {
                        let _ = rustix::net::sockopt::set_tcp_nodelay(&fd, true);
                    }
                    return Ok(Some(Accepted { fd, unix: i.unix }));
                }
                None => return Ok(None),
            },
        };
        ipckit::poll::set_nonblocking(&fd, true)?;
        Ok(Some(Accepted { fd, unix: true }))
    }
}

/// `accept4(SOCK_CLOEXEC | SOCK_NONBLOCK)`; `Ok(None)` when nothing is waiting.
fn raw_accept(fd: BorrowedFd<'_>) -> Result<Option<OwnedFd>> {
    loop {
        match rustix::net::accept_with(fd, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
            Ok(c) => return Ok(Some(c)),
            Err(Errno::INTR) => continue,
            Err(Errno::AGAIN | Errno::CONNABORTED) => return Ok(None),
            Err(e) => return Err(Error::os("accepting a connection", e)),
        }
    }
}
