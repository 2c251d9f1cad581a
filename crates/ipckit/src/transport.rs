//! Two small traits for the mechanisms that move bytes or messages: a byte stream
//! ([`TimedRead`], [`TimedWrite`], [`ByteStream`]) and a message transport
//! ([`MessageTransport`]), in the one waiting shape (`x`, `try_x`, `x_timeout`, `x_deadline`):
//! reads, writes, sends and receives alike, so a peer that stops reading can hold a writer no
//! longer than the writer lets it.
//!
//! Byte streams: pipes (two as a [`Duplex`]), Unix stream sockets, TCP. Message transports:
//! Unix seqpacket and datagram sockets, POSIX and System V message queues, and [`Framed`] over
//! any byte stream. One conformance suite (`tests/conformance.rs`) runs over every one of them.
//!
//! Code that takes a trait works with any of them: `ipckit listen` and `recv` read seqpacket
//! clients through [`MessageTransport`], and the lab's pipe, FIFO and socket scenarios read
//! through [`TimedRead`] (and its socket scenario through [`MessageTransport`]). Not everything goes through the traits: the
//! benchmark has a driver per mechanism (it uses [`Duplex`] for its pipe and FIFO rows), the
//! CLI and the lab call a mechanism's own API where they show it, and the channel and shared
//! memory (zero copy, loans, mappings) implement neither trait and have drivers of their own.
//!
//! ```
//! use ipckit::transport::{Framed, MessageTransport};
//! use ipckit::socket::unix::UnixStream;
//! let (a, b) = UnixStream::pair().unwrap();
//! let (mut a, mut b) = (Framed::new(a), Framed::new(b));
//! a.send_msg(b"one").unwrap();
//! a.send_msg(b"").unwrap();
//! let mut buf = Vec::new();
//! assert_eq!(b.recv_msg(&mut buf).unwrap(), 3);
//! assert_eq!(buf, b"one");
//! assert_eq!(b.recv_msg(&mut buf).unwrap(), 0);
//! ```

use std::io::{Read, Write};
use std::time::Duration;

use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll::Deadline;

/// A reader whose reads can be bounded in time. `Read::read` is the blocking form.
pub trait TimedRead: Read {
    /// Reads into `buf`, waiting until `deadline`. `Ok(None)` when nothing came in time,
    /// `Ok(Some(0))` at end of stream.
    fn read_deadline(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<Option<usize>>;

    /// Reads into `buf`, waiting at most `timeout`: [`read_deadline`](TimedRead::read_deadline)
    /// `now + timeout`.
    fn read_timeout(&mut self, buf: &mut [u8], timeout: Duration) -> Result<Option<usize>> {
        self.read_deadline(buf, Deadline::after(timeout))
    }

    /// Reads what is there now, never waiting: `Ok(None)` when nothing is.
    fn try_read(&mut self, buf: &mut [u8]) -> Result<Option<usize>> {
        self.read_deadline(buf, Deadline::now())
    }
}

/// A writer whose writes can be bounded in time. `Write::write` and `Write::write_all` are
/// the blocking forms.
///
/// A write waits for room: a peer that stops reading fills the kernel's buffer, and then a
/// blocking write waits for ever. The timed forms give up at a deadline, and never lose count:
/// [`write_deadline`](TimedWrite::write_deadline) writes nothing when no room came in time
/// (`Ok(None)`), and [`write_all_deadline`](TimedWrite::write_all_deadline) returns how many
/// bytes it wrote, fewer than asked when the deadline passed (those bytes were written, the
/// rest was not).
///
/// ```
/// use ipckit::transport::TimedWrite;
/// use std::time::Duration;
/// let (r, mut w) = ipckit::stream::pipe::pipe().unwrap();
/// // Nobody reads: the pipe takes its capacity, then the deadline passes.
/// let data = vec![7u8; 1 << 20];
/// let n = w.write_all_timeout(&data, Duration::from_millis(20)).unwrap();
/// assert!(n > 0 && n < data.len());
/// assert_eq!(r.available().unwrap(), n, "exactly what was reported is in the pipe");
/// ```
pub trait TimedWrite: Write {
    /// Writes some of `buf` (at least one byte unless it is empty), waiting until `deadline`
    /// for room: the bytes written, `Ok(None)` when no room came in time (nothing was
    /// written).
    fn write_deadline(&mut self, buf: &[u8], deadline: Deadline) -> Result<Option<usize>>;

    /// Writes some of `buf`, waiting at most `timeout` for room:
    /// [`write_deadline`](TimedWrite::write_deadline) `now + timeout`.
    fn write_timeout(&mut self, buf: &[u8], timeout: Duration) -> Result<Option<usize>> {
        self.write_deadline(buf, Deadline::after(timeout))
    }

