//! A small blocking RESP client over a Unix socket or loopback TCP: what the tests, the CLI's
//! `ipckit kv get unix:PATH KEY` and the bench use. redis-cli is the client for people.
//!
//! Every call is bounded: the connect, each write and each read wait at most the client's
//! timeout (5 s unless [`Client::set_timeout`] says otherwise), then fail with
//! [`ErrorKind::TimedOut`]. Replies come back as [`Reply`], RESP2 and RESP3 alike (a RESP3
//! boolean is an [`Reply::Int`] 1 or 0, a push an array, a big number a status).
//!
//! ```
//! use ipckit_kv::client::Client;
//! use ipckit_kv::resp::Reply;
//! use ipckit_kv::server::{Config, Endpoint, Server};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("kv.sock");
//! let server = Server::bind(Config {
//!     listen: vec![Endpoint::Unix(path.clone())],
//!     ..Config::default()
//! })
//! .unwrap();
//! let stopper = server.stopper().unwrap();
//! let serving = std::thread::spawn(move || server.run());
//!
//! let mut c = Client::connect(&format!("unix:{}", path.display())).unwrap();
//! assert_eq!(c.command(&[b"SET", b"k", b"v"]).unwrap(), Reply::OK);
//! assert_eq!(c.command(&[b"GET", b"k"]).unwrap(), Reply::bulk("v"));
//! let incr = vec![b"INCR".to_vec(), b"n".to_vec()];
//! let replies = c.pipeline(&vec![incr; 16]).unwrap();
//! assert_eq!(replies[15], Reply::Int(16));
//!
//! stopper.stop().unwrap();
//! serving.join().unwrap().unwrap();
//! ```

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use ipckit::socket::unix::UnixAddr;
use ipckit::{Error, ErrorKind, Result};

use crate::resp::Reply;

/// How long a connect, a write or a read may wait unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The deepest a reply may nest (a hostile server cannot overflow the stack).
const MAX_DEPTH: usize = 64;

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn io(&mut self) -> &mut dyn ReadWrite {
        match self {
            Conn::Unix(s) => s,
            Conn::Tcp(s) => s,
        }
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// A connection to a RESP server (ipckit kv, redis-server).
pub struct Client {
    conn: Conn,
    /// What the server sent that is not parsed yet (`buf[pos..]`).
    buf: Vec<u8>,
    pos: usize,
    target: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("target", &self.target)
            .finish()
    }
}

fn io_error(op: &'static str, target: &str, e: io::Error) -> Error {
    let timed_out = matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    );
    if timed_out {
        return Error::new(ErrorKind::TimedOut, op, "no answer in time")
            .object(target)
            .hint("the server is busy or stopped: check it is running, or raise the timeout");
    }
    match e.raw_os_error() {
        Some(raw) => Error::os(op, ipckit::Errno::from_raw_os_error(raw)).object(target),
        None => Error::new(ErrorKind::Os, op, e.to_string()).object(target),
    }
}

fn protocol(target: &str, what: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidInput, "reading a reply", what.into())
        .object(target)
        .hint("the peer does not speak RESP: is it a Redis-compatible server?")
}

impl Client {
    /// Connects to `unix:PATH`, `tcp:HOST:PORT` (loopback only) or a plain socket path, waiting
    /// at most [`DEFAULT_TIMEOUT`].
    pub fn connect(target: &str) -> Result<Client> {
        Client::connect_timeout(target, DEFAULT_TIMEOUT)
    }

    /// As [`connect`](Client::connect), waiting at most `timeout` for the connect and, from
    /// then on, for each read and write.
    pub fn connect_timeout(target: &str, timeout: Duration) -> Result<Client> {
        let conn = if let Some(addr) = target.strip_prefix("tcp:") {
            let s = ipckit::socket::tcp::connect_timeout(addr, false, timeout)?;
            Conn::Tcp(s)
        } else {
            let path = target.strip_prefix("unix:").unwrap_or(target);
            let addr = match path.strip_prefix('@') {
                Some(name) => UnixAddr::abstract_name(name.as_bytes()),
                None => UnixAddr::path(Path::new(path)),
            };
            let s = ipckit::socket::unix::UnixStream::connect_timeout(&addr, timeout)?;
            Conn::Unix(UnixStream::from(s.into_fd()))
        };
        let mut c = Client {
            conn,
            buf: Vec::with_capacity(16 << 10),
            pos: 0,
            target: target.to_string(),
        };
        c.set_timeout(timeout)?;
        Ok(c)
    }

