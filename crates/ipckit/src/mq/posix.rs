//! POSIX message queues: `mq_open(3)`, `mq_send(3)`, `mq_receive(3)`, `mq_getattr(3)`,
//! `mq_unlink(3)`. See [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html).
//!
//! A message has a priority; the highest priority is received first, and equal priorities in
//! order of sending. On Linux a queue descriptor is a file descriptor, so [`PosixMq`] is
//! pollable ([`AsFd`]): readable while messages wait, writable while there is
//! room. The queue works whether or not the mqueue filesystem is mounted (mounting it only makes
//! queues visible as files under `/dev/mqueue`).
//!
//! Every wait goes through poll on a non-blocking descriptor, so each operation has a
//! blocking, a non-blocking (`try_`), a timed (`_timeout`) and a `_deadline` form, and a clock
//! change cannot stretch a timeout (as it can with `mq_timedsend`'s absolute `CLOCK_REALTIME`
//! time).
//!
//! The queue's limits are fixed at creation ([`Options`]): the kernel refuses more than
//! `/proc/sys/fs/mqueue/msg_max` messages (10 by default) or `msgsize_max` bytes (8192) per
//! message to any process without `CAP_SYS_RESOURCE`, root in a container included
//! (container runtimes drop that capability).
//!
//! libc is used here: rustix has no POSIX message queues.
//!
//! ```
//! use ipckit::Access;
//! use ipckit::mq::posix::{self, PosixMq};
//! use std::time::Duration;
//! let name = ipckit::name::unique_posix("doc-mq");
//! let q = PosixMq::create(&name, &posix::Options::default().max_msgs(4).msg_size(64)).unwrap();
//! q.send(b"low", 1).unwrap();
//! q.send(b"high", 9).unwrap();
//!
//! // Another process would open it by name.
//! let rx = PosixMq::open(&name, Access::ReadOnly).unwrap();
//! let mut buf = Vec::new();
//! assert_eq!(rx.try_recv(&mut buf).unwrap(), Some(9));
//! assert_eq!(buf, b"high");
//! assert_eq!(rx.recv_timeout(&mut buf, Duration::from_secs(1)).unwrap(), Some(1));
//! assert_eq!(rx.try_recv(&mut buf).unwrap(), None); // empty: nothing waits
//! q.remove().unwrap(); // or drop it: the creator removes the queue
//! ```

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;

use crate::error::{Errno, Error, ErrorKind, Result, last_os};
use crate::name;
use crate::object::{
    Access, DEFAULT_MODE, Existing, PosixKind, PosixName, check_existing, check_mode, file_id,
    open_or_create,
};
use crate::poll::{self, Deadline};

/// The highest priority plus one (`MQ_PRIO_MAX` on Linux).
pub const PRIO_MAX: u32 = 32768;

/// What [`PosixName`] needs to remove a POSIX message queue's name.
static KIND: PosixKind = PosixKind {
    removing: "removing POSIX message queue",
    changed: "the name no longer refers to this queue (removed, and perhaps made again)",
    changed_hint: None,
    path: mq_file,
    unlink: remove,
};

/// The file a name leads to where the mqueue filesystem is mounted: `/dev/mqueue/NAME`.
fn mq_file(name: &str) -> String {
    format!("/dev/mqueue/{}", name.trim_start_matches('/'))
}

/// How [`PosixMq::create`] makes a queue: its limits, fixed for its life, and its mode. The
/// default is what Linux allows any process: 10 messages of up to 8192 bytes, mode `0o600`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    max_msgs: usize,
    msg_size: usize,
    mode: u32,
    trust_existing: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_msgs: 10,
            msg_size: 8192,
            mode: DEFAULT_MODE,
            trust_existing: false,
        }
    }
}

impl Options {
    /// Most messages the queue holds (`mq_maxmsg`): 1 up to `/proc/sys/fs/mqueue/msg_max`
    /// (10 by default), the limit for any process without `CAP_SYS_RESOURCE`, root in a
    /// container included.
    pub fn max_msgs(mut self, n: usize) -> Self {
        self.max_msgs = n;
        self
    }

    /// Largest message in bytes (`mq_msgsize`): 1 up to `/proc/sys/fs/mqueue/msgsize_max`
    /// (8192 by default), the limit for any process without `CAP_SYS_RESOURCE`, root in a
    /// container included.
    pub fn msg_size(mut self, n: usize) -> Self {
        self.msg_size = n;
        self
    }

