//! Every IPC object on the host, who uses it, and whether anyone still can: what `ipckit ls`,
//! `ipckit rm` and `ipckit gc` read.
//!
//! [`scan`] reads `/proc/sysvipc` (System V queues, segments and semaphore sets), `/dev/shm`
//! (POSIX shared memory and semaphores), the mqueue filesystem (POSIX queues),
//! `/proc/net/unix` (Unix sockets), every process's `/proc/PID/fd`, `fdinfo` and `maps` (who
//! holds or maps what: FIFOs, pipes, and the holders of everything else), and the socket files
//! under a few directories. Each object gets a [`State`]:
//!
//! | kind | orphan when |
//! |---|---|
//! | `sysv-shm` | no attachments, and its creator (`cpid`) and last user (`lpid`) are dead |
//! | `sysv-mq` | nobody is blocked in `msgsnd`/`msgrcv` on it, and its last sender and last receiver are dead |
//! | `sysv-sem` | nobody waits on it, and every semaphore's last user (`GETPID`) is dead |
//! | `posix-shm`, `posix-sem` | no process maps it or holds it open |
//! | `posix-mq` | no process holds it open |
//! | `unix` | (stale) a socket file that no socket is bound to: a connect is refused |
//!
//! Who is blocked on a System V queue or set comes from every thread's `/proc/PID/task/TID/syscall`.
//! A name made by [`crate::name::unique`] carries the ipckit tag (`ipckit-PURPOSE-PID-…`), so
//! the listing names its creator and purpose ([`Object::creator`]) even after the creator is
//! gone, which a POSIX object otherwise never records.
//!
//! [`State::Unknown`] is given whenever the evidence is not enough, never a guess that could
//! lose someone's data:
//! - a System V queue or set that nobody ever used: the kernel records no creator, and a
//!   process that polls it (`IPC_NOWAIT`) leaves no trace;
//! - a recorded pid that now belongs to a process started after it was recorded (the pid was
//!   reused, or the wall clock was stepped since: start times are boot-relative);
//! - a recorded pid of 0 with a time: a process outside this pid namespace did it; a recorded
//!   pid this scan did not see but `kill(pid, 0)` finds (`hidepid`);
//! - any would-be orphan when this runs in a nested pid namespace that shares the host's IPC
//!   namespace (processes outside are invisible);
//! - a System V queue or set whose users are dead, when a process that could be blocked on it
//!   could not be inspected (its `syscall` file needs ptrace-attach rights);
//! - a POSIX object that a process this scan could not inspect might hold: without root,
//!   other users' descriptors cannot be read (and with `hidepid` their processes cannot even
//!   be seen); such a process counts for its owner's objects and for any whose mode lets
//!   others in. A root process holding another user's private object is not assumed.
//!
//! Limits, said in [`Listing::notes`] when they apply: a process whose mappings or system calls
//! (but not descriptors) cannot be read even as root is judged by its descriptors alone; a task
//! that unshared its descriptor table (`CLONE_FILES`) is not read separately; a 32-bit task's
//! `ipc()` call is not decoded (only x86_64 and aarch64 native calls are); a file or socket on a
//! hung network mount can still stall the stat of a descriptor that points at it.
//!
//! Written by hand: no crate reads these tables (util-linux's lsipc is C and cannot tell an
//! orphan). The /proc parsers it shares with the mechanisms (a Unix bind asks whether a socket
//! file is still bound) sit below both, in a crate-internal module that `host` re-exports as
//! [`procfs`]; no mechanism calls `host`.
//!
//! `host` is a module of the ipckit crate, not a crate of its own: the CLI, the lab and the
//! services to come all need its verdicts next to the kinds' own name and tag rules
//! ([`crate::name`]), and a separate crate would depend on ipckit for those rules anyway, so it
//! would only move the same dependency edge, not remove it.
//!
//! ```
//! use ipckit::host::{scan, Kind, Options};
//!
//! let listing = scan(&Options { kinds: vec![Kind::SysvShm, Kind::PosixShm], ..Options::default() });
//! for object in &listing.objects {
//!     println!("{} {} {}", object.kind, object.label(), object.state);
//! }
//! ```

pub mod limits;
mod process;
mod remove;
pub(crate) mod sockets;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use crate::sys::procfs;
pub use process::{Holder, Process};
pub use remove::remove;

use process::Processes;

