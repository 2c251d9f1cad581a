//! POSIX message queues: `mq_open(3)`, `mq_send(3)`, `mq_receive(3)`, `mq_getattr(3)`,
//! `mq_unlink(3)`. See [mq_overview(7)](https://man7.org/linux/man-pages/man7/mq_overview.7.html).
//!
//! A message has a priority; the highest priority is received first, and equal priorities in
//! order of sending. On Linux a queue descriptor is a file descriptor, so [`PosixMq`] is
//! pollable ([`AsFd`](std::os::fd::AsFd)): readable while messages wait, writable while there is
//! room. The queue works whether or not the mqueue filesystem is mounted (mounting it only makes
//! queues visible as files under `/dev/mqueue`).
//!
//! Every wait goes through poll on a non-blocking descriptor, so each operation has a
//! blocking, a timed and a non-blocking (`try_`) form, and a clock change cannot stretch a
//! timeout (as it can with `mq_timedsend`'s absolute `CLOCK_REALTIME` time).
//!
//! libc is used here: rustix has no POSIX message queues.
//!
//! ```
//! use ipckit::mq::posix::{PosixMq, QueueAttr};
//! let name = ipckit::name::unique_posix("doc-mq");
//! let q = PosixMq::create(&name, QueueAttr { max_msgs: 4, msg_size: 64 }, 0o600).unwrap();
//! q.send(b"low", 1).unwrap();
//! q.send(b"high", 9).unwrap();
//! let mut buf = Vec::new();
//! assert_eq!(q.try_recv(&mut buf).unwrap(), Some(9));
//! assert_eq!(buf, b"high");
//! // q is dropped here: the creator unlinks the queue.
//! ```

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use rustix::event::PollFlags;

use crate::error::{Errno, Error, ErrorKind, Result, last_os};
use crate::{name, poll};

/// The highest priority plus one (`MQ_PRIO_MAX` on Linux).
pub const PRIO_MAX: u32 = 32768;

/// Queue limits fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueAttr {
    /// Most messages the queue holds (`mq_maxmsg`; unprivileged limit
    /// `/proc/sys/fs/mqueue/msg_max`, 10 by default).
    pub max_msgs: i64,
    /// Largest message in bytes (`mq_msgsize`; limit `/proc/sys/fs/mqueue/msgsize_max`, 8192 by
    /// default).
    pub msg_size: i64,
}

impl Default for QueueAttr {
    fn default() -> Self {
        QueueAttr {
            max_msgs: 10,
            msg_size: 8192,
        }
    }
}

/// A queue's state now (`mq_getattr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueStat {
    /// The limits fixed at creation.
    pub attr: QueueAttr,
    /// Messages waiting now.
    pub cur_msgs: i64,
}

/// An open POSIX message queue. The handle that created it unlinks the name on drop unless
/// [`persist`](PosixMq::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct PosixMq {
    fd: OwnedFd,
    name: String,
    msg_size: usize,
    owner: bool,
}

crate::impl_fd!(PosixMq, fd);

/// How to open an existing queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Receive only.
    Read,
    /// Send only.
    Write,
    /// Both.
    ReadWrite,
}

fn oflag(access: Access) -> libc::c_int {
    match access {
        Access::Read => libc::O_RDONLY,
        Access::Write => libc::O_WRONLY,
        Access::ReadWrite => libc::O_RDWR,
    }
}

