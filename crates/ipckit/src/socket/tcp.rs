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
use crate::transport::TimedRead;

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

/// Binds and listens on `addr` (loopback unless `allow_remote`).
pub fn listen(addr: &str, allow_remote: bool) -> Result<TcpListener> {
    let addrs = resolve(addr, allow_remote)?;
    TcpListener::bind(&addrs[..]).during("listening on TCP address", addr)
}

/// Connects to `addr` (loopback unless `allow_remote`) with `TCP_NODELAY` on.
pub fn connect(addr: &str, allow_remote: bool) -> Result<TcpStream> {
    connect_timeout(addr, allow_remote, None)
}

/// Like [`connect`], giving up on each resolved address after `timeout` (`None`: the kernel's
/// own connect timeout).
pub fn connect_timeout(
    addr: &str,
    allow_remote: bool,
    timeout: Option<Duration>,
) -> Result<TcpStream> {
    let addrs = resolve(addr, allow_remote)?;
    let attempt = |a: &SocketAddr| match timeout {
        Some(t) => TcpStream::connect_timeout(a, t),
        None => TcpStream::connect(a),
    };
    let mut last_err = None;
    for a in &addrs {
        match attempt(a) {
            Ok(s) => {
                s.set_nodelay(true).during("setting TCP_NODELAY on", addr)?;
                return Ok(s);
            }
            Err(e) => last_err = Some(e),
        }
    }
    // `resolve` returned at least one address, so there was at least one error.
    let e = last_err.unwrap_or_else(|| std::io::ErrorKind::AddrNotAvailable.into());
    Err(e)
        .during("connecting to TCP address", addr)
        .map_err(|e| e.hint_if(crate::Errno::CONNREFUSED, "nothing listens on that port"))
}

impl TimedRead for TcpStream {
    fn read_deadline(
        &mut self,
        buf: &mut [u8],
        deadline: crate::poll::Deadline,
    ) -> Result<Option<usize>> {
        crate::poll::read_until(self.as_fd(), buf, deadline)
    }
}
