//! The receiving end: [`Receiver`], and the message it lends out to read in place, [`Msg`].

use std::cell::Cell;
use std::ops::Deref;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::bulk::Inbox;
use super::layout::{BULK, INLINE, Shared, VOID};
use super::wait::{self, Limit, Peer, Wait, Waiter, unreachable_timeout};
use crate::error::{Error, ErrorKind, Result};
use crate::notify::eventfd::EventFd;
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::shm::memfd::{Memfd, Seals};

/// The receiving end: one per channel.
#[derive(Debug)]
pub struct Receiver {
    pub(super) shared: Arc<Shared>,
    pub(super) inbox: Inbox,
    pub(super) event: Option<EventFd>,
    /// A pollable receiver's epoll set: its eventfd, and its socket (which hangs up when
    /// every sender is gone, however they ended).
    pub(super) poller: Option<OwnedFd>,
    pub(super) waiter: Waiter,
    /// The position of the next message.
    pub(super) head: u64,
    /// Counted among the data signal's sleepers while waiting in the user's event loop.
    pub(super) armed: bool,
}

struct ReceiverPeer<'a> {
    inbox: &'a mut Inbox,
    shared: &'a Shared,
    /// Set at each look at the peers: the next empty look also checks for a dead
    /// sender's hole.
    probe: &'a Cell<bool>,
}

impl Peer for ReceiverPeer<'_> {
    fn alive(&mut self) -> Result<()> {
        self.probe.set(self.shared.multi);
        self.inbox.alive(self.shared.ring().head())
    }
    fn hangups(&self) -> u32 {
        self.shared.header().hangups.load(Ordering::Relaxed)
    }
}

/// Whether process `pid` has exited (a zombie counts as exited). A pid reused since reads
/// as alive, which only leaves a hole unskipped.
fn process_gone(pid: i32) -> bool {
    match crate::notify::pidfd::PidFd::open(pid as crate::Pid) {
        Ok(p) => p.try_wait_exit().unwrap_or(false),
        Err(e) => e.errno() == Some(crate::Errno::SRCH),
    }
}

/// What the receiver found at its position: the slot's length and flags.
struct Found {
    pos: u64,
    len: u32,
    flags: u32,
}

super::wait::end_methods!(Receiver);