    /// The permission bits (at most `0o777`), applied exactly: the umask does not narrow them.
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Whether [`open_or_create`](PosixMq::open_or_create) may use an existing queue another
    /// user owns, or one wider than [`mode`](Options::mode). Default false: refused (see
    /// [`check_existing`]).
    pub fn trust_existing(mut self, on: bool) -> Self {
        self.trust_existing = on;
        self
    }
}

/// A queue's state now (`mq_getattr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueStat {
    /// Most messages it holds (`mq_maxmsg`), fixed at creation.
    pub max_msgs: usize,
    /// Largest message in bytes (`mq_msgsize`), fixed at creation.
    pub msg_size: usize,
    /// Messages waiting now (`mq_curmsgs`; the same fact as System V's
    /// [`MsgStat::msgs`](crate::mq::sysv::MsgStat::msgs)).
    pub msgs: usize,
}

/// An open POSIX message queue. The handle that created it unlinks the name on drop unless
/// [`persist`](PosixMq::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct PosixMq {
    fd: OwnedFd,
    name: PosixName,
    msg_size: usize,
    access: Access,
}

crate::impl_fd!(PosixMq, fd);

impl PosixMq {
    /// `mq_open(name, O_CREAT | O_EXCL | O_RDWR | O_NONBLOCK | O_CLOEXEC, mode, &attr)`, then
    /// `fchmod(mode)` so the umask does not narrow the mode: a new queue this handle owns.
    /// Fails with EEXIST if the name is taken (an existing queue is opened with
    /// [`open`](PosixMq::open), never adopted).
    /// See [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html).
    pub fn create(name: &str, opts: &Options) -> Result<Self> {
        const OP: &str = "creating POSIX message queue";
        let Options {
            max_msgs,
            msg_size,
            mode,
            ..
        } = *opts;
        let cname = name::check_posix_name(name)?;
        check_mode(OP, mode).map_err(|e| e.object(name))?;
        let mut a: libc::mq_attr = zeroed_attr();
        // Too large for the kernel's long: the kernel refuses the saturated value (EINVAL).
        a.mq_maxmsg = libc::c_long::try_from(max_msgs).unwrap_or(libc::c_long::MAX);
        a.mq_msgsize = libc::c_long::try_from(msg_size).unwrap_or(libc::c_long::MAX);
        let flags =
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: `cname` is a valid C string and `a` a valid mq_attr for the duration of the call.
        let raw = unsafe {
            libc::mq_open(
                cname.as_ptr(),
                flags,
                mode as libc::mode_t,
                &a as *const libc::mq_attr,
            )
        };
        let fd = adopt(raw, OP, name).map_err(|e| {
            e.hint_if(
                Errno::EXIST,
                format!("the name is taken: open it instead, or remove it (`ipckit rm mq:{}`)", crate::name::escape_str(name)),
            )
            .hint_if(
                Errno::INVAL,
                "max_msgs or msg_size is zero or over /proc/sys/fs/mqueue/msg_max or msgsize_max: the limits for any process without CAP_SYS_RESOURCE, root in a container included",
            )
            .hint_if(
                Errno::MFILE,
                "too many queues for this user (RLIMIT_MSGQUEUE) or descriptors",
            )
            .hint_if(
                Errno::NOSPC,
                "the system's queue count (/proc/sys/fs/mqueue/queues_max) is reached: the limit for any process without CAP_SYS_RESOURCE, root in a container included",
            )
        })?;
        let q = PosixMq {
            fd,
            name: PosixName::created(name, &KIND),
            msg_size,
            access: Access::ReadWrite,
        };
        // mq_open applies the umask; the mode asked for is the mode set (a failure here drops
        // `q`, which unlinks the queue again).
        rustix::fs::fchmod(&q.fd, rustix::fs::Mode::from_raw_mode(mode))
            .map_err(|e| Error::os("setting mode of POSIX message queue", e).object(name))?;
        Ok(q)
    }

    /// `mq_open(name, O_RDONLY, O_WRONLY or O_RDWR | O_NONBLOCK | O_CLOEXEC)`: an existing
    /// queue, to receive (`ReadOnly`), send (`WriteOnly`) or both. Never removes it.
    /// Whoever made it: the mode is the kernel's only check, so a world-writable object of another user is joined too (see [`crate::object`]); [`open_or_create`](PosixMq::open_or_create) takes only this user's.
    /// See [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html).
    pub fn open(name: &str, access: Access) -> Result<Self> {
        let cname = name::check_posix_name(name)?;
        let flags = access.oflag() | libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: `cname` is a valid C string; without O_CREAT no further arguments are read.
        let raw = unsafe { libc::mq_open(cname.as_ptr(), flags) };
        let fd = adopt(raw, "opening POSIX message queue", name).map_err(|e| {
            e.hint_if(
                Errno::NOENT,
                "no such queue: create it first (ipckit send --create)",
            )
            .hint_if(
                Errno::ACCESS,
                "its mode does not let this user have the access asked for: ask its owner to widen the mode",
            )
        })?;
        let mut q = PosixMq {
            fd,
            name: PosixName::joined(name, &KIND),
            msg_size: 0,
            access,
        };
        q.msg_size = q.stat()?.msg_size;
        Ok(q)
    }

