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
//! use ipckit::name::SysvKey;
//! use ipckit::shm::sysv::SysvShm;
//! let seg = SysvShm::create(SysvKey::Private, 4096, 0o600).unwrap();
//! let a = seg.attach(true).unwrap();
//! a.write_at(0, b"hello").unwrap();
//!
//! // Another process given the id would do this.
//! let other = SysvShm::open_id(seg.id()).unwrap();
//! let b = other.attach(false).unwrap();
//! let mut buf = [0u8; 5];
//! b.read_at(0, &mut buf).unwrap();
//! assert_eq!(&buf, b"hello");
//! assert_eq!(seg.stat().unwrap().nattch, 2);
//!
//! // The creator's drop removes the segment (at once here, as nothing is attached by then).
//! drop((a, b, other));
//! drop(seg);
//! ```

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use rustix::io::Errno;

use crate::error::{Error, ErrorKind, Result};
use crate::name::SysvKey;
use crate::shm::check_mode;
use crate::shm::mapping::Mapping;

/// `SHM_DEST` (Linux): the segment is marked for removal when its last attachment goes.
const SHM_DEST: u32 = 0o1000;

/// A System V shared-memory segment, known by its id. The handle that created it removes it
/// (`IPC_RMID`) on drop unless [`persist`](SysvShm::persist)ed; one that opened it never does.
#[derive(Debug)]
pub struct SysvShm {
    id: i32,
    key: SysvKey,
    remove_on_drop: AtomicBool,
}

/// A segment's state (`shmctl(IPC_STAT)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShmStat {
    /// Size in bytes, fixed at creation.
    pub size: usize,
    /// Attachments now, over all processes.
    pub nattch: u64,
    /// The creator's pid.
    pub cpid: i32,
    /// The pid of the last `shmat` or `shmdt`.
    pub lpid: i32,
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
    /// Creator's user id.
    pub cuid: u32,
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

fn shmat(id: i32, writable: bool) -> rustix::io::Result<NonNull<u8>> {
    let flags = if writable { 0 } else { libc::SHM_RDONLY };
    // SAFETY: a null address lets the kernel choose where to attach, so no existing memory of
    // this process is replaced; the new attachment is owned by the caller.
    let p = unsafe { libc::shmat(id, std::ptr::null(), flags) };
    if p as isize == -1 {
        return Err(errno());
    }
    NonNull::new(p.cast()).ok_or(Errno::FAULT)
}

fn time(t: libc::time_t) -> Option<SystemTime> {
    (t > 0).then(|| SystemTime::UNIX_EPOCH + Duration::from_secs(t as u64))
}