    /// Sets how long each read and write may wait from now on.
    pub fn set_timeout(&mut self, timeout: Duration) -> Result<()> {
        let t = Some(timeout.max(Duration::from_millis(1)));
        let r = match &self.conn {
            Conn::Unix(s) => s.set_read_timeout(t).and_then(|_| s.set_write_timeout(t)),
            Conn::Tcp(s) => s.set_read_timeout(t).and_then(|_| s.set_write_timeout(t)),
        };
        r.map_err(|e| io_error("setting the socket timeout", &self.target, e))
    }

    /// Sends one command and reads its reply. An error reply is `Ok(Reply::Error(..))`: only
    /// a broken connection, a timeout or bytes that are not RESP are `Err`.
    pub fn command(&mut self, args: &[&[u8]]) -> Result<Reply> {
        let mut out = Vec::new();
        encode_command(args, &mut out);
        self.send_raw(&out)?;
        self.read_reply()
    }

    /// Sends every command in one write, then reads as many replies, in order.
    pub fn pipeline(&mut self, commands: &[Vec<Vec<u8>>]) -> Result<Vec<Reply>> {
        let mut out = Vec::new();
        for c in commands {
            let args: Vec<&[u8]> = c.iter().map(|a| a.as_slice()).collect();
            encode_command(&args, &mut out);
        }
        self.send_raw(&out)?;
        (0..commands.len()).map(|_| self.read_reply()).collect()
    }

    /// Writes raw bytes (an inline command, a deliberately broken request).
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        let target = &self.target;
        self.conn
            .io()
            .write_all(bytes)
            .map_err(|e| io_error("sending a command", target, e))
    }

    /// Reads the next reply. `Err` of kind [`ErrorKind::Disconnected`] when the server
    /// closed the connection first.
    pub fn read_reply(&mut self) -> Result<Reply> {
        loop {
            if self.pos < self.buf.len() {
                match parse_reply(&self.buf[self.pos..], 0) {
                    Ok(Some((reply, used))) => {
                        self.pos += used;
                        if self.pos == self.buf.len() {
                            self.buf.clear();
                            self.pos = 0;
                        }
                        return Ok(reply);
                    }
                    Ok(None) => {}
                    Err(what) => return Err(protocol(&self.target, what)),
                }
            }
            if self.pos > 0 {
                self.buf.drain(..self.pos);
                self.pos = 0;
            }
            let mut chunk = [0u8; 16 << 10];
            let target = &self.target;
            let n = self
                .conn
                .io()
                .read(&mut chunk)
                .map_err(|e| io_error("reading a reply", target, e))?;
            if n == 0 {
                return Err(Error::new(
                    ErrorKind::Disconnected,
                    "reading a reply",
                    "the server closed the connection",
                )
                .object(target));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Whether the server has closed the connection: reads until end of stream, discarding
    /// anything else, waiting at most the timeout. `Ok(false)` if it is still open by then.
    pub fn closed_by_server(&mut self) -> Result<bool> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            match self.conn.io().read(&mut chunk) {
                Ok(0) => return Ok(true),
                Ok(_) => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return Ok(true),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(false);
                }
                Err(e) => return Err(io_error("reading", &self.target, e)),
            }
        }
    }

    /// The raw descriptor's stream, for tests that need to stop reading or shut down a side.
    pub fn unix_stream(&self) -> Option<&UnixStream> {
        match &self.conn {
            Conn::Unix(s) => Some(s),
            Conn::Tcp(_) => None,
        }
    }
}

/// Appends `args` as a RESP array of bulk strings, what every client sends (the same bytes
/// the append-only log holds: [`crate::aof::encode`]).
pub fn encode_command(args: &[&[u8]], out: &mut Vec<u8>) {
    crate::aof::encode(args, out);
}

type Parsed = std::result::Result<Option<(Reply, usize)>, String>;

fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let nl = buf.iter().position(|&b| b == b'\n')?;
    let l = &buf[..nl];
    Some((l.strip_suffix(b"\r").unwrap_or(l), nl + 1))
}

fn int(s: &[u8]) -> std::result::Result<i64, String> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad number {:?}", String::from_utf8_lossy(s)))
}

/// The longest bulk reply taken (the server's own limit is 4 GiB; anything longer is a
/// hostile or broken peer, and its length would overflow the arithmetic on 32-bit targets).
const MAX_BULK: u64 = 1 << 32;
/// The most items in one aggregate reply (a map's pairs count twice).
const MAX_ITEMS: u64 = 1 << 32;

