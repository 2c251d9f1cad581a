//! The channel's socket: the handle half of the "shared memory for the data, a socket for
//! the handle" pattern.
//!
//! Every channel has a Unix seqpacket socket beside its shared memory. It carries two things:
//! - **Bulk payloads.** A message larger than a slot is written once into a memfd of its own
//!   (in place, through a [`Loan`](super::Loan), or by the one copy of
//!   [`Sender::send`](super::Sender::send)); the memfd, sealed against shrinking and growing,
//!   goes over the socket with `SCM_RIGHTS`, tagged with the position of the slot that
//!   announces it; the receiver maps it and reads it in place. Nothing is copied a second
//!   time, and the memfd has no name: it is freed with its last descriptor and mapping.
//! - **Liveness.** The kernel reports a hang-up on a socket once every descriptor of the other
//!   end is closed, however its holders ended (`SIGKILL` included), with no pid to go stale.
//!   That is why the channel uses the socket, not a pidfd or a robust futex, to notice a dead
//!   peer: an end inherited across `fork` or passed to another process keeps the channel
//!   alive exactly as long as some process holds it, and a pid cannot be reused under it.
//!
//! An anonymous channel uses a `socketpair`; every sender holds a duplicate of one end. A
//! named channel's receiver listens on an abstract socket whose name is in the shared header,
//! and every sender connects to it when it opens the channel (the connection waits in the
//! listen queue until the receiver needs it: the receiver accepts only in its slow path).

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::net::SocketFlags;

use super::wait::SLICE;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::poll;
use crate::socket::ancillary;
use crate::socket::unix::SeqpacketListener;

/// A message on the socket: the position of the slot that announces the memfd sent with it.
const TOKEN: usize = 8;

/// How long a sender waits for room in the socket, or the receiver for a memfd its slot
/// announced (it was sent before the slot was committed, so it is normally there at once).
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) fn disconnected(op: &'static str, who: &str) -> Error {
    Error::new(
        ErrorKind::Disconnected,
        op,
        format!("the {who} is gone (every process holding its end closed it or died)"),
    )
    .hint("make a new channel")
}

/// A sender's end of the socket.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) sock: OwnedFd,
}

impl Outbox {
    /// Sends `memfd` for the slot at `pos`, waiting for room in the socket until `deadline`
    /// (`Ok(false)` then; [`Deadline::NEVER`](poll::Deadline::NEVER): as long as the receiver
    /// is there).
    pub(crate) fn send(
        &self,
        pos: u64,
        memfd: BorrowedFd<'_>,
        deadline: crate::poll::Deadline,
    ) -> Result<bool> {
        loop {
            match ancillary::send_fds(&self.sock, &pos.to_le_bytes(), &[memfd]) {
                Ok(_) => return Ok(true),
                Err(e) if e.errno() == Some(rustix::io::Errno::AGAIN) => {}
                Err(e)
                    if matches!(
                        e.errno(),
                        Some(rustix::io::Errno::PIPE | rustix::io::Errno::CONNRESET)
                    ) =>
                {
                    return Err(disconnected("sending a bulk payload", "receiver"));
                }
                Err(e) => return Err(e),
            }
            // Full: the receiver has not collected the memfds sent before. Wait for room, a
            // slice at a time, so a receiver that dies is noticed.
            let left = match deadline.remaining() {
                Some(left) if left.is_zero() => return Ok(false),
                Some(left) => left.min(SLICE),
                None => SLICE,
            };
            let ev = poll::wait_timeout(&self.sock, PollFlags::OUT, left)?;
            if ev.intersects(PollFlags::HUP | PollFlags::ERR) {
                return Err(disconnected("sending a bulk payload", "receiver"));
            }
        }
    }

    /// `Err(Disconnected)` once the receiver's end is closed everywhere.
    pub(crate) fn alive(&self) -> Result<()> {
        let ev = poll::wait_deadline(&self.sock, PollFlags::empty(), poll::Deadline::now())?;
        if ev.intersects(PollFlags::HUP | PollFlags::ERR) {
            return Err(disconnected("waiting on the channel", "receiver"));
        }
        Ok(())
    }
}

/// The receiver's end: the socket of an anonymous channel, or a named channel's listener and
/// the connections accepted from it; memfds that arrived before their slot was reached.
#[derive(Debug)]
pub(crate) struct Inbox {
    pub(crate) listener: Option<SeqpacketListener>,
    pub(crate) conns: Vec<OwnedFd>,
    parked: HashMap<u64, OwnedFd>,
    /// Whether a sender was ever there (a named channel waits for its first sender).
    ever: bool,
    /// An anonymous channel's socket once every sender has hung up: kept, so the receiver
    /// still has a descriptor to show (it stays readable, hung up).
    pub(crate) hung: Option<OwnedFd>,
}