    /// [`open`](PosixMq::open) with `access` if the name exists and the queue passes
    /// [`check_existing`] (this user's, no wider than `opts`' mode; its limits are its own,
    /// not `opts`'), else [`create`](PosixMq::create) with `opts`: the handle then owns the
    /// new queue (removes it on drop, unless [`persist`](PosixMq::persist)ed) and has it
    /// `ReadWrite`. Two processes racing to make it both succeed: the one that loses opens (and
    /// checks) what the other made. The check is made on the descriptor opened (`fstat`: on
    /// Linux a queue descriptor is a file of the mqueue filesystem, with an owner and a mode),
    /// so a name swapped in between cannot slip past it; [`Options::trust_existing`] skips it.
    /// See [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html),
    /// [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html).
    ///
    /// ```
    /// use ipckit::Access;
    /// use ipckit::mq::posix::{self, PosixMq};
    /// let name = ipckit::name::unique_posix("doc-mq-ooc");
    /// let q = PosixMq::open_or_create(&name, Access::WriteOnly, &posix::Options::default()).unwrap();
    /// q.send(b"hi", 0).unwrap(); // made, so ReadWrite: removed on drop
    /// let tx = PosixMq::open_or_create(&name, Access::WriteOnly, &posix::Options::default()).unwrap();
    /// assert_eq!(tx.access(), Access::WriteOnly); // joined: this user's, mode 0o600
    /// ```
    pub fn open_or_create(name: &str, access: Access, opts: &Options) -> Result<Self> {
        const OP: &str = "opening POSIX message queue";
        open_or_create(
            || PosixMq::open(name, access),
            || PosixMq::create(name, opts),
            |q| {
                let found = Existing::of_fd(&q.fd).map_err(|e| Error::os(OP, e).object(name))?;
                check_existing(
                    OP,
                    name,
                    &format!("mq:{name}"),
                    found,
                    opts.mode,
                    opts.trust_existing,
                )
            },
        )
    }

    /// What the handle may do: `ReadWrite` for a creator, what [`open`](PosixMq::open) was
    /// given otherwise (the kernel refuses the rest with EBADF).
    pub fn access(&self) -> Access {
        self.access
    }

    /// `mq_getattr(mqdes, &attr)`: the limits and the number of messages waiting.
    /// See [mq_getattr(3)](https://man7.org/linux/man-pages/man3/mq_getattr.3.html).
    pub fn stat(&self) -> Result<QueueStat> {
        let mut a = zeroed_attr();
        // SAFETY: the descriptor is a queue descriptor and `a` is writable.
        if unsafe { libc::mq_getattr(self.fd.as_raw_fd(), &mut a) } == -1 {
            return Err(last_os(
                "reading attributes of POSIX message queue",
                &self.name,
            ));
        }
        // The kernel's values are never negative.
        let count = |v: libc::c_long| usize::try_from(v).unwrap_or(0);
        Ok(QueueStat {
            max_msgs: count(a.mq_maxmsg),
            msg_size: count(a.mq_msgsize),
            msgs: count(a.mq_curmsgs),
        })
    }

