//! The sending end: [`Sender`], and the slot it loans out to write in place, [`Loan`].

use std::ops::{Deref, DerefMut};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use std::mem::ManuallyDrop;

use super::bulk::Outbox;
use super::layout::{BULK, INLINE, SLOT_HEAD, Shared, VOID};
use super::wait::{self, Limit, Peer, Wait, Waiter, unreachable_timeout};
use crate::error::{Context, Error, ErrorKind, Result};
use crate::notify::eventfd::EventFd;
use crate::poll::Deadline;
use crate::shm::mapping::Mapping;
use crate::shm::memfd::{Memfd, Seals};

/// The sending end. With [`Options::multi_sender`](super::Options::multi_sender), clone it ([`Sender::try_clone`]),
/// inherit it or pass it on for as many senders as you like; otherwise there must be only
/// one at a time.
#[derive(Debug)]
pub struct Sender {
    pub(super) shared: Arc<Shared>,
    pub(super) out: ManuallyDrop<Outbox>,
    pub(super) event: Option<EventFd>,
    pub(super) waiter: Waiter,
    /// This sender's copy of the receiver's position (see `ring`).
    pub(super) free: u64,
}

struct SenderPeer<'a> {
    out: &'a Outbox,
    shared: &'a Shared,
}

impl Peer for SenderPeer<'_> {
    fn alive(&mut self) -> Result<()> {
        self.out.alive()
    }
    fn hangups(&self) -> u32 {
        self.shared.header().hangups.load(Ordering::Relaxed)
    }
}

super::wait::end_methods!(Sender);

impl Sender {
    /// `fcntl(F_DUPFD_CLOEXEC)` of this end's socket (and eventfd): a second sender on the
    /// same channel (same process; for another process pass it on with
    /// [`send_over`](Sender::send_over)), waiting as this one does. Only with
    /// [`Options::multi_sender`](super::Options::multi_sender).
    /// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
    pub fn try_clone(&self) -> Result<Sender> {
        self.check_multi("cloning a sender")?;
        let sock = self
            .out
            .sock
            .try_clone()
            .during("duplicating", "the channel's socket")?;
        Ok(Sender {
            shared: self.shared.clone(),
            out: ManuallyDrop::new(Outbox { sock }),
            event: self.event.as_ref().map(EventFd::try_clone).transpose()?,
            waiter: Waiter::new(self.waiter.wait, false),
            free: 0,
        })
    }

