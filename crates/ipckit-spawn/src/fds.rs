//! Descriptors across exec: placed in the child by one `pre_exec` step, recorded by name in
//! [`RECORD_ENV`], and taken up once in the child.
//!
//! The record lists `NAME=N:DEV:INO` entries separated by commas: the name, the descriptor's
//! number in the child, and the device and inode of the open file (`fstat` in the parent), so
//! that a record a process inherited from further up (the descriptor closed or reused since)
//! never hands out a different file under the name.

use std::ffi::OsStr;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Mutex;

/// The environment variable that records the descriptors a parent passed, by name.
pub const RECORD_ENV: &str = "IPCKIT_FDS";

/// Adds one `pre_exec` step to `cmd` that puts each `(fd, target)` at descriptor `target` in
/// the child with `FD_CLOEXEC` cleared, so it survives exec; the parent's descriptors are
/// untouched. The targets must differ. The copies in `fds` stay open as long as `cmd` does.
///
/// Between fork and exec the step only calls `fcntl(F_DUPFD_CLOEXEC)` and `dup2`, which are
/// async-signal-safe, and allocates nothing. It first moves every source above every target,
/// so a source that sits at another entry's target is never overwritten before it is placed.
pub fn place(cmd: &mut Command, fds: Vec<(OwnedFd, RawFd)>) {
    if fds.is_empty() {
        return;
    }
    let floor = fds
        .iter()
        .map(|(fd, target)| fd.as_raw_fd().max(*target))
        .max()
        .unwrap_or(2)
        + 1;
    let mut moved: Vec<RawFd> = vec![-1; fds.len()];
    // SAFETY: the step calls only fcntl and dup2 (async-signal-safe) and writes into `moved`,
    // allocated here before the fork, so nothing allocates or takes a lock in the child.
    unsafe {
        cmd.pre_exec(move || {
            for (slot, (fd, _)) in moved.iter_mut().zip(&fds) {
                *slot = libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor);
                if *slot == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // dup2 clears FD_CLOEXEC on the target; the moved copies close at exec.
            for (&from, (_, target)) in moved.iter().zip(&fds) {
                if libc::dup2(from, *target) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Holds every `target` that is free in this process with a placeholder (`/dev/null`,
/// close-on-exec) until the returned descriptors are dropped: keep them until `spawn` returns.
/// `Command::spawn` opens a close-on-exec pipe of its own just before the fork, at the lowest
/// free numbers, to report a failed exec; a target free at that moment could be that pipe,
/// and the child's `dup2` onto it would turn an exec failure into a silent success.
pub(crate) fn reserve(targets: impl IntoIterator<Item = RawFd>) -> std::io::Result<Vec<OwnedFd>> {
    let mut held = Vec::new();
    for target in targets {
        // SAFETY: F_GETFD on a number only reads its flags; EBADF says it is free.
        if unsafe { libc::fcntl(target, libc::F_GETFD) } != -1 {
            continue;
        }
        let null = rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        let copy = rustix::io::fcntl_dupfd_cloexec(&null, target)?;
        // Another thread may have taken the number meanwhile: then it is not free either.
        if copy.as_raw_fd() == target {
            held.push(copy);
        }
    }
    Ok(held)
}

/// Parent side: hands `fd` to the child `cmd` starts, under `name`. A copy of `fd` (taken with
/// `F_DUPFD_CLOEXEC`, so no other child gets it) is inherited at the copy's own number, and
/// the record in [`RECORD_ENV`] gains `name`, which [`take`] finds in the child. Returns that
/// number. Fails for a name that is empty, holds `,` or `=`, or was passed to `cmd` already.
pub fn pass(cmd: &mut Command, name: &str, fd: BorrowedFd<'_>) -> std::io::Result<RawFd> {
    if name.is_empty() || name.contains([',', '=', '\0']) {
        return Err(invalid(format!(
            "descriptor name {name:?} is empty or holds ',', '=' or NUL: pick a plain word"
        )));
    }
    let record = recorded(cmd);
    if parse(&record).any(|e| e.is_ok_and(|e| e.name == name)) {
        return Err(invalid(format!(
            "a descriptor named {name} is passed to this command already: give each its own name"
        )));
    }
    let copy = rustix::io::fcntl_dupfd_cloexec(fd, 3)?;
    let n = copy.as_raw_fd();
    let entry = entry(name, copy.as_fd(), n)?;
    place(cmd, vec![(copy, n)]);
    record_in(cmd, &record, &entry);
    Ok(n)
}

/// The record entry for `fd`, to sit at number `n` in the child under `name`.
pub(crate) fn entry(name: &str, fd: BorrowedFd<'_>, n: RawFd) -> std::io::Result<String> {
    let st = rustix::fs::fstat(fd)?;
    Ok(format!("{name}={n}:{}:{}", st.st_dev, st.st_ino))
}

/// Appends `entry` to `cmd`'s record (`record` is what it holds now).
pub(crate) fn record_in(cmd: &mut Command, record: &str, entry: &str) {
    if record.is_empty() {
        cmd.env(RECORD_ENV, entry);
    } else {
        cmd.env(RECORD_ENV, format!("{record},{entry}"));
    }
}

/// What `cmd` records so far: only what was set on it, never a record this process inherited.
pub(crate) fn recorded(cmd: &Command) -> String {
    cmd.get_envs()
        .find(|(k, _)| *k == OsStr::new(RECORD_ENV))
        .and_then(|(_, v)| v)
        .and_then(OsStr::to_str)
        .unwrap_or_default()
        .to_string()
}

/// The child's descriptor numbers `record` lists.
pub(crate) fn numbers(record: &str) -> impl Iterator<Item = RawFd> + '_ {
    parse(record).filter_map(|e| e.ok().map(|e| e.fd))
}

/// Why [`take`] could not hand out a descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TakeError {
    /// The parent recorded no descriptor under this name (`passed`: the names it did record).
    NotPassed {
        /// The name asked for.
        name: String,
        /// The names the record holds.
        passed: Vec<String>,
    },
    /// It was taken already in this process: a descriptor has one owner.
    Taken {
        /// The name.
        name: String,
        /// Its number.
        fd: RawFd,
    },
    /// The number is closed, or holds another file than the parent passed: the record was
    /// inherited from further up, or something in this process closed or reused the number.
    Gone {
        /// The name.
        name: String,
        /// The recorded number.
        fd: RawFd,
    },
    /// [`RECORD_ENV`] does not parse.
    BadRecord(String),
}

impl fmt::Display for TakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TakeError::NotPassed { name, passed } if passed.is_empty() => write!(
                f,
                "no descriptor named {name} was passed to this process ({RECORD_ENV} is empty)"
            ),
            TakeError::NotPassed { name, passed } => write!(
                f,
                "no descriptor named {name} was passed to this process (it was given: {})",
                passed.join(", ")
            ),
            TakeError::Taken { name, fd } => {
                write!(f, "descriptor {name} (number {fd}) was taken already")
            }
            TakeError::Gone { name, fd } => write!(
                f,
                "descriptor {name} is recorded as number {fd}, but {fd} is not the file the \
                 parent passed (closed, or reused)"
            ),
            TakeError::BadRecord(r) => write!(f, "{RECORD_ENV}={r:?} does not parse"),
        }
    }
}

impl std::error::Error for TakeError {}

struct Entry {
    name: String,
    fd: RawFd,
    /// Open and the file the parent passed, when the record was read.
    there: bool,
    taken: bool,
}

/// What this process was passed: read from [`RECORD_ENV`] once, by the first [`take`].
static PASSED: Mutex<Option<Vec<Entry>>> = Mutex::new(None);

/// Child side: takes ownership of the descriptor the parent passed under `name` ([`pass`],
/// or `Spawn::fd`, which records a descriptor under its number, `"3"`).
///
/// The first call reads the record, sets `FD_CLOEXEC` again on every descriptor it lists that
/// is still the file the parent passed (so none leaks into this process's own children), and
/// removes [`RECORD_ENV`] from the environment when this process has one thread (changing the
/// environment while another thread may read it is not sound; with more threads the variable
/// stays, and the device and inode in each entry keep a grandchild from taking a stale one).
/// Each name is handed out once.
pub fn take(name: &str) -> Result<OwnedFd, TakeError> {
    let mut passed = PASSED.lock().unwrap_or_else(|p| p.into_inner());
    let entries = match passed.as_mut() {
        Some(entries) => entries,
        None => passed.insert(read_record()?),
    };
    let Some(e) = entries.iter_mut().find(|e| e.name == name) else {
        return Err(TakeError::NotPassed {
            name: name.to_string(),
            passed: entries.iter().map(|e| e.name.clone()).collect(),
        });
    };
    if e.taken {
        return Err(TakeError::Taken {
            name: e.name.clone(),
            fd: e.fd,
        });
    }
    if !e.there {
        return Err(TakeError::Gone {
            name: e.name.clone(),
            fd: e.fd,
        });
    }
    e.taken = true;
    // SAFETY: the number is open and holds the file the parent passed (checked when the record
    // was read, with FD_CLOEXEC set since); the registry hands each entry out once, so this is
    // its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(e.fd) })
}

struct Parsed<'a> {
    name: &'a str,
    fd: RawFd,
    /// `DEV:INO`.
    ident: &'a str,
}