/// A kind of IPC object.
///
/// Each kind has one name ([`Kind::name`]): the one `ipckit ls` shows and `--kind` takes, the
/// one its JSON says, and, for the System V kinds, its URI scheme. [`Kind::scheme`] is the
/// scheme of its URIs ([`Object::uri`]); parsing also takes the names lsipc, ipcs and ipcrm
/// use for the System V kinds ([`Kind::ALIASES`]).
///
/// | kind | URI | lsipc / ipcs / ipcrm |
/// |---|---|---|
/// | `sysv-mq` | `sysv-mq:ID` | `lsipc -q`, `ipcs -q`, `ipcrm msg`; also `sysv-msg` |
/// | `sysv-shm` | `sysv-shm:ID` | `lsipc -m`, `ipcs -m`, `ipcrm shm` |
/// | `sysv-sem` | `sysv-sem:ID` | `lsipc -s`, `ipcs -s`, `ipcrm sem` |
/// | `posix-shm` | `shm:/NAME` | - |
/// | `posix-sem` | `sem:/NAME` | - |
/// | `posix-mq` | `mq:/NAME` | - |
/// | `unix` | `unix:PATH`, `abstract:NAME` | - |
/// | `fifo` | `fifo:PATH` | - |
/// | `pipe` | `pipe:[INODE]` | - |
///
/// ```
/// use ipckit::host::Kind;
///
/// assert_eq!(Kind::SysvMq.name(), "sysv-mq");
/// assert_eq!("msg".parse::<Kind>(), Ok(Kind::SysvMq));
/// assert_eq!("sysv-msg".parse::<Kind>(), Ok(Kind::SysvMq));
/// assert_eq!(Kind::PosixSem.scheme(), "sem");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// System V message queue.
    SysvMq,
    /// System V shared memory segment.
    SysvShm,
    /// System V semaphore set.
    SysvSem,
    /// POSIX shared memory (`/dev/shm/NAME`).
    PosixShm,
    /// POSIX named semaphore (`/dev/shm/sem.NAME`).
    PosixSem,
    /// POSIX message queue.
    PosixMq,
    /// Unix socket with a path or an abstract name, or a stale socket file.
    Unix,
    /// FIFO held open by a process.
    Fifo,
    /// Anonymous pipe.
    Pipe,
}

impl Kind {
    /// Every kind, in listing order.
    pub const ALL: [Kind; 9] = [
        Kind::SysvMq,
        Kind::SysvShm,
        Kind::SysvSem,
        Kind::PosixShm,
        Kind::PosixSem,
        Kind::PosixMq,
        Kind::Unix,
        Kind::Fifo,
        Kind::Pipe,
    ];

    /// The other names parsing takes: the System V kinds as lsipc, ipcs and ipcrm call them
    /// (`msg`, `shm`, `sem`), and `sysv-msg` for the queues. In ipckit's URIs `shm:` and
    /// `sem:` are POSIX objects; as kind names they mean the System V ones, as in ipcrm.
    pub const ALIASES: [(&'static str, Kind); 4] = [
        ("sysv-msg", Kind::SysvMq),
        ("msg", Kind::SysvMq),
        ("shm", Kind::SysvShm),
        ("sem", Kind::SysvSem),
    ];

    /// Its one name: `sysv-mq`, `posix-shm`, `unix`, … (what `ls` shows and `--kind` takes).
    pub fn name(self) -> &'static str {
        match self {
            Kind::SysvMq => "sysv-mq",
            Kind::SysvShm => "sysv-shm",
            Kind::SysvSem => "sysv-sem",
            Kind::PosixShm => "posix-shm",
            Kind::PosixSem => "posix-sem",
            Kind::PosixMq => "posix-mq",
            Kind::Unix => "unix",
            Kind::Fifo => "fifo",
            Kind::Pipe => "pipe",
        }
    }
}

impl Kind {
    /// The scheme of its URIs ([`Object::uri`]): the name for the System V kinds, `shm`,
    /// `sem` and `mq` for the POSIX ones (as `ipckit send`, `recv` and `rm` take them),
    /// `unix` (a socket with an abstract name is `abstract:`), `fifo`, `pipe`.
    pub fn scheme(self) -> &'static str {
        match self {
            Kind::SysvMq | Kind::SysvShm | Kind::SysvSem => self.name(),
            Kind::PosixShm => "shm",
            Kind::PosixSem => "sem",
            Kind::PosixMq => "mq",
            Kind::Unix => "unix",
            Kind::Fifo => "fifo",
            Kind::Pipe => "pipe",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Kind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let named = Kind::ALL.into_iter().map(|k| (k.name(), k));
        named
            .chain(Kind::ALIASES)
            .find(|(name, _)| *name == s)
            .map(|(_, k)| k)
            .ok_or_else(|| {
                let names: Vec<_> = Kind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown kind '{s}' (kinds: {}; also lsipc's msg, shm, sem for System V)",
                    names.join(", ")
                )
            })
    }
}

/// Whether an object is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// In use, or possibly about to be: kept.
    Live,
    /// Nobody uses it and nobody who made it is left: `gc` removes it.
    Orphan,
    /// A socket file no socket is bound to: `gc` removes it.
    Stale,
    /// The evidence is not enough either way (never used, a pid out of sight or reused,
    /// processes that could not be inspected): kept, and said why.
    Unknown,
}

