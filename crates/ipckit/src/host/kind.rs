//! The kinds of IPC object, with their names, aliases and URI schemes.

use std::fmt;

/// A kind of IPC object.
///
/// Each kind has one name ([`Kind::name`]): the one `ipckit ls` shows and `--kind` takes, the
/// one its JSON says, and, for the System V kinds, its URI scheme. [`Kind::scheme`] is the
/// scheme of its URIs ([`Object::uri`](super::Object::uri)); parsing also takes the names
/// lsipc, ipcs and ipcrm use for the System V kinds ([`Kind::ALIASES`]).
///
/// | kind | URI | lsipc / ipcs / ipcrm |
/// |---|---|---|
/// | `sysv-mq` | `sysv-mq:0xKEY` (`id=ID` if private) | `lsipc -q`, `ipcs -q`, `ipcrm msg`; also `sysv-msg` |
/// | `sysv-shm` | `sysv-shm:0xKEY` (`id=ID` if private) | `lsipc -m`, `ipcs -m`, `ipcrm shm` |
/// | `sysv-sem` | `sysv-sem:0xKEY` (`id=ID` if private) | `lsipc -s`, `ipcs -s`, `ipcrm sem` |
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
    /// The scheme of its URIs ([`Object::uri`](super::Object::uri)): the name for the System V
    /// kinds, `shm`, `sem` and `mq` for the POSIX ones (as `ipckit send`, `recv` and `rm` take
    /// them), `unix` (a socket with an abstract name is `abstract:`), `fifo`, `pipe`.
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
