//! System V message queues: `msgget(2)`, `msgsnd(2)`, `msgrcv(2)`, `msgctl(2)`.
//! See [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).
//!
//! Every message has a positive type, and a receiver chooses which types it takes
//! ([`TypeFilter`]): any, one exact type, the lowest type up to a bound, or any but one. A
//! queue is found by a [`SysvKey`] and lives until removed (`IPC_RMID`): the creating handle
//! removes it on drop unless [`persist`](SysvMq::persist)ed.
//!
//! System V queues have no descriptor to poll and no timed calls. The blocking forms block in
//! the kernel; the `try_` forms make one `IPC_NOWAIT` call; the `_timeout` and `_deadline`
//! forms retry `IPC_NOWAIT` with a short back-off (1 ms growing to 50 ms) until the deadline.
//! A message larger than the receive buffer is an error of kind
//! [`Truncated`](ErrorKind::Truncated) that leaves the message in the queue, unless the caller
//! asks for truncation (`MSG_NOERROR`).
//!
//! No maintained Rust crate wraps System V IPC, so these are libc calls, each in one small
//! wrapper with its `SAFETY` note.
//!
//! ```
//! use ipckit::Access;
//! use ipckit::mq::sysv::{self, SysvMq, TypeFilter};
//! use ipckit::name::SysvKey;
//! use std::time::Duration;
//! let q = SysvMq::create(SysvKey::Private, &sysv::Options::default().mode(0o600)).unwrap();
//! q.send(b"three", 3).unwrap();
//! q.send(b"one", 1).unwrap();
//!
//! // Another process given the id would do this.
//! let rx = SysvMq::open_id(q.id(), Access::ReadOnly).unwrap();
//! let mut buf = [0u8; 64];
//! // The lowest type up to 5 comes first: type 1.
//! let m = rx.try_recv(&mut buf, TypeFilter::UpTo(5), false).unwrap().unwrap();
//! assert_eq!((m.mtype, &buf[..m.len]), (1, &b"one"[..]));
//! let m = rx.recv_timeout(&mut buf, TypeFilter::Any, false, Duration::from_secs(1)).unwrap();
//! assert_eq!(m.map(|m| m.mtype), Some(3));
//! assert!(rx.try_recv(&mut buf, TypeFilter::Any, false).unwrap().is_none());
//! q.remove().unwrap(); // or drop it: the creator removes the queue
//! ```

use std::time::{Duration, SystemTime};

use crate::error::{Errno, Error, ErrorKind, Result, last_os};
use crate::name::SysvKey;
use crate::object::{Access, Existing, Ownership, Pid, check_existing, check_mode, ipc_time};
use crate::poll::{self, Deadline};

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

/// A queue's state (`msgctl(IPC_STAT)`). The facts System V segments, queues and semaphore
/// sets share have the same names in [`ShmStat`](crate::shm::sysv::ShmStat) and the
/// semaphore set's stat: `mode`, `uid`, `gid`, `cuid`, `cgid`, `ctime`, `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsgStat {
    /// Messages in the queue (`msg_qnum`).
    pub msgs: u64,
    /// Bytes in the queue (`msg_cbytes`).
    pub bytes: u64,
    /// The most bytes the queue may hold (`msg_qbytes`).
    pub max_bytes: u64,
    /// Pid of the last `msgsnd` (0: none yet).
    pub lspid: Pid,
    /// Pid of the last `msgrcv` (0: none yet).
    pub lrpid: Pid,
    /// Time of the last `msgsnd`, `None` if never.
    pub stime: Option<SystemTime>,
    /// Time of the last `msgrcv`, `None` if never.
    pub rtime: Option<SystemTime>,
    /// Time of creation or of the last `IPC_SET`.
    pub ctime: SystemTime,
    /// Permission bits (0o777).
    pub mode: u32,
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Creator's user id.
    pub cuid: u32,
    /// Creator's group id.
    pub cgid: u32,
    /// The key; [`SysvKey::Private`] for a private queue.
    pub key: SysvKey,
}

