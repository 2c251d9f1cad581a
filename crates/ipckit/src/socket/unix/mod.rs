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

mod datagram;
mod io;
mod listener;
mod stream;

use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::net::SocketAddrUnix;

use crate::error::{Context, Result};
use crate::name;
use crate::object::DEFAULT_MODE;

pub use datagram::UnixDatagram;
pub use listener::{Listener, SeqpacketListener, SocketKind, UnixListener};
pub use stream::{UnixSeqpacket, UnixStream};

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
    /// Mode of the socket file: permission bits only, bits outside `0o777` are refused.
    /// Default `0o600`: only the owner (and root) may connect. An abstract name has no file
    /// and the kernel checks nothing, so a [`Listener`] on one holds each peer's credentials
    /// to this mode itself (see [`Listener`]); a [`UnixDatagram`] bound to an abstract name
    /// cannot (check each message's sender with `ancillary::recv` and `SO_PASSCRED`).
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