    /// Writes what there is room for now, never waiting: `Ok(None)` when there is none.
    fn try_write(&mut self, buf: &[u8]) -> Result<Option<usize>> {
        self.write_deadline(buf, Deadline::now())
    }

    /// Writes all of `buf`, waiting until `deadline` for room: the bytes written, `buf.len()`
    /// when all of them went, fewer when the deadline passed first (those were written, the
    /// rest was not: write it again, or give up knowing how much the peer has). An error (the
    /// reader gone, EPIPE) does not say how much went before it: a caller that must know
    /// loops over [`write_deadline`](TimedWrite::write_deadline) itself, as `ipckit send` does.
    #[must_use = "fewer bytes than asked means the deadline passed and the rest was not written"]
    fn write_all_deadline(&mut self, buf: &[u8], deadline: Deadline) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.write_deadline(&buf[done..], deadline)? {
                Some(n) => done += n,
                None => break,
            }
        }
        Ok(done)
    }

    /// Writes all of `buf`, waiting at most `timeout` in all:
    /// [`write_all_deadline`](TimedWrite::write_all_deadline) `now + timeout`.
    #[must_use = "fewer bytes than asked means the time ran out and the rest was not written"]
    fn write_all_timeout(&mut self, buf: &[u8], timeout: Duration) -> Result<usize> {
        self.write_all_deadline(buf, Deadline::after(timeout))
    }
}

/// A reliable, ordered, two-way byte stream with no message boundaries (stream sockets, a
/// pair of pipes in a [`Duplex`]), its reads and writes timed.
pub trait ByteStream: TimedRead + TimedWrite + Send {}

impl<T: TimedRead + TimedWrite + Send> ByteStream for T {}

/// A transport that keeps message boundaries: one send is one receive.
pub trait MessageTransport: Send {
    /// Sends one message, whole, waiting for room as long as it takes.
    fn send_msg(&mut self, msg: &[u8]) -> Result<()>;

    /// Sends one message, whole, waiting until `deadline` for room: `Ok(false)` when there
    /// was none in time (nothing was sent).
    fn send_msg_deadline(&mut self, msg: &[u8], deadline: Deadline) -> Result<bool>;

    /// Sends one message, waiting at most `timeout` for room: `Ok(false)` when there was none
    /// (nothing was sent).
    fn send_msg_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<bool> {
        self.send_msg_deadline(msg, Deadline::after(timeout))
    }

    /// Sends one message if there is room now, never waiting: `Ok(false)` when there is none
    /// (nothing was sent).
    fn try_send_msg(&mut self, msg: &[u8]) -> Result<bool> {
        self.send_msg_deadline(msg, Deadline::now())
    }

    /// Receives one message into `buf` (replacing its contents), waiting until `deadline`:
    /// its length, `Ok(None)` when none came in time; an error of kind
    /// [`Disconnected`](ErrorKind::Disconnected) when the peer has closed.
    fn recv_msg_deadline(&mut self, buf: &mut Vec<u8>, deadline: Deadline)
    -> Result<Option<usize>>;

    /// Receives one message into `buf`, waiting as long as it takes: its length.
    fn recv_msg(&mut self, buf: &mut Vec<u8>) -> Result<usize> {
        loop {
            if let Some(n) = self.recv_msg_deadline(buf, Deadline::NEVER)? {
                return Ok(n);
            }
        }
    }

    /// Receives one message into `buf`, waiting at most `timeout`: `Ok(None)` when none came.
    fn recv_msg_timeout(&mut self, buf: &mut Vec<u8>, timeout: Duration) -> Result<Option<usize>> {
        self.recv_msg_deadline(buf, Deadline::after(timeout))
    }

    /// Receives a message that is there now, never waiting: `Ok(None)` when none is.
    fn try_recv_msg(&mut self, buf: &mut Vec<u8>) -> Result<Option<usize>> {
        self.recv_msg_deadline(buf, Deadline::now())
    }

    /// The largest message this transport carries, when it has a limit.
    fn max_msg_len(&self) -> Option<usize> {
        None
    }
}

/// A read half and a write half used as one [`ByteStream`] (two pipes make a duplex channel).
pub struct Duplex<R, W> {
    /// The half that is read.
    pub reader: R,
    /// The half that is written.
    pub writer: W,
}

impl<R: Read, W> Read for Duplex<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.reader.read(buf)
    }
}

impl<R, W: Write> Write for Duplex<R, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.writer.flush()
    }
}

