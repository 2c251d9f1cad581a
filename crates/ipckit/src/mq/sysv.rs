//! System V message queues: `msgget(2)`, `msgsnd(2)`, `msgrcv(2)`, `msgctl(2)`.
//! See [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).
//!
//! Every message has a positive type, and a receiver chooses which types it takes
//! ([`TypeFilter`]): any, one exact type, the lowest type up to a bound, or any but one. A
//! queue is found by a [`SysvKey`] and lives until removed (`IPC_RMID`): the creating handle
//! removes it on drop unless [`persist`](SysvMq::persist)ed.
//!
//! System V queues have no descriptor to poll and no timed calls. The blocking forms block in
//! the kernel; the timed forms retry `IPC_NOWAIT` with a short back-off (1 ms growing to
//! 50 ms) until the deadline. A message larger than the receive buffer is an error of kind
//! [`Truncated`](ErrorKind::Truncated) that leaves the message in the queue, unless the caller
//! asks for truncation (`MSG_NOERROR`).
//!
//! No maintained Rust crate wraps System V IPC, so these are libc calls, each in one small
//! wrapper with its `SAFETY` note.
//!
//! ```
//! use ipckit::mq::sysv::{SysvMq, TypeFilter};
//! use ipckit::name::SysvKey;
//! let q = SysvMq::create(SysvKey::Private, 0o600).unwrap();
//! q.send(3, b"three").unwrap();
//! q.send(1, b"one").unwrap();
//! let mut buf = [0u8; 64];
//! // The lowest type up to 5 comes first: type 1.
//! let m = q.try_recv(&mut buf, TypeFilter::UpTo(5), false).unwrap().unwrap();
//! assert_eq!((m.mtype, &buf[..m.len]), (1, &b"one"[..]));
//! // q is dropped here: the creator removes the queue.
//! ```

use std::time::Duration;

use crate::error::{Errno, Error, ErrorKind, Result, last_os};
use crate::name::SysvKey;
use crate::poll;

/// Which messages a receive takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeFilter {
    /// The first message of any type (`msgtyp` 0).
    Any,
    /// The first message of exactly this type (`msgtyp` > 0).
    Exact(i64),
    /// The first message of the lowest type that is at most this bound (`msgtyp` < 0).
    UpTo(i64),
    /// The first message of any type but this one (`MSG_EXCEPT`).
    Except(i64),
}

impl TypeFilter {
    /// (msgtyp, extra flags) for msgrcv.
    fn raw(self) -> Result<(libc::c_long, libc::c_int)> {
        let positive = |t: i64| {
            if t <= 0 {
                Err(Error::new(
                    ErrorKind::InvalidInput,
                    "choosing message type",
                    format!("{t} is not a message type: types are positive"),
                ))
            } else {
                Ok(t as libc::c_long)
            }
        };
        Ok(match self {
            TypeFilter::Any => (0, 0),
            TypeFilter::Exact(t) => (positive(t)?, 0),
            TypeFilter::UpTo(t) => (-positive(t)?, 0),
            TypeFilter::Except(t) => (positive(t)?, libc::MSG_EXCEPT),
        })
    }

    /// The filter the command line writes as `--type N` (N may be 0 or negative) and
    /// `--except`.
    pub fn from_msgtyp(t: i64, except: bool) -> Result<Self> {
        Ok(match (t, except) {
            (0, false) => TypeFilter::Any,
            (t, false) if t > 0 => TypeFilter::Exact(t),
            (t, false) => TypeFilter::UpTo(t.checked_neg().ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidInput,
                    "choosing message type",
                    format!("{t} has no positive bound"),
                )
            })?),
            (t, true) if t > 0 => TypeFilter::Except(t),
            (t, true) => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    "choosing message type",
                    format!("MSG_EXCEPT needs a positive type, not {t}"),
                ));
            }
        })
    }
}

/// One received message: its type and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg {
    /// The message type.
    pub mtype: i64,
    /// Bytes written into the buffer.
    pub len: usize,
}

