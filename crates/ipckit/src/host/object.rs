//! One listed object and its state, and what a scan looks at and finds.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::PathBuf;

use super::{Holder, Kind};

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
    /// POSIX name (`/NAME`), socket path or `@abstract` name, FIFO path, `pipe:[INODE]`:
    /// the bytes the system has, which need not be UTF-8 and may hold control characters.
    /// Print it with [`Object::label`] (or [`crate::name::escape`]); [`Object::uri`] holds it
    /// escaped.
    pub name: Option<OsString>,
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
    /// An object of `kind` with nothing known about it yet, `live` until judged: what the scan
    /// fills in (and what a test builds one from).
    pub fn new(kind: Kind) -> Object {
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

    /// Its URI, in [`Kind::scheme`], as `ipckit send`, `recv` and `rm` take it: `shm:/NAME`,
    /// `sem:/NAME`, `mq:/NAME`, `sysv-mq:0xKEY`, `sysv-shm:0xKEY`, `sysv-sem:0xKEY` (the key in
    /// hex, as ipcs shows it; a private object, which has no key, is `sysv-shm:id=ID`, which
    /// `rm` takes), `unix:PATH`, `abstract:NAME`, `fifo:PATH`, `pipe:[INODE]`.
    ///
    /// The name is written with [`crate::name::escape`], so the URI is printable text on one
    /// line whatever bytes the name holds; [`unescape`](super::unescape) gives the bytes back
    /// (`ipckit rm` does). A name of printable UTF-8 without a backslash is unchanged.
    ///
    /// ```
    /// use std::os::unix::ffi::OsStrExt;
    /// let mut o = ipckit::host::Object::new(ipckit::host::Kind::PosixShm);
    /// o.name = Some(std::ffi::OsStr::from_bytes(b"/bad\xff\x1b[2J").into());
    /// assert_eq!(o.uri(), "shm:/bad\\xff\\u{1b}[2J");
    /// ```
    pub fn uri(&self) -> String {
        let name = self.name.as_deref().unwrap_or(OsStr::new(""));
        let escaped = crate::name::escape(name);
        match self.kind {
            Kind::SysvMq | Kind::SysvShm | Kind::SysvSem => match self.key {
                Some(key) if key != 0 => format!("{}:{:#010x}", self.kind.scheme(), key),
                _ => format!("{}:id={}", self.kind.scheme(), self.id.unwrap_or(-1)),
            },
            Kind::Unix => match escaped.strip_prefix('@') {
                Some(abs) => format!("abstract:{abs}"),
                None => format!("unix:{escaped}"),
            },
            // `pipe:[INODE]` is its name already.
            Kind::Pipe => escaped,
            kind => format!("{}:{escaped}", kind.scheme()),
        }
    }

    /// What a person calls it: the name (escaped, as [`Object::uri`] has it), or the System
    /// V key in hex and id.
    pub fn label(&self) -> String {
        match (&self.name, self.key, self.id) {
            (Some(n), _, _) => crate::name::escape(n),
            (None, Some(k), Some(id)) => format!("key {k:#010x} id {id}"),
            _ => self.uri(),
        }
    }

    /// The name's bytes when [`Object::label`] does not show them as they are (not UTF-8, a
    /// control character or a backslash in them): `None` for a plain name, or no name.
    pub fn unusual_name(&self) -> Option<&OsStr> {
        let name = self.name.as_deref()?;
        (name.to_str() != Some(crate::name::escape(name).as_str())).then_some(name)
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

/// What [`scan`](super::scan) looks at.
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
    pub(super) fn wants(&self, kind: Kind) -> bool {
        if self.kinds.is_empty() {
            kind != Kind::Pipe
        } else {
            self.kinds.contains(&kind)
        }
    }
}

/// What [`scan`](super::scan) found.
#[derive(Debug, Default)]
pub struct Listing {
    /// The objects, by kind and then name or id.
    pub objects: Vec<Object>,
    /// Things the reader should know: the mqueue filesystem is not mounted, some processes
    /// could not be inspected.
    pub notes: Vec<String>,
}