/// How [`SysvMq::create`] makes a queue: its mode (`0o600` by default), and whether
/// [`SysvMq::open_or_create`] may take an existing queue that is not this user's own
/// ([`trust_existing`](crate::object::ModeOptions::trust_existing)). The byte limit is
/// the system's (`kernel.msgmnb`) and is changed after creation with
/// [`set_max_bytes`](SysvMq::set_max_bytes).
pub use crate::object::ModeOptions as Options;

/// A System V message queue. The handle that created it removes it on drop unless
/// [`persist`](SysvMq::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct SysvMq {
    id: i32,
    key: SysvKey,
    access: Access,
    owner: Ownership,
}

/// The largest message the kernel accepts: `/proc/sys/kernel/msgmax` read (8192, its
/// default, when it cannot be read).
pub fn msgmax() -> usize {
    std::fs::read_to_string("/proc/sys/kernel/msgmax")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(8192)
}

impl SysvMq {
    /// `msgget(key, IPC_CREAT | IPC_EXCL | mode)`: a new queue this handle owns, to send and
    /// receive. The mode is exact (System V IPC has no umask). Fails with EEXIST if a queue has
    /// the key; [`SysvKey::Private`] always makes a new one.
    /// See [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html).
    pub fn create(key: SysvKey, opts: &Options) -> Result<Self> {
        const OP: &str = "creating System V message queue with key";
        check_mode(OP, opts.mode).map_err(|e| e.object(key))?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | opts.mode as libc::c_int;
        // SAFETY: msgget takes integers only.
        let id = unsafe { libc::msgget(key.raw(), flags) };
        if id == -1 {
            return Err(last_os(OP, key)
                .hint_if(
                    Errno::EXIST,
                    format!("the key is taken: open it instead, or remove it (`ipckit rm sysv-mq:{key}`)"),
                )
                .hint_if(
                    Errno::NOSPC,
                    "the system's queue limit is reached (kernel.msgmni): see `ipckit limits`",
                ));
        }
        Ok(SysvMq {
            id,
            key,
            access: Access::ReadWrite,
            owner: Ownership::created(),
        })
    }

    /// [`open`](SysvMq::open) with `access` if a queue has the key and it passes
    /// [`check_existing`] (owned and created by this user, no wider than `opts`' mode), else
    /// [`create`](SysvMq::create) with `opts`: the handle then owns the new queue (removes it
    /// on drop, unless [`persist`](SysvMq::persist)ed) and has it `ReadWrite`. The check
    /// reads the queue found (`msgctl(IPC_STAT)`: `msg_perm.uid`, `cuid` and `mode`); one whose
    /// owner cannot be read (IPC_STAT needs read permission) is refused too.
    /// [`Options::trust_existing`](crate::object::ModeOptions::trust_existing) skips the check.
    /// [`SysvKey::Private`] always makes a new queue.
    /// See [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html),
    /// [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    ///
    /// ```
    /// use ipckit::Access;
    /// use ipckit::mq::sysv::{self, SysvMq};
    /// use ipckit::name::SysvKey;
    /// let q = SysvMq::open_or_create(SysvKey::Private, Access::WriteOnly, &sysv::Options::default())
    ///     .unwrap();
    /// q.send(b"hi", 1).unwrap(); // made: removed on drop
    /// ```
    pub fn open_or_create(key: SysvKey, access: Access, opts: &Options) -> Result<Self> {
        const OP: &str = "opening System V message queue with key";
        if key == SysvKey::Private {
            return SysvMq::create(key, opts);
        }
        crate::object::open_or_create(
            || SysvMq::open(key, access),
            || SysvMq::create(key, opts),
            |q| {
                if opts.trust_existing {
                    return Ok(());
                }
                let ds = q.raw_stat().map_err(|e| {
                    e.hint_if(
                        Errno::ACCESS,
                        "its owner and mode cannot be read (IPC_STAT needs read permission), so it is not taken for this user's: pass --trust-existing (Options::trust_existing(true)) to use it anyway",
                    )
                })?;
                let found = Existing {
                    uid: ds.msg_perm.uid,
                    cuid: ds.msg_perm.cuid,
                    mode: ds.msg_perm.mode as u32 & 0o777,
                };
                check_existing(OP, key, &format!("sysv-mq:{key}"), found, opts.mode, false)
            },
        )
    }

