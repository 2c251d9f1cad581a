//! Making and joining a channel: [`pair`] (anonymous), [`create`] and [`open`] (named), and
//! passing an anonymous channel's ends to another process over a Unix socket.

use std::mem::ManuallyDrop;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use super::bulk::{self, Inbox, Outbox, PATIENCE};
use super::layout::{Contents, SOCKET_NAME, Shared};
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

/// `memfd_create("ipckit-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING)`, sealed against
/// resizing, and `socketpair(AF_UNIX, SOCK_SEQPACKET)`: makes an anonymous channel, the
/// memfd for the ring, the socket pair for bulk payloads and liveness, an eventfd if
/// pollable. Nothing has a name; everything is freed with the last descriptor. Keep one end
/// in this process and give the other to a child (by `fork`) or to any process
/// ([`Sender::send_over`]). [`Options::mode`] does not apply: nothing is named.
/// See [memfd_create(2)](https://man7.org/linux/man-pages/man2/memfd_create.2.html),
/// [socketpair(2)](https://man7.org/linux/man-pages/man2/socketpair.2.html).
pub fn pair(opts: &Options) -> Result<(Sender, Receiver)> {
    let len = opts.check()?;
    let memfd = Memfd::create("ipckit-channel", len)?;
    // A receiver can trust the size: nobody can shrink the ring under its mapping.
    memfd.add_seals(Seals::SHRINK | Seals::GROW | Seals::SEAL)?;
    let mut shared = Shared::format(memfd.map(crate::Access::ReadWrite)?, opts, &[]);
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

/// `shm_open(name, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW, mode)` and `fchmod(mode)`, then
/// `bind` and `listen` on an abstract Unix socket: makes a named channel. `name` is a POSIX
/// shared memory name (`/NAME`) that this receiver owns and removes when it is dropped; senders join with [`open`], as many as like (a named
/// channel is always [`multi_sender`](Options::multi_sender)). It is created with `O_EXCL`
/// and [`Options::mode`] (0600 unless asked), set exactly whatever the umask. Its senders
/// connect to an abstract Unix socket named in the header.
///
/// The receiver waits for its first sender; once it has had one, it reports
/// `Disconnected` whenever every sender is gone and everything they sent is read. That
/// is not final: a sender that opens the channel later is received from as before.
///
/// The name is the receiver's alone, for its life: a name without its receiver only tells
/// senders there is nobody to send to, so a named channel cannot be persisted, and dropping
/// the receiver is what removes it. A receiver killed before its drop leaves the name
/// behind; [`remove`] removes it.
/// See [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html),
/// [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
pub fn create(name: &str, opts: &Options) -> Result<Receiver> {
    const OP: &str = "making a named channel";
    crate::object::check_mode(OP, opts.mode).map_err(|e| e.object(name))?;
    if opts.pollable {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "a named channel cannot be pollable: its senders could not be given the eventfd",
        )
        .object(name)
        .hint("use an anonymous channel (channel::pair) for an event loop"));
    }
    // Anyone who knows the name can open it: a named channel always takes several senders.
    let opts = &opts.clone().multi_sender(true);
    let len = opts.check()?;
    let object = PosixShm::create(name, &crate::shm::posix::Options::new(len).mode(opts.mode)).map_err(|e| {
        if e.errno() == Some(crate::Errno::EXIST) {
            e.hint(format!(
                "the name is taken: another receiver owns it, or a receiver that was killed left it; \
                 `ipckit rm channel:{name}` removes a leftover"
            ))
        } else {
            e
        }
    })?;
    // Held while the receiver lives (in every process that has it): what tells `remove`
    // that the name is not a leftover.
    rustix::fs::flock(&object, rustix::fs::FlockOperation::NonBlockingLockShared)
        .during("locking the object of channel", name)?;
    let socket = crate::name::unique("channel");
    // The socket's name is listed in /proc/net/unix for anyone to see: it takes the peers the
    // object's mode lets in, checked on their credentials as they connect.
    let listener = SeqpacketListener::bind(
        &UnixAddr::abstract_name(socket.as_bytes()),
        &crate::socket::unix::BindOptions::default()
            .backlog(4096)
            .mode(opts.mode),
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

/// `shm_open(name, O_RDWR | O_NOFOLLOW)` until the name exists, `mmap`, then `connect` to
/// the receiver's socket: joins the named channel `name` as a sender, waiting for its
/// receiver to make it as long as it takes. Never removes it. The sender waits as the
/// receiver's [`Options::wait`] says.
///
/// Fails at once with `Disconnected` if the name is there but its receiver is not (it was
/// killed and left the name: [`remove`] it), and with `InvalidInput` if the name is not a
/// channel.
/// See [shm_open(3)](https://man7.org/linux/man-pages/man3/shm_open.3.html),
/// [connect(2)](https://man7.org/linux/man-pages/man2/connect.2.html).
pub fn open(name: &str) -> Result<Sender> {
    open_deadline(name, Deadline::NEVER)
}

/// [`open`] if the receiver is there now. With no receiver yet the error (kind `Os`, errno
/// `ENOENT`) says so.
pub fn try_open(name: &str) -> Result<Sender> {
    open_deadline(name, Deadline::now())
}

/// [`open`], failing with [`ErrorKind::TimedOut`] if no receiver has made the channel within
/// `timeout`.
pub fn open_timeout(name: &str, timeout: Duration) -> Result<Sender> {
    open_deadline(name, Deadline::after(timeout))
}

/// [`open`], failing with [`ErrorKind::TimedOut`] if no receiver has made the channel by
/// `deadline`.
pub fn open_deadline(name: &str, deadline: impl Into<Deadline>) -> Result<Sender> {
    const OP: &str = "opening a channel";
    let deadline = deadline.into();
    // A deadline already passed (a try): the error says what is missing, not that time ran out.
    let waits = !deadline.expired();
    let mut missing = Missing::Name;
    let joined = crate::poll::with_backoff(deadline, || {
        Ok(match join(name, deadline)? {
            Ok(tx) => Some(tx),
            Err(why) => {
                missing = why;
                None
            }
        })
    })?;
    if let Some(tx) = joined {
        return Ok(tx);
    }
    let start = format!(
        "start the receiver first (`ipckit recv channel:{name}`, or \
         channel::create in the receiving process)"
    );
    let not_set_up = "the name is there but not set up as a channel: not an ipckit channel, or \
                      its receiver is still making it";
    Err(match (missing, waits) {
        (Missing::Setup, false) => Error::new(ErrorKind::InvalidInput, OP, not_set_up),
        (Missing::Setup, true) => Error::new(ErrorKind::TimedOut, OP, not_set_up),
        (_, false) => Error::os(OP, crate::Errno::NOENT).hint(format!("no receiver yet: {start}")),
        (_, true) => Error::new(
            ErrorKind::TimedOut,
            OP,
            "no receiver yet: none made the channel in time",
        )
        .hint(start),
    }
    .object(name))
}

/// What a sender that opens a channel cannot find yet.
#[derive(Clone, Copy)]
enum Missing {
    /// No object by that name.
    Name,
    /// An object not set up as a channel.
    Setup,
}

/// One attempt at joining `name`: the sender, or what is not there yet (no object by that
/// name, or one not formatted yet); errors that waiting cannot mend.
fn join(name: &str, deadline: Deadline) -> Result<std::result::Result<Sender, Missing>> {
    let object = match PosixShm::open(name, crate::Access::ReadWrite) {
        Ok(o) => o,
        Err(e) if e.errno() == Some(crate::Errno::NOENT) => return Ok(Err(Missing::Name)),
        Err(e) if e.errno() == Some(crate::Errno::ACCESS) => {
            return Err(e.hint(
                "the channel's mode does not let this user send: its receiver chooses the mode \
                 (Options::mode)",
            ));
        }
        Err(e) => return Err(e),
    };
    let map = object.map()?;
    if Contents::of(&map) == Contents::Unformatted {
        return Ok(Err(Missing::Setup));
    }
    let shared = Shared::attach(map, name)?;
    let h = shared.header();
    let end = h.socket.iter().position(|&b| b == 0).unwrap_or(SOCKET_NAME);
    // Bounded even without a deadline: a receiver that never waits never accepts, and its
    // queue can fill.
    let patience = deadline
        .remaining()
        .map_or(PATIENCE, |left| left.min(PATIENCE));
    let sock = UnixSeqpacket::connect_timeout(&UnixAddr::abstract_name(&h.socket[..end]), patience)
        .map_err(|e| {
            if e.errno() == Some(crate::Errno::CONNREFUSED) {
                bulk::disconnected("opening a channel", "receiver")
                    .object(name)
                    .hint(format!(
                        "the receiver was killed and left the name: `ipckit rm channel:{name}` \
                         removes it; then start a receiver"
                    ))
            } else {
                e.object(name)
            }
        })?
        .into_fd();
    crate::poll::set_nonblocking(&sock, true)?;
    Ok(Ok(Sender {
        waiter: Waiter::new(shared.wait, false),
        shared: Arc::new(shared),
        out: ManuallyDrop::new(Outbox { sock }),
        event: None,
        free: 0,
    }))
}

/// `shm_open(name, O_RDONLY)`, `flock(LOCK_EX | LOCK_NB)`, then `shm_unlink(name)`: removes
/// the name of a named channel whose receiver is gone, one killed before it could remove it
/// (a receiver dropped removes its name itself). Refuses a name whose receiver is alive
/// (`EBUSY`: a live receiver holds a shared lock on the object, and removing its name would
/// leave the senders still to come with nothing to open) and an object that is not a
/// channel (`InvalidInput`). See
/// [shm_unlink(3)](https://man7.org/linux/man-pages/man3/shm_unlink.3.html),
/// [flock(2)](https://man7.org/linux/man-pages/man2/flock.2.html).
pub fn remove(name: &str) -> Result<()> {
    const OP: &str = "removing a channel";
    let object = PosixShm::open(name, crate::Access::ReadOnly).map_err(|e| match e.errno() {
        Some(crate::Errno::NOENT) => Error::os(OP, crate::Errno::NOENT)
            .object(name)
            .hint("no such channel: it is already removed, or the name is wrong"),
        _ => e,
    })?;
    if Contents::of(&object.map()?) != Contents::Channel {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            OP,
            "it is not an ipckit channel (or its receiver is still making it)",
        )
        .object(name)
        .hint(format!(
            "POSIX shared memory of another kind is removed with `ipckit rm shm:{name}`"
        )));
    }
    match rustix::fs::flock(
        &object,
        rustix::fs::FlockOperation::NonBlockingLockExclusive,
    ) {
        Ok(()) => {}
        Err(crate::Errno::WOULDBLOCK) => {
            return Err(Error::os(OP, crate::Errno::BUSY).object(name).hint(
                "its receiver is running, and removes the name itself when it ends: stop it instead",
            ));
        }
        Err(e) => return Err(e).during("locking the object of channel", name),
    }
    // The lock came free when the receiver ended; one that ended normally removed its name
    // first, and the name may since belong to a new receiver's channel: leave that alone.
    let mine = rustix::fs::fstat(&object).during("reading the object of channel", name)?;
    let now = rustix::fs::lstat(format!("/dev/shm{name}").as_str());
    if !now.is_ok_and(|st| (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)) {
        return Err(Error::new(
            ErrorKind::Changed,
            OP,
            "its receiver ended and removed it meanwhile (the name may belong to a new one)",
        )
        .object(name));
    }
    crate::shm::posix::remove(name)
}