impl Receiver {
    /// A pollable channel's descriptor for an event loop (an epoll set holding the
    /// channel's eventfd and its socket): readable when a message may be waiting, or
    /// when every sender is gone (a sender killed with `SIGKILL` included). When it is
    /// readable, call [`try_borrow`](Receiver::try_borrow) (or
    /// [`try_recv`](Receiver::try_recv)) until it gives `None` (which re-arms it) or
    /// `Disconnected`.
    pub fn event_fd(&self) -> Option<BorrowedFd<'_>> {
        self.poller.as_ref().map(|p| p.as_fd())
    }

    /// Borrows the next message in place, waiting for one; it is released (its slot
    /// given back to the senders) when the [`Msg`] is dropped. `Disconnected` once every
    /// sender is gone and every message they sent has been received.
    pub fn borrow(&mut self) -> Result<Msg<'_>> {
        self.borrow_within(Limit::NEVER)?
            .ok_or_else(|| unreachable_timeout("receiving a message"))
    }

    /// [`borrow`](Receiver::borrow), or `Ok(None)` at once when no message is waiting.
    pub fn try_borrow(&mut self) -> Result<Option<Msg<'_>>> {
        self.borrow_within(Limit::Now)
    }

    /// [`borrow`](Receiver::borrow), or `Ok(None)` when no message comes within
    /// `timeout`.
    pub fn borrow_timeout(&mut self, timeout: Duration) -> Result<Option<Msg<'_>>> {
        self.borrow_within(Limit::For(timeout))
    }

    /// [`borrow`](Receiver::borrow), or `Ok(None)` when no message has come by `deadline`.
    pub fn borrow_deadline(&mut self, deadline: impl Into<Deadline>) -> Result<Option<Msg<'_>>> {
        self.borrow_within(Limit::Until(deadline.into()))
    }

    /// Receives a copy of the next message, waiting for one.
    pub fn recv(&mut self) -> Result<Vec<u8>> {
        Ok(self.borrow()?.to_vec())
    }

    /// [`recv`](Receiver::recv), or `Ok(None)` at once when no message is waiting.
    pub fn try_recv(&mut self) -> Result<Option<Vec<u8>>> {
        Ok(self.try_borrow()?.map(|m| m.to_vec()))
    }

    /// [`recv`](Receiver::recv), or `Ok(None)` when no message comes within `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        Ok(self.borrow_timeout(timeout)?.map(|m| m.to_vec()))
    }

    /// [`recv`](Receiver::recv), or `Ok(None)` when no message has come by `deadline`.
    pub fn recv_deadline(&mut self, deadline: impl Into<Deadline>) -> Result<Option<Vec<u8>>> {
        Ok(self.borrow_deadline(deadline)?.map(|m| m.to_vec()))
    }

    #[inline]
    fn borrow_within(&mut self, limit: Limit) -> Result<Option<Msg<'_>>> {
        // The path of a busy channel: the next message is there, in its slot.
        let (pos, ring) = (self.head, self.shared.ring());
        if !self.armed && ring.ready(pos) {
            let index = ring.index(pos);
            let (len, flags) = self.shared.meta(index);
            if flags.load(Ordering::Relaxed) == INLINE {
                let len = (len.load(Ordering::Relaxed) as usize).min(self.shared.slot_size);
                return Ok(Some(Msg {
                    rx: self,
                    pos,
                    body: Received::Inline { index, len },
                }));
            }
        }
        self.borrow_slow(limit)
    }

    fn borrow_slow(&mut self, limit: Limit) -> Result<Option<Msg<'_>>> {
        let Some(found) = self.find(limit)? else {
            return Ok(None);
        };
        let index = self.shared.ring().index(found.pos);
        let body = if found.flags == BULK {
            // SAFETY: a committed bulk slot holds the length in its first 8 bytes.
            let len = unsafe { self.shared.payload(index).cast::<u64>().read_unaligned() };
            let taken = self.inbox.take(found.pos).and_then(|fd| {
                let memfd = Memfd::from_fd(fd)?;
                // Sealed against shrinking, or a sender could cut it under the mapping
                // (SIGBUS here).
                if !memfd.seals()?.contains(Seals::SHRINK | Seals::GROW) {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "receiving a bulk payload",
                        "its memfd is not sealed against shrinking and growing",
                    )
                    .hint("the sender is not an ipckit channel sender; the message was dropped"));
                }
                let len = usize::try_from(len).unwrap_or(usize::MAX);
                if memfd.len()? < len {
                    return Err(Error::new(
                        ErrorKind::InvalidInput,
                        "receiving a bulk payload",
                        "its memfd is smaller than the length announced",
                    ));
                }
                Ok((memfd.map(crate::Access::ReadOnly)?, len))
            });
            match taken {
                Ok((map, len)) => Received::Bulk { map, len },
                Err(e) => {
                    // The slot is given back either way, so the channel goes on.
                    self.advance(found.pos);
                    return Err(e);
                }
            }
        } else {
            Received::Inline {
                index,
                len: (found.len as usize).min(self.shared.slot_size),
            }
        };
        Ok(Some(Msg {
            rx: self,
            pos: found.pos,
            body,
        }))
    }

    /// Releases the slot at `pos` to the senders and moves on.
    #[inline]
    fn advance(&mut self, pos: u64) {
        self.shared.ring().release(pos);
        self.head = pos.wrapping_add(1);
        self.shared.header().space.notify(None);
    }

    fn find(&mut self, limit: Limit) -> Result<Option<Found>> {
        let shared = &*self.shared;
        let ring = shared.ring();
        let head = &mut self.head;
        let probe = Cell::new(false);
        let mut ready = || -> Option<Found> {
            loop {
                let pos = *head;
                if !ring.ready(pos) {
                    shared.prefetch(ring.index(pos));
                    // After each look at the peers: is this slot claimed by a sender that
                    // died before committing it? Then it never will be: skip it.
                    if probe.replace(false)
                        && let Some(pid) = shared.owner(pos)
                        && process_gone(pid)
                    {
                        // Only if still uncommitted: a commit that came before the exit
                        // wins, and the message is read.
                        if ring.skip(pos) {
                            *head = pos + 1;
                            shared.header().space.notify(None);
                        }
                        continue;
                    }
                    return None;
                }
                let (len, flags) = shared.meta(ring.index(pos));
                let (len, flags) = (len.load(Ordering::Relaxed), flags.load(Ordering::Relaxed));
                if flags == VOID {
                    ring.release(pos);
                    *head = pos + 1;
                    shared.header().space.notify(None);
                    continue;
                }
                return Some(Found { pos, len, flags });
            }
        };
        let data = &shared.header().data;
        let mut peer = ReceiverPeer {
            inbox: &mut self.inbox,
            shared,
            probe: &probe,
        };
        let found = match &self.event {
            Some(event) if limit.is_now() => match ready() {
                Some(f) => Some(f),
                None => {
                    // Nothing now: quiet the eventfd, ask the senders to write it for the
                    // next message, then look again (one may have come before they could
                    // see that).
                    event.try_read()?;
                    if !self.armed {
                        data.count(true, &mut self.waiter);
                        self.armed = true;
                    }
                    wait::until(&mut self.waiter, data, limit, &mut peer, &mut ready)?
                }
            },
            _ => wait::until(&mut self.waiter, data, limit, &mut peer, &mut ready)?,
        };
        if found.is_some() && self.armed {
            data.count(false, &mut self.waiter);
            self.armed = false;
            if let Some(e) = &self.event {
                e.try_read()?;
            }
        }
        Ok(found)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Close the socket (and the epoll set, the eventfd) first, so a sender woken
        // below sees this end gone.
        drop(std::mem::replace(&mut self.inbox, Inbox::closed()));
        self.poller = None;
        self.event = None;
        let h = self.shared.header();
        // A copy of this end inherited across fork undoes nothing it did not do itself.
        if self.armed && self.waiter.mine() {
            h.data.count(false, &mut self.waiter);
        }
        self.waiter.leave(&h.data);
        h.hangups.fetch_add(1, Ordering::SeqCst);
        let _ = h.space.wake(None);
    }
}