    fn check_multi(&self, op: &'static str) -> Result<()> {
        if !self.shared.multi {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                "the channel was made for one sender",
            )
            .hint("make it with Options::multi_sender(true)"));
        }
        Ok(())
    }

    /// Loans a slot for a `len`-byte message, waiting for room while the ring is full:
    /// write it in place, then [`Loan::commit`]. A message larger than the slot size gets
    /// a memfd of its own instead (the bulk path), still written in place.
    pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
        self.loan_within(len, Limit::NEVER)?
            .ok_or_else(|| unreachable_timeout("loaning a slot"))
    }

    /// [`loan`](Sender::loan), or `Ok(None)` at once when the ring is full.
    pub fn try_loan(&mut self, len: usize) -> Result<Option<Loan<'_>>> {
        self.loan_within(len, Limit::Now)
    }

    /// [`loan`](Sender::loan), or `Ok(None)` when the ring stays full for `timeout`.
    pub fn loan_timeout(&mut self, len: usize, timeout: Duration) -> Result<Option<Loan<'_>>> {
        self.loan_within(len, Limit::For(timeout))
    }

    /// [`loan`](Sender::loan), or `Ok(None)` when the ring is still full at `deadline`.
    pub fn loan_deadline(
        &mut self,
        len: usize,
        deadline: impl Into<Deadline>,
    ) -> Result<Option<Loan<'_>>> {
        self.loan_within(len, Limit::Until(deadline.into()))
    }

    fn loan_within(&mut self, len: usize, limit: Limit) -> Result<Option<Loan<'_>>> {
        let Some(pos) = self.claim(limit)? else {
            return Ok(None);
        };
        self.shared.tag(pos);
        let body = if len <= self.shared.slot_size {
            Body::Inline
        } else {
            match bulk_body(len) {
                Ok(b) => b,
                Err(e) => {
                    // The slot is ours: a loan dropped uncommitted hands it back as
                    // nothing.
                    drop(Loan {
                        tx: self,
                        pos,
                        len: 0,
                        body: Body::Inline,
                        done: false,
                    });
                    return Err(e);
                }
            }
        };
        Ok(Some(Loan {
            tx: self,
            pos,
            len,
            body,
            done: false,
        }))
    }

    fn claim(&mut self, limit: Limit) -> Result<Option<u64>> {
        let shared = &*self.shared;
        let ring = shared.ring();
        let mut peer = SenderPeer {
            out: &self.out,
            shared,
        };
        // An end was dropped since this one last looked: is it the receiver's? (One load
        // of a line that is written only then.)
        let hangups = peer.hangups();
        if hangups != self.waiter.seen {
            peer.alive()?;
            self.waiter.seen = hangups;
        }
        let free = &mut self.free;
        wait::until(
            &mut self.waiter,
            &shared.header().space,
            limit,
            &mut peer,
            || ring.claim(free),
        )
    }

    /// Sends a copy of `msg`, waiting while the ring is full.
    ///
    /// A receiver that was killed is noticed when this end waits (the ring full) or
    /// after an end was dropped; until then messages go into the ring (as a pipe's
    /// writer's go into its buffer) and `Ok` is returned.
    pub fn send(&mut self, msg: &[u8]) -> Result<()> {
        if self.send_now(msg) {
            return Ok(());
        }
        self.send_within(msg, Limit::NEVER)?;
        Ok(())
    }

    /// Sends a copy of `msg` if there is room now: `Ok(false)` when the ring is full, or
    /// for a bulk message when the channel's socket is (its buffer holds a few hundred
    /// memfds the receiver has not reached yet).
    pub fn try_send(&mut self, msg: &[u8]) -> Result<bool> {
        if self.send_now(msg) {
            return Ok(true);
        }
        self.send_within(msg, Limit::Now)
    }

    /// Sends a copy of `msg`, waiting at most `timeout` for room: `Ok(false)` if none came.
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<bool> {
        if self.send_now(msg) {
            return Ok(true);
        }
        self.send_within(msg, Limit::For(timeout))
    }

    /// Sends a copy of `msg`, waiting until `deadline` at most for room: `Ok(false)` if none
    /// came. One deadline for several sends bounds them all together.
    pub fn send_deadline(&mut self, msg: &[u8], deadline: impl Into<Deadline>) -> Result<bool> {
        if self.send_now(msg) {
            return Ok(true);
        }
        self.send_within(msg, Limit::Until(deadline.into()))
    }

    /// The path of a busy channel: a message that fits a slot, a free slot at once, no end
    /// dropped since the last look. `false`: take the general path.
    #[inline]
    fn send_now(&mut self, msg: &[u8]) -> bool {
        let shared = &*self.shared;
        if msg.len() > shared.slot_size
            || shared.header().hangups.load(Ordering::Relaxed) != self.waiter.seen
        {
            return false;
        }
        let ring = shared.ring();
        let Some(pos) = ring.claim(&mut self.free) else {
            return false;
        };
        let index = ring.index(pos);
        shared.tag(pos);
        let (len_word, flags_word) = shared.meta(index);
        // SAFETY: the slot is claimed by this sender and not yet committed; `msg` fits.
        unsafe { copy_in(shared.payload(index), msg) };
        len_word.store(msg.len() as u32, Ordering::Relaxed);
        flags_word.store(INLINE, Ordering::Relaxed);
        if !ring.commit(pos) {
            // Skipped by the receiver meanwhile: the general path sends it again.
            return false;
        }
        shared.header().data.notify(self.event.as_ref());
        true
    }

    fn send_within(&mut self, msg: &[u8], limit: Limit) -> Result<bool> {
        if msg.len() > self.shared.slot_size {
            // Copy into the memfd before claiming a slot: the slot is held (and the
            // messages behind it wait) only for the commit.
            let body = bulk_body(msg.len())?;
            if let Body::Bulk { map, .. } = &body {
                map.write_at(0, msg)?;
            }
            let deadline = limit.deadline();
            let Some(pos) = self.claim(limit)? else {
                return Ok(false);
            };
            self.shared.tag(pos);
            let loan = Loan {
                tx: self,
                pos,
                len: msg.len(),
                body,
                done: false,
            };
            // The socket's room is part of the channel's: a try or a timed send that finds
            // it full says "full" too.
            return loan.commit_until(deadline);
        }
        match self.loan_within(msg.len(), limit)? {
            Some(mut loan) => {
                loan.fill(msg);
                loan.commit_checked()?;
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        // Close the socket first, so the receiver's look at it sees this end gone.
        // SAFETY: dropped once, here, and never used again.
        unsafe { ManuallyDrop::drop(&mut self.out) };
        let h = self.shared.header();
        self.waiter.leave(&h.space);
        h.hangups.fetch_add(1, Ordering::SeqCst);
        let _ = h.data.wake(self.event.as_ref());
    }
}

/// Copies `msg` into a slot's payload at `dst`, the part in the slot's first cache line
/// last: the receiver waits on that line (the stamp is there), so the sender then owns it
/// once rather than twice. A large message is copied in one piece from its start (a copy
/// to a destination that is not cache-line aligned is slow).
///
/// # Safety
/// `dst` is the payload of a slot this sender claimed, with room for `msg`.
#[inline]
unsafe fn copy_in(dst: *mut u8, msg: &[u8]) {
    const FIRST: usize = 64 - SLOT_HEAD;
    // SAFETY: the caller's promise; the two parts do not overlap `msg`.
    unsafe {
        if msg.len() <= 128 && msg.len().is_multiple_of(8) {
            // Small messages: words, inline, no call to memcpy.
            let words = msg.len() / 8;
            let (src, dst) = (msg.as_ptr().cast::<u64>(), dst.cast::<u64>());
            let first = words.min(FIRST / 8);
            for i in first..words {
                dst.add(i).write_unaligned(src.add(i).read_unaligned());
            }
            for i in 0..first {
                dst.add(i).write_unaligned(src.add(i).read_unaligned());
            }
        } else if msg.len() > FIRST && msg.len() <= 1024 {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr().add(FIRST),
                dst.add(FIRST),
                msg.len() - FIRST,
            );
            std::ptr::copy_nonoverlapping(msg.as_ptr(), dst, FIRST);
        } else {
            std::ptr::copy_nonoverlapping(msg.as_ptr(), dst, msg.len());
        }
    }
}