    /// `mq_send(mqdes, msg, len, priority)` on the non-blocking descriptor, polled for room
    /// until `deadline`: `Ok(false)` if the queue stayed full. The highest priority is
    /// `PRIO_MAX - 1`.
    /// See [mq_send(3)](https://man7.org/linux/man-pages/man3/mq_send.3.html).
    pub fn send_deadline(
        &self,
        msg: &[u8],
        priority: u32,
        deadline: impl Into<Deadline>,
    ) -> Result<bool> {
        if priority >= PRIO_MAX {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "sending on POSIX message queue",
                format!("priority {priority} is over the maximum {}", PRIO_MAX - 1),
            )
            .object(&self.name));
        }
        let sent = poll::until_ready(self.fd.as_fd(), PollFlags::OUT, deadline.into(), || {
            Ok(self.send_once(msg, priority)?.then_some(()))
        })?;
        Ok(sent.is_some())
    }

    /// `mq_send`, as [`send_deadline`](PosixMq::send_deadline), waiting at most `timeout` for
    /// room: `Ok(false)` if the queue stayed full.
    pub fn send_timeout(&self, msg: &[u8], priority: u32, timeout: Duration) -> Result<bool> {
        self.send_deadline(msg, priority, Deadline::after(timeout))
    }

    /// `mq_send`, as [`send_deadline`](PosixMq::send_deadline), without waiting: `Ok(false)`
    /// when the queue is full (EAGAIN).
    pub fn try_send(&self, msg: &[u8], priority: u32) -> Result<bool> {
        self.send_deadline(msg, priority, Deadline::now())
    }

    /// `mq_send`, as [`send_deadline`](PosixMq::send_deadline), waiting for room as long as
    /// it takes.
    pub fn send(&self, msg: &[u8], priority: u32) -> Result<()> {
        self.send_deadline(msg, priority, Deadline::NEVER).map(drop)
    }

    /// One `mq_send` on the non-blocking descriptor: `Ok(false)` when the queue is full.
    fn send_once(&self, msg: &[u8], priority: u32) -> Result<bool> {
        loop {
            // SAFETY: `msg` is readable for its length; the descriptor is a queue descriptor.
            let r = unsafe {
                libc::mq_send(
                    self.fd.as_raw_fd(),
                    msg.as_ptr().cast(),
                    msg.len(),
                    priority,
                )
            };
            if r == 0 {
                return Ok(true);
            }
            match crate::error::last_errno() {
                Errno::INTR => continue,
                Errno::AGAIN => return Ok(false),
                e => {
                    return Err(Error::os("sending on POSIX message queue", e)
                        .object(&self.name)
                        .hint_if(
                            Errno::MSGSIZE,
                            "the message is larger than the queue's msg_size",
                        )
                        .hint_if(Errno::BADF, "the queue was opened for reading only"));
                }
            }
        }
    }

    /// `mq_receive(mqdes, buf, msg_size, &priority)` on the non-blocking descriptor, polled
    /// until `deadline`: the oldest message of the highest priority into `buf` (resized to
    /// fit, so no message is too large for it), and its priority; `Ok(None)` if the queue
    /// stayed empty.
    /// See [mq_receive(3)](https://man7.org/linux/man-pages/man3/mq_receive.3.html).
    pub fn recv_deadline(
        &self,
        buf: &mut Vec<u8>,
        deadline: impl Into<Deadline>,
    ) -> Result<Option<u32>> {
        poll::until_ready(self.fd.as_fd(), PollFlags::IN, deadline.into(), || {
            self.recv_once(buf)
        })
    }

    /// `mq_receive`, as [`recv_deadline`](PosixMq::recv_deadline), waiting at most `timeout`:
    /// `Ok(None)` if the queue stayed empty.
    pub fn recv_timeout(&self, buf: &mut Vec<u8>, timeout: Duration) -> Result<Option<u32>> {
        self.recv_deadline(buf, Deadline::after(timeout))
    }

    /// `mq_receive`, as [`recv_deadline`](PosixMq::recv_deadline), without waiting:
    /// `Ok(None)` when the queue is empty (EAGAIN).
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> Result<Option<u32>> {
        self.recv_deadline(buf, Deadline::now())
    }

    /// `mq_receive`, as [`recv_deadline`](PosixMq::recv_deadline), waiting as long as it
    /// takes; returns the priority.
    pub fn recv(&self, buf: &mut Vec<u8>) -> Result<u32> {
        loop {
            if let Some(p) = self.recv_deadline(&mut *buf, Deadline::NEVER)? {
                return Ok(p);
            }
        }
    }

    /// One `mq_receive` on the non-blocking descriptor into `buf`, resized to `msg_size`
    /// first (a smaller buffer is EMSGSIZE, never a cut) and then to the message.
    fn recv_once(&self, buf: &mut Vec<u8>) -> Result<Option<u32>> {
        buf.clear();
        buf.resize(self.msg_size.max(1), 0);
        let mut prio = 0u32;
        loop {
            // SAFETY: `buf` is writable for its length.
            let n = unsafe {
                libc::mq_receive(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    &mut prio,
                )
            };
            if n >= 0 {
                buf.truncate(n as usize);
                return Ok(Some(prio));
            }
            let e = crate::error::last_errno();
            if e == Errno::INTR {
                continue;
            }
            buf.clear();
            if e == Errno::AGAIN {
                return Ok(None);
            }
            return Err(Error::os("receiving on POSIX message queue", e)
                .object(&self.name)
                .hint_if(Errno::BADF, "the queue was opened for writing only"));
        }
    }
}