impl PosixMq {
    /// `mq_open(name, O_CREAT | O_EXCL | O_RDWR, mode, attr)`: a new queue this handle owns.
    /// Fails with EEXIST if the name is taken.
    /// See [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html).
    pub fn create(name: &str, attr: QueueAttr, mode: u32) -> Result<Self> {
        let cname = name::check_posix_name(name)?;
        crate::shm::check_mode("creating POSIX message queue", mode)?;
        let mut a: libc::mq_attr = zeroed_attr();
        a.mq_maxmsg = attr.max_msgs as _;
        a.mq_msgsize = attr.msg_size as _;
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
        let fd = adopt(raw, "creating POSIX message queue", name).map_err(|e| {
            e.hint_if(
                Errno::EXIST,
                "the name is taken: open it instead, or remove it (ipckit rm mq:NAME)",
            )
            .hint_if(
                Errno::INVAL,
                "max_msgs or msg_size is zero or over /proc/sys/fs/mqueue/msg_max or msgsize_max",
            )
            .hint_if(
                Errno::MFILE,
                "too many queues for this user (RLIMIT_MSGQUEUE) or descriptors",
            )
        })?;
        let q = PosixMq {
            fd,
            name: name.to_string(),
            msg_size: attr.msg_size as usize,
            owner: true,
        };
        // mq_open applies the umask; the mode asked for is the mode set (a failure here drops
        // `q`, which unlinks the queue again).
        rustix::fs::fchmod(&q.fd, rustix::fs::Mode::from_bits_truncate(mode))
            .map_err(|e| Error::os("setting mode of POSIX message queue", e).object(name))?;
        Ok(q)
    }

    /// `mq_open(name, access)`: an existing queue. Never removes it.
    /// See [mq_open(3)](https://man7.org/linux/man-pages/man3/mq_open.3.html).
    pub fn open(name: &str, access: Access) -> Result<Self> {
        let cname = name::check_posix_name(name)?;
        let flags = oflag(access) | libc::O_CLOEXEC | libc::O_NONBLOCK;
        // SAFETY: `cname` is a valid C string; without O_CREAT no further arguments are read.
        let raw = unsafe { libc::mq_open(cname.as_ptr(), flags) };
        let fd = adopt(raw, "opening POSIX message queue", name).map_err(|e| {
            e.hint_if(
                Errno::NOENT,
                "no such queue: create it first (ipckit send --create)",
            )
        })?;
        let mut q = PosixMq {
            fd,
            name: name.to_string(),
            msg_size: 0,
            owner: false,
        };
        q.msg_size = q.stat()?.attr.msg_size as usize;
        Ok(q)
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keeps the queue after this handle is dropped.
    pub fn persist(&mut self) {
        self.owner = false;
    }

    /// `mq_unlink(name)`: removes a queue by name. Handles still open keep working until closed.
    pub fn unlink(name: &str) -> Result<()> {
        let cname = name::check_posix_name(name)?;
        // SAFETY: `cname` is a valid C string.
        if unsafe { libc::mq_unlink(cname.as_ptr()) } == -1 {
            return Err(last_os("removing POSIX message queue", name));
        }
        Ok(())
    }

    /// `mq_getattr`: limits and the number of messages waiting.
    /// See [mq_getattr(3)](https://man7.org/linux/man-pages/man3/mq_getattr.3.html).
    // c_long is i64 only on 64-bit targets: the casts are for the others.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(&self) -> Result<QueueStat> {
        let mut a = zeroed_attr();
        // SAFETY: the descriptor is a queue descriptor and `a` is writable.
        if unsafe { libc::mq_getattr(self.fd.as_raw_fd(), &mut a) } == -1 {
            return Err(last_os(
                "reading attributes of POSIX message queue",
                &self.name,
            ));
        }
        Ok(QueueStat {
            attr: QueueAttr {
                max_msgs: a.mq_maxmsg as i64,
                msg_size: a.mq_msgsize as i64,
            },
            cur_msgs: a.mq_curmsgs as i64,
        })
    }

