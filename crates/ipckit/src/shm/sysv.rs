//! System V shared memory: `shmget(2)`, `shmat(2)`, `shmdt(2)`, `shmctl(2)`.
//! See [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).
//!
//! A segment is found by a [`SysvKey`] (or, for [`SysvKey::Private`], only by its id, which a
//! child can be given) and lives in the kernel, not in any filesystem, until it is removed:
//! `ipcs -m` lists the segments. The handle that created a segment removes it on drop
//! (`IPC_RMID`) unless [`persist`](SysvShm::persist)ed; a handle that opened it never does.
//!
//! Removal is deferred: `IPC_RMID` marks the segment, which stays usable by every process
//! attached to it and is destroyed when the last one detaches. So a creator that removes its
//! segment at once, after its peers attached, leaves nothing behind even if they all crash.
//! On Linux a marked segment can still be attached by id until then ([`SysvShm::open_id`]).
//!
//! An attachment is a [`Mapping`] (detached with `shmdt` on drop), which never gives safe code
//! a reference into memory another process may change: see [`crate::shm::mapping`].
//!
//! libc is used here: rustix has no System V IPC.
//!
//! ```
//! use ipckit::Access;
//! use ipckit::name::SysvKey;
//! use ipckit::shm::sysv::{self, SysvShm};
//! let seg = SysvShm::create(SysvKey::Private, &sysv::Options::new(4096).mode(0o600)).unwrap();
//! let a = seg.attach().unwrap();
//! a.write_at(0, b"hello").unwrap();
//!
//! // Another process given the id would do this.
//! let other = SysvShm::open_id(seg.id(), Access::ReadOnly).unwrap();
//! let b = other.attach().unwrap();
//! let mut buf = [0u8; 5];
//! b.read_at(0, &mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//! assert_eq!(seg.stat().unwrap().nattch, 2);
//!
//! // Removal waits for the last attachment, then the segment is gone.
//! seg.remove().unwrap();
//! drop((a, b, other));
//! ```

use std::ptr::NonNull;
use std::time::SystemTime;

use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Result};
use crate::name::SysvKey;
use crate::object::{Access, Existing, Ownership, Pid, check_existing, ipc_time as time};
use crate::shm::check_mode;
use crate::shm::mapping::Mapping;

/// `SHM_DEST` (Linux): the segment is marked for removal when its last attachment goes.
const SHM_DEST: u32 = 0o1000;

/// How [`SysvShm::create`] makes a segment: its size and mode (the one
/// [`shm::Options`](crate::shm::Options) of both shared-memory kinds).
pub use super::Options;

/// A System V shared-memory segment, known by its id. The handle that created it removes it
/// (`IPC_RMID`) on drop unless [`persist`](SysvShm::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct SysvShm {
    id: i32,
    key: SysvKey,
    access: Access,
    owner: Ownership,
}

/// A segment's state (`shmctl(IPC_STAT)`). The facts System V segments, queues and semaphore
/// sets share have the same names in [`MsgStat`](crate::mq::sysv::MsgStat) and the
/// semaphore set's stat: `mode`, `uid`, `gid`, `cuid`, `cgid`, `ctime`, `key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShmStat {
    /// Size in bytes, fixed at creation (`shm_segsz`).
    pub len: usize,
    /// Attachments now, over all processes.
    pub nattch: u64,
    /// The creator's pid.
    pub cpid: Pid,
    /// The pid of the last `shmat` or `shmdt`.
    pub lpid: Pid,
    /// Time of the last `shmat`, `None` if never attached.
    pub atime: Option<SystemTime>,
    /// Time of the last `shmdt`, `None` if never detached.
    pub dtime: Option<SystemTime>,
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
    /// The key; [`SysvKey::Private`] for a private segment and for one marked for removal.
    pub key: SysvKey,
    /// True once `IPC_RMID` marked it: it goes when the last attachment does.
    pub removed: bool,
}

// The libc calls, each in one small wrapper. They return rustix's Errno so errors carry it.

use crate::error::last_errno as errno;

