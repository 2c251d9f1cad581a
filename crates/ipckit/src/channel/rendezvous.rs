//! Making and joining a channel: [`pair`] (anonymous), [`create`] and [`open`] (named), and
//! passing an anonymous channel's ends to another process over a Unix socket.

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::bulk::{self, Inbox, Outbox, PATIENCE};
use super::layout::{SOCKET_NAME, Shared};
use super::options::Options;
use super::receiver::Receiver;
use super::sender::Sender;
use super::wait::Waiter;
use crate::error::{Context, Error, ErrorKind, Result};
use crate::notify::eventfd::{self, EventFd};
use crate::poll::Deadline;
use crate::shm::memfd::{Memfd, Seals};
use crate::shm::posix::PosixShm;
use crate::socket::ancillary;
use crate::socket::unix::{SeqpacketListener, UnixAddr, UnixSeqpacket};

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
    let listener = SeqpacketListener::bind_with(
        &UnixAddr::abstract_name(socket.as_bytes()),
        &crate::socket::unix::BindOptions {
            backlog: 4096,
            ..Default::default()
        },
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
    let sock = UnixSeqpacket::connect_timeout(&UnixAddr::abstract_name(&h.socket[..end]), PATIENCE)
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
        waiter: Waiter::new(shared.wait, false),
        shared: Arc::new(shared),
        out: ManuallyDrop::new(Outbox { sock }),
        event: None,
        free: 0,
    })
}

const TAG_SENDER: &[u8] = b"ipckit-channel-sender";
const TAG_RECEIVER: &[u8] = b"ipckit-channel-receiver";

impl Sender {
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

    /// Takes a sender passed with [`send_over`](Sender::send_over) from `sock`, waiting for
    /// it as long as it takes.
    pub fn receive_over(sock: impl AsFd) -> Result<Sender> {
        Sender::receive_over_deadline(sock, Deadline::NEVER)
    }

    /// [`receive_over`](Sender::receive_over) if a sender is waiting on `sock` now; fails
    /// with [`ErrorKind::TimedOut`] if none is.
    pub fn try_receive_over(sock: impl AsFd) -> Result<Sender> {
        Sender::receive_over_deadline(sock, Deadline::now())
    }

    /// [`receive_over`](Sender::receive_over), failing with [`ErrorKind::TimedOut`] if no
    /// sender comes within `timeout`.
    pub fn receive_over_timeout(sock: impl AsFd, timeout: Duration) -> Result<Sender> {
        Sender::receive_over_deadline(sock, Deadline::after(timeout))
    }

    /// [`receive_over`](Sender::receive_over), failing with [`ErrorKind::TimedOut`] if no
    /// sender has come by `deadline`.
    pub fn receive_over_deadline(sock: impl AsFd, deadline: impl Into<Deadline>) -> Result<Sender> {
        let (shared, sock, event) = receive_end(sock, deadline.into(), TAG_SENDER)?;
        crate::poll::set_nonblocking(&sock, true)?;
        Ok(Sender {
            waiter: Waiter::new(shared.wait, false),
            shared,
            out: ManuallyDrop::new(Outbox { sock }),
            event,
            free: 0,
        })
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
    deadline: Deadline,
    tag: &[u8],
) -> Result<(Arc<Shared>, OwnedFd, Option<EventFd>)> {
    if !crate::poll::readable_deadline(&sock, deadline)? {
        return Err(Error::new(
            ErrorKind::TimedOut,
            "receiving a channel end",
            "none came on the socket in time",
        )
        .hint("the other process passes it with send_over"));
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

impl Receiver {
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

    /// Takes a receiver passed with [`send_over`](Receiver::send_over) from `sock`, waiting
    /// for it as long as it takes.
    pub fn receive_over(sock: impl AsFd) -> Result<Receiver> {
        Receiver::receive_over_deadline(sock, Deadline::NEVER)
    }

    /// [`receive_over`](Receiver::receive_over) if a receiver is waiting on `sock` now; fails
    /// with [`ErrorKind::TimedOut`] if none is.
    pub fn try_receive_over(sock: impl AsFd) -> Result<Receiver> {
        Receiver::receive_over_deadline(sock, Deadline::now())
    }

    /// [`receive_over`](Receiver::receive_over), failing with [`ErrorKind::TimedOut`] if no
    /// receiver comes within `timeout`.
    pub fn receive_over_timeout(sock: impl AsFd, timeout: Duration) -> Result<Receiver> {
        Receiver::receive_over_deadline(sock, Deadline::after(timeout))
    }

    /// [`receive_over`](Receiver::receive_over), failing with [`ErrorKind::TimedOut`] if no
    /// receiver has come by `deadline`.
    pub fn receive_over_deadline(
        sock: impl AsFd,
        deadline: impl Into<Deadline>,
    ) -> Result<Receiver> {
        let (shared, sock, event) = receive_end(sock, deadline.into(), TAG_RECEIVER)?;
        // Go on where the passed receiver stopped.
        let head = shared.ring().head();
        Ok(Receiver {
            waiter: Waiter::new(shared.wait, event.is_some()),
            shared,
            poller: poller(event.as_ref(), &sock)?,
            inbox: Inbox::pair_end(sock)?,
            event,
            head,
            armed: false,
        })
    }
}
