//! System V semaphore sets: `semget(2)`, `semop(2)`, `semtimedop(2)`, `semctl(2)`. See
//! [sysvipc(7)](https://man7.org/linux/man-pages/man7/sysvipc.7.html).
//!
//! A set holds several counters (0 to 32767 each, `SEMVMX`). One [`SysvSemSet::op`] call
//! applies any number of changes to them atomically: all of them or, while one would have to
//! wait, none. A set lives in the kernel until removed (`IPC_RMID`): the handle that created it
//! removes it on drop unless [`persist`](SysvSemSet::persist)ed, so a crash of every user still
//! leaves it behind (`ipcs -s` lists it, `ipcrm -s ID` removes it).
//!
//! # SEM_UNDO
//! Every operation made through [`SemOp`] carries `SEM_UNDO` unless asked not to: the kernel
//! keeps, per process, the sum of its changes, and reverses them when the process exits,
//! however it exits. A process killed while holding a semaphore (`wait` done, `post` not yet)
//! gives it back. Turn it off ([`SemOp::no_undo`]) for a semaphore that is a count of things
//! rather than a lock: a producer's `post` should stay after the producer exits.
//! [`SysvSemSet::set`] and [`SysvSemSet::set_all`] clear the undo records of the values set.
//!
//! libc is used here: rustix has no System V IPC.
//!
//! ```
//! use ipckit::name::SysvKey;
//! use ipckit::sync::sem_sysv::{self, SemOp, SysvSemSet};
//! use std::time::Duration;
//! let set = SysvSemSet::create(SysvKey::Private, &sem_sysv::Options::new(2)).unwrap();
//! set.set(0, 1).unwrap();
//! // Take semaphore 0 and add 5 to semaphore 1, in one step.
//! set.op(&[SemOp::wait(0), SemOp::new(1, 5)]).unwrap();
//! assert_eq!(set.get_all().unwrap(), vec![0, 5]);
//! // Semaphore 0 is 0 now: a timed wait gives up.
//! assert!(!set.wait_timeout(0, Duration::from_millis(10)).unwrap());
//! set.post(0).unwrap();
//! assert_eq!(set.stat().unwrap().mode, 0o600);
//! // Another process joins it by id (or by key), and never removes it.
//! let other = SysvSemSet::open_id(set.id(), ipckit::Access::ReadWrite).unwrap();
//! assert!(other.try_wait(0).unwrap());
//! assert_eq!(other.last_pid(0).unwrap(), std::process::id());
//! drop(other);
//! set.remove().unwrap(); // or drop it: the creator removes it (IPC_RMID)
//! ```

use std::time::{Duration, SystemTime};

use crate::error::{Errno, Error, ErrorKind, Result};
use crate::name::SysvKey;
use crate::object::{Access, DEFAULT_MODE, Ownership, Pid, check_mode, ipc_time};
use crate::poll::Deadline;
use crate::sync::{last_errno, relative};

/// The largest value a System V semaphore holds (`SEMVMX`).
pub const SEMVMX: u16 = 32767;

/// `struct sembuf`: one operation of a [`SysvSemSet::op`] call, adding `delta` to semaphore
/// `index`. A negative `delta` waits until the value is at least `-delta`; a zero `delta` waits
/// until the value is 0. Whether the call waits is the call's choice, not the operation's:
/// [`SysvSemSet::try_op`] sets `IPC_NOWAIT` on every operation it is given.
/// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SemOp {
    /// Which semaphore of the set.
    pub index: usize,
    /// What to add (`sem_op`).
    pub delta: i16,
    /// `SEM_UNDO`: the kernel reverses this change when the process exits. On by default.
    pub undo: bool,
}

impl Default for SemOp {
    /// Semaphore 0, no change, with `SEM_UNDO`.
    fn default() -> Self {
        SemOp::new(0, 0)
    }
}

impl SemOp {
    /// Adds `delta` to semaphore `index`, with `SEM_UNDO`.
    pub fn new(index: usize, delta: i16) -> Self {
        SemOp {
            index,
            delta,
            undo: true,
        }
    }

    /// Takes one (−1), with `SEM_UNDO`.
    pub fn wait(index: usize) -> Self {
        SemOp::new(index, -1)
    }