impl<R: TimedRead, W> TimedRead for Duplex<R, W> {
    fn read_deadline(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<Option<usize>> {
        self.reader.read_deadline(buf, deadline)
    }
}

impl<R, W: TimedWrite> TimedWrite for Duplex<R, W> {
    fn write_deadline(&mut self, buf: &[u8], deadline: Deadline) -> Result<Option<usize>> {
        self.writer.write_deadline(buf, deadline)
    }
}

/// The largest message [`Framed`] accepts: 64 MiB.
pub const FRAME_MAX: usize = 64 << 20;

/// Refuses a message over [`FRAME_MAX`].
fn check_frame(msg: &[u8]) -> Result<()> {
    if msg.len() > FRAME_MAX {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "sending framed message",
            format!(
                "{} bytes is over the {FRAME_MAX}-byte frame limit",
                msg.len()
            ),
        ));
    }
    Ok(())
}

/// Messages over a byte stream: each message is a little-endian `u32` length, then the bytes.
pub struct Framed<S> {
    inner: S,
}

impl<S: ByteStream> Framed<S> {
    /// Frames messages over `inner`.
    pub fn new(inner: S) -> Self {
        Framed { inner }
    }

    /// The stream underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Gives back the stream.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Reads exactly `buf.len()` bytes by `deadline`. `Ok(false)` on timeout before the first
    /// byte; a timeout after it is an error, since the stream is then out of step.
    fn read_exact_by(&mut self, buf: &mut [u8], deadline: Deadline) -> Result<bool> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read_deadline(&mut buf[got..], deadline)? {
                None if got == 0 => return Ok(false),
                None => {
                    return Err(Error::new(
                        ErrorKind::TimedOut,
                        "receiving framed message",
                        format!("timed out after {got} of {} bytes", buf.len()),
                    )
                    .hint("the stream is now mid-message: close it"));
                }
                Some(0) => {
                    return Err(Error::new(
                        ErrorKind::Disconnected,
                        "receiving framed message",
                        if got == 0 {
                            "the peer closed the stream".to_string()
                        } else {
                            format!(
                                "the peer closed the stream after {got} of {} bytes",
                                buf.len()
                            )
                        },
                    ));
                }
                Some(n) => got += n,
            }
        }
        Ok(true)
    }
}

impl<S: std::os::fd::AsFd> std::os::fd::AsFd for Framed<S> {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl<S: ByteStream> MessageTransport for Framed<S> {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        check_frame(msg)?;
        let len = (msg.len() as u32).to_le_bytes();
        self.inner
            .write_all(&len)
            .during("sending framed message", "header")?;
        self.inner
            .write_all(msg)
            .during("sending framed message", "body")
    }

    /// `Ok(false)` when not one byte of the frame went in time; a deadline that passes after
    /// the first byte is an error of kind [`TimedOut`](ErrorKind::TimedOut), since the stream
    /// is then mid-message (as on the receiving side). A frame of at most
    /// [`PIPE_BUF`](crate::stream::pipe::PIPE_BUF) bytes goes in one write, which a pipe
    /// takes whole or not at all.
    fn send_msg_deadline(&mut self, msg: &[u8], deadline: Deadline) -> Result<bool> {
        check_frame(msg)?;
        let len = (msg.len() as u32).to_le_bytes();
        let total = 4 + msg.len();
        let sent = if total <= crate::stream::pipe::PIPE_BUF {
            let mut frame = Vec::with_capacity(total);
            frame.extend_from_slice(&len);
            frame.extend_from_slice(msg);
            self.inner.write_all_deadline(&frame, deadline)?
        } else {
            match self.inner.write_all_deadline(&len, deadline)? {
                4 => 4 + self.inner.write_all_deadline(msg, deadline)?,
                n => n,
            }
        };
        match sent {
            0 => Ok(false),
            n if n == total => Ok(true),
            n => Err(Error::new(
                ErrorKind::TimedOut,
                "sending framed message",
                format!("timed out after {n} of {total} bytes"),
            )
            .hint("the stream is now mid-message: close it")),
        }
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: Deadline,
    ) -> Result<Option<usize>> {
        let mut len = [0u8; 4];
        if !self.read_exact_by(&mut len, deadline)? {
            return Ok(None);
        }
        let len = u32::from_le_bytes(len) as usize;
        if len > FRAME_MAX {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "receiving framed message",
                format!("header announces {len} bytes, over the {FRAME_MAX}-byte limit"),
            )
            .hint("the peer does not speak ipckit framing"));
        }
        buf.clear();
        buf.resize(len, 0);
        // A peer that stops mid-body runs into the same deadline (an error: the stream is then
        // out of step), never an endless wait.
        if !self.read_exact_by(buf, deadline)? {
            return Err(Error::new(
                ErrorKind::TimedOut,
                "receiving framed message",
                format!("timed out before the {len}-byte body began"),
            )
            .hint("the stream is now mid-message: close it"));
        }
        Ok(Some(len))
    }

    fn max_msg_len(&self) -> Option<usize> {
        Some(FRAME_MAX)
    }
}