fn shmget(key: i32, size: usize, flags: i32) -> rustix::io::Result<i32> {
    // SAFETY: shmget takes no pointers; any argument values are safe to pass.
    let id = unsafe { libc::shmget(key, size, flags) };
    if id == -1 { Err(errno()) } else { Ok(id) }
}

fn shm_stat(id: i32) -> rustix::io::Result<libc::shmid_ds> {
    // SAFETY: shmid_ds is plain integers; all zeroes is a valid value.
    let mut ds: libc::shmid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: `ds` is a valid, writable shmid_ds for IPC_STAT to fill.
    if unsafe { libc::shmctl(id, libc::IPC_STAT, &mut ds) } == -1 {
        return Err(errno());
    }
    Ok(ds)
}

fn shm_rmid(id: i32) -> rustix::io::Result<()> {
    // SAFETY: IPC_RMID reads no buffer, so a null pointer is allowed.
    if unsafe { libc::shmctl(id, libc::IPC_RMID, std::ptr::null_mut()) } == -1 {
        return Err(errno());
    }
    Ok(())
}

fn shmat(id: i32, access: Access) -> rustix::io::Result<NonNull<u8>> {
    let flags = if access.can_write() {
        0
    } else {
        libc::SHM_RDONLY
    };
    // SAFETY: a null address lets the kernel choose where to attach, so no existing memory of
    // this process is replaced; the new attachment is owned by the caller.
    let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if p as isize == -1 {
        return Err(errno());
    }
    NonNull::new(p.cast()).ok_or(Errno::FAULT)
}

fn stat_of(ds: &libc::shmid_ds) -> ShmStat {
    let key = ds.shm_perm.__key;
    ShmStat {
        len: ds.shm_segsz,
        // shmatt_t is 32 bits on some targets.
        #[allow(clippy::unnecessary_cast)]
        nattch: ds.shm_nattch as u64,
        cpid: ds.shm_cpid as Pid,
        lpid: ds.shm_lpid as Pid,
        atime: time(ds.shm_atime),
        dtime: time(ds.shm_dtime),
        ctime: time(ds.shm_ctime).unwrap_or(SystemTime::UNIX_EPOCH),
        mode: ds.shm_perm.mode as u32 & 0o777,
        uid: ds.shm_perm.uid,
        gid: ds.shm_perm.gid,
        cuid: ds.shm_perm.cuid,
        cgid: ds.shm_perm.cgid,
        key: SysvKey::from_raw(key),
        removed: ds.shm_perm.mode as u32 & SHM_DEST != 0,
    }
}

fn no_such_id(e: Error) -> Error {
    e.hint_if(
        Errno::INVAL,
        "no segment has this id: it was removed (and its last attachment went) or never made; `ipcs -m` lists them",
    )
    .hint_if(Errno::IDRM, "the segment was removed")
}

impl SysvShm {
    /// `shmget(key, len, IPC_CREAT | IPC_EXCL | mode)`: a new segment of `len` zeroed bytes
    /// that this handle owns, attached read-write. The mode is exact (System V IPC has no
    /// umask). Fails with EEXIST if a segment has the key; [`SysvKey::Private`] always makes a
    /// new one.
    /// See [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html).
    pub fn create(key: SysvKey, opts: &Options) -> Result<Self> {
        const OP: &str = "creating System V shared memory";
        let Options { len, mode, .. } = *opts;
        let object = format!("key {key} ({len} bytes)");
        check_mode(OP, mode).map_err(|e| e.object(&object))?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as i32;
        let id = shmget(key.raw(), len, flags).map_err(|e| {
            Error::os(OP, e)
                .object(&object)
                .hint_if(
                    Errno::EXIST,
                    format!("a segment has this key: open it instead, or remove it (`ipckit rm sysv-shm:{key}`)"),
                )
                .hint_if(
                    Errno::INVAL,
                    "the size is 0 or over /proc/sys/kernel/shmmax",
                )
                .hint_if(
                    Errno::NOSPC,
                    "too many segments (kernel.shmmni) or pages (kernel.shmall): remove unused ones (ipcs -m)",
                )
        })?;
        Ok(SysvShm {
            id,
            key,
            access: Access::ReadWrite,
            owner: Ownership::created(),
        })
    }

