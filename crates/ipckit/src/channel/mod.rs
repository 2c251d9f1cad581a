//! ipckit's own channel: messages between processes through shared memory, as fast as the
//! hardware allows when both sides are busy, no CPU when they are idle, a clean
//! [`Disconnected`](crate::ErrorKind::Disconnected) when the other side dies, and nothing to
//! leak.
//!
//! - **A ring of slots** in one shared mapping carries variable-length messages up to the
//!   slot size ([`Options::slot_size`]); one sender, or several with
//!   [`Options::multi_sender`], and one receiver. The whole index protocol is one module,
//!   `channel/ring.rs`, model-checked with loom (`--cfg loom`).
//! - **Zero copy both ways**: [`Sender::loan`] hands out the slot itself to write in place,
//!   [`Loan::commit`] publishes it; [`Receiver::borrow`] gives the message in place, released
//!   when the [`Msg`] is dropped. [`Sender::send`] and [`Receiver::recv`] copy, for
//!   convenience.
//! - **Waiting** ([`Wait`]): spin, block on a futex, or the default adaptive (spin
//!   [`ADAPTIVE_SPIN`], then sleep; a sender makes a system call only
//!   when the receiver sleeps, and a busy pair not even a memory fence: `channel/wait.rs`
//!   says how, with `membarrier`). Every operation has a try_ and a _timeout form; a full ring blocks, fails fast
//!   (`try_send` gives `Ok(false)`) or times out, as the caller chooses. A pollable channel
//!   ([`Options::pollable`]) gives the receiver an eventfd for its own event loop.
//! - **Bulk**: a message larger than a slot travels in a memfd of its own, written once and
//!   mapped by the receiver (`bulk` module): shared memory for the data, the socket for the
//!   handle.
//! - **Rendezvous**: [`pair`] makes an anonymous channel (a memfd and a socket pair: nothing
//!   has a name, nothing can leak); pass an end to a child by `fork`, or to any process over
//!   a Unix socket ([`Sender::send_over`], [`Sender::receive_over`]). [`create`] makes a named
//!   one (a POSIX shared memory object the receiver owns and removes on drop) that
//!   [`open`] joins.
//! - **Peer death**: each side notices the other's end closing through the channel's socket
//!   (`channel/bulk.rs` says why a socket rather than a pidfd or a robust futex): at once
//!   when it is dropped, within [`SLICE`] when its process is killed. A receiver reads
//!   everything sent before it reports `Disconnected`. With several senders, one killed
//!   between claiming a slot and committing it would leave a hole the receiver waits at
//!   for ever; it tags the slot with its pid right after the claim, and the receiver skips
//!   the slot once that process is gone.
//!
//! # Trust and limits
//! - Both ends trust each other like threads of one program: a [`Msg`] is a `&[u8]` into
//!   memory the sender could still write if it broke the protocol (ipckit's own senders do
//!   not). What a peer cannot do is make this process read or write outside the mapping: the
//!   header is checked when an end attaches, lengths are clamped to the slot, and a bulk
//!   memfd must be sealed against shrinking and as long as announced.
//! - One receiver. An end inherited across `fork` is an end in both processes: drop it
//!   where it is not used (its drop there undoes nothing the other process did), and never
//!   hold a [`Msg`] or a [`Loan`] across a `fork`.
//! - A receiver that dies is noticed by a sender when it waits (the ring full) or after an
//!   end was dropped; until then its messages go into the ring, as a pipe writer's go into
//!   the pipe's buffer.
//! - The hole left by a sender killed between claiming a slot and tagging it (a few
//!   instructions) cannot be told from a slow sender, and blocks the channel while other
//!   senders live. A sender in another pid namespace than the receiver's looks dead to it:
//!   do not share a multi-sender channel across pid namespaces.
//! - A bulk message's memfd waits for room in the channel's socket (a few hundred in
//!   flight): [`Loan::commit`] of a bulk loan waits as long as the receiver is there, and a
//!   receiver that reaches a bulk slot whose memfd has not arrived waits up to 10 s for it.
//!
//! All of it is hand-written over rustix (memfd, futex, membarrier, sockets): no crate
//! offers a process-shared ring with these guarantees (iceoryx2 is a whole framework with
//! its own service layer and files; ipc-channel serialises through sockets).
//!
//! ```
//! use ipckit::channel::{self, Options};
//! let (mut tx, mut rx) = channel::pair(&Options::default()).unwrap();
//! tx.send(b"hello").unwrap();
//! let mut loan = tx.loan(5).unwrap(); // write in place
//! loan.copy_from_slice(b"world");
//! loan.commit();
//! assert_eq!(rx.recv().unwrap(), b"hello");
//! assert_eq!(&*rx.borrow().unwrap(), b"world"); // read in place
//! drop(tx);
//! assert_eq!(rx.recv().unwrap_err().kind(), ipckit::ErrorKind::Disconnected);
//! ```