fn stat_of(ds: &libc::shmid_ds) -> ShmStat {
    let key = ds.shm_perm.__key;
    ShmStat {
        size: ds.shm_segsz,
        // shmatt_t is 32 bits on some targets.
        #[allow(clippy::unnecessary_cast)]
        nattch: ds.shm_nattch as u64,
        cpid: ds.shm_cpid,
        lpid: ds.shm_lpid,
        atime: time(ds.shm_atime),
        dtime: time(ds.shm_dtime),
        ctime: time(ds.shm_ctime).unwrap_or(SystemTime::UNIX_EPOCH),
        mode: ds.shm_perm.mode as u32 & 0o777,
        uid: ds.shm_perm.uid,
        cuid: ds.shm_perm.cuid,
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
    /// `shmget(key, size, IPC_CREAT | IPC_EXCL | mode)`: a new segment of `size` zeroed bytes
    /// that this handle owns. The mode is exact (System V IPC has no umask). Fails with EEXIST
    /// if a segment has the key; [`SysvKey::Private`] always makes a new one.
    /// See [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html).
    pub fn create(key: SysvKey, size: usize, mode: u32) -> Result<Self> {
        const OP: &str = "creating System V shared memory";
        let object = format!("key {key} ({size} bytes)");
        check_mode(OP, mode).map_err(|e| e.object(&object))?;
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | mode as i32;
        let id = shmget(key.raw(), size, flags).map_err(|e| {
            Error::os(OP, e)
                .object(&object)
                .hint_if(
                    Errno::EXIST,
                    "a segment has this key: open it (SysvShm::open) or remove it (ipcrm -M KEY)",
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
            remove_on_drop: AtomicBool::new(true),
        })
    }

    /// `shmget(key, 0, 0)`: the existing segment with this key. Never removes it.
    /// See [shmget(2)](https://man7.org/linux/man-pages/man2/shmget.2.html).
    pub fn open(key: SysvKey) -> Result<Self> {
        const OP: &str = "opening System V shared memory";
        if key == SysvKey::Private {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                OP,
                "a private key names no existing segment",
            )
            .object(format!("key {key}"))
            .hint("open a private segment by its id (SysvShm::open_id)"));
        }
        let id = shmget(key.raw(), 0, 0).map_err(|e| {
            Error::os(OP, e)
                .object(format!("key {key}"))
                .hint_if(
                    Errno::NOENT,
                    "no segment has this key: create it first, and check the key (`ipcs -m` lists them)",
                )
                .hint_if(
                    Errno::ACCESS,
                    "its mode does not let this user at it: ask its owner to widen the mode",
                )
        })?;
        Ok(SysvShm {
            id,
            key,
            remove_on_drop: AtomicBool::new(false),
        })
    }

    /// `shmctl(id, IPC_STAT)`: the existing segment with this id (checked to exist and be
    /// readable). Never removes it. On Linux this also reaches a segment already marked for
    /// removal, while something is still attached to it.
    /// See [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn open_id(id: i32) -> Result<Self> {
        let ds = shm_stat(id).map_err(|e| {
            no_such_id(Error::os("opening System V shared memory", e).object(format!("id {id}")))
        })?;
        Ok(SysvShm {
            id,
            key: stat_of(&ds).key,
            remove_on_drop: AtomicBool::new(false),
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

    /// `shmat(id, NULL, 0 or SHM_RDONLY)`: attaches the whole segment, writable if
    /// `writable`. The attachment is detached (`shmdt`) when the [`Mapping`] is dropped, and
    /// keeps the segment alive until then, even after this handle is dropped or the segment
    /// removed.
    /// See [shmat(2)](https://man7.org/linux/man-pages/man2/shmat.2.html).
    pub fn attach(&self, writable: bool) -> Result<Mapping> {
        const OP: &str = "attaching System V shared memory";
        let object = format!("id {}", self.id);
        // The size is fixed at creation, so it cannot change between these two calls.
        let size = shm_stat(self.id)
            .map_err(|e| no_such_id(Error::os(OP, e).object(&object)))?
            .shm_segsz;
        let ptr = shmat(self.id, writable).map_err(|e| {
            no_such_id(Error::os(OP, e).object(&object)).hint_if(
                Errno::ACCESS,
                "its mode does not allow the access asked for: attach read-only, or ask its owner",
            )
        })?;
        // SAFETY: `ptr` is what shmat just returned for this segment of `size` bytes, and only
        // the new Mapping will detach it.
        Ok(unsafe { Mapping::from_shmat(ptr, size, writable) })
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

    /// `shmctl(id, IPC_RMID)`: marks the segment for removal. It is destroyed when the last
    /// attachment goes (at once if none is left); until then every process attached keeps
    /// using it, its key is free for a new segment, and `stat().removed` is true.
    /// See [shmctl(2)](https://man7.org/linux/man-pages/man2/shmctl.2.html).
    pub fn remove(&self) -> Result<()> {
        shm_rmid(self.id).map_err(|e| {
            no_such_id(
                Error::os("removing System V shared memory", e).object(format!("id {}", self.id)),
            )
            .hint_if(
                Errno::PERM,
                "only the segment's owner, creator or a privileged process can remove it",
            )
        })?;
        // Nothing left to remove on drop: the id may even be reused later.
        self.remove_on_drop.store(false, Ordering::Relaxed);
        Ok(())
    }

    /// Keeps the segment after this handle is dropped: the one way to let it outlive its
    /// creator. Remove it later with [`remove`](SysvShm::remove) (e.g. on a handle from
    /// [`open`](SysvShm::open) or [`open_id`](SysvShm::open_id)) or `ipcrm -m ID`.
    pub fn persist(&mut self) {
        *self.remove_on_drop.get_mut() = false;
    }
}

impl Drop for SysvShm {
    fn drop(&mut self) {
        if *self.remove_on_drop.get_mut() {
            let _ = shm_rmid(self.id);
        }
    }
}