const TAG_SENDER: &[u8] = b"ipckit-channel-sender";
const TAG_RECEIVER: &[u8] = b"ipckit-channel-receiver";

impl Sender {
    /// `sendmsg(sock, SCM_RIGHTS)`: sends a duplicate of this end (memfd, socket, eventfd)
    /// over the Unix socket `sock`; the process at the other end takes it with
    /// [`receive_over`](Sender::receive_over). This end stays usable: drop it if the
    /// other process is to be the only sender. Anonymous channels only (a named one is
    /// joined with [`open`]).
    /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
    pub fn send_over(&self, sock: impl AsFd) -> Result<()> {
        send_end(
            &self.shared,
            sock,
            TAG_SENDER,
            self.out.sock.as_fd(),
            self.event.as_ref(),
        )
    }

    /// `recvmsg(sock, SCM_RIGHTS)`: takes a sender passed with
    /// [`send_over`](Sender::send_over) from `sock`, waiting for it as long as it takes. The
    /// sender waits as the channel's creator said ([`Options::wait`]).
    /// See [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
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
    // `pair` seals the ring against resizing: one that is not could be cut under this
    // process's mapping by whoever sent it (SIGBUS here).
    if !memfd.seals()?.contains(Seals::SHRINK | Seals::GROW) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "receiving a channel end",
            "its memfd is not sealed against shrinking and growing",
        )
        .hint("the sender is not an ipckit channel end: pass ends made by channel::pair"));
    }
    let sock = fds.next().expect("two descriptors");
    let event = fds.next().map(EventFd::from_fd).transpose()?;
    let mut shared = Shared::attach(memfd.map(crate::Access::ReadWrite)?, "a passed channel")?;
    shared.memfd = Some(memfd.into_fd());
    Ok((Arc::new(shared), sock, event))
}

impl Receiver {
    /// `sendmsg(sock, SCM_RIGHTS)`: sends a duplicate of this end over the Unix socket
    /// `sock` ([`receive_over`](Receiver::receive_over) takes it). Drop this one afterwards
    /// and before the other is used: a channel has one receiver. Anonymous channels only.
    /// See [unix(7)](https://man7.org/linux/man-pages/man7/unix.7.html).
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

    /// `recvmsg(sock, SCM_RIGHTS)`: takes a receiver passed with
    /// [`send_over`](Receiver::send_over) from `sock`, waiting for it as long as it takes. It
    /// goes on where the passed receiver stopped, waiting as the channel's creator said
    /// ([`Options::wait`]).
    /// See [recvmsg(2)](https://man7.org/linux/man-pages/man2/recvmsg.2.html).
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