impl State {
    /// `live`, `orphan`, `stale`, `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            State::Live => "live",
            State::Orphan => "orphan",
            State::Stale => "stale",
            State::Unknown => "unknown",
        }
    }

    /// Orphan or stale: what `gc` removes.
    pub fn is_garbage(self) -> bool {
        matches!(self, State::Orphan | State::Stale)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The creator an ipckit-made name records (see [`crate::name::unique`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creator {
    /// The creating process.
    pub pid: u32,
    /// What it made the object for.
    pub purpose: String,
    /// It is still running.
    pub alive: bool,
}

/// One IPC object, with every field `ipckit ls` can show (lsipc's where lsipc has them).
#[derive(Debug, Clone)]
pub struct Object {
    /// What it is.
    pub kind: Kind,
    /// System V key (0 is `IPC_PRIVATE`).
    pub key: Option<i32>,
    /// System V id.
    pub id: Option<i32>,
    /// POSIX name (`/NAME`), socket path or `@abstract` name, FIFO path, `pipe:[INODE]`.
    pub name: Option<String>,
    /// Owner uid.
    pub uid: Option<u32>,
    /// Owner user name.
    pub owner: Option<String>,
    /// Permission bits (System V adds `SHM_DEST` 01000 to a removed, still-attached segment).
    pub perms: Option<u32>,
    /// Size in bytes (segments, POSIX shm and semaphore files).
    pub size: Option<u64>,
    /// Attachments (System V shared memory).
    pub nattch: Option<u64>,
    /// Messages queued (System V queues).
    pub msgs: Option<u64>,
    /// Bytes queued (queues).
    pub used_bytes: Option<u64>,
    /// Semaphores in the set.
    pub nsems: Option<u64>,
    /// Creator pid (System V shared memory).
    pub cpid: Option<u32>,
    /// Last attach/detach pid (System V shared memory).
    pub lpid: Option<u32>,
    /// Last sender pid (System V queues).
    pub lspid: Option<u32>,
    /// Last receiver pid (System V queues).
    pub lrpid: Option<u32>,
    /// Last change, seconds since the epoch.
    pub ctime: Option<i64>,
    /// The last activity the kernel records, seconds since the epoch: the latest of the
    /// change time and the attach, detach, send, receive or semop times. `gc --older-than`
    /// goes by this.
    pub last_used: Option<i64>,
    /// Kind-specific detail: a socket's type and state, a FIFO's readers and writers.
    pub detail: Option<String>,
    /// The processes that hold it open, map it or are attached.
    pub holders: Vec<Holder>,
    /// The ipckit creator its name records.
    pub creator: Option<Creator>,
    /// The command of its creator while the creator runs (System V segments record it; an
    /// ipckit name's tag does too).
    pub creator_command: Option<String>,
    /// In use or not.
    pub state: State,
    /// Why: the evidence for the state, in words.
    pub reason: String,
    /// (device, inode) of the file behind it, so removal can check it is still the same one.
    pub(crate) file: Option<(u64, u64)>,
}

impl Object {
    fn new(kind: Kind) -> Object {
        Object {
            kind,
            key: None,
            id: None,
            name: None,
            uid: None,
            owner: None,
            perms: None,
            size: None,
            nattch: None,
            msgs: None,
            used_bytes: None,
            nsems: None,
            cpid: None,
            lpid: None,
            lspid: None,
            lrpid: None,
            ctime: None,
            last_used: None,
            detail: None,
            holders: Vec::new(),
            creator: None,
            creator_command: None,
            state: State::Live,
            reason: String::new(),
            file: None,
        }
    }

    /// Its URI, in [`Kind::scheme`]: `shm:/NAME`, `sem:/NAME`, `mq:/NAME`, `sysv-mq:ID`,
    /// `sysv-shm:ID`, `sysv-sem:ID` (an id: keys can be shared by nothing and reused; the
    /// URIs `ipckit send`, `recv` and `rm` take hold a key, so `rm` takes an id as
    /// `--id sysv-shm:ID`), `unix:PATH`, `abstract:NAME`, `fifo:PATH`, `pipe:[INODE]`.
    pub fn uri(&self) -> String {
        let name = self.name.as_deref().unwrap_or("");
        match self.kind {
            Kind::SysvMq | Kind::SysvShm | Kind::SysvSem => {
                format!("{}:{}", self.kind.scheme(), self.id.unwrap_or(-1))
            }
            Kind::Unix => match name.strip_prefix('@') {
                Some(abs) => format!("abstract:{abs}"),
                None => format!("unix:{name}"),
            },
            // `pipe:[INODE]` is its name already.
            Kind::Pipe => name.to_string(),
            kind => format!("{}:{name}", kind.scheme()),
        }
    }

    /// What a person calls it: the name, or the System V key in hex and id.
    pub fn label(&self) -> String {
        match (&self.name, self.key, self.id) {
            (Some(n), _, _) => n.clone(),
            (None, Some(k), Some(id)) => format!("key {k:#010x} id {id}"),
            _ => self.uri(),
        }
    }

    /// The pids that hold it, comma-separated.
    pub fn pids(&self) -> Vec<u32> {
        self.holders.iter().map(|h| h.pid).collect()
    }

    /// How long it has been untouched, in seconds ([`Object::last_used`], else the change
    /// time; `None` when neither is known).
    pub fn idle_secs(&self, now: i64) -> Option<i64> {
        self.last_used
            .or(self.ctime)
            .map(|t| now.saturating_sub(t).max(0))
    }
}

/// What [`scan`] looks at.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The kinds to list; empty means every kind but [`Kind::Pipe`].
    pub kinds: Vec<Kind>,
    /// Directories searched for stale socket files, besides the defaults (`/tmp`, `/var/tmp`,
    /// `/run`, `/dev/shm`, `$XDG_RUNTIME_DIR` and `$TMPDIR`, each four levels deep; network
    /// and FUSE mounts are skipped).
    pub socket_dirs: Vec<PathBuf>,
}

impl Options {
    fn wants(&self, kind: Kind) -> bool {
        if self.kinds.is_empty() {
            kind != Kind::Pipe
        } else {
            self.kinds.contains(&kind)
        }
    }
}

/// What [`scan`] found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The objects, by kind and then name or id.
    pub objects: Vec<Object>,
    /// Things the reader should know: the mqueue filesystem is not mounted, some processes
    /// could not be inspected.
    pub notes: Vec<String>,
}

/// Lists the IPC objects on this host and judges each one live, orphan, stale or unknown.
/// Never fails: what cannot be read is left out and said in [`Listing::notes`].
pub fn scan(opts: &Options) -> Listing {
    let wants_files = [Kind::PosixShm, Kind::PosixSem, Kind::PosixMq, Kind::Fifo]
        .into_iter()
        .any(|k| opts.wants(k));
    let procs = Processes::scan(
        opts.wants(Kind::Pipe),
        opts.wants(Kind::SysvMq) || opts.wants(Kind::SysvSem),
    );
    let mut listing = Listing::default();
    let mut users = Users::default();
    if opts.wants(Kind::SysvMq) {
        sysv_msg(&procs, &mut listing);
    }
    if opts.wants(Kind::SysvShm) {
        sysv_shm(&procs, &mut listing);
    }
    if opts.wants(Kind::SysvSem) {
        sysv_sem(&procs, &mut listing);
    }
    if opts.wants(Kind::PosixShm) || opts.wants(Kind::PosixSem) {
        dev_shm(&procs, opts, &mut listing);
    }
    if opts.wants(Kind::PosixMq) {
        mqueue(&procs, &mut listing);
    }
    if opts.wants(Kind::Unix) {
        sockets::list(&procs, &opts.socket_dirs, &mut listing);
    }
    if opts.wants(Kind::Fifo) {
        fifos(&procs, &mut listing);
    }
    if opts.wants(Kind::Pipe) {
        pipes(&procs, &mut listing);
    }
    for o in &mut listing.objects {
        o.owner = o.uid.and_then(|u| users.name(u));
    }
    // Only when some verdict actually rests on processes that could not be inspected.
    let unknown = listing
        .objects
        .iter()
        .any(|o| o.state == State::Unknown && o.reason.contains("could not be"));
    if unknown && procs.hidden_others {
        listing.notes.push(
            "/proc is mounted with hidepid: other users' processes cannot be seen, so objects \
             they might hold are 'unknown' (run as root to see them)"
                .into(),
        );
    }
    if unknown && !procs.uninspected.is_empty() {
        listing.notes.push(format!(
            "the descriptors of {} processes could not be read (permission denied; run as root to see them): \
             objects they might hold are 'unknown', not 'orphan'",
            procs.uninspected.len()
        ));
    }
    if process::nested_pid_namespace() {
        // Processes outside this pid namespace are invisible. Sharing the host's IPC namespace
        // (a container run with --ipc=host), they may use any System V object or queue here.
        let shared = process::host_ipc_namespace();
        if shared {
            for o in listing
                .objects
                .iter_mut()
                .filter(|o| o.state == State::Orphan)
            {
                o.state = State::Unknown;
                o.reason = format!(
                    "{}; but processes outside this pid namespace share its IPC namespace and are not seen",
                    o.reason
                );
            }
        }
        listing.notes.push(format!(
            "this runs in a nested pid namespace: processes outside it are not seen{}",
            if shared {
                ", and they share this IPC namespace, so no object is called an orphan"
            } else {
                ""
            }
        ));
    }
    if !procs.syscall_unread.is_empty() && rustix::process::geteuid().is_root() {
        let pids: Vec<String> = procs
            .syscall_unread
            .iter()
            .map(|(p, _)| p.to_string())
            .collect();
        listing.notes.push(format!(
            "the system calls of pid {} could not be read even as root: a System V wait of theirs is not seen",
            pids.join(", ")
        ));
    }
    if wants_files && !procs.maps_unread.is_empty() {
        let pids: Vec<String> = procs.maps_unread.iter().map(u32::to_string).collect();
        listing.notes.push(format!(
            "the mappings of pid {} could not be read: a shared memory object such a process maps \
             with its descriptor closed is not seen",
            pids.join(", ")
        ));
    }
    listing
}

fn who(procs: &Processes, pid: u32) -> String {
    format!("{pid}({})", procs.command(pid))
}

fn sysv_rows(kind: &str) -> Vec<procfs::SysvRow> {
    procfs::read_lossy(format!("/proc/sysvipc/{kind}"))
        .map(|t| procfs::sysv_table(&t))
        .unwrap_or_default()
}

fn sysv_object(kind: Kind, row: &procfs::SysvRow) -> Object {
    let pid = |c: &str| row.num(c).and_then(|v| u32::try_from(v).ok());
    let mut o = Object::new(kind);
    o.key = row.num("key").and_then(|k| i32::try_from(k).ok());
    o.id = procfs::sysv_id(row);
    o.uid = pid("uid");
    o.perms = row.perms();
    o.ctime = row.num("ctime");
    o.cpid = pid("cpid");
    o.lpid = pid("lpid");
    o.lspid = pid("lspid");
    o.lrpid = pid("lrpid");
    o.last_used = ["ctime", "atime", "dtime", "stime", "rtime", "otime"]
        .iter()
        .filter_map(|c| row.num(c))
        .max();
    o
}

/// A pid the kernel recorded for a System V object: what it was, and when it was recorded.
struct Recorded {
    what: &'static str,
    pid: u32,
    when: Option<i64>,
}

impl Recorded {
    /// A pid with the time of the event that recorded it. Pid 0 with no time: never happened.
    /// Pid 0 with a time: it happened in a process outside this pid namespace, which the
    /// kernel shows as 0.
    fn new(what: &'static str, pid: Option<u32>, when: Option<i64>) -> Option<Recorded> {
        let pid = pid.unwrap_or(0);
        let happened = pid > 0 || when.is_some_and(|t| t > 0);
        happened.then_some(Recorded { what, pid, when })
    }
}

/// Judges a System V object from the processes blocked on it (`blocked`: `None` for a kind
/// nobody blocks on) and the pids the kernel recorded: live if one waits or one is alive;
/// unknown if one is out of sight, possibly reused, or nothing was ever recorded, or if a
/// process that could be blocked on it could not be inspected; orphan when every one is dead.
fn judge_recorded(
    procs: &Processes,
    o: &mut Object,
    recorded: &[Recorded],
    blocked: Option<&Vec<u32>>,
    call: &str,
) {
    use process::Liveness;
    if let Some(pids) = blocked.filter(|p| !p.is_empty()) {
        o.state = State::Live;
        let by: Vec<String> = pids.iter().map(|&p| who(procs, p)).collect();
        o.reason = format!("{} blocked in {call} on it", by.join(", "));
        o.holders = pids
            .iter()
            .map(|&pid| Holder {
                pid,
                command: procs.command(pid),
                read: false,
                write: false,
                mapped: false,
            })
            .collect();
        return;
    }
    let live = |r: &&Recorded| r.pid > 0 && procs.liveness(r.pid, r.when) == Liveness::Alive;
    if let Some(r) = recorded.iter().find(live) {
        o.state = State::Live;
        o.reason = format!("its {} {} is alive", r.what, who(procs, r.pid));
    } else if let Some(r) = recorded.iter().find(|r| r.pid == 0) {
        o.state = State::Unknown;
        o.reason = format!(
            "its {} is a process outside this pid namespace (the kernel shows pid 0)",
            r.what
        );
    } else if let Some(r) = recorded
        .iter()
        .find(|r| procs.liveness(r.pid, r.when) == Liveness::Hidden)
    {
        o.state = State::Unknown;
        o.reason = format!(
            "its {} pid {} exists but this scan cannot see it (/proc hidepid?)",
            r.what, r.pid
        );
    } else if let Some(r) = recorded
        .iter()
        .find(|r| procs.liveness(r.pid, r.when) == Liveness::Reused)
    {
        o.state = State::Unknown;
        o.reason = format!(
            "its {} was pid {}, now {} which started later: the pid was reused (or the clock was stepped)",
            r.what,
            r.pid,
            who(procs, r.pid)
        );
    } else if recorded.is_empty() {
        o.state = State::Unknown;
        o.reason = "never used, and System V records no creator pid: a process that polls it \
                    leaves no trace (ipckit rm removes it)"
            .into();
    } else if blocked.is_some()
        && let unseen = procs.unseen_waiters(o.uid.unwrap_or(0), o.perms.unwrap_or(0))
        && unseen > 0
    {
        // A process blocked on it would show only in its syscall file.
        o.state = State::Unknown;
        o.reason = format!(
            "its recorded users are dead, but {unseen} processes that could wait on it could not be inspected"
        );
    } else {
        o.state = State::Orphan;
        let mut dead: Vec<String> = Vec::new();
        for r in recorded {
            let text = format!("{} {}", r.what, r.pid);
            if !dead.iter().any(|d| d.ends_with(&format!(" {}", r.pid))) {
                dead.push(text);
            }
        }
        let verb = if dead.len() == 1 { "is" } else { "are" };
        o.reason = format!("its {} {verb} dead", dead.join(" and "));
    }
}

fn sysv_msg(procs: &Processes, listing: &mut Listing) {
    for row in sysv_rows("msg") {
        let mut o = sysv_object(Kind::SysvMq, &row);
        o.msgs = row.unsigned("qnum");
        o.used_bytes = row.unsigned("cbytes");
        let recorded: Vec<Recorded> = [
            Recorded::new("last sender", o.lspid, row.num("stime")),
            Recorded::new("last receiver", o.lrpid, row.num("rtime")),
        ]
        .into_iter()
        .flatten()
        .collect();
        let none = Vec::new();
        let blocked =
            o.id.and_then(|id| procs.blocked_msg.get(&id))
                .or(Some(&none));
        judge_recorded(procs, &mut o, &recorded, blocked, "msgsnd or msgrcv");
        listing.objects.push(o);
    }
}

fn sysv_shm(procs: &Processes, listing: &mut Listing) {
    for row in sysv_rows("shm") {
        let mut o = sysv_object(Kind::SysvShm, &row);
        o.size = row.unsigned("size");
        o.nattch = row.unsigned("nattch");
        o.holders = procs.holders(o.id.and_then(|id| procs.segments.get(&id)));
        let removed = o.perms.is_some_and(|p| p & 0o1000 != 0);
        let nattch = o.nattch.unwrap_or(0);
        o.creator_command = o
            .cpid
            .filter(|&p| p > 0 && procs.liveness(p, o.ctime) == process::Liveness::Alive)
            .map(|p| procs.command(p));
        if nattch > 0 {
            o.state = State::Live;
            let by: Vec<String> = o.holders.iter().map(|h| who(procs, h.pid)).collect();
            o.reason = if by.len() as u64 == nattch {
                format!("attached by {}", by.join(", "))
            } else if by.is_empty() {
                format!("{nattch} attachments, by processes out of sight")
            } else {
                format!("{nattch} attachments, among them {}", by.join(", "))
            };
            if removed {
                o.reason.push_str("; removed, freed at the last detach");
            }
        } else {
            let last_use = [row.num("atime"), row.num("dtime")]
                .into_iter()
                .flatten()
                .max()
                .filter(|&t| t > 0);
            // A segment always has a creator: pid 0 means one outside this pid namespace.
            let creator = Some(Recorded {
                what: "creator",
                pid: o.cpid.unwrap_or(0),
                when: o.ctime,
            });
            let recorded: Vec<Recorded> = creator
                .into_iter()
                .chain(Recorded::new("last user", o.lpid, last_use))
                .collect();
            judge_recorded(procs, &mut o, &recorded, None, "shmat");
            if o.state == State::Orphan {
                o.reason = format!("no attachments; {}", o.reason);
            } else if o.state == State::Live {
                o.reason = format!("not attached, but {}", o.reason);
            }
        }
        listing.objects.push(o);
    }
}

fn sysv_sem(procs: &Processes, listing: &mut Listing) {
    use crate::sync::sem_sysv::SysvSemSet;
    for row in sysv_rows("sem") {
        let mut o = sysv_object(Kind::SysvSem, &row);
        o.nsems = row.unsigned("nsems");
        // SETVAL and SETALL record a pid too, and change ctime rather than otime.
        let otime = row.num("otime").filter(|&t| t > 0);
        let when = otime.max(o.ctime);
        // The last user of each semaphore and its waiters need semctl, which needs read access.
        let set = o.id.map(SysvSemSet::open_id);
        match set {
            Some(Ok(set)) => {
                let mut waiting = 0;
                let mut recorded = Vec::new();
                for i in 0..set.len() {
                    if let Ok((n, z)) = set.waiters(i) {
                        waiting += n + z;
                    }
                    if let Ok(pid) = set.last_pid(i)
                        && pid > 0
                        && !recorded.iter().any(|r: &Recorded| r.pid == pid)
                    {
                        recorded.push(Recorded {
                            what: "last user",
                            pid,
                            when,
                        });
                    }
                }
                if recorded.is_empty() && otime.is_some() {
                    // Operated on, but by no pid this namespace can see.
                    recorded.extend(Recorded::new("last user", Some(0), otime));
                }
                let none = Vec::new();
                let blocked =
                    o.id.and_then(|id| procs.blocked_sem.get(&id))
                        .or(Some(&none));
                if waiting > 0 && blocked.is_none_or(|b| b.is_empty()) {
                    o.state = State::Live;
                    o.reason = match waiting {
                        1 => "a process waits on it".to_string(),
                        n => format!("{n} processes wait on it"),
                    };
                } else {
                    judge_recorded(procs, &mut o, &recorded, blocked, "semop");
                }
            }
            Some(Err(e)) => {
                o.state = State::Unknown;
                o.reason = format!("cannot read its last users: {e}");
            }
            None => {
                o.state = State::Unknown;
                o.reason = "no id".into();
            }
        }
        listing.objects.push(o);
    }
}

/// Live when someone holds it; else orphan, or unknown if an uninspected process might hold
/// it. The ipckit creator a name records is named in the reason either way.
fn judge_held(procs: &Processes, o: &mut Object, nobody: &str) {
    let tag = o
        .name
        .as_deref()
        .map(|n| n.trim_start_matches('/').trim_start_matches("sem."))
        .and_then(procfs::ipckit_tag);
    o.creator = tag.map(|(purpose, pid)| Creator {
        pid,
        purpose,
        alive: procs.liveness(pid, o.ctime) == process::Liveness::Alive,
    });
    o.creator_command = o
        .creator
        .as_ref()
        .filter(|c| c.alive)
        .map(|c| procs.command(c.pid));
    if !o.holders.is_empty() {
        o.state = State::Live;
        let by: Vec<String> = o.holders.iter().map(Holder::describe).collect();
        o.reason = format!("held by {}", by.join(", "));
    } else {
        let unseen = procs.unseen_for(o.uid.unwrap_or(0), o.perms.unwrap_or(0));
        if unseen > 0 {
            o.state = State::Unknown;
            o.reason = format!("{nobody} of those inspected; {unseen} processes could not be");
        } else {
            o.state = State::Orphan;
            // An ipckit handle holds its object while it exists, so a creator that still runs
            // but holds nothing has let it go (persisted it and dropped the handle).
            o.reason = match &o.creator {
                Some(c) if c.alive => format!(
                    "{nobody}; its ipckit creator {} runs but no longer holds it",
                    who(procs, c.pid)
                ),
                Some(c) => format!("{nobody}; its ipckit creator {} is dead", c.pid),
                None => nobody.to_string(),
            };
        }
    }
}

fn dev_shm(procs: &Processes, opts: &Options, listing: &mut Listing) {
    use std::os::unix::fs::MetadataExt;
    let Ok(dir) = std::fs::read_dir("/dev/shm") else {
        listing.notes.push("/dev/shm cannot be read".into());
        return;
    };
    let mut found = Vec::new();
    for entry in dir.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.file_type().is_file() {
            continue;
        }
        let file = entry.file_name().to_string_lossy().into_owned();
        let (kind, name) = match file.strip_prefix("sem.") {
            Some(n) => (Kind::PosixSem, n.to_string()),
            None => (Kind::PosixShm, file),
        };
        if !opts.wants(kind) {
            continue;
        }
        let mut o = Object::new(kind);
        o.name = Some(format!("/{name}"));
        o.uid = Some(meta.uid());
        o.perms = Some(meta.mode() & 0o7777);
        o.size = Some(meta.size());
        o.ctime = Some(meta.ctime());
        o.file = Some((meta.dev(), meta.ino()));
        o.holders = procs.holders(procs.files.get(&(meta.dev(), meta.ino())));
        judge_held(procs, &mut o, "no process maps it or holds it open");
        found.push(o);
    }
    found.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    listing.objects.extend(found);
}