/// A queue's state (`msgctl(IPC_STAT)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MsgStat {
    /// Messages in the queue.
    pub msgs: u64,
    /// Bytes in the queue.
    pub bytes: u64,
    /// The most bytes the queue may hold (`msg_qbytes`).
    pub max_bytes: u64,
    /// Pid of the last `msgsnd`.
    pub last_send_pid: i32,
    /// Pid of the last `msgrcv`.
    pub last_recv_pid: i32,
    /// Time of the last `msgsnd` (seconds since the epoch; 0: never).
    pub send_time: i64,
    /// Time of the last `msgrcv`.
    pub recv_time: i64,
    /// Time of creation or the last `IPC_SET`.
    pub change_time: i64,
    /// Permission bits.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Creator uid.
    pub creator_uid: u32,
}

/// A System V message queue. The handle that created it removes it on drop unless
/// [`persist`](SysvMq::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct SysvMq {
    id: i32,
    key: SysvKey,
    owner: bool,
}

/// The largest message the kernel accepts (`/proc/sys/kernel/msgmax`, 8192 by default).
pub fn msgmax() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192)
}

impl SysvMq {
    /// `msgget(key, IPC_CREAT | IPC_EXCL | mode)`: a new queue this handle owns. Fails with
    /// EEXIST if the key is taken.
    /// See [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html).
    pub fn create(key: SysvKey, mode: u32) -> Result<Self> {
        crate::shm::check_mode("creating System V message queue", mode)?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | (mode & 0o777) as libc::c_int;
        // SAFETY: msgget takes integers only.
        let id = unsafe { libc::msgget(key.raw(), flags) };
        if id == -1 {
            return Err(last_os("creating System V message queue with key", key)
                .hint_if(
                    Errno::EXIST,
                    "the key is taken: open it instead, or remove it (ipcrm -Q KEY)",
                )
                .hint_if(
                    Errno::NOSPC,
                    "the system's queue limit is reached (kernel.msgmni): see `ipckit limits`",
                ));
        }
        Ok(SysvMq {
            id,
            key,
            owner: true,
        })
    }