    /// Gives one (+1), with `SEM_UNDO`.
    pub fn post(index: usize) -> Self {
        SemOp::new(index, 1)
    }

    /// Waits until semaphore `index` is 0 (changes nothing).
    pub fn wait_zero(index: usize) -> Self {
        SemOp::new(index, 0)
    }

    /// Without `SEM_UNDO`: the change stays when this process exits.
    pub fn no_undo(mut self) -> Self {
        self.undo = false;
        self
    }

    fn raw(&self) -> libc::sembuf {
        let mut flags = 0;
        if self.undo {
            flags |= libc::SEM_UNDO;
        }
        libc::sembuf {
            sem_num: self.index as libc::c_ushort,
            sem_op: self.delta,
            sem_flg: flags as libc::c_short,
        }
    }
}

/// `union semun`, which the caller of semctl defines: passed whole, its layout holds on every
/// target (a bare int or pointer in its place is right only by accident of the ABI).
#[repr(C)]
#[derive(Clone, Copy)]
union Semun {
    val: libc::c_int,
    buf: *mut libc::semid_ds,
    array: *mut libc::c_ushort,
}

/// How [`SysvSemSet::create`] makes a set: how many semaphores (1 by default) and its mode
/// (`0o600` by default; System V objects are not subject to the umask, so the mode is exactly
/// what is asked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    nsems: usize,
    mode: u32,
}

impl Default for Options {
    /// One semaphore, mode `0o600`.
    fn default() -> Self {
        Options::new(1)
    }
}

impl Options {
    /// A set of `nsems` semaphores (at least 1, at most `SEMMSL`), all 0, mode `0o600`.
    pub fn new(nsems: usize) -> Self {
        Options {
            nsems,
            mode: DEFAULT_MODE,
        }
    }

    /// The permission bits (`0o777` at most; others are refused by `create`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }
}

/// A set's state (`semctl(IPC_STAT)`), with the field names of the other System V kinds.
/// The pids are per semaphore: see [`SysvSemSet::last_pid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SemStat {
    /// The key; [`SysvKey::Private`] for a private set.
    pub key: SysvKey,
    /// How many semaphores the set has.
    pub nsems: usize,
    /// Time of the last `semop`, `None` if none was made.
    pub otime: Option<SystemTime>,
    /// Time of creation or of the last `IPC_SET` or `SETVAL`/`SETALL`.
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
}

/// A System V semaphore set (`semget(2)`), known by its id. The handle that created it removes
/// it (`IPC_RMID`) on drop unless [`persist`](SysvSemSet::persist)ed; one that opened it never
/// does. See [semget(2)](https://man7.org/linux/man-pages/man2/semget.2.html).
#[derive(Debug)]
pub struct SysvSemSet {
    id: i32,
    key: SysvKey,
    nsems: usize,
    access: Access,
    owner: Ownership,
}