#[cfg(not(loom))]
mod bulk;
pub(crate) mod ring;
#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use imp::*;
#[cfg(not(loom))]
pub use wait::{ADAPTIVE_SPIN, SLICE, Wait};

#[cfg(not(loom))]
mod imp {
    use std::cell::Cell;
    use std::mem::ManuallyDrop;
    use std::ops::{Deref, DerefMut};
    use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
    use std::time::Duration;

    use crossbeam_utils::CachePadded;

    use super::bulk::{self, Inbox, Outbox, PATIENCE};
    use super::ring::{Ring, Stamps};
    use super::wait::{self, Peer, Signal, Wait, Waiter};
    use crate::error::{Context, Error, ErrorKind, Result};
    use crate::notify::eventfd::{self, EventFd};
    use crate::shm::mapping::Mapping;
    use crate::shm::memfd::{Memfd, Seals};
    use crate::shm::posix::PosixShm;
    use crate::socket::ancillary;
    use crate::socket::unix::{SeqpacketListener, UnixAddr, UnixSeqpacket};

    const MAGIC: u64 = u64::from_le_bytes(*b"ipckitch");
    const VERSION: u32 = 1;
    /// A slot: stamp (8 bytes), length (4), flags (4), then the payload.
    const SLOT_HEAD: usize = 16;
    const INLINE: u32 = 0;
    /// The payload is a bulk message's length; its memfd comes over the socket.
    const BULK: u32 = 1;
    /// Nothing: a loan dropped without a commit. The receiver skips it.
    const VOID: u32 = 2;
    /// Before the commit, with several senders: claimed by the process whose pid is in the
    /// other bits, for position `len` (its low 32 bits).
    const OWNED: u32 = 1 << 31;
    const SOCKET_NAME: usize = 64;

    /// The shared header, at the start of the mapping.
    #[repr(C)]
    struct Header {
        magic: AtomicU64,
        version: u32,
        multi: u32,
        slots: u32,
        slot_size: u32,
        stride: u32,
        pollable: u32,
        /// A named channel's abstract socket name (without the leading NUL), NUL-padded.
        socket: [u8; SOCKET_NAME],
        /// Bumped whenever an end is dropped (see [`Peer::hangups`]).
        hangups: AtomicU32,
        /// The senders' claim counter (see `ring`).
        tail: CachePadded<AtomicU64>,
        /// The receiver's position, for a single sender (see `ring`).
        head: CachePadded<AtomicU64>,
        /// The receiver sleeps here for messages.
        data: CachePadded<Signal>,
        /// Senders sleep here for free slots.
        space: CachePadded<Signal>,
    }

    const HEADER: usize = std::mem::size_of::<Header>().next_multiple_of(128);

    /// How a channel is made.
    #[derive(Clone, Debug)]
    pub struct Options {
        slots: usize,
        slot_size: usize,
        wait: Wait,
        multi: bool,
        pollable: bool,
    }

    impl Default for Options {
        /// 256 slots of 4080 bytes (4 KiB each with the slot's head: 1 MiB in all), one
        /// sender, adaptive waiting, not pollable.
        fn default() -> Self {
            Options {
                slots: 256,
                slot_size: 4096 - SLOT_HEAD,
                wait: Wait::Adaptive,
                multi: false,
                pollable: false,
            }
        }
    }

    impl Options {
        /// How many messages the ring holds: a power of two, 2 to 65536.
        pub fn slots(mut self, n: usize) -> Self {
            self.slots = n;
            self
        }

        /// The largest message that travels in the ring (larger ones go as bulk): 8 bytes to
        /// 64 MiB, a multiple of 8.
        pub fn slot_size(mut self, bytes: usize) -> Self {
            self.slot_size = bytes;
            self
        }

        /// How both ends wait (each end can change its own with `set_wait`).
        pub fn wait(mut self, wait: Wait) -> Self {
            self.wait = wait;
            self
        }