/// Where a loaned message is written.
#[derive(Debug)]
enum Body {
    Inline,
    Bulk { memfd: Memfd, map: Mapping },
}

fn bulk_body(len: usize) -> Result<Body> {
    let memfd = Memfd::create("ipckit-channel-bulk", len)?;
    let map = memfd.map(crate::Access::ReadWrite)?;
    Ok(Body::Bulk { memfd, map })
}

/// The channel's socket: it reports a hang-up (`POLLHUP`) once the receiver is gone.
impl AsFd for Sender {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.out.sock.as_fd()
    }
}

/// A slot (or a bulk memfd) loaned to a sender: write the message with `DerefMut`, then
/// [`commit`](Loan::commit). Dropped without a commit, it sends nothing (the receiver
/// skips the slot).
#[derive(Debug)]
pub struct Loan<'a> {
    tx: &'a mut Sender,
    pos: u64,
    len: usize,
    body: Body,
    done: bool,
}

impl Loan<'_> {
    /// Publishes the message: the receiver can read it from now on.
    ///
    /// A bulk message's memfd goes over the socket first; if that fails (the receiver is
    /// gone) the message is lost, as it would be in the receiver's hands.
    pub fn commit(self) {
        let _ = self.commit_checked();
    }

    /// [`commit`](Loan::commit), saying whether a bulk message's memfd could be sent.
    /// The memfd waits for room in the channel's socket as long as it takes (checking
    /// that the receiver is still there).
    pub fn commit_checked(self) -> Result<()> {
        self.commit_until(Deadline::NEVER).map(|_| ())
    }

    /// Commits; for a bulk message, gives up at `deadline` if the socket has no room for
    /// its memfd (`Ok(false)`: the slot is given back as nothing, the message not sent).
    fn commit_until(mut self, deadline: Deadline) -> Result<bool> {
        self.done = true;
        let index = self.tx.shared.ring().index(self.pos);
        let (len_word, flags_word) = self.tx.shared.meta(index);
        let result = match &self.body {
            Body::Inline => {
                len_word.store(self.len as u32, Ordering::Relaxed);
                flags_word.store(INLINE, Ordering::Relaxed);
                Ok(true)
            }
            Body::Bulk { memfd, .. } => {
                let sent = memfd
                    .add_seals(Seals::SHRINK | Seals::GROW)
                    .and_then(|()| self.tx.out.send(self.pos, memfd.as_fd(), deadline));
                // SAFETY: the slot is claimed by this loan and not yet committed; its
                // payload holds at least 8 bytes.
                unsafe {
                    self.tx
                        .shared
                        .payload(index)
                        .cast::<u64>()
                        .write_unaligned(self.len as u64);
                }
                len_word.store(0, Ordering::Relaxed);
                let flags = if matches!(sent, Ok(true)) { BULK } else { VOID };
                flags_word.store(flags, Ordering::Relaxed);
                sent
            }
        };
        if !self.publish() {
            return Err(skipped());
        }
        result
    }

    fn fill(&mut self, msg: &[u8]) {
        match &self.body {
            // SAFETY: the claimed slot's payload holds `len == msg.len()` bytes.
            Body::Inline => unsafe {
                copy_in(
                    self.tx
                        .shared
                        .payload(self.tx.shared.ring().index(self.pos)),
                    msg,
                )
            },
            Body::Bulk { .. } => self.copy_from_slice(msg),
        }
    }

    /// Commits the slot and wakes the receiver; `false` if the receiver skipped it,
    /// taking this sender for dead.
    fn publish(&self) -> bool {
        let shared = &self.tx.shared;
        if !shared.ring().commit(self.pos) {
            return false;
        }
        shared.header().data.notify(self.tx.event.as_ref());
        true
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let index = self.tx.shared.ring().index(self.pos);
            let (_, flags_word) = self.tx.shared.meta(index);
            flags_word.store(VOID, Ordering::Relaxed);
            let _ = self.publish();
        }
    }
}