    /// `msgget(key, 0)`: an existing queue. Never removes it.
    pub fn open(key: SysvKey) -> Result<Self> {
        if key == SysvKey::Private {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "opening System V message queue",
                "a private queue cannot be opened by key",
            )
            .hint("open it by id (ipcs -q shows it)"));
        }
        // SAFETY: msgget takes integers only.
        let id = unsafe { libc::msgget(key.raw(), 0) };
        if id == -1 {
            return Err(
                last_os("opening System V message queue with key", key).hint_if(
                    Errno::NOENT,
                    "no queue has that key: create it first (ipckit send --create)",
                ),
            );
        }
        Ok(SysvMq {
            id,
            key,
            owner: false,
        })
    }

    /// An existing queue by id (as `ipcs -q` shows it). Checked with `IPC_STAT`. Never removes it.
    pub fn open_id(id: i32) -> Result<Self> {
        let q = SysvMq {
            id,
            key: SysvKey::Private,
            owner: false,
        };
        let st = q.raw_stat()?;
        Ok(SysvMq {
            key: SysvKey::from_raw(st.msg_perm.__key),
            ..q
        })
    }

    /// How errors name it: "id N (key K)".
    fn label(&self) -> String {
        format!("id {} (key {})", self.id, self.key)
    }

    /// The queue id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was found or made by.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// Keeps the queue after this handle is dropped.
    pub fn persist(&mut self) {
        self.owner = false;
    }

    /// `msgctl(IPC_RMID)`: removes the queue now; waiting senders and receivers get EIDRM.
    /// The handle no longer owns it (its drop removes nothing, so a reused id is safe).
    /// See [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    pub fn remove(&mut self) -> Result<()> {
        self.owner = false;
        // SAFETY: IPC_RMID reads no buffer.
        if unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
            return Err(last_os("removing System V message queue", self.label()));
        }
        Ok(())
    }

    fn raw_stat(&self) -> Result<libc::msqid_ds> {
        // SAFETY: all-zero is a valid msqid_ds.
        let mut ds: libc::msqid_ds = unsafe { std::mem::zeroed() };
        // SAFETY: `ds` is writable and of the type IPC_STAT fills.
        if unsafe { libc::msgctl(self.id, libc::IPC_STAT, &mut ds) } == -1 {
            return Err(last_os("reading System V message queue", self.label())
                .hint_if(Errno::INVAL, "no queue has that id (any more)"));
        }
        Ok(ds)
    }

    /// `msgctl(IPC_STAT)`: counts, limits, last users and times.
    // The msqid_ds field types differ between targets: the casts are for the others.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(&self) -> Result<MsgStat> {
        let ds = self.raw_stat()?;
        Ok(MsgStat {
            msgs: ds.msg_qnum as u64,
            bytes: ds.__msg_cbytes as u64,
            max_bytes: ds.msg_qbytes as u64,
            last_send_pid: ds.msg_lspid,
            last_recv_pid: ds.msg_lrpid,
            send_time: ds.msg_stime,
            recv_time: ds.msg_rtime,
            change_time: ds.msg_ctime,
            mode: ds.msg_perm.mode as u32 & 0o777,
            uid: ds.msg_perm.uid,
            creator_uid: ds.msg_perm.cuid,
        })
    }

    /// `msgctl(IPC_SET)` of `msg_qbytes`: the most bytes the queue may hold. Raising it past
    /// `/proc/sys/kernel/msgmnb` needs CAP_SYS_RESOURCE.
    pub fn set_max_bytes(&self, bytes: u64) -> Result<()> {
        let mut ds = self.raw_stat()?;
        ds.msg_qbytes = bytes as _;
        // SAFETY: `ds` is a valid msqid_ds read by IPC_STAT with one field changed.
        if unsafe { libc::msgctl(self.id, libc::IPC_SET, &mut ds) } == -1 {
            return Err(
                last_os("setting max bytes of System V message queue", self.label()).hint_if(
                    Errno::PERM,
                    "over kernel.msgmnb: raising it past that needs CAP_SYS_RESOURCE",
                ),
            );
        }
        Ok(())
    }

    /// One `msgsnd`. `Ok(false)` when `nowait` and the queue is full.
    fn send_once(&self, mtype: i64, data: &[u8], nowait: bool) -> Result<bool> {
        if mtype <= 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "sending on System V message queue",
                format!("{mtype} is not a message type: types are positive"),
            ));
        }
        let mut buf = msgbuf(data.len());
        buf[0] = mtype as libc::c_long;
        // SAFETY: `buf` has room for the type word and `data.len()` bytes after it.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr(),
                buf.as_mut_ptr().add(1).cast::<u8>(),
                data.len(),
            )
        };
        let flags = if nowait { libc::IPC_NOWAIT } else { 0 };
        loop {
            // SAFETY: `buf` holds a c_long type then `data.len()` bytes, as msgsnd reads it.
            if unsafe { libc::msgsnd(self.id, buf.as_ptr().cast(), data.len(), flags) } == 0 {
                return Ok(true);
            }
            let e = last_os("sending on System V message queue", self.label());
            match e.errno() {
                Some(Errno::INTR) => continue,
                Some(Errno::AGAIN) if nowait => return Ok(false),
                _ => {
                    return Err(e
                        .hint_if(
                            Errno::INVAL,
                            "the message is larger than kernel.msgmax, or the queue is gone",
                        )
                        .hint_if(Errno::IDRM, "the queue was removed")
                        .hint_if(Errno::ACCESS, "no write permission on the queue"));
                }
            }
        }
    }

    /// `msgsnd`: sends a message of type `mtype` (> 0), waiting for room as long as it takes.
    /// See [msgsnd(2)](https://man7.org/linux/man-pages/man2/msgsnd.2.html).
    pub fn send(&self, mtype: i64, data: &[u8]) -> Result<()> {
        self.send_once(mtype, data, false).map(drop)
    }

    /// Sends without waiting (`IPC_NOWAIT`): `Ok(false)` when the queue is full.
    pub fn try_send(&self, mtype: i64, data: &[u8]) -> Result<bool> {
        self.send_once(mtype, data, true)
    }

    /// Sends, waiting at most `timeout` (`None`: for ever) for room. `Ok(false)` on timeout.
    pub fn send_timeout(&self, mtype: i64, data: &[u8], timeout: Option<Duration>) -> Result<bool> {
        let Some(timeout) = timeout else {
            return self.send_once(mtype, data, false);
        };
        let sent = poll::with_backoff(poll::Deadline::from_timeout(Some(timeout)), || {
            Ok(self.send_once(mtype, data, true)?.then_some(()))
        })?;
        Ok(sent.is_some())
    }

    /// One `msgrcv` into `buf`. `Ok(None)` when `nowait` and nothing matches.
    // c_long is i64 only on 64-bit targets: the cast is for the others.
    #[allow(clippy::unnecessary_cast)]
    fn recv_once(
        &self,
        buf: &mut [u8],
        filter: TypeFilter,
        truncate: bool,
        nowait: bool,
    ) -> Result<Option<Msg>> {
        let (msgtyp, mut flags) = filter.raw()?;
        if truncate {
            flags |= libc::MSG_NOERROR;
        }
        if nowait {
            flags |= libc::IPC_NOWAIT;
        }
        let mut raw = msgbuf(buf.len());
        loop {
            // SAFETY: `raw` has room for the type word and `buf.len()` bytes.
            let n =
                unsafe { libc::msgrcv(self.id, raw.as_mut_ptr().cast(), buf.len(), msgtyp, flags) };
            if n >= 0 {
                let n = n as usize;
                // SAFETY: the kernel wrote `n` <= buf.len() bytes after the type word.
                unsafe {
                    std::ptr::copy_nonoverlapping(
                        raw.as_ptr().add(1).cast::<u8>(),
                        buf.as_mut_ptr(),
                        n,
                    )
                };
                return Ok(Some(Msg {
                    mtype: raw[0] as i64,
                    len: n,
                }));
            }
            let e = last_os("receiving on System V message queue", self.label());
            match e.errno() {
                Some(Errno::INTR) => continue,
                Some(Errno::NOMSG) if nowait => return Ok(None),
                Some(Errno::TOOBIG) => {
                    return Err(Error::new(
                        ErrorKind::Truncated,
                        "receiving on System V message queue",
                        format!("the next message is larger than the {}-byte buffer; it stays in the queue", buf.len()),
                    )
                    .object(self.label())
                    .hint("receive into a larger buffer, or ask for truncation (MSG_NOERROR)"));
                }
                _ => {
                    return Err(e
                        .hint_if(Errno::IDRM, "the queue was removed")
                        .hint_if(Errno::ACCESS, "no read permission on the queue"));
                }
            }
        }
    }

    /// `msgrcv`: receives the first message `filter` picks, waiting as long as it takes.
    /// See [msgrcv(2)](https://man7.org/linux/man-pages/man2/msgrcv.2.html). A message
    /// larger than `buf` is an error (and stays queued) unless `truncate`.
    pub fn recv(&self, buf: &mut [u8], filter: TypeFilter, truncate: bool) -> Result<Msg> {
        self.recv_once(buf, filter, truncate, false)?
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Os,
                    "receiving on System V message queue",
                    "no message",
                )
            })
    }

    /// Receives without waiting (`IPC_NOWAIT`): `Ok(None)` when nothing matches.
    pub fn try_recv(
        &self,
        buf: &mut [u8],
        filter: TypeFilter,
        truncate: bool,
    ) -> Result<Option<Msg>> {
        self.recv_once(buf, filter, truncate, true)
    }

    /// Receives, waiting at most `timeout` (`None`: for ever). `Ok(None)` on timeout.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        filter: TypeFilter,
        truncate: bool,
        timeout: Option<Duration>,
    ) -> Result<Option<Msg>> {
        match timeout {
            None => self.recv(buf, filter, truncate).map(Some),
            Some(t) => poll::with_backoff(poll::Deadline::from_timeout(Some(t)), || {
                self.recv_once(buf, filter, truncate, true)
            }),
        }
    }
}

impl Drop for SysvMq {
    fn drop(&mut self) {
        if self.owner {
            // SAFETY: IPC_RMID reads no buffer.
            unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
}

impl crate::transport::MessageTransport for SysvMq {
    /// Sends as type 1.
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(1, msg)
    }

    /// Receives any type into a buffer of `msgmax` bytes, so no message can be too large.
    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: crate::poll::Deadline,
    ) -> Result<Option<usize>> {
        buf.clear();
        buf.resize(msgmax(), 0);
        let got = self.recv_timeout(buf, TypeFilter::Any, false, deadline.remaining())?;
        buf.truncate(got.map_or(0, |m| m.len));
        Ok(got.map(|m| m.len))
    }

    fn max_msg_len(&self) -> Option<usize> {
        Some(msgmax())
    }
}

/// A buffer laid out as `struct msgbuf { long mtype; char mtext[len]; }`, aligned for the long.
fn msgbuf(len: usize) -> Vec<libc::c_long> {
    let word = std::mem::size_of::<libc::c_long>();
    vec![0; 1 + len.div_ceil(word)]
}