        /// Several senders (threads or processes) at once: they claim slots with a
        /// compare-and-swap instead of a store.
        pub fn multi_sender(mut self, on: bool) -> Self {
            self.multi = on;
            self
        }

        /// The receiver gets an eventfd ([`Receiver::event_fd`]) that becomes readable when
        /// a message may be waiting. Anonymous channels only: a named channel's senders
        /// could not be handed the descriptor.
        pub fn pollable(mut self, on: bool) -> Self {
            self.pollable = on;
            self
        }

        fn check(&self) -> Result<usize> {
            let bad =
                |why: String| Err(Error::new(ErrorKind::InvalidInput, "making a channel", why));
            if !self.slots.is_power_of_two() || !(2..=65536).contains(&self.slots) {
                return bad(format!(
                    "{} slots: the count must be a power of two from 2 to 65536",
                    self.slots
                ));
            }
            if !(8..=64 << 20).contains(&self.slot_size) || !self.slot_size.is_multiple_of(8) {
                return bad(format!(
                    "a slot size of {} bytes: it must be a multiple of 8 from 8 to 64 MiB",
                    self.slot_size
                ));
            }
            let len = self
                .slots
                .checked_mul(stride(self.slot_size))
                .and_then(|n| n.checked_add(HEADER))
                .unwrap_or(usize::MAX);
            if len > 1 << 30 {
                return bad(format!(
                    "{} slots of {} bytes need {len} bytes: over the 1 GiB limit",
                    self.slots, self.slot_size
                ));
            }
            Ok(len)
        }
    }

    fn stride(slot_size: usize) -> usize {
        (SLOT_HEAD + slot_size).next_multiple_of(64)
    }

    /// The mapping and what its header says, checked once.
    #[derive(Debug)]
    struct Shared {
        map: Mapping,
        slots: usize,
        slot_size: usize,
        stride: usize,
        multi: bool,
        /// An anonymous channel's memfd, to pass an end on.
        memfd: Option<OwnedFd>,
        /// The named channel's object, owned by the receiver (removed with it).
        _object: Option<PosixShm>,
    }