impl SysvSemSet {
    /// `semget(key, nsems, IPC_CREAT | IPC_EXCL | mode)`: a new set of `opts` semaphores, all
    /// 0, with exactly `opts`'s mode, that this handle owns. Fails with `EEXIST` if the key is
    /// taken, `InvalidInput` for a mode with bits outside `0o777` (`semget` would read them as
    /// flags). See [semget(2)](https://man7.org/linux/man-pages/man2/semget.2.html).
    pub fn create(key: SysvKey, opts: &Options) -> Result<Self> {
        let op = "creating System V semaphore set";
        check_mode(op, opts.mode).map_err(|e| e.object(format!("key {key}")))?;
        let nsems = opts.nsems;
        let n = libc::c_int::try_from(nsems).unwrap_or(libc::c_int::MAX);
        let flags = libc::IPC_CREAT | libc::IPC_EXCL | opts.mode as libc::c_int;
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(key.raw(), n, flags) };
        if id == -1 {
            return Err(Error::os(op, last_errno())
                .object(format!("key {key}"))
                .hint_if(
                    Errno::EXIST,
                    format!("the key is taken: open it instead, or remove it (`ipckit rm sysv-sem:{key}`)"),
                )
                .hint_if(
                    Errno::INVAL,
                    "nsems is 0 or over the limit SEMMSL (/proc/sys/kernel/sem, first field)",
                )
                .hint_if(
                    Errno::NOSPC,
                    "too many sets or semaphores on the system (SEMMNI, SEMMNS in /proc/sys/kernel/sem)",
                ));
        }
        Ok(SysvSemSet {
            id,
            key,
            nsems,
            access: Access::ReadWrite,
            owner: Ownership::created(),
        })
    }

    /// `semget(key, 0, perms)`: the existing set with this key, for `access` (read: values and
    /// stat; write: operations, System V's "alter"). The kernel checks the set's mode against
    /// it here, so a user without that permission gets `EACCES` at once, and again at each
    /// call. Never removes it.
    /// See [semget(2)](https://man7.org/linux/man-pages/man2/semget.2.html).
    pub fn open(key: SysvKey, access: Access) -> Result<Self> {
        let op = "opening System V semaphore set";
        if key == SysvKey::Private {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                "a private set has no key to find it by",
            )
            .hint("open it by id (open_id) instead"));
        }
        // SAFETY: semget takes plain integers.
        let id = unsafe { libc::semget(key.raw(), 0, access.ipc_perms()) };
        if id == -1 {
            return Err(Error::os(op, last_errno())
                .object(format!("key {key}"))
                .hint_if(Errno::NOENT, "no set has this key: create it first")
                .hint_if(
                    Errno::ACCESS,
                    "its mode does not give this user the access asked for: ask for less (Access::ReadOnly), or ask its owner to widen the mode",
                ));
        }
        let nsems = stat(id, op)?.nsems;
        Ok(SysvSemSet {
            id,
            key,
            nsems,
            access,
            owner: Ownership::joined(),
        })
    }

    /// `semctl(id, 0, IPC_STAT)`: the existing set with this id (as `ipcs -s` shows it, or as
    /// another process passed it). Never removes it. `access` is what the handle is for, as
    /// in [`open`](SysvSemSet::open); the stat needs read permission whatever it is (the set's
    /// size comes from it).
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn open_id(id: i32, access: Access) -> Result<Self> {
        let SemStat { key, nsems, .. } = stat(id, "opening System V semaphore set")?;
        Ok(SysvSemSet {
            id,
            key,
            nsems,
            access,
            owner: Ownership::joined(),
        })
    }

    /// What the handle was opened for (`ReadWrite` for the creator). The kernel checks the
    /// set's mode at each call whatever it says.
    pub fn access(&self) -> Access {
        self.access
    }

    /// The set's id.
    pub fn id(&self) -> i32 {
        self.id
    }

    /// The key it was created or opened with.
    pub fn key(&self) -> SysvKey {
        self.key
    }

    /// How many semaphores the set has.
    pub fn len(&self) -> usize {
        self.nsems
    }

    /// Never true: a set has at least one semaphore.
    pub fn is_empty(&self) -> bool {
        self.nsems == 0
    }

    /// Keeps the set after this handle is dropped: the one way to let it outlive its creator.
    /// Remove it later with `open_id(id, Access::ReadWrite)?.remove()` (or `ipcrm -s ID`).
    #[must_use = "persist gives the handle back"]
    pub fn persist(mut self) -> Self {
        self.owner.release();
        self
    }

    /// `semctl(id, 0, IPC_STAT)`: the set's owner, mode and times now.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn stat(&self) -> Result<SemStat> {
        stat(self.id, "reading state of System V semaphore set").map_err(|e| e.object(self.label()))
    }

    fn label(&self) -> String {
        format!("id {} (key {})", self.id, self.key)
    }

    fn check_index(&self, op: &'static str, index: usize) -> Result<()> {
        if index >= self.nsems {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("index {index} is past the set's {} semaphores", self.nsems),
            )
            .object(self.label()));
        }
        Ok(())
    }

    fn bufs(&self, op: &'static str, ops: &[SemOp]) -> Result<Vec<libc::sembuf>> {
        if ops.is_empty() {
            return Err(
                Error::new(ErrorKind::InvalidInput, op, "no operation given").object(self.label()),
            );
        }
        ops.iter()
            .map(|o| self.check_index(op, o.index).map(|()| o.raw()))
            .collect()
    }

    fn op_error(&self, op: &'static str, e: Errno) -> Error {
        Error::os(op, e)
            .object(self.label())
            .hint_if(Errno::IDRM, "the set was removed while this process waited")
            .hint_if(Errno::INVAL, "no such set: it was removed (IPC_RMID)")
            .hint_if(
                Errno::RANGE,
                "a value (or this process's undo total) would pass SEMVMX (32767)",
            )
            .hint_if(
                Errno::TOOBIG,
                "more operations than SEMOPM (/proc/sys/kernel/sem, third field) in one call",
            )
    }

    /// One call under `deadline`: `semop` (for ever), `semop` with `IPC_NOWAIT` on every
    /// operation (a deadline passed) or `semtimedop` with the time left. True when applied.
    fn op_until(&self, ops: &[SemOp], deadline: Deadline) -> Result<bool> {
        let op = "operating on System V semaphore set";
        let mut bufs = self.bufs(op, ops)?;
        let once = deadline.expired();
        if once {
            for b in &mut bufs {
                b.sem_flg |= libc::IPC_NOWAIT as libc::c_short;
            }
        }
        loop {
            let r = match deadline.remaining() {
                // SAFETY: `bufs` is a valid array of bufs.len() sembufs for the call.
                None => unsafe { libc::semop(self.id, bufs.as_mut_ptr(), bufs.len()) },
                // SAFETY: as above.
                Some(_) if once => unsafe { libc::semop(self.id, bufs.as_mut_ptr(), bufs.len()) },
                Some(left) => {
                    let ts = relative(left);
                    // SAFETY: the semtimedop system call (glibc's wrapper is not in the libc
                    // crate) reads bufs.len() sembufs from `bufs` and one timespec from `ts`,
                    // both valid for the duration of the call.
                    unsafe {
                        libc::syscall(
                            libc::SYS_semtimedop,
                            self.id as libc::c_long,
                            bufs.as_mut_ptr(),
                            bufs.len(),
                            &ts as *const libc::timespec,
                        ) as libc::c_int
                    }
                }
            };
            if r == 0 {
                return Ok(true);
            }
            match last_errno() {
                // Retried with the time left: a signal neither ends nor stretches the wait.
                Errno::INTR => continue,
                // IPC_NOWAIT would have had to wait, or semtimedop timed out.
                Errno::AGAIN => return Ok(false),
                e => return Err(self.op_error(op, e)),
            }
        }
    }

    /// `semop(id, ops)`: applies every operation of `ops` atomically, waiting as long as it
    /// takes (a signal does not end the wait) until all of them can be applied at once.
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn op(&self, ops: &[SemOp]) -> Result<()> {
        if self.op_until(ops, Deadline::NEVER)? {
            return Ok(());
        }
        Err(self.op_error("operating on System V semaphore set", Errno::AGAIN))
    }

    /// `semop(id, ops)` with `IPC_NOWAIT` on every operation: applies all of `ops` now, or
    /// none of them and `Ok(false)` (`EAGAIN`) when one would have to wait.
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn try_op(&self, ops: &[SemOp]) -> Result<bool> {
        self.op_until(ops, Deadline::now())
    }

    /// `semtimedop(id, ops, timeout)`: as [`op`](SysvSemSet::op), waiting at most `timeout`
    /// (measured on a monotonic clock, kept across signals). `Ok(false)` when it timed out:
    /// then nothing was applied.
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn op_timeout(&self, ops: &[SemOp], timeout: Duration) -> Result<bool> {
        self.op_until(ops, Deadline::after(timeout))
    }

    /// `semtimedop(id, ops, time left)`: as [`op`](SysvSemSet::op), waiting until `deadline`
    /// (`IPC_NOWAIT` for one already passed, `semop` for [`Deadline::NEVER`]). `Ok(false)`
    /// when it timed out: then nothing was applied.
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn op_deadline(&self, ops: &[SemOp], deadline: impl Into<Deadline>) -> Result<bool> {
        self.op_until(ops, deadline.into())
    }

    /// `semop(id, {index, -1, SEM_UNDO})`: takes one from semaphore `index`, waiting while it
    /// is 0. See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn wait(&self, index: usize) -> Result<()> {
        self.op(&[SemOp::wait(index)])
    }

    /// `semop(id, {index, -1, SEM_UNDO | IPC_NOWAIT})`: takes one if semaphore `index` is above
    /// 0; `Ok(false)` if not. See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn try_wait(&self, index: usize) -> Result<bool> {
        self.try_op(&[SemOp::wait(index)])
    }

    /// `semtimedop(id, {index, -1, SEM_UNDO}, timeout)`: takes one, waiting at most
    /// `timeout`; `Ok(false)` when the value stayed 0.
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn wait_timeout(&self, index: usize, timeout: Duration) -> Result<bool> {
        self.op_timeout(&[SemOp::wait(index)], timeout)
    }

    /// `semtimedop(id, {index, -1, SEM_UNDO}, time left)`: takes one, waiting until
    /// `deadline`; `Ok(false)` when the value stayed 0.
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn wait_deadline(&self, index: usize, deadline: impl Into<Deadline>) -> Result<bool> {
        self.op_deadline(&[SemOp::wait(index)], deadline)
    }

    /// `semop(id, {index, +1, SEM_UNDO})`: gives one to semaphore `index` (never waits).
    /// See [semop(2)](https://man7.org/linux/man-pages/man2/semop.2.html).
    pub fn post(&self, index: usize) -> Result<()> {
        self.op(&[SemOp::post(index)])
    }

    fn ctl_error(&self, op: &'static str) -> Error {
        Error::os(op, last_errno())
            .object(self.label())
            .hint_if(Errno::INVAL, "no such set: it was removed (IPC_RMID)")
            .hint_if(Errno::IDRM, "the set was removed")
    }

    /// `semctl(id, index, GETVAL)`: semaphore `index`'s value now.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn get(&self, index: usize) -> Result<u16> {
        let op = "reading System V semaphore";
        self.check_index(op, index)?;
        // SAFETY: GETVAL reads no fourth argument.
        let v = unsafe { libc::semctl(self.id, index as libc::c_int, libc::GETVAL) };
        if v == -1 {
            return Err(self.ctl_error(op));
        }
        Ok(v as u16)
    }

    /// `semctl(id, index, SETVAL, value)`: sets semaphore `index` (at most [`SEMVMX`]), waking
    /// whoever can proceed, and clears every process's undo record for it.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn set(&self, index: usize, value: u16) -> Result<()> {
        let op = "setting System V semaphore";
        self.check_index(op, index)?;
        // SAFETY: SETVAL reads a `union semun` by value and uses its `val` member: the union
        // itself is passed, so the layout is right on every target.
        let r = unsafe {
            libc::semctl(
                self.id,
                index as libc::c_int,
                libc::SETVAL,
                Semun {
                    val: libc::c_int::from(value),
                },
            )
        };
        if r == -1 {
            return Err(self
                .ctl_error(op)
                .hint_if(Errno::RANGE, "the value is over SEMVMX (32767)"));
        }
        Ok(())
    }

    /// `semctl(id, 0, GETALL, array)`: every value, in one consistent snapshot.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn get_all(&self) -> Result<Vec<u16>> {
        let mut values = vec![0u16; self.nsems];
        // SAFETY: GETALL reads a `union semun` and writes nsems unsigned shorts through its
        // `array` member; `values` holds exactly nsems.
        let r = unsafe {
            libc::semctl(
                self.id,
                0,
                libc::GETALL,
                Semun {
                    array: values.as_mut_ptr(),
                },
            )
        };
        if r == -1 {
            return Err(self.ctl_error("reading System V semaphore set"));
        }
        Ok(values)
    }

    /// `semctl(id, 0, SETALL, array)`: sets every value at once (`values.len()` must be
    /// [`len`](SysvSemSet::len)), clearing every undo record of the set.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn set_all(&self, values: &[u16]) -> Result<()> {
        let op = "setting System V semaphore set";
        if values.len() != self.nsems {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                format!("{} values given for a set of {}", values.len(), self.nsems),
            )
            .object(self.label()));
        }
        // SAFETY: SETALL reads `union semun` and reads nsems unsigned shorts through its
        // `array` pointer member; `values` holds exactly nsems and the kernel only reads them.
        let r = unsafe {
            libc::semctl(
                self.id,
                0,
                libc::SETALL,
                Semun {
                    array: values.as_ptr() as *mut libc::c_ushort,
                },
            )
        };
        if r == -1 {
            return Err(self
                .ctl_error(op)
                .hint_if(Errno::RANGE, "a value is over SEMVMX (32767)"));
        }
        Ok(())
    }

    /// `semctl(id, index, GETPID)`: the pid of the last process that operated on semaphore
    /// `index` (0 if none has). `ipckit ls` uses it to tell a set in use from an orphan.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn last_pid(&self, index: usize) -> Result<Pid> {
        let op = "reading last pid of System V semaphore";
        self.check_index(op, index)?;
        // SAFETY: GETPID reads no fourth argument.
        let pid = unsafe { libc::semctl(self.id, index as libc::c_int, libc::GETPID) };
        if pid == -1 {
            return Err(self.ctl_error(op));
        }
        Ok(pid as Pid)
    }

    /// `semctl(id, index, GETNCNT)` and `semctl(id, index, GETZCNT)`: how many processes wait
    /// for semaphore `index` to grow, and how many wait for it to be 0.
    /// See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn waiters(&self, index: usize) -> Result<(usize, usize)> {
        let op = "counting waiters of System V semaphore";
        self.check_index(op, index)?;
        let mut counts = [0usize; 2];
        for (slot, cmd) in counts.iter_mut().zip([libc::GETNCNT, libc::GETZCNT]) {
            // SAFETY: GETNCNT and GETZCNT read no fourth argument.
            let n = unsafe { libc::semctl(self.id, index as libc::c_int, cmd) };
            if n == -1 {
                return Err(self.ctl_error(op));
            }
            *slot = n as usize;
        }
        Ok((counts[0], counts[1]))
    }

    /// `semctl(id, 0, IPC_RMID)`: removes the set now, whoever made it; processes waiting on it
    /// wake with `EIDRM`. See [semctl(2)](https://man7.org/linux/man-pages/man2/semctl.2.html).
    pub fn remove(mut self) -> Result<()> {
        self.owner.release();
        rmid(self.id).map_err(|e| {
            Error::os("removing System V semaphore set", e)
                .object(self.label())
                .hint_if(
                    Errno::PERM,
                    "only the set's owner, creator or root may remove it",
                )
        })
    }
}

