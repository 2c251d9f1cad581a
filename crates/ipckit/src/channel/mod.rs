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
//!   [`ADAPTIVE_SPIN`], then sleep; a sender makes a system call only when the receiver
//!   sleeps, and a busy pair not even a memory fence: `channel/wait.rs` says how, with
//!   `membarrier`). The creator's choice is stored in the channel, so every end starts with
//!   it, however it was reached; each end can change its own ([`Sender::set_wait`]).
//! - **Every wait has a way out**: each blocking operation `x` (send, loan, recv, borrow,
//!   open, receive_over) has `try_x` (never waits), `x_timeout(Duration)` and
//!   `x_deadline(impl Into<Deadline>)` (one [`Deadline`](crate::Deadline) for several
//!   waits). Waiting for a message or for room reports "nothing in time" as `Ok(None)` /
//!   `Ok(false)`; waiting for an end to arrive or a receiver to appear fails with
//!   [`TimedOut`](crate::ErrorKind::TimedOut). A pollable channel ([`Options::pollable`])
//!   gives the receiver an eventfd for its own event loop.
//! - **Bulk**: a message larger than a slot travels in a memfd of its own, written once and
//!   mapped by the receiver (`bulk` module): shared memory for the data, the socket for the
//!   handle.
//! - **Rendezvous**: [`pair`] makes an anonymous channel (a memfd and a socket pair: nothing
//!   has a name, nothing can leak); pass an end to a child by `fork`, or to any process over
//!   a Unix socket ([`Sender::send_over`], [`Sender::receive_over`]). [`create`] makes a named
//!   one (a POSIX shared memory object, mode [`Options::mode`], that the receiver owns and
//!   removes on drop) that [`open`] joins, waiting for the receiver if it is not there yet.
//!   The name lives exactly as long as its receiver: there is no `persist` (a name without
//!   its receiver has nobody to send to) and dropping the receiver removes it; [`remove`]
//!   removes the name a killed receiver left.
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
//!   header is checked when an end attaches, lengths are clamped to the slot, and a passed
//!   ring's memfd and a bulk memfd must be sealed against shrinking (a bulk one also as long
//!   as announced).
//! - A named channel's ring is a POSIX shared-memory object, which cannot be sealed: a
//!   process that its mode lets open the name can also truncate it, and the receiver then
//!   dies of `SIGBUS` at its next access (leaving the name behind, for
//!   [`remove`]). The mode, `0o600` unless [`Options::mode`] widens
//!   it, is the boundary: open a named channel only to users you would trust with the
//!   receiver's memory. Anonymous channels have no such limit.
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
//!
//! A named channel: the receiver makes it, senders open it by name (here waiting at most
//! five seconds for the receiver).
//!
//! ```
//! use ipckit::channel::{self, Options};
//! use std::time::Duration;
//! let name = ipckit::name::unique_posix("doc-channel");
//! let mut rx = channel::create(&name, &Options::default().mode(0o600)).unwrap();
//! let mut tx = channel::open_timeout(&name, Duration::from_secs(5)).unwrap();
//! tx.send(b"by name").unwrap();
//! let got = rx.recv_timeout(Duration::from_secs(5)).unwrap();
//! assert_eq!(got.as_deref(), Some(&b"by name"[..]));
//! assert_eq!(rx.try_recv().unwrap(), None); // nothing more is waiting
//! drop((tx, rx)); // the receiver's drop removes the name
//! let e = channel::try_open(&name).unwrap_err();
//! assert!(e.to_string().contains("no receiver yet"));
//! ```

#[cfg(not(loom))]
mod bulk;
#[cfg(not(loom))]
mod layout;
#[cfg(not(loom))]
mod options;
#[cfg(not(loom))]
mod receiver;
#[cfg(not(loom))]
mod rendezvous;
pub(crate) mod ring;
#[cfg(not(loom))]
mod sender;
#[cfg(not(loom))]
mod wait;

#[cfg(not(loom))]
pub use options::Options;
#[cfg(not(loom))]
pub use receiver::{Msg, Receiver};
#[cfg(not(loom))]
pub use rendezvous::{create, open, open_deadline, open_timeout, pair, remove, try_open};
#[cfg(not(loom))]
pub use sender::{Loan, Sender};
#[cfg(not(loom))]
pub use wait::{ADAPTIVE_SPIN, SLICE, Wait};
