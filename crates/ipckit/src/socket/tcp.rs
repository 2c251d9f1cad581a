//! TCP over loopback, present so the benchmark and the CLI can compare it with Unix sockets.
//! Every connection has `TCP_NODELAY` on (no Nagle delay on small messages). Addresses are
//! checked: non-loopback ones are refused unless the caller allows them.
//!
//! ```
//! use std::io::{Read, Write};
//! use ipckit::socket::tcp;
//! let listener = tcp::listen("127.0.0.1:0", false).unwrap();
//! let addr = listener.local_addr().unwrap();
//! let mut c = tcp::connect(&addr.to_string(), false).unwrap();
//! let (mut s, _) = listener.accept().unwrap();
//! c.write_all(b"x").unwrap();
//! let mut b = [0u8];
//! s.read_exact(&mut b).unwrap();
//! assert!(c.nodelay().unwrap());
//! ```

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::time::Duration;

use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll::Deadline;
use crate::transport::{TimedRead, TimedWrite};

/// Resolves `addr` (HOST:PORT) and checks every address is loopback unless `allow_remote`.
pub fn resolve(addr: &str, allow_remote: bool) -> Result<Vec<SocketAddr>> {
    let not_loopback = |what: String| {
        Err(Error::new(ErrorKind::InvalidInput, "checking TCP address", what)
            .object(addr)
            .hint("use 127.0.0.1, ::1 or localhost, or allow remote addresses explicitly (--allow-remote)"))
    };
    // Without --allow-remote, no name lookup happens for anything but "localhost": a literal
    // address is checked as it is, and any other name is refused before DNS is asked.
    let literal = addr.parse::<SocketAddr>().ok();
    if !allow_remote && literal.is_none() {
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        if !host.eq_ignore_ascii_case("localhost") {
            return not_loopback(format!("{host} is a name, not a loopback address"));
        }
    }
    let addrs: Vec<SocketAddr> = match literal {
        Some(a) => vec![a],
        None => addr
            .to_socket_addrs()
            .during("resolving TCP address", addr)?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "resolving TCP address",
            "no address found",
        )
        .object(addr));
    }
    if let Some(bad) = addrs
        .iter()
        .find(|a| !allow_remote && !a.ip().is_loopback())
    {
        return not_loopback(format!("{bad} is not a loopback address"));
    }
    Ok(addrs)
}

/// `bind(2)` + `listen(2)` on `addr` (loopback unless `allow_remote`).
/// See [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html).
pub fn listen(addr: &str, allow_remote: bool) -> Result<TcpListener> {
    let addrs = resolve(addr, allow_remote)?;
    TcpListener::bind(&addrs[..]).during("listening on TCP address", addr)
}

/// `connect(2)` to `addr` (loopback unless `allow_remote`) with `TCP_NODELAY` on, waiting as
/// long as the kernel's own connect timeout. See [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html).
pub fn connect(addr: &str, allow_remote: bool) -> Result<TcpStream> {
    connect_until(addr, allow_remote, Deadline::NEVER, None)
}

/// `connect(2)`: as [`connect`], failing with [`ErrorKind::TimedOut`] when no resolved
/// address answered within `timeout` (all of them together).
/// See [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html).
pub fn connect_timeout(addr: &str, allow_remote: bool, timeout: Duration) -> Result<TcpStream> {
    connect_until(addr, allow_remote, Deadline::after(timeout), Some(timeout))
}

/// `connect(2)`: as [`connect`], failing with [`ErrorKind::TimedOut`] when no resolved
/// address answered before `deadline`.
/// See [tcp(7)](https://man7.org/linux/man-pages/man7/tcp.7.html).
pub fn connect_deadline(
    addr: &str,
    allow_remote: bool,
    deadline: impl Into<Deadline>,
) -> Result<TcpStream> {
    connect_until(addr, allow_remote, deadline.into(), None)
}

fn connect_until(
    addr: &str,
    allow_remote: bool,
    deadline: Deadline,
    timeout: Option<Duration>,
) -> Result<TcpStream> {
    const OP: &str = "connecting to TCP address";
    let addrs = resolve(addr, allow_remote)?;
    let timed_out = || {
        match timeout {
            Some(t) => Error::timed_out(OP, t),
            None => Error::deadline_passed(OP),
        }
        .object(addr)
        .hint("nothing answered in time: check the listener is up")
    };
    let mut last_err = None;
    for a in &addrs {
        let attempt = match deadline.remaining() {
            None => TcpStream::connect(a),
            Some(left) if left.is_zero() => return Err(timed_out()),
            Some(left) => TcpStream::connect_timeout(a, left),
        };
        match attempt {
            Ok(s) => {
                s.set_nodelay(true).during("setting TCP_NODELAY on", addr)?;
                return Ok(s);
            }
            Err(e) => last_err = Some(e),
        }
    }
    // `resolve` returned at least one address, so there was at least one error.
    let e = last_err.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into());
    if e.kind() == std::io::ErrorKind::TimedOut && e.raw_os_error().is_none() {
        return Err(timed_out());
    }
    Err(e)
        .during(OP, addr)
        .map_err(|e| e.hint_if(crate::Errno::CONNREFUSED, "nothing listens on that port"))
}

impl TimedRead for TcpStream {
    fn read_deadline(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<Option<usize>> {
        crate::poll::read_until(self.as_fd(), buf, deadline)
    }
}

/// `send(2)` with `MSG_DONTWAIT | MSG_NOSIGNAL`, polled for room: never blocks and never
/// changes the socket's flags. See [send(2)](https://man7.org/linux/man-pages/man2/send.2.html).
impl TimedWrite for TcpStream {
    fn write_deadline(&mut self, buf: &[u8], deadline: Deadline) -> Result<Option<usize>> {
        crate::poll::send_until(self.as_fd(), buf, deadline, "sending on TCP socket")
    }
}