/// A pollable receiver's [`event_fd`](Receiver::event_fd); otherwise the channel's
/// socket (an anonymous channel: readable with bulk payloads, hung up once every sender
/// is gone) or a named channel's listening socket.
impl AsFd for Receiver {
    fn as_fd(&self) -> BorrowedFd<'_> {
        let inbox = &self.inbox;
        match (&self.poller, &inbox.listener) {
            (Some(p), _) => p.as_fd(),
            (None, Some(l)) => l.as_fd(),
            (None, None) => inbox
                .conns
                .first()
                .or(inbox.hung.as_ref())
                .expect("an anonymous receiver keeps its socket")
                .as_fd(),
        }
    }
}

#[derive(Debug)]
enum Received {
    Inline { index: usize, len: usize },
    Bulk { map: Mapping, len: usize },
}

/// A message borrowed in place from a [`Receiver`]: read it through `Deref<Target =
/// [u8]>`. Dropping it gives the slot back to the senders.
#[derive(Debug)]
pub struct Msg<'a> {
    rx: &'a mut Receiver,
    pos: u64,
    body: Received,
}

impl Msg<'_> {
    /// Whether it came by the bulk path (a memfd of its own).
    pub fn is_bulk(&self) -> bool {
        matches!(self.body, Received::Bulk { .. })
    }
}

impl Deref for Msg<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.body {
            // SAFETY: the slot is committed and not released until this Msg is dropped;
            // no sender writes it meanwhile (the protocol in `ring`).
            Received::Inline { index, len } => unsafe {
                std::slice::from_raw_parts(self.rx.shared.payload(*index), *len)
            },
            // SAFETY: a read-only mapping of the sealed memfd, `len` bytes long.
            Received::Bulk { map, len } => unsafe {
                std::slice::from_raw_parts(map.as_ptr(), *len)
            },
        }
    }
}

impl Drop for Msg<'_> {
    #[inline]
    fn drop(&mut self) {
        self.rx.advance(self.pos);
    }
}