    /// `msgget(key, perms)`: the existing queue with this key, the kernel checking that this
    /// user may have `access` to it (`perms` is `0o400`, `0o200` or `0o600`). A handle sends
    /// only if `access` can write and receives only if it can read. Never removes it.
    /// Whoever made it: the mode is the kernel's only check, so a world-writable object of another user is joined too (see [`crate::object`]); [`open_or_create`](SysvMq::open_or_create) takes only this user's.
    /// See [msgget(2)](https://man7.org/linux/man-pages/man2/msgget.2.html).
    pub fn open(key: SysvKey, access: Access) -> Result<Self> {
        if key == SysvKey::Private {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "opening System V message queue",
                "a private queue cannot be opened by key",
            )
            .hint("open it by its id (`ipckit ls --kind sysv-mq` shows it)"));
        }
        // SAFETY: msgget takes integers only.
        let id = unsafe { libc::msgget(key.raw(), access.ipc_perms()) };
        if id == -1 {
            return Err(
                last_os("opening System V message queue with key", key)
                    .hint_if(
                        Errno::NOENT,
                        "no queue has that key: create it first (ipckit send --create)",
                    )
                    .hint_if(
                        Errno::ACCESS,
                        "its mode does not let this user have the access asked for: ask its owner to widen the mode",
                    ),
            );
        }
        Ok(SysvMq {
            id,
            key,
            access,
            owner: Ownership::joined(),
        })
    }

    /// `msgctl(id, IPC_STAT)`: the existing queue with this id (as `ipcs -q` shows it),
    /// checked to exist. Never removes it. `IPC_STAT` needs read permission, so a queue this
    /// user may only write is taken on trust for `Access::WriteOnly` (its key then reads as
    /// [`SysvKey::Private`]); every send is checked by the kernel anyway.
    /// See [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    pub fn open_id(id: i32, access: Access) -> Result<Self> {
        let mut q = SysvMq {
            id,
            key: SysvKey::Private,
            access,
            owner: Ownership::joined(),
        };
        match q.raw_stat() {
            Ok(st) => q.key = SysvKey::from_raw(st.msg_perm.__key),
            Err(e) if e.errno() == Some(Errno::ACCESS) && !access.can_read() => {}
            Err(e) => return Err(e),
        }
        Ok(q)
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

    /// What the handle may do: `ReadWrite` for a creator, what [`open`](SysvMq::open) was
    /// given otherwise.
    pub fn access(&self) -> Access {
        self.access
    }

    /// Keeps the queue after this handle is dropped: the one way to let it outlive its
    /// creator. Remove it later with [`remove`](SysvMq::remove) on a handle from
    /// [`open`](SysvMq::open) or [`open_id`](SysvMq::open_id), or `ipcrm -q ID`.
    #[must_use]
    pub fn persist(mut self) -> Self {
        self.owner.release();
        self
    }

    /// `msgctl(id, IPC_RMID)`: removes the queue now, whoever created it (a handle from
    /// [`open`](SysvMq::open) or [`open_id`](SysvMq::open_id) removes it too: that is how a
    /// queue nobody holds is removed); waiting senders and receivers get EIDRM.
    /// See [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    pub fn remove(mut self) -> Result<()> {
        // Whatever happens, the drop removes nothing more: the id may even be reused later.
        self.owner.release();
        // SAFETY: IPC_RMID reads no buffer.
        if unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
            return Err(last_os("removing System V message queue", self.label())
                .hint_if(Errno::INVAL, "no queue has that id (any more)")
                .hint_if(
                    Errno::PERM,
                    "only the queue's owner, creator or a privileged process can remove it",
                ));
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

    /// `msgctl(id, IPC_STAT)`: counts, limits, last users, times, mode and owners.
    /// See [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    // The msqid_ds field types differ between targets: the casts are for the others.
    #[allow(clippy::unnecessary_cast)]
    pub fn stat(&self) -> Result<MsgStat> {
        let ds = self.raw_stat()?;
        Ok(MsgStat {
            msgs: ds.msg_qnum as u64,
            bytes: ds.__msg_cbytes as u64,
            max_bytes: ds.msg_qbytes as u64,
            lspid: ds.msg_lspid as Pid,
            lrpid: ds.msg_lrpid as Pid,
            stime: ipc_time(ds.msg_stime),
            rtime: ipc_time(ds.msg_rtime),
            ctime: ipc_time(ds.msg_ctime).unwrap_or(SystemTime::UNIX_EPOCH),
            mode: ds.msg_perm.mode as u32 & 0o777,
            uid: ds.msg_perm.uid,
            gid: ds.msg_perm.gid,
            cuid: ds.msg_perm.cuid,
            cgid: ds.msg_perm.cgid,
            key: SysvKey::from_raw(ds.msg_perm.__key),
        })
    }

    /// `msgctl(id, IPC_SET)` of `msg_qbytes`: the most bytes the queue may hold. Raising it past
    /// `/proc/sys/kernel/msgmnb` needs `CAP_SYS_RESOURCE`: that limit binds any process
    /// without it, root in a container included.
    /// See [msgctl(2)](https://man7.org/linux/man-pages/man2/msgctl.2.html).
    pub fn set_max_bytes(&self, bytes: u64) -> Result<()> {
        let mut ds = self.raw_stat()?;
        ds.msg_qbytes = bytes as _;
        // SAFETY: `ds` is a valid msqid_ds read by IPC_STAT with one field changed.
        if unsafe { libc::msgctl(self.id, libc::IPC_SET, &mut ds) } == -1 {
            return Err(
                last_os("setting max bytes of System V message queue", self.label()).hint_if(
                    Errno::PERM,
                    "over kernel.msgmnb: raising it past that needs CAP_SYS_RESOURCE (root in a container included)",
                ),
            );
        }
        Ok(())
    }

    /// Refuses what the handle was not opened for.
    fn check_access(&self, op: &'static str, write: bool) -> Result<()> {
        let (ok, asked) = if write {
            (self.access.can_write(), "sending")
        } else {
            (self.access.can_read(), "receiving")
        };
        if ok {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::InvalidInput,
            op,
            format!("the queue was opened {:?}: no {asked}", self.access),
        )
        .object(self.label())
        .hint("open it with the access needed (Access::ReadWrite for both)"))
    }

    /// One `msgsnd`. `Ok(false)` when `nowait` and the queue is full.
    fn send_once(&self, data: &[u8], mtype: i64, nowait: bool) -> Result<bool> {
        const OP: &str = "sending on System V message queue";
        self.check_access(OP, true)?;
        if mtype <= 0 {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
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
            let e = last_os(OP, self.label());
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

    /// `msgsnd(id, {mtype, msg}, len, IPC_NOWAIT)`, retried with a back-off until `deadline`
    /// (a plain blocking `msgsnd` for [`Deadline::NEVER`]): sends `msg` as type `mtype`
    /// (> 0). `Ok(false)` if the queue stayed full.
    /// See [msgsnd(2)](https://man7.org/linux/man-pages/man2/msgsnd.2.html).
    pub fn send_deadline(
        &self,
        msg: &[u8],
        mtype: i64,
        deadline: impl Into<Deadline>,
    ) -> Result<bool> {
        let deadline = deadline.into();
        if deadline == Deadline::NEVER {
            return self.send_once(msg, mtype, false);
        }
        let sent = poll::with_backoff(deadline, || {
            Ok(self.send_once(msg, mtype, true)?.then_some(()))
        })?;
        Ok(sent.is_some())
    }

    /// `msgsnd`, as [`send_deadline`](SysvMq::send_deadline), waiting at most `timeout` for
    /// room: `Ok(false)` if the queue stayed full.
    pub fn send_timeout(&self, msg: &[u8], mtype: i64, timeout: Duration) -> Result<bool> {
        self.send_deadline(msg, mtype, Deadline::after(timeout))
    }

    /// `msgsnd(..., IPC_NOWAIT)` once: `Ok(false)` when the queue is full.
    /// See [msgsnd(2)](https://man7.org/linux/man-pages/man2/msgsnd.2.html).
    pub fn try_send(&self, msg: &[u8], mtype: i64) -> Result<bool> {
        self.send_deadline(msg, mtype, Deadline::now())
    }

    /// `msgsnd(id, {mtype, msg}, len, 0)`: sends `msg` as type `mtype` (> 0), blocking in
    /// the kernel for room as long as it takes.
    /// See [msgsnd(2)](https://man7.org/linux/man-pages/man2/msgsnd.2.html).
    pub fn send(&self, msg: &[u8], mtype: i64) -> Result<()> {
        self.send_deadline(msg, mtype, Deadline::NEVER).map(drop)
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
        self.check_access("receiving on System V message queue", false)?;
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

    /// `msgrcv(id, buf, len, msgtyp, IPC_NOWAIT [| MSG_NOERROR | MSG_EXCEPT])`, retried with
    /// a back-off until `deadline` (a plain blocking `msgrcv` for [`Deadline::NEVER`]): the
    /// first message `filter` picks, into `buf`; `Ok(None)` if none came in time. A message
    /// larger than `buf` is an error of kind [`Truncated`](ErrorKind::Truncated) (and stays
    /// queued) unless `truncate`.
    /// See [msgrcv(2)](https://man7.org/linux/man-pages/man2/msgrcv.2.html).
    pub fn recv_deadline(
        &self,
        buf: &mut [u8],
        filter: TypeFilter,
        truncate: bool,
        deadline: impl Into<Deadline>,
    ) -> Result<Option<Msg>> {
        let deadline = deadline.into();
        if deadline == Deadline::NEVER {
            return self.recv_once(buf, filter, truncate, false);
        }
        poll::with_backoff(deadline, || self.recv_once(buf, filter, truncate, true))
    }

    /// `msgrcv`, as [`recv_deadline`](SysvMq::recv_deadline), waiting at most `timeout`:
    /// `Ok(None)` if no message `filter` picks came in time.
    pub fn recv_timeout(
        &self,
        buf: &mut [u8],
        filter: TypeFilter,
        truncate: bool,
        timeout: Duration,
    ) -> Result<Option<Msg>> {
        self.recv_deadline(buf, filter, truncate, Deadline::after(timeout))
    }

    /// `msgrcv(..., IPC_NOWAIT)` once: `Ok(None)` when nothing matches.
    /// See [msgrcv(2)](https://man7.org/linux/man-pages/man2/msgrcv.2.html).
    pub fn try_recv(
        &self,
        buf: &mut [u8],
        filter: TypeFilter,
        truncate: bool,
    ) -> Result<Option<Msg>> {
        self.recv_deadline(buf, filter, truncate, Deadline::now())
    }

    /// `msgrcv(id, buf, len, msgtyp, 0 [| MSG_NOERROR | MSG_EXCEPT])`: the first message
    /// `filter` picks, blocking in the kernel as long as it takes.
    /// See [msgrcv(2)](https://man7.org/linux/man-pages/man2/msgrcv.2.html).
    pub fn recv(&self, buf: &mut [u8], filter: TypeFilter, truncate: bool) -> Result<Msg> {
        loop {
            if let Some(m) = self.recv_deadline(&mut *buf, filter, truncate, Deadline::NEVER)? {
                return Ok(m);
            }
        }
    }
}

impl Drop for SysvMq {
    fn drop(&mut self) {
        if self.owner.owns() {
            // SAFETY: IPC_RMID reads no buffer.
            unsafe { libc::msgctl(self.id, libc::IPC_RMID, std::ptr::null_mut()) };
        }
    }
}

impl crate::transport::MessageTransport for SysvMq {
    /// Sends as type 1.
    fn send_msg(&mut self, msg: &[u8]) -> Result<()> {
        self.send(msg, 1)
    }

    /// Sends as type 1.
    fn send_msg_deadline(&mut self, msg: &[u8], deadline: crate::poll::Deadline) -> Result<bool> {
        self.send_deadline(msg, 1, deadline)
    }

    /// Receives any type into a buffer of `msgmax` bytes, so no message can be too large.
    fn recv_msg_deadline(
        &mut self,
        buf: &mut Vec<u8>,
        deadline: crate::poll::Deadline,
    ) -> Result<Option<usize>> {
        buf.clear();
        buf.resize(msgmax(), 0);
        let got = self.recv_deadline(&mut buf[..], TypeFilter::Any, false, deadline)?;
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
