//! One client connection: its buffers, the reads and writes on its socket, and the rules on
//! how much it may make the server hold.

use std::os::fd::OwnedFd;

use rustix::io::Errno;
use rustix::net::SendFlags;

use crate::command::Session;

/// How much a read asks for at least (Redis's `PROTO_IOBUF_LEN`).
const READ_CHUNK: usize = 16 << 10;
/// A buffer this large that has emptied is given back (1,000 idle clients hold little).
const SHRINK_ABOVE: usize = 256 << 10;

/// What a read found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadOutcome {
    /// Bytes arrived (or none were waiting after all).
    Data,
    /// The peer closed its end.
    Eof,
    /// The connection broke.
    Broken,
}

/// What a write achieved.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteOutcome {
    /// Everything pending is written.
    Done,
    /// The socket is full: wait for EPOLLOUT.
    Blocked,
    /// The connection broke.
    Broken,
}

/// A connected client.
pub(crate) struct Conn {
    pub fd: OwnedFd,
    pub session: Session,
    /// Requests read: `rbuf[rpos..]` is not parsed yet.
    pub rbuf: Vec<u8>,
    pub rpos: usize,
    /// How far the request at `rbuf[rpos..]` was parsed, when it has not all arrived.
    pub progress: crate::resp::Progress,
    /// Replies: `wbuf[wpos..]` is not written yet.
    pub wbuf: Vec<u8>,
    pub wpos: usize,
    /// The largest single reply in `wbuf` since it last emptied (the output limit lets one
    /// reply through whatever its size: a GET of a large value is not a client misbehaving).
    pub largest_reply: usize,
    /// EPOLLOUT is registered (a write was cut short).
    pub want_out: bool,
    /// No more requests are read: close once `wbuf` is written (QUIT, a protocol error, the
    /// peer's end of stream).
    pub closing: bool,
    /// In the loop's list of clients with replies to write.
    pub queued: bool,
}

impl Conn {
    pub fn new(fd: OwnedFd, session: Session) -> Conn {
        Conn {
            fd,
            session,
            rbuf: Vec::new(),
            rpos: 0,
            progress: crate::resp::Progress::default(),
            wbuf: Vec::new(),
            wpos: 0,
            largest_reply: 0,
            want_out: false,
            closing: false,
            queued: false,
        }
    }

    /// Bytes read and not yet parsed.
    pub fn unparsed(&self) -> usize {
        self.rbuf.len() - self.rpos
    }

    /// Bytes of replies not yet written.
    pub fn pending(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// One `read(2)` into the buffer's free room (at least 16 KiB), a second one only when
    /// the first filled it (a large request arriving): a readable event costs one system call
    /// for the usual small request.
    pub fn fill(&mut self) -> ReadOutcome {
        for _ in 0..4 {
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
                self.rbuf.reserve(READ_CHUNK);
            }
            let room = self.rbuf.capacity() - self.rbuf.len();
            match rustix::io::read(&self.fd, rustix::buffer::spare_capacity(&mut self.rbuf)) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) if n == room => continue,
                Ok(_) => return ReadOutcome::Data,
                Err(Errno::AGAIN) => return ReadOutcome::Data,
                Err(Errno::INTR) => continue,
                Err(_) => return ReadOutcome::Broken,
            }
        }
        ReadOutcome::Data
    }

    /// The unwritten replies beyond the largest single one pass `limit`. The largest reply
    /// may be partly written (a send cut short, or dropped by `drop_written`), so what is
    /// pending can be less than it: that is under the limit, not an underflow.
    pub fn over_output_limit(&self, limit: usize) -> bool {
        self.pending().saturating_sub(self.largest_reply) > limit
    }

    /// Drops the parsed bytes from the read buffer (moving a partial request to the front).
    pub fn compact(&mut self) {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            if self.rbuf.capacity() > SHRINK_ABOVE {
                self.rbuf = Vec::new();
            }
        } else if self.rpos > 0 {
            self.rbuf.drain(..self.rpos);
        }
        self.rpos = 0;
    }

    /// A large reply being written slowly does not keep what went already.
    fn drop_written(&mut self) {
        if self.wpos > SHRINK_ABOVE && self.wpos * 2 > self.wbuf.len() {
            self.wbuf.drain(..self.wpos);
            self.wpos = 0;
        }
    }

    /// Writes what is pending, as far as the socket takes it: one `send(2)` when it all fits
    /// (a partial write means the socket is full; trying again at once would only get EAGAIN).
    pub fn flush(&mut self) -> WriteOutcome {
        while self.wpos < self.wbuf.len() {
            let rest = &self.wbuf[self.wpos..];
            match rustix::net::send(&self.fd, rest, SendFlags::NOSIGNAL) {
                Ok(n) => {
                    self.wpos += n;
                    if n < rest.len() {
                        self.drop_written();
                        return WriteOutcome::Blocked;
                    }
                }
                Err(Errno::AGAIN) => {
                    self.drop_written();
                    return WriteOutcome::Blocked;
                }
                Err(Errno::INTR) => continue,
                Err(_) => return WriteOutcome::Broken,
            }
        }
        self.wbuf.clear();
        self.wpos = 0;
        self.largest_reply = 0;
        if self.wbuf.capacity() > SHRINK_ABOVE {
            self.wbuf = Vec::new();
        }
        WriteOutcome::Done
    }
}