    /// [`open`](SysvShm::open) with `access` if a segment has the key and it passes
    /// [`check_existing`] (owned and created by this user, no wider than `opts`' mode; its
    /// size is its own), else [`create`](SysvShm::create) with `opts`: the handle then owns
    /// the new segment (removes it on drop, unless [`persist`](SysvShm::persist)ed) and has it
    /// `ReadWrite`. The check reads the segment found (`shmctl(IPC_STAT)`: `shm_perm.uid`,
    /// `cuid` and `mode`); one whose owner cannot be read is refused too.
    /// [`Options::trust_existing`] skips the check. [`SysvKey::Private`] always makes a new
    /// segment.
    /// See [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html),
    /// [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    ///
    /// ```
    /// use ipckit::Access;
    /// use ipckit::name::SysvKey;
    /// use ipckit::shm::sysv::{self, SysvShm};
    /// let opts = sysv::Options::new(4096);
    /// let seg = SysvShm::open_or_create(SysvKey::Private, Access::ReadWrite, &opts).unwrap();
    /// assert_eq!(seg.stat().unwrap().len, 4096); // made: removed on drop
    /// ```
    pub fn open_or_create(key: SysvKey, access: Access, opts: &Options) -> Result<Self> {
        const OP: &str = "opening System V shared memory";
        access.readable(OP, format!("key {key}"))?;
        if key == SysvKey::Private {
            return SysvShm::create(key, opts);
        }
        crate::object::open_or_create(
            || SysvShm::open(key, access),
            || SysvShm::create(key, opts),
            |seg| {
                if opts.trust_existing {
                    return Ok(());
                }
                let found = shm_stat(seg.id)
                    .map(|ds| Existing {
                        uid: ds.shm_perm.uid,
                        cuid: ds.shm_perm.cuid,
                        mode: ds.shm_perm.mode as u32 & 0o777,
                    })
                    .map_err(|e| {
                        Error::os(OP, e)
                            .object(format!("key {key}"))
                            .hint_if(
                                Errno::ACCESS,
                                "its owner and mode cannot be read (IPC_STAT needs read permission), so it is not taken for this user's: pass --trust-existing (Options::trust_existing(true)) to use it anyway",
                            )
                    })?;
                check_existing(
                    OP,
                    format!("key {key}"),
                    &format!("sysv-shm:{key}"),
                    found,
                    opts.mode,
                    opts.trust_existing,
                )
            },
        )
    }