fn mqueue(procs: &Processes, listing: &mut Listing) {
    use std::os::unix::fs::MetadataExt;
    let mut found = Vec::new();
    if crate::mq::posix::mqueue_mounted() {
        for entry in std::fs::read_dir("/dev/mqueue")
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(meta) = entry.metadata() else { continue };
            let mut o = Object::new(Kind::PosixMq);
            o.name = Some(format!("/{}", entry.file_name().to_string_lossy()));
            o.uid = Some(meta.uid());
            o.perms = Some(meta.mode() & 0o7777);
            o.ctime = Some(meta.ctime());
            o.file = Some((meta.dev(), meta.ino()));
            o.used_bytes = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|t| procfs::mqueue_qsize(&t));
            o.holders = procs.holders(procs.files.get(&(meta.dev(), meta.ino())));
            judge_held(procs, &mut o, "no process holds it open");
            found.push(o);
        }
    } else {
        listing.notes.push(
            "the mqueue filesystem is not mounted: only POSIX queues a process holds open are listed \
             (mount it with: mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue)"
                .into(),
        );
        for (key, q) in &procs.queues {
            let mut o = Object::new(Kind::PosixMq);
            o.name = Some(q.name.clone());
            o.uid = Some(q.uid);
            o.perms = Some(q.mode);
            o.ctime = Some(q.ctime);
            o.file = Some(*key);
            o.holders = procs.holders(procs.files.get(key));
            judge_held(procs, &mut o, "no process holds it open");
            found.push(o);
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    listing.objects.extend(found);
}

/// Readers and writers of a FIFO or pipe, in words.
fn ends(o: &mut Object) {
    let readers = o.holders.iter().filter(|h| h.read).count();
    let writers = o.holders.iter().filter(|h| h.write).count();
    let plural = |n: usize, what: &str| match n {
        1 => format!("1 {what}"),
        n => format!("{n} {what}s"),
    };
    o.detail = Some(format!(
        "{}, {}",
        plural(readers, "reader"),
        plural(writers, "writer")
    ));
    o.state = State::Live;
    o.reason = match (readers, writers) {
        (0, _) => "no reader: a write fails with EPIPE (and SIGPIPE)".into(),
        (_, 0) => "no writer: a read returns end-of-file".into(),
        _ => {
            let by: Vec<String> = o.holders.iter().map(Holder::describe).collect();
            format!("open by {}", by.join(", "))
        }
    };
}

fn fifos(procs: &Processes, listing: &mut Listing) {
    let mut found: Vec<Object> = procs
        .fifo_paths
        .iter()
        .map(|(key, path)| {
            let mut o = Object::new(Kind::Fifo);
            o.name = Some(path.display().to_string());
            if let Ok(st) = rustix::fs::lstat(path) {
                o.uid = Some(st.st_uid);
                o.perms = Some(st.st_mode & 0o7777);
                o.ctime = Some(st.st_ctime);
            }
            o.file = Some(*key);
            o.holders = procs.holders(procs.files.get(key));
            ends(&mut o);
            o
        })
        .collect();
    found.sort_by(|a, b| a.name.cmp(&b.name));
    listing.objects.extend(found);
}

fn pipes(procs: &Processes, listing: &mut Listing) {
    let sorted: BTreeMap<_, _> = procs.pipes.iter().collect();
    for (inode, uses) in sorted {
        let mut o = Object::new(Kind::Pipe);
        o.name = Some(format!("pipe:[{inode}]"));
        o.holders = procs.holders(Some(uses));
        o.uid = o
            .holders
            .first()
            .and_then(|h| procs.all.get(&h.pid))
            .and_then(|p| p.uid);
        // Between processes only: a pipe inside one process (a self-pipe) is its own business.
        if o.holders.len() < 2 {
            continue;
        }
        ends(&mut o);
        o.detail = o
            .detail
            .map(|d| format!("{d}, between {} processes", o.holders.len()));
        listing.objects.push(o);
    }
}

/// uid to user name, through the C library (so NSS users resolve), cached.
#[derive(Default)]
struct Users(std::collections::HashMap<u32, Option<String>>);

impl Users {
    fn name(&mut self, uid: u32) -> Option<String> {
        self.0.entry(uid).or_insert_with(|| user_name(uid)).clone()
    }
}

/// `getpwuid_r(3)`: the user name of `uid`.
pub fn user_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; getpwuid_r writes it and strings into `buf` only.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its size.
    let r = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if r != 0 || out.is_null() || pw.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside `buf`.
    let name = unsafe { std::ffi::CStr::from_ptr(pw.pw_name) };
    Some(name.to_string_lossy().into_owned())
}

/// `getpwnam_r(3)`, or a number: the uid of a user given by name or uid.
pub fn user_id(user: &str) -> Option<u32> {
    if let Ok(uid) = user.parse() {
        return Some(uid);
    }
    let c = std::ffi::CString::new(user).ok()?;
    let mut buf = vec![0 as libc::c_char; 4096];
    // SAFETY: passwd is plain data; getpwnam_r writes it and strings into `buf` only.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and `buf.len()` is its size.
    let r = unsafe { libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    (r == 0 && !out.is_null()).then_some(pw.pw_uid)
}