    /// `mq_send` without waiting: `Ok(false)` when the queue is full (EAGAIN).
    /// See [mq_send(3)](https://man7.org/linux/man-pages/man3/mq_send.3.html).
    pub fn try_send(&self, msg: &[u8], priority: u32) -> Result<bool> {
        if priority >= PRIO_MAX {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "sending on POSIX message queue",
                format!("priority {priority} is over the maximum {}", PRIO_MAX - 1),
            )
            .object(&self.name));
        }
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
            let e = crate::error::last_errno();
            match e {
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

    /// Sends, waiting at most `timeout` (`None`: for ever) for room. `Ok(false)` on timeout.
    pub fn send_timeout(
        &self,
        msg: &[u8],
        priority: u32,
        timeout: Option<Duration>,
    ) -> Result<bool> {
        let sent = poll::until_ready(
            self.fd.as_fd(),
            PollFlags::OUT,
            poll::Deadline::from_timeout(timeout),
            || Ok(self.try_send(msg, priority)?.then_some(())),
        )?;
        Ok(sent.is_some())
    }

    /// Sends, waiting for room as long as it takes.
    pub fn send(&self, msg: &[u8], priority: u32) -> Result<()> {
        self.send_timeout(msg, priority, None).map(drop)
    }

    /// `mq_receive`: the oldest message of the highest priority into `buf` (resized to fit) without
    /// waiting; returns its priority, or `None` when the queue is empty.
    pub fn try_recv(&self, buf: &mut Vec<u8>) -> Result<Option<u32>> {
        // Room for msg_size bytes, so no message can be too large for it.
        buf.clear();
        buf.resize(self.msg_size.max(1), 0);
        let got = self.try_recv_into(buf);
        buf.truncate(match &got {
            Ok(Some((n, _))) => *n,
            _ => 0,
        });
        Ok(got?.map(|(_, prio)| prio))
    }

    /// Receives into a caller's buffer, which must hold `msg_size` bytes: a smaller one is an
    /// error (EMSGSIZE), never a silent truncation. Returns (bytes, priority), or `None` when
    /// the queue is empty.
    pub fn try_recv_into(&self, buf: &mut [u8]) -> Result<Option<(usize, u32)>> {
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
                return Ok(Some((n as usize, prio)));
            }
            let e = crate::error::last_errno();
            match e {
                Errno::INTR => continue,
                Errno::AGAIN => return Ok(None),
                e => {
                    return Err(Error::os("receiving on POSIX message queue", e).object(&self.name).hint_if(
                        Errno::MSGSIZE,
                        "the buffer is smaller than the queue's msg_size: the kernel refuses rather than cut",
                    ).hint_if(Errno::BADF, "the queue was opened for writing only"));
                }
            }
        }
    }

    /// Receives, waiting at most `timeout` (`None`: for ever). `Ok(None)` on timeout.
    pub fn recv_timeout(
        &self,
        buf: &mut Vec<u8>,
        timeout: Option<Duration>,
    ) -> Result<Option<u32>> {
        poll::until_ready(
            self.fd.as_fd(),
            PollFlags::IN,
            poll::Deadline::from_timeout(timeout),
            || self.try_recv(buf),
        )
    }

    /// Receives, waiting as long as it takes; returns the priority.
    pub fn recv(&self, buf: &mut Vec<u8>) -> Result<u32> {
        loop {
            if let Some(p) = self.recv_timeout(buf, None)? {
                return Ok(p);
            }
        }
    }
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

/// Whether the mqueue filesystem is mounted at `/dev/mqueue`, where queues can be listed and
/// told apart by inode. Without it, Linux still has the queues but shows no names.
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
        if !mqueue_mounted() {
            return true;
        }
        let Ok(mine) = rustix::fs::fstat(&self.fd) else {
            return true;
        };
        let path = format!("/dev/mqueue/{}", self.name.trim_start_matches('/'));
        rustix::fs::lstat(path.as_str())
            .is_ok_and(|st| (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino))
    }
}

impl Drop for PosixMq {
    fn drop(&mut self) {
        // The creator removes its queue, never one made again under the same name.
        if self.owner && self.name_is_ours() {
            let _ = PosixMq::unlink(&self.name);
        }
    }
}

impl crate::transport::MessageTransport for PosixMq {
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg, 0)
    }

    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: crate::poll::Deadline,
    ) -> Result<Option<usize>> {
        Ok(self
            .recv_timeout(buf, deadline.remaining())?
            .map(|_| buf.len()))
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