impl Inbox {
    /// The receiving end of an anonymous channel's socket pair.
    pub(crate) fn pair_end(sock: OwnedFd) -> Result<Inbox> {
        poll::set_nonblocking(&sock, true)?;
        Ok(Inbox {
            listener: None,
            conns: vec![sock],
            parked: HashMap::new(),
            ever: true,
            hung: None,
        })
    }

    /// Nothing: what a receiver holds while it is dropped.
    pub(crate) fn closed() -> Inbox {
        Inbox {
            listener: None,
            conns: Vec::new(),
            parked: HashMap::new(),
            ever: true,
            hung: None,
        }
    }

    /// A named channel's listener (non-blocking).
    pub(crate) fn listening(listener: SeqpacketListener) -> Inbox {
        Inbox {
            listener: Some(listener),
            conns: Vec::new(),
            parked: HashMap::new(),
            ever: false,
            hung: None,
        }
    }

    /// Accepts every waiting connection and reads every waiting memfd; drops the connections
    /// whose senders are gone.
    fn collect(&mut self) -> Result<()> {
        if let Some(l) = &self.listener {
            loop {
                match rustix::net::accept_with(l, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK) {
                    Ok(fd) => {
                        self.conns.push(fd);
                        self.ever = true;
                    }
                    Err(rustix::io::Errno::AGAIN | rustix::io::Errno::CONNABORTED) => break,
                    Err(rustix::io::Errno::INTR) => continue,
                    Err(e) => return Err(e).during("accepting a sender of", "channel"),
                }
            }
        }
        let mut i = 0;
        while i < self.conns.len() {
            let mut open = true;
            loop {
                let mut token = [0u8; TOKEN];
                match ancillary::try_recv(&self.conns[i], &mut token, 1) {
                    Ok(None) => break,
                    Ok(Some(got)) if got.bytes == 0 && got.fds.is_empty() => {
                        open = false;
                        break;
                    }
                    Ok(Some(mut got)) => {
                        if let (TOKEN, Some(fd)) = (got.bytes, got.fds.pop()) {
                            self.parked.insert(u64::from_le_bytes(token), fd);
                        }
                    }
                    // A malformed message from a sender is dropped, not fatal.
                    Err(e) if e.kind() == ErrorKind::Truncated => {}
                    Err(e) => return Err(e),
                }
            }
            if open {
                i += 1;
            } else {
                let gone = self.conns.swap_remove(i);
                if self.listener.is_none() {
                    self.hung = Some(gone);
                }
            }
        }
        Ok(())
    }

    /// Whether memfds arrived ahead of their slots.
    pub(crate) fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// The memfd the slot at `pos` announced.
    pub(crate) fn take(&mut self, pos: u64) -> Result<OwnedFd> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            self.collect()?;
            if let Some(fd) = self.parked.remove(&pos) {
                // A memfd for an earlier slot will never be asked for: its sender died
                // between sending it and committing the slot, which the receiver skipped.
                self.parked.retain(|&p, _| p > pos);
                return Ok(fd);
            }
            if self.conns.is_empty() && self.listener.is_none() {
                return Err(Error::new(
                    ErrorKind::Disconnected,
                    "receiving a bulk payload",
                    "its sender died before its memfd arrived",
                ));
            }
            let mut fds: Vec<PollFd<'_>> = self
                .conns
                .iter()
                .map(|s| s.as_fd())
                .chain(self.listener.as_ref().map(|l| l.as_fd()))
                .map(|s| PollFd::from_borrowed_fd(s, PollFlags::IN))
                .collect();
            if poll::poll_until(&mut fds, poll::Deadline::at(deadline))? == 0 {
                return Err(Error::timed_out(
                    "receiving a bulk payload's memfd",
                    PATIENCE,
                ));
            }
        }
    }

    /// `Err(Disconnected)` once no sender is left: every connection hung up (after at least
    /// one came, for a named channel). Drops memfds parked for slots before `head`, which
    /// will never be asked for (their sender died before committing them, and the receiver
    /// skipped them).
    pub(crate) fn alive(&mut self, head: u64) -> Result<()> {
        self.collect()?;
        self.parked.retain(|&p, _| p >= head);
        if self.ever && self.conns.is_empty() {
            let e = disconnected("receiving from the channel", "last sender");
            return Err(if self.listener.is_some() {
                e.hint("a new sender may still open the channel by its name")
            } else {
                e
            });
        }
        Ok(())
    }
}

impl AsFd for Outbox {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