impl Drop for SysvSemSet {
    fn drop(&mut self) {
        if self.owner.owns() {
            let _ = rmid(self.id);
        }
    }
}

fn rmid(id: i32) -> std::result::Result<(), Errno> {
    // SAFETY: IPC_RMID reads no fourth argument.
    if unsafe { libc::semctl(id, 0, libc::IPC_RMID) } == -1 {
        return Err(last_errno());
    }
    Ok(())
}

/// `semctl(id, 0, IPC_STAT)`.
fn stat(id: i32, op: &'static str) -> Result<SemStat> {
    // SAFETY: semid_ds is plain integers; all zeroes is a valid value.
    let mut ds: libc::semid_ds = unsafe { std::mem::zeroed() };
    // SAFETY: IPC_STAT reads `union semun` and writes one semid_ds through its `buf` pointer
    // member (passed like a pointer); `ds` is a writable semid_ds.
    if unsafe { libc::semctl(id, 0, libc::IPC_STAT, Semun { buf: &mut ds }) } == -1 {
        return Err(Error::os(op, last_errno())
            .object(format!("id {id}"))
            .hint_if(Errno::INVAL, "no set has this id (see ipcs -s)"));
    }
    Ok(SemStat {
        key: SysvKey::from_raw(ds.sem_perm.__key),
        nsems: ds.sem_nsems as usize,
        otime: ipc_time(ds.sem_otime),
        ctime: ipc_time(ds.sem_ctime).unwrap_or(SystemTime::UNIX_EPOCH),
        mode: u32::from(ds.sem_perm.mode) & 0o777,
        uid: ds.sem_perm.uid,
        gid: ds.sem_perm.gid,
        cuid: ds.sem_perm.cuid,
        cgid: ds.sem_perm.cgid,
    })
}