impl Deref for Loan<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.body {
            // SAFETY: the claimed slot's payload, `len <= slot_size` bytes, is this loan's
            // alone until it is committed.
            Body::Inline => unsafe {
                std::slice::from_raw_parts(
                    self.tx
                        .shared
                        .payload(self.tx.shared.ring().index(self.pos)),
                    self.len,
                )
            },
            // SAFETY: the memfd's mapping is this loan's alone.
            Body::Bulk { map, .. } => unsafe { std::slice::from_raw_parts(map.as_ptr(), self.len) },
        }
    }
}

impl DerefMut for Loan<'_> {
    fn deref_mut(&mut self) -> &mut [u8] {
        match &self.body {
            // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
            Body::Inline => unsafe {
                std::slice::from_raw_parts_mut(
                    self.tx
                        .shared
                        .payload(self.tx.shared.ring().index(self.pos)),
                    self.len,
                )
            },
            // SAFETY: as above.
            Body::Bulk { map, .. } => unsafe {
                std::slice::from_raw_parts_mut(map.as_ptr(), self.len)
            },
        }
    }
}

fn skipped() -> Error {
    Error::new(
        ErrorKind::Disconnected,
        "committing a message",
        "the receiver skipped its slot, taking this sender for dead",
    )
    .hint("a sender and a receiver in different pid namespaces cannot share a multi-sender channel")
}