/// Parses one reply from the start of `buf`: `Ok(None)` if it has not all arrived.
pub fn parse_reply(buf: &[u8], depth: usize) -> Parsed {
    if depth > MAX_DEPTH {
        return Err("reply nested too deep".into());
    }
    let Some(&tag) = buf.first() else {
        return Ok(None);
    };
    let Some((body, at)) = line(&buf[1..]) else {
        return Ok(None);
    };
    let at = at + 1;
    let text = || String::from_utf8_lossy(body).into_owned();
    let reply = match tag {
        b'+' => Reply::Status(text().into()),
        b'-' => Reply::Error(text().into()),
        b':' => Reply::Int(int(body)?),
        b'#' => Reply::Int((body == b"t") as i64),
        b'(' => Reply::Status(text().into()),
        b',' => Reply::Double(
            text()
                .parse()
                .map_err(|_| format!("bad double {:?}", text()))?,
        ),
        b'_' => Reply::Nil,
        b'$' | b'=' | b'!' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some((Reply::Nil, at)));
            }
            if n as u64 > MAX_BULK {
                return Err(format!(
                    "bulk reply of {n} bytes is over the {MAX_BULK}-byte limit"
                ));
            }
            let n = n as usize;
            let used = at + n + 2;
            if buf.len() < used {
                return Ok(None);
            }
            let data = buf[at..at + n].to_vec();
            return Ok(Some((
                match tag {
                    b'=' => Reply::Verbatim(data.get(4..).unwrap_or_default().to_vec()),
                    b'!' => Reply::Error(String::from_utf8_lossy(&data).into_owned().into()),
                    _ => Reply::Bulk(data),
                },
                used,
            )));
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = int(body)?;
            if n < 0 {
                return Ok(Some((Reply::NilArray, at)));
            }
            if n as u64 > MAX_ITEMS {
                return Err(format!(
                    "aggregate reply of {n} items is over the {MAX_ITEMS}-item limit"
                ));
            }
            let count = if matches!(tag, b'%' | b'|') { 2 * n } else { n } as usize;
            let mut items = Vec::with_capacity(count.min(1024));
            let mut used = at;
            for _ in 0..count {
                match parse_reply(&buf[used..], depth + 1)? {
                    Some((r, u)) => {
                        items.push(r);
                        used += u;
                    }
                    None => return Ok(None),
                }
            }
            let reply = match tag {
                b'~' => Reply::Set(items),
                b'%' => {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    Reply::Map(pairs)
                }
                // An attribute annotates the reply that follows it: skip to that one.
                b'|' => {
                    return Ok(parse_reply(&buf[used..], depth + 1)?.map(|(r, u)| (r, used + u)));
                }
                _ => Reply::Array(items),
            };
            return Ok(Some((reply, used)));
        }
        other => return Err(format!("unknown reply type byte {:?}", other as char)),
    };
    Ok(Some((reply, at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(b: &[u8]) -> Reply {
        let (r, used) = parse_reply(b, 0).unwrap().unwrap();
        assert_eq!(used, b.len());
        r
    }

    #[test]
    fn resp2_and_resp3_replies_parse() {
        assert_eq!(one(b"+OK\r\n"), Reply::OK);
        assert_eq!(one(b"$-1\r\n"), Reply::Nil);
        assert_eq!(one(b"_\r\n"), Reply::Nil);
        assert_eq!(one(b"*-1\r\n"), Reply::NilArray);
        assert_eq!(one(b"$3\r\nabc\r\n"), Reply::bulk("abc"));
        assert_eq!(
            one(b"%1\r\n+a\r\n:1\r\n"),
            Reply::Map(vec![(Reply::status("a"), Reply::Int(1))])
        );
        assert_eq!(one(b"~1\r\n#t\r\n"), Reply::Set(vec![Reply::Int(1)]));
        assert_eq!(
            one(b"=8\r\ntxt:abcd\r\n"),
            Reply::Verbatim(b"abcd".to_vec())
        );
        assert_eq!(one(b",1.5\r\n"), Reply::Double(1.5));
        assert_eq!(parse_reply(b"*2\r\n:1\r\n", 0), Ok(None));
        assert!(parse_reply(b"?\r\n", 0).is_err());
    }

    #[test]
    fn hostile_lengths_are_errors_not_overflows() {
        for b in [
            &b"$9223372036854775807\r\n"[..],
            b"=9223372036854775807\r\n",
            b"*9223372036854775807\r\n",
            b"%9223372036854775807\r\n",
            b"|4611686018427387904\r\n",
        ] {
            assert!(
                parse_reply(b, 0).is_err(),
                "{:?}",
                String::from_utf8_lossy(b)
            );
        }
        // Within the limits, a length not arrived yet is only incomplete.
        assert_eq!(parse_reply(b"$4294967296\r\nab", 0), Ok(None));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = b"*1\r\n".repeat(100);
        assert!(parse_reply(&deep, 0).is_err());
    }
}