/// `mq_unlink(name)`: removes a queue name nobody holds a handle to (one a crashed or
/// persisting creator left). Handles still open keep working until closed.
/// See [mq_unlink(3)](https://man7.org/linux/man-pages/man3/mq_unlink.3.html).
///
/// ```
/// use ipckit::mq::posix::{self, PosixMq};
/// let name = ipckit::name::unique_posix("doc-mq-remove");
/// let _kept = PosixMq::create(&name, &posix::Options::default()).unwrap().persist();
/// posix::remove(&name).unwrap();
/// assert!(posix::remove(&name).is_err()); // gone already
/// ```
pub fn remove(name: &str) -> Result<()> {
    let cname = name::check_posix_name(name)?;
    // SAFETY: `cname` is a valid C string.
    if unsafe { libc::mq_unlink(cname.as_ptr()) } == -1 {
        return Err(last_os("removing POSIX message queue", name).hint_if(
            Errno::NOENT,
            "no such queue: it is already removed, or the name is wrong",
        ));
    }
    Ok(())
}

/// `MQUEUE_MAGIC`: the mqueue filesystem's `statfs` type.
const MQUEUE_MAGIC: u64 = 0x1980_0202;

/// `statfs(path)`: whether `path` is on the mqueue filesystem (a queue's descriptor, through
/// `/proc/PID/fd`, or its mount point).
// f_type's integer type differs between targets: the cast is for the others.
#[allow(clippy::unnecessary_cast)]
pub(crate) fn on_mqueue_fs<P: rustix::path::Arg>(path: P) -> bool {
    rustix::fs::statfs(path).is_ok_and(|fs| fs.f_type as u64 == MQUEUE_MAGIC)
}

/// `statfs("/dev/mqueue")`: whether the mqueue filesystem is mounted there, where queues can
/// be listed and told apart by inode. Without it, Linux still has the queues but shows no
/// names. See [statfs(2)](https://man7.org/linux/man-pages/man2/statfs.2.html).
///
/// ```
/// let listable = ipckit::mq::posix::mqueue_mounted();
/// # let _ = listable;
/// ```
pub fn mqueue_mounted() -> bool {
    on_mqueue_fs("/dev/mqueue")
}

impl PosixMq {
    /// Whether the name still leads to this queue. Only the mqueue filesystem can tell; when it
    /// is not mounted at `/dev/mqueue`, the name is taken to be ours.
    fn name_is_ours(&self) -> bool {
        !mqueue_mounted() || file_id(&self.fd).is_none_or(|id| self.name.leads_to(id))
    }
}

crate::object::posix_named_methods! {
    PosixMq,
    /// The queue's name.
    name,
    /// Keeps the queue after this handle is dropped: the one way to let it outlive its
    /// creator. Remove it later with [`remove`](PosixMq::remove) on a handle that
    /// [`open`](PosixMq::open)s it, or [`posix::remove`](remove) by name.
    #[must_use]
    persist,
    /// `mq_unlink(name)`, if the name still refers to this queue: removes the name now,
    /// whoever created it (a handle from [`open`](PosixMq::open) removes it too). Handles still
    /// open keep working until closed. Fails with
    /// [`ErrorKind::Changed`] when the name was removed and made
    /// again since (told apart only where the mqueue filesystem is mounted at `/dev/mqueue`),
    /// and leaves that queue alone.
    /// See [mq_unlink(3)](https://man7.org/linux/man-pages/man3/mq_unlink.3.html).
    remove,
}

impl Drop for PosixMq {
    fn drop(&mut self) {
        // The creator removes its queue, never one made again under the same name.
        self.name.drop_owned(|| self.name_is_ours());
    }
}

impl crate::transport::MessageTransport for PosixMq {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg, 0)
    }

    fn send_msg_deadline(&mut self, msg: &[u8], deadline: crate::poll::Deadline) -> Result<bool> {
        self.send_deadline(msg, 0, deadline)
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: crate::poll::Deadline,
    ) -> Result<Option<usize>> {
        Ok(self.recv_deadline(&mut *buf, deadline)?.map(|_| buf.len()))
    }

    fn max_msg_len(&self) -> Option<usize> {
        Some(self.msg_size)
    }
}

fn zeroed_attr() -> libc::mq_attr {
    // SAFETY: mq_attr is plain integers; all zeroes is a valid value.
    unsafe { std::mem::zeroed() }
}

fn adopt(raw: libc::mqd_t, op: &'static str, object: &str) -> Result<OwnedFd> {
    if raw == -1 {
        return Err(last_os(op, object));
    }
    // SAFETY: on Linux a queue descriptor is a file descriptor, new and owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}