    struct SlotStamps<'a>(&'a Shared);

    impl Stamps for SlotStamps<'_> {
        fn stamp(&self, index: usize) -> &AtomicU64 {
            // SAFETY: `index < slots` (the ring masks it); each slot starts 8-aligned with its
            // stamp, inside the mapping (checked by `Shared::new`).
            unsafe { &*self.0.slot(index).cast::<AtomicU64>() }
        }
    }

    impl Shared {
        /// Formats a new mapping.
        fn format(map: Mapping, opts: &Options, socket: &[u8]) -> Shared {
            // SAFETY: the mapping is new, at least HEADER bytes, page-aligned and nobody else
            // sees it yet; Header is plain integers and atomics, valid when zeroed.
            let h = unsafe { &mut *map.as_ptr().cast::<Header>() };
            h.version = VERSION;
            h.multi = opts.multi as u32;
            h.slots = opts.slots as u32;
            h.slot_size = opts.slot_size as u32;
            h.stride = stride(opts.slot_size) as u32;
            h.pollable = opts.pollable as u32;
            h.socket[..socket.len()].copy_from_slice(socket);
            let shared = Shared {
                map,
                slots: opts.slots,
                slot_size: opts.slot_size,
                stride: stride(opts.slot_size),
                multi: opts.multi,
                memfd: None,
                _object: None,
            };
            shared.ring().init();
            shared.header().magic.store(MAGIC, Ordering::Release);
            shared
        }

        /// Checks a mapping made by another process.
        fn attach(map: Mapping, what: &str) -> Result<Shared> {
            let bad = |why: String| {
                Err(Error::new(ErrorKind::InvalidInput, "opening a channel", why).object(what))
            };
            if map.len() < HEADER {
                return bad(format!("{} bytes is too small for a channel", map.len()));
            }
            // SAFETY: at least HEADER bytes; only atomics and integers are read.
            let h = unsafe { &*map.as_ptr().cast::<Header>() };
            if h.magic.load(Ordering::Acquire) != MAGIC {
                return bad(
                    "it is not an ipckit channel, or its receiver is still setting it up".into(),
                );
            }
            if h.version != VERSION {
                return bad(format!(
                    "channel version {}, this ipckit speaks {VERSION}",
                    h.version
                ));
            }
            let (slots, slot_size, stride_) =
                (h.slots as usize, h.slot_size as usize, h.stride as usize);
            // The same ranges as Options::check, so a garbage header cannot make this process
            // read or write outside the mapping.
            let fits = slots
                .checked_mul(stride_)
                .and_then(|n| n.checked_add(HEADER))
                .is_some_and(|n| n <= map.len());
            if !slots.is_power_of_two()
                || !(2..=65536).contains(&slots)
                || !(8..=64 << 20).contains(&slot_size)
                || !slot_size.is_multiple_of(8)
                || stride_ != stride(slot_size)
                || !fits
            {
                return bad("its header does not match its size".into());
            }
            Ok(Shared {
                multi: h.multi != 0,
                map,
                slots,
                slot_size,
                stride: stride_,
                memfd: None,
                _object: None,
            })
        }

        fn header(&self) -> &Header {
            // SAFETY: formatted or checked at construction; shared access is atomics only,
            // and the plain fields are never written after the magic is published.
            unsafe { &*self.map.as_ptr().cast::<Header>() }
        }

        fn slot(&self, index: usize) -> *mut u8 {
            debug_assert!(index < self.slots);
            // SAFETY: inside the mapping: HEADER + slots * stride <= len.
            unsafe { self.map.as_ptr().add(HEADER + index * self.stride) }
        }

        fn ring(&self) -> Ring<'_, SlotStamps<'_>> {
            Ring::new(
                &self.header().tail,
                &self.header().head,
                SlotStamps(self),
                self.slots,
                self.multi,
            )
        }

        /// The slot's length and flags words. Written by its sender before the commit (and,
        /// with several senders, right after the claim: see [`Shared::tag`]); relaxed atomics,
        /// ordered by the stamp.
        fn meta(&self, index: usize) -> (&AtomicU32, &AtomicU32) {
            let p = self.slot(index);
            // SAFETY: within the slot's 16-byte head, 4-aligned (slots are 64-aligned).
            unsafe {
                (
                    &*p.add(8).cast::<AtomicU32>(),
                    &*p.add(12).cast::<AtomicU32>(),
                )
            }
        }

        /// With several senders: marks the slot of `pos` as claimed by this process, so the
        /// receiver can skip it if this process dies before the commit.
        #[inline]
        fn tag(&self, pos: u64) {
            if self.multi {
                let (len, flags) = self.meta(self.ring().index(pos));
                len.store(pos as u32, Ordering::Relaxed);
                flags.store(OWNED | wait::current_pid(), Ordering::Release);
            }
        }

        /// The process that claimed the uncommitted slot of `pos`, if it said so.
        fn owner(&self, pos: u64) -> Option<i32> {
            let (len, flags) = self.meta(self.ring().index(pos));
            let f = flags.load(Ordering::Acquire);
            (f & OWNED != 0 && len.load(Ordering::Relaxed) == pos as u32)
                .then_some((f & !OWNED) as i32)
        }

        /// Asks for the slot's second cache line while waiting on its stamp (in the first),
        /// so a message longer than the first line's 48 payload bytes arrives in one
        /// transfer time, not two.
        fn prefetch(&self, index: usize) {
            #[cfg(target_arch = "x86_64")]
            if self.stride > 64 {
                // SAFETY: a prefetch is only a hint, and the address is inside the slot.
                unsafe {
                    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
                    _mm_prefetch::<_MM_HINT_T0>(self.slot(index).add(64).cast::<i8>());
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            let _ = index;
        }

        fn payload(&self, index: usize) -> *mut u8 {
            // SAFETY: within the slot.
            unsafe { self.slot(index).add(SLOT_HEAD) }
        }
    }

    /// Makes an anonymous channel: a memfd for the ring, a Unix seqpacket socket pair for
    /// bulk payloads and liveness, an eventfd if pollable. Nothing has a name; everything is
    /// freed with the last descriptor. Keep one end in this process and give the other to a
    /// child (by `fork`) or to any process ([`Sender::send_over`]).
    /// See [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
    /// [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html).
    pub fn pair(opts: &Options) -> Result<(Sender, Receiver)> {
        let len = opts.check()?;
        let memfd = Memfd::create("ipckit-channel", len)?;
        // A receiver can trust the size: nobody can shrink the ring under its mapping.
        memfd.add_seals(Seals::SHRINK | Seals::GROW | Seals::SEAL)?;
        let mut shared = Shared::format(memfd.map(true)?, opts, &[]);
        shared.memfd = Some(memfd.into_fd());
        let shared = Arc::new(shared);
        let (a, b) = UnixSeqpacket::pair()?;
        let a = a.into_fd();
        crate::poll::set_nonblocking(&a, true)?;
        let event = if opts.pollable {
            Some(EventFd::new(0, eventfd::Mode::Counter)?)
        } else {
            None
        };
        let tx = Sender {
            shared: shared.clone(),
            out: ManuallyDrop::new(Outbox { sock: a }),
            event: event.as_ref().map(EventFd::try_clone).transpose()?,
            waiter: Waiter::new(opts.wait, false),
            free: 0,
        };
        let rx = Receiver {
            shared,
            poller: poller(event.as_ref(), &b)?,
            inbox: Inbox::pair_end(b.into_fd())?,
            waiter: Waiter::new(opts.wait, event.is_some()),
            event,
            head: 0,
            armed: false,
        };
        Ok((tx, rx))
    }

    /// Makes a named channel: `name` is a POSIX shared memory name (`/NAME`, created
    /// `O_EXCL`, mode 0600) that this receiver owns and removes when dropped; senders join
    /// with [`open`], as many as like (a named channel is always
    /// [`multi_sender`](Options::multi_sender)). Its senders connect to an abstract Unix
    /// socket named in the header.
    ///
    /// The receiver waits for its first sender; once it has had one, it reports
    /// `Disconnected` whenever every sender is gone and everything they sent is read. That
    /// is not final: a sender that opens the channel later is received from as before.
    /// See [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html).
    pub fn create(name: &str, opts: &Options) -> Result<Receiver> {
        if opts.pollable {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "making a named channel",
                "a named channel cannot be pollable: its senders could not be given the eventfd",
            )
            .object(name)
            .hint("use an anonymous channel (channel::pair) for an event loop"));
        }
        // Anyone who knows the name can open it: a named channel always takes several senders.
        let opts = &opts.clone().multi_sender(true);
        let len = opts.check()?;
        let object = PosixShm::create(name, len, 0o600)?;
        let socket = crate::name::unique("channel");
        let listener = SeqpacketListener::bind(
            &UnixAddr::abstract_name(socket.as_bytes()),
            &crate::socket::unix::BindOptions::default().backlog(4096),
        )?;
        let mut shared = Shared::format(object.map()?, opts, socket.as_bytes());
        shared._object = Some(object);
        Ok(Receiver {
            shared: Arc::new(shared),
            inbox: Inbox::listening(listener),
            event: None,
            poller: None,
            waiter: Waiter::new(opts.wait, false),
            head: 0,
            armed: false,
        })
    }

    /// Joins the named channel `name` as a sender. Never removes it.
    pub fn open(name: &str) -> Result<Sender> {
        let object = PosixShm::open(name, true)?;
        let map = object.map()?;
        let shared = Shared::attach(map, name)?;
        let h = shared.header();
        let end = h.socket.iter().position(|&b| b == 0).unwrap_or(SOCKET_NAME);
        // Bounded: a receiver that never waits never accepts, and its queue can fill.
        let sock =
            UnixSeqpacket::connect_timeout(&UnixAddr::abstract_name(&h.socket[..end]), PATIENCE)
                .map_err(|e| {
                    if e.errno() == Some(crate::Errno::CONNREFUSED) {
                        bulk::disconnected("opening a channel", "receiver").object(name)
                    } else {
                        e.object(name)
                    }
                })?
                .into_fd();
        crate::poll::set_nonblocking(&sock, true)?;
        Ok(Sender {
            shared: Arc::new(shared),
            out: ManuallyDrop::new(Outbox { sock }),
            event: None,
            waiter: Waiter::new(Wait::default(), false),
            free: 0,
        })
    }

    /// The sending end. With [`Options::multi_sender`], clone it ([`Sender::try_clone`]),
    /// inherit it or pass it on for as many senders as you like; otherwise there must be only
    /// one at a time.
    #[derive(Debug)]
    pub struct Sender {
        shared: Arc<Shared>,
        out: ManuallyDrop<Outbox>,
        event: Option<EventFd>,
        waiter: Waiter,
        /// This sender's copy of the receiver's position (see `ring`).
        free: u64,
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

    const TAG_SENDER: &[u8] = b"ipckit-channel-sender";
    const TAG_RECEIVER: &[u8] = b"ipckit-channel-receiver";

    impl Sender {
        /// How this end waits from now on.
        pub fn set_wait(&mut self, wait: Wait) {
            self.waiter.wait = wait;
        }

        /// The largest message that travels in the ring; larger ones go as bulk.
        pub fn slot_size(&self) -> usize {
            self.shared.slot_size
        }

        /// A second sender on the same channel (same process; for another process pass it
        /// on with [`send_over`](Sender::send_over)). Only with [`Options::multi_sender`].
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

        /// Sends a duplicate of this end (memfd, socket, eventfd) over the Unix socket
        /// `sock` with `SCM_RIGHTS`; the process at the other end takes it with
        /// [`receive_over`](Sender::receive_over). This end stays usable: drop it if the
        /// other process is to be the only sender. Anonymous channels only (a named one is
        /// joined with [`open`]).
        pub fn send_over(&self, sock: impl AsFd) -> Result<()> {
            send_end(
                &self.shared,
                sock,
                TAG_SENDER,
                self.out.sock.as_fd(),
                self.event.as_ref(),
            )
        }

        /// Takes a sender passed with [`send_over`](Sender::send_over) from `sock` (waits at
        /// most `timeout` for it).
        pub fn receive_over(sock: impl AsFd, timeout: Duration) -> Result<Sender> {
            let (shared, sock, event) = receive_end(sock, timeout, TAG_SENDER)?;
            crate::poll::set_nonblocking(&sock, true)?;
            Ok(Sender {
                shared,
                out: ManuallyDrop::new(Outbox { sock }),
                event,
                waiter: Waiter::new(Wait::default(), false),
                free: 0,
            })
        }

        /// Loans a slot for a `len`-byte message, waiting for room while the ring is full:
        /// write it in place, then [`Loan::commit`]. A message larger than the slot size gets
        /// a memfd of its own instead (the bulk path), still written in place.
        pub fn loan(&mut self, len: usize) -> Result<Loan<'_>> {
            self.loan_within(len, None)?
                .ok_or_else(|| unreachable_timeout("loaning a slot"))
        }

        /// [`loan`](Sender::loan), or `Ok(None)` at once when the ring is full.
        pub fn try_loan(&mut self, len: usize) -> Result<Option<Loan<'_>>> {
            self.loan_within(len, Some(Duration::ZERO))
        }

        /// [`loan`](Sender::loan), or `Ok(None)` when the ring stays full for `timeout`.
        pub fn loan_timeout(&mut self, len: usize, timeout: Duration) -> Result<Option<Loan<'_>>> {
            self.loan_within(len, Some(timeout))
        }

        fn loan_within(
            &mut self,
            len: usize,
            timeout: Option<Duration>,
        ) -> Result<Option<Loan<'_>>> {
            let Some(pos) = self.claim(timeout)? else {
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

        fn claim(&mut self, timeout: Option<Duration>) -> Result<Option<u64>> {
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
                timeout,
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
            self.send_within(msg, None)?;
            Ok(())
        }

        /// Sends a copy of `msg` if there is room now: `Ok(false)` when the ring is full, or
        /// for a bulk message when the channel's socket is (its buffer holds a few hundred
        /// memfds the receiver has not reached yet).
        pub fn try_send(&mut self, msg: &[u8]) -> Result<bool> {
            if self.send_now(msg) {
                return Ok(true);
            }
            self.send_within(msg, Some(Duration::ZERO))
        }

        /// Sends a copy of `msg`, waiting at most `timeout` for room: `Ok(false)` if none came.
        pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<bool> {
            if self.send_now(msg) {
                return Ok(true);
            }
            self.send_within(msg, Some(timeout))
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

        fn send_within(&mut self, msg: &[u8], timeout: Option<Duration>) -> Result<bool> {
            if msg.len() > self.shared.slot_size {
                // Copy into the memfd before claiming a slot: the slot is held (and the
                // messages behind it wait) only for the commit.
                let body = bulk_body(msg.len())?;
                if let Body::Bulk { map, .. } = &body {
                    map.write_at(0, msg)?;
                }
                let deadline = crate::poll::Deadline::from_timeout(timeout);
                let Some(pos) = self.claim(timeout)? else {
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
            match self.loan_within(msg.len(), timeout)? {
                Some(mut loan) => {
                    loan.fill(msg);
                    loan.commit_checked()?;
                    Ok(true)
                }
                None => Ok(false),
            }
        }
    }

    fn unreachable_timeout(op: &'static str) -> Error {
        Error::new(ErrorKind::TimedOut, op, "a wait with no time limit ended")
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

    /// A pollable receiver's epoll set over its eventfd and its socket.
    /// See [epoll_create(2)](https://man7.org/linux/man-pages/man2/epoll_create.2.html).
    fn poller(event: Option<&EventFd>, sock: &impl AsFd) -> Result<Option<OwnedFd>> {
        use rustix::event::epoll;
        let Some(event) = event else {
            return Ok(None);
        };
        let ep = epoll::create(epoll::CreateFlags::CLOEXEC).during("creating", "epoll set")?;
        for fd in [event.fd(), sock.as_fd()] {
            epoll::add(&ep, fd, epoll::EventData::new_u64(0), epoll::EventFlags::IN)
                .during("adding to", "the channel's epoll set")?;
        }
        Ok(Some(ep))
    }

    /// Sends an anonymous channel's end: its memfd, its socket, its eventfd.
    fn send_end(
        shared: &Shared,
        sock: impl AsFd,
        tag: &[u8],
        end: BorrowedFd<'_>,
        event: Option<&EventFd>,
    ) -> Result<()> {
        let Some(memfd) = &shared.memfd else {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "passing a channel end",
                "a named channel's ends are not passed on",
            )
            .hint("open the channel by name in the other process"));
        };
        let mut fds = vec![memfd.as_fd(), end];
        fds.extend(event.map(EventFd::fd));
        ancillary::send_fds(sock, tag, &fds)?;
        Ok(())
    }

    /// Takes an end that [`send_end`] sent: the checked mapping, the socket, the eventfd.
    fn receive_end(
        sock: impl AsFd,
        timeout: Duration,
        tag: &[u8],
    ) -> Result<(Arc<Shared>, OwnedFd, Option<EventFd>)> {
        if !crate::poll::readable_deadline(
            &sock,
            crate::poll::Deadline::from_timeout(Some(timeout)),
        )? {
            return Err(Error::timed_out("receiving a channel end", timeout));
        }
        let mut buf = [0u8; 32];
        let got = ancillary::recv(&sock, &mut buf, 3)?;
        if &buf[..got.bytes] != tag || got.fds.len() < 2 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "receiving a channel end",
                format!(
                    "the message is not a channel end of this kind (\"{}\" with {} descriptors)",
                    String::from_utf8_lossy(&buf[..got.bytes]),
                    got.fds.len()
                ),
            ));
        }
        let mut fds = got.fds.into_iter();
        let memfd = Memfd::from_fd(fds.next().expect("two descriptors"))?;
        let sock = fds.next().expect("two descriptors");
        let event = fds.next().map(EventFd::from_fd).transpose()?;
        let mut shared = Shared::attach(memfd.map(true)?, "a passed channel")?;
        shared.memfd = Some(memfd.into_fd());
        Ok((Arc::new(shared), sock, event))
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
        let map = memfd.map(true)?;
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
            self.commit_until(crate::poll::Deadline::NEVER).map(|_| ())
        }

        /// Commits; for a bulk message, gives up at `deadline` if the socket has no room for
        /// its memfd (`Ok(false)`: the slot is given back as nothing, the message not sent).
        fn commit_until(mut self, deadline: crate::poll::Deadline) -> Result<bool> {
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
                Body::Bulk { map, .. } => unsafe {
                    std::slice::from_raw_parts(map.as_ptr(), self.len)
                },
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

    /// The receiving end: one per channel.
    #[derive(Debug)]
    pub struct Receiver {
        shared: Arc<Shared>,
        inbox: Inbox,
        event: Option<EventFd>,
        /// A pollable receiver's epoll set: its eventfd, and its socket (which hangs up when
        /// every sender is gone, however they ended).
        poller: Option<OwnedFd>,
        waiter: Waiter,
        /// The position of the next message.
        head: u64,
        /// Counted among the data signal's sleepers while waiting in the user's event loop.
        armed: bool,
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

    fn skipped() -> Error {
        Error::new(
            ErrorKind::Disconnected,
            "committing a message",
            "the receiver skipped its slot, taking this sender for dead",
        )
        .hint("a sender and a receiver in different pid namespaces cannot share a multi-sender channel")
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

    impl Receiver {
        /// How this end waits from now on.
        pub fn set_wait(&mut self, wait: Wait) {
            self.waiter.wait = wait;
        }

        /// The largest message that travels in the ring; larger ones go as bulk.
        pub fn slot_size(&self) -> usize {
            self.shared.slot_size
        }

        /// A pollable channel's descriptor for an event loop (an epoll set holding the
        /// channel's eventfd and its socket): readable when a message may be waiting, or
        /// when every sender is gone (a sender killed with `SIGKILL` included). When it is
        /// readable, call [`try_borrow`](Receiver::try_borrow) (or
        /// [`try_recv`](Receiver::try_recv)) until it gives `None` (which re-arms it) or
        /// `Disconnected`.
        pub fn event_fd(&self) -> Option<BorrowedFd<'_>> {
            self.poller.as_ref().map(|p| p.as_fd())
        }

        /// Sends a duplicate of this end over the Unix socket `sock`
        /// ([`receive_over`](Receiver::receive_over) takes it). Drop this one afterwards and
        /// before the other is used: a channel has one receiver. Anonymous channels only.
        pub fn send_over(&self, sock: impl AsFd) -> Result<()> {
            if self.inbox.listener.is_some() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "passing a channel end",
                    "a named channel's receiver owns its name and stays in its process",
                ));
            }
            if self.inbox.conns.len() != 1 {
                return Err(bulk::disconnected(
                    "passing a channel receiver",
                    "last sender",
                ));
            }
            if self.inbox.has_parked() {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "passing a channel receiver",
                    "it holds bulk payloads read off the socket ahead of their slots",
                )
                .hint("receive the waiting messages first"));
            }
            let end = self.inbox.conns[0].as_fd();
            send_end(&self.shared, sock, TAG_RECEIVER, end, self.event.as_ref())
        }

        /// Takes a receiver passed with [`send_over`](Receiver::send_over) from `sock`
        /// (waits at most `timeout` for it).
        pub fn receive_over(sock: impl AsFd, timeout: Duration) -> Result<Receiver> {
            let (shared, sock, event) = receive_end(sock, timeout, TAG_RECEIVER)?;
            // Go on where the passed receiver stopped.
            let head = shared.ring().head();
            Ok(Receiver {
                shared,
                poller: poller(event.as_ref(), &sock)?,
                inbox: Inbox::pair_end(sock)?,
                waiter: Waiter::new(Wait::default(), event.is_some()),
                event,
                head,
                armed: false,
            })
        }

        /// Borrows the next message in place, waiting for one; it is released (its slot
        /// given back to the senders) when the [`Msg`] is dropped. `Disconnected` once every
        /// sender is gone and every message they sent has been received.
        pub fn borrow(&mut self) -> Result<Msg<'_>> {
            self.borrow_within(None)?
                .ok_or_else(|| unreachable_timeout("receiving a message"))
        }

        /// [`borrow`](Receiver::borrow), or `Ok(None)` at once when no message is waiting.
        pub fn try_borrow(&mut self) -> Result<Option<Msg<'_>>> {
            self.borrow_within(Some(Duration::ZERO))
        }

        /// [`borrow`](Receiver::borrow), or `Ok(None)` when no message comes within
        /// `timeout`.
        pub fn borrow_timeout(&mut self, timeout: Duration) -> Result<Option<Msg<'_>>> {
            self.borrow_within(Some(timeout))
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

        #[inline]
        fn borrow_within(&mut self, timeout: Option<Duration>) -> Result<Option<Msg<'_>>> {
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
            self.borrow_slow(timeout)
        }

        fn borrow_slow(&mut self, timeout: Option<Duration>) -> Result<Option<Msg<'_>>> {
            let Some(found) = self.find(timeout)? else {
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
                        .hint(
                            "the sender is not an ipckit channel sender; the message was dropped",
                        ));
                    }
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    if memfd.len()? < len {
                        return Err(Error::new(
                            ErrorKind::InvalidInput,
                            "receiving a bulk payload",
                            "its memfd is smaller than the length announced",
                        ));
                    }
                    Ok((memfd.map(false)?, len))
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
            self.head = pos + 1;
            self.shared.header().space.notify(None);
        }

        fn find(&mut self, timeout: Option<Duration>) -> Result<Option<Found>> {
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
                Some(event) if timeout == Some(Duration::ZERO) => match ready() {
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
                        wait::until(&mut self.waiter, data, timeout, &mut peer, &mut ready)?
                    }
                },
                _ => wait::until(&mut self.waiter, data, timeout, &mut peer, &mut ready)?,
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
}