    /// `shmget(key, 0, perms)`: the existing segment with this key, the kernel checking that
    /// this user may have `access` to it (`perms` is `0o400` or `0o600`). Never removes it.
    /// Whoever made it: the mode is the kernel's only check, so a world-writable object of another user is joined too (see [`crate::object`]); [`open_or_create`](SysvShm::open_or_create) takes only this user's.
    /// `Access::WriteOnly` is refused ([`InvalidInput`](ErrorKind::InvalidInput)): an
    /// attachment is always readable.
    /// See [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html).
    pub fn open(key: SysvKey, access: Access) -> Result<Self> {
        const OP: &str = "opening System V shared memory";
        access.readable(OP, format!("key {key}"))?;
        if key == SysvKey::Private {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "a private key names no existing segment",
            )
            .object(format!("key {key}"))
            .hint("open a private segment by its id (SysvShm::open_id)"));
        }
        let id = shmget(key.raw(), 0, access.ipc_perms()).map_err(|e| {
            Error::os(OP, e)
                .object(format!("key {key}"))
                .hint_if(
                    Errno::NOENT,
                    "no segment has this key: create it first, and check the key (`ipcs -m` lists them)",
                )
                .hint_if(
                    Errno::ACCESS,
                    "its mode does not let this user have the access asked for: open it read-only, or ask its owner to widen the mode",
                )
        })?;
        Ok(SysvShm {
            id,
            key,
            access,
            owner: Ownership::joined(),
        })
    }

    /// `shmctl(id, IPC_STAT)`: the existing segment with this id (checked to exist and be
    /// readable), to attach with `access`. Never removes it. On Linux this also reaches a
    /// segment already marked for removal, while something is still attached to it.
    /// `Access::WriteOnly` is refused ([`InvalidInput`](ErrorKind::InvalidInput)).
    /// See [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn open_id(id: i32, access: Access) -> Result<Self> {
        const OP: &str = "opening System V shared memory";
        access.readable(OP, format!("id {id}"))?;
        let ds =
            shm_stat(id).map_err(|e| no_such_id(Error::os(OP, e).object(format!("id {id}"))))?;
        Ok(SysvShm {
            id,
            key: stat_of(&ds).key,
            access,
            owner: Ownership::joined(),
        })
    }

    /// The segment id (`shmid`): what `ipcs -m` shows and [`SysvShm::open_id`] takes.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened with.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// How [`attach`](SysvShm::attach) attaches it: `ReadWrite` for a creator, what
    /// [`open`](SysvShm::open) was given otherwise.
    pub fn access(&self) -> Access {
        self.access
    }

    /// `shmat(id, NULL, 0 or SHM_RDONLY)`: attaches the whole segment with the handle's
    /// [`access`](SysvShm::access). The attachment is detached (`shmdt`) when the
    /// [`Mapping`] is dropped, and keeps the segment alive until then, even after this handle
    /// is dropped or the segment removed.
    /// See [shmat(2)](https://man7.org/linux/man-pages/man2/shmat.2.html).
    pub fn attach(&self) -> Result<Mapping> {
        const OP: &str = "attaching System V shared memory";
        let object = format!("id {}", self.id);
        // The size is fixed at creation, so it cannot change between these two calls.
        let len = shm_stat(self.id)
            .map_err(|e| no_such_id(Error::os(OP, e).object(&object)))?
            .shm_segsz;
        let ptr = shmat(self.id, self.access).map_err(|e| {
            no_such_id(Error::os(OP, e).object(&object)).hint_if(
                Errno::ACCESS,
                "its mode does not allow the access asked for: open it read-only, or ask its owner",
            )
        })?;
        // SAFETY: `ptr` is what shmat just returned for this segment of `len` bytes, and only
        // the new Mapping will detach it.
        Ok(unsafe { Mapping::from_shmat(ptr, len, self.access.can_write()) })
    }

    /// `shmctl(id, IPC_STAT)`: size, attachments, pids, times, mode and owners now.
    /// See [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn stat(&self) -> Result<ShmStat> {
        shm_stat(self.id).map(|ds| stat_of(&ds)).map_err(|e| {
            no_such_id(
                Error::os("reading status of System V shared memory", e)
                    .object(format!("id {}", self.id)),
            )
        })
    }

    /// `shmctl(id, IPC_RMID)`: marks the segment for removal, whoever created it (a handle from
    /// [`open`](SysvShm::open) or [`open_id`](SysvShm::open_id) removes it too: that is how
    /// a segment nobody holds is removed). It is destroyed when the last attachment goes (at
    /// once if none is left); until then every process attached keeps using it, its key is
    /// free for a new segment, and `stat().removed` is true.
    /// See [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn remove(mut self) -> Result<()> {
        // Whatever happens, the drop removes nothing more: the id may even be reused later.
        self.owner.release();
        shm_rmid(self.id).map_err(|e| {
            no_such_id(
                Error::os("removing System V shared memory", e).object(format!("id {}", self.id)),
            )
            .hint_if(
                Errno::PERM,
                "only the segment's owner, creator or a privileged process can remove it",
            )
        })
    }

    /// Keeps the segment after this handle is dropped: the one way to let it outlive its
    /// creator. Remove it later with [`remove`](SysvShm::remove) on a handle from
    /// [`open`](SysvShm::open) or [`open_id`](SysvShm::open_id), or `ipcrm -m ID`.
    #[must_use]
    pub fn persist(mut self) -> Self {
        self.owner.release();
        self
    }
}

impl Drop for SysvShm {
    fn drop(&mut self) {
        if self.owner.owns() {
            let _ = shm_rmid(self.id);
        }
    }
}
