//! Removing one listed object, after checking it is still the object that was listed.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::io::Errno;

use super::{Kind, Object, State};
use crate::error::{Error, ErrorKind, Result};
use crate::name::{SysvKey, Unlinked};
use crate::sys::procfs;

/// Removes `object` as [`scan`](super::scan) listed it: `IPC_RMID` for System V objects (by
/// id), `shm_unlink`, `sem_unlink` or `mq_unlink` for POSIX names, `unlink` for a socket file
/// or FIFO. Refuses when the name or id now leads to another object (re-created or reused
/// since the scan), and, for an object listed as an orphan, when a System V segment was
/// attached meanwhile, or, for a socket file listed as stale, when a socket in any network
/// namespace is bound to it now. Whether a live object may be removed is the caller's choice:
/// processes that hold it keep it, but nobody new can find it.
///
/// Names are taken as the system has them (any bytes, any length the filesystem allows): a
/// name planted with bytes that are not UTF-8 is removed like any other.
pub fn remove(object: &Object) -> Result<()> {
    let label = object.uri();
    let changed = || {
        Error::new(
            ErrorKind::Changed,
            "removing",
            "it changed since it was listed (re-created, or the id reused)",
        )
        .object(&label)
        .hint("list again and retry")
    };
    let same_key = |key: SysvKey| object.key.map(SysvKey::from_raw) == Some(key);
    let id = object.id.unwrap_or(-1);
    let name = object.name.as_deref().unwrap_or(OsStr::new(""));
    let base = name
        .as_bytes()
        .strip_prefix(b"/")
        .unwrap_or(name.as_bytes());
    match object.kind {
        Kind::SysvShm => {
            let shm = crate::shm::sysv::SysvShm::open_id(id, crate::Access::ReadOnly)?;
            let st = shm.stat()?;
            let ctime = st
                .ctime
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            // The key alone does not tell a private segment (key 0) from one that reused its id.
            if !same_key(shm.key()) || Some(st.cpid) != object.cpid || Some(ctime) != object.ctime {
                return Err(changed());
            }
            if object.state != State::Live && st.nattch > 0 {
                return Err(Error::new(
                    ErrorKind::Changed,
                    "removing",
                    "a process attached it since it was listed",
                )
                .object(&label));
            }
            shm.remove()
        }
        Kind::SysvMq => {
            let q = crate::mq::sysv::SysvMq::open_id(id, crate::Access::ReadOnly)?;
            let st = q.stat()?;
            let secs = |t: Option<std::time::SystemTime>| {
                t.and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs() as i64)
            };
            let ctime = secs(Some(st.ctime));
            if !same_key(q.key()) || Some(ctime) != object.ctime {
                return Err(changed());
            }
            // Listed as an orphan: any send or receive since means someone is there.
            let last = ctime.max(secs(st.stime)).max(secs(st.rtime));
            let used = Some(st.msgs) != object.msgs
                || Some(st.lspid) != object.lspid
                || Some(st.lrpid) != object.lrpid
                || object.last_used.is_some_and(|t| last > t);
            if object.state != State::Live && used {
                return Err(Error::new(
                    ErrorKind::Changed,
                    "removing",
                    "a process sent to or received from it since it was listed",
                )
                .object(&label));
            }
            q.remove()
        }
        Kind::SysvSem => {
            let set = crate::sync::sem_sysv::SysvSemSet::open_id(id, crate::Access::ReadWrite)?;
            if !same_key(set.key()) {
                return Err(changed());
            }
            let waiting = (0..set.len()).any(|i| set.waiters(i).is_ok_and(|(n, z)| n + z > 0));
            if object.state != State::Live && waiting {
                return Err(Error::new(
                    ErrorKind::Changed,
                    "removing",
                    "a process waits on it now",
                )
                .object(&label));
            }
            set.remove()
        }
        Kind::PosixShm | Kind::PosixSem => {
            let file = match object.kind {
                Kind::PosixSem => dev_file("/dev/shm/sem.", base),
                _ => dev_file("/dev/shm/", base),
            };
            if !same_file(&file, object) {
                return Err(changed());
            }
            // What shm_unlink and sem_unlink do (glibc's and rustix's), to the file just
            // checked: any name the directory holds, even one too long for their checks.
            let op = match object.kind {
                Kind::PosixSem => "removing POSIX semaphore",
                _ => "removing POSIX shared memory",
            };
            unlink_listed(&file, object, op, &label)
        }
        Kind::PosixMq => {
            let file = dev_file("/dev/mqueue/", base);
            // Without the mqueue filesystem mounted the name is all there is to go by.
            if !same_file(&file, object) {
                return Err(changed());
            }
            posix_unlink("removing POSIX message queue", &label, name, |c| {
                // SAFETY: `c` is a valid C string.
                unsafe { libc::mq_unlink(c.as_ptr()) }
            })
        }
        Kind::Unix if name.as_bytes().starts_with(b"@") => Err(Error::new(
            ErrorKind::InvalidInput,
            "removing",
            "an abstract socket name has no file: it goes when its last socket is closed",
        )
        .object(&label)
        .hint("stop the process that holds it")),
        Kind::Unix | Kind::Fifo => {
            let path = Path::new(name);
            if !same_file(path, object) {
                return Err(changed());
            }
            // A server may have bound the path since the scan: look again, just before, in
            // every network namespace.
            if object.kind == Kind::Unix
                && object.state == State::Stale
                && (procfs::bound_in_kernel(path)
                    || !matches!(super::sockets::probe(path), super::sockets::Probe::Refused))
            {
                return Err(Error::new(
                    ErrorKind::Changed,
                    "removing",
                    "a socket is bound to it now (or a network namespace that could hold one cannot be read)",
                )
                .object(&label));
            }
            unlink_listed(path, object, "removing", &label)
        }
        Kind::Pipe => Err(Error::new(
            ErrorKind::InvalidInput,
            "removing",
            "an anonymous pipe has no name: it goes when its last end is closed",
        )
        .object(&label)),
    }
}