fn parse(record: &str) -> impl Iterator<Item = Result<Parsed<'_>, ()>> {
    record.split(',').filter(|e| !e.is_empty()).map(|e| {
        let (name, rest) = e.split_once('=').ok_or(())?;
        let (fd, ident) = rest.split_once(':').ok_or(())?;
        let fd: RawFd = fd.parse().map_err(|_| ())?;
        if fd < 0 {
            return Err(());
        }
        Ok(Parsed { name, fd, ident })
    })
}

fn read_record() -> Result<Vec<Entry>, TakeError> {
    let record = std::env::var(RECORD_ENV).unwrap_or_default();
    let mut entries = Vec::new();
    for p in parse(&record) {
        let p = p.map_err(|()| TakeError::BadRecord(record.clone()))?;
        // SAFETY: borrowed only for fstat and fcntl, which fail cleanly on a closed number.
        let fd = unsafe { BorrowedFd::borrow_raw(p.fd) };
        let there = rustix::fs::fstat(fd)
            .is_ok_and(|st| format!("{}:{}", st.st_dev, st.st_ino) == p.ident)
            && rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC).is_ok();
        entries.push(Entry {
            name: p.name.to_string(),
            fd: p.fd,
            there,
            taken: false,
        });
    }
    if one_thread() {
        // SAFETY: this process has one thread (counted just now, and only this thread could
        // start another), so nothing reads the environment while it changes.
        unsafe { std::env::remove_var(RECORD_ENV) };
    }
    Ok(entries)
}

/// Whether this process runs one thread (`/proc/self/task` has one entry).
fn one_thread() -> bool {
    std::fs::read_dir("/proc/self/task").is_ok_and(|d| d.count() == 1)
}

fn invalid(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidInput, msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_parses_and_a_bad_one_does_not() {
        let ok: Vec<_> = parse("sock=5:10:20,3=3:1:2")
            .map(|p| p.map(|p| (p.name, p.fd, p.ident)))
            .collect();
        assert_eq!(ok, [Ok(("sock", 5, "10:20")), Ok(("3", 3, "1:2"))]);
        assert_eq!(numbers("sock=5:10:20,3=3:1:2").collect::<Vec<_>>(), [5, 3]);
        for bad in ["sock", "sock=x:1:2", "sock=-1:1:2", "sock=5"] {
            assert!(parse(bad).any(|p| p.is_err()), "{bad}");
        }
        assert_eq!(parse("").count(), 0);
    }
}