/// Removes the FIFO at `path`, one a [`scan`](super::scan) does not list because no process
/// has it open: `unlink(2)` through one descriptor of its directory, only if what is there is
/// still a FIFO (an error of kind [`Changed`](ErrorKind::Changed) if not), so a directory
/// swapped for a symbolic link meanwhile cannot turn the removal onto another file.
pub fn remove_fifo(path: &Path) -> Result<()> {
    let label = format!("fifo:{}", crate::name::escape(path.as_os_str()));
    unlink_listed(path, &Object::new(Kind::Fifo), "removing FIFO", &label)
}

/// `DIR` followed by a name's bytes.
fn dev_file(dir: &str, name: &[u8]) -> PathBuf {
    let mut bytes = dir.as_bytes().to_vec();
    bytes.extend_from_slice(name);
    PathBuf::from(OsStr::from_bytes(&bytes))
}

/// `mq_unlink(3)` of a name of any bytes (the library's own `remove` takes the names ipckit
/// makes, which are UTF-8).
fn posix_unlink(
    op: &'static str,
    label: &str,
    name: &OsStr,
    call: impl FnOnce(&CString) -> libc::c_int,
) -> Result<()> {
    let c = CString::new(name.as_bytes()).map_err(|_| {
        Error::new(ErrorKind::InvalidInput, op, "the name holds a NUL byte").object(label)
    })?;
    if call(&c) == -1 {
        let errno =
            Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
        return Err(Error::os(op, errno)
            .object(label)
            .hint_if(Errno::NOENT, "it is already removed"));
    }
    Ok(())
}

/// Unlinks the file at `path` if it is still the one `object` was listed with, through one
/// descriptor of its directory ([`unlink_if`](crate::name::unlink_if)): neither a file put
/// there since nor a directory swapped for a link since is removed instead.
fn unlink_listed(path: &Path, object: &Object, op: &'static str, label: &str) -> Result<()> {
    use rustix::fs::FileType;
    let kind = match object.kind {
        Kind::Unix => Some(FileType::Socket),
        Kind::Fifo => Some(FileType::Fifo),
        _ => None,
    };
    let same = |st: &rustix::fs::Stat| {
        object.file.is_none_or(|f| f == (st.st_dev, st.st_ino))
            && kind.is_none_or(|k| FileType::from_raw_mode(st.st_mode) == k)
    };
    match crate::name::unlink_if(path, same) {
        Ok(Unlinked::Removed) => Ok(()),
        Ok(Unlinked::Gone) => Err(Error::os(op, Errno::NOENT)
            .object(label)
            .hint("it is already removed")),
        Ok(Unlinked::Changed) => Err(Error::new(
            ErrorKind::Changed,
            op,
            "it changed since it was listed (another file is at its path now)",
        )
        .object(label)
        .hint("list again and retry")),
        Err(e) => Err(Error::os(op, e).object(label)),
    }
}

/// The file at `path` is still the one the object was listed with (a file that is gone
/// counts as the same: the unlink then reports it).
fn same_file(path: &Path, object: &Object) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::symlink_metadata(path), object.file) {
        (Ok(meta), Some(file)) => (meta.dev(), meta.ino()) == file,
        _ => true,
    }
}
