//! Removing one listed object, after checking it is still the object that was listed.

use std::path::Path;

use super::{Kind, Object, State};
use crate::error::{Error, ErrorKind, Result};
use crate::name::SysvKey;
use crate::sys::procfs;

/// Removes `object` as [`scan`](super::scan) listed it: `IPC_RMID` for System V objects (by
/// id), `shm_unlink`, `sem_unlink` or `mq_unlink` for POSIX names, `unlink` for a socket file
/// or FIFO. Refuses when the name or id now leads to another object (re-created or reused
/// since the scan), and, for an object listed as an orphan, when a System V segment was
/// attached meanwhile. Whether a live object may be removed is the caller's choice: processes
/// that hold it keep it, but nobody new can find it.
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
    let name = object.name.as_deref().unwrap_or("");
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
                Kind::PosixSem => format!("/dev/shm/sem.{}", name.trim_start_matches('/')),
                _ => format!("/dev/shm/{}", name.trim_start_matches('/')),
            };
            if !same_file(Path::new(&file), object) {
                return Err(changed());
            }
            match object.kind {
                Kind::PosixSem => crate::sync::sem_posix::remove(name),
                _ => crate::shm::posix::remove(name),
            }
        }
        Kind::PosixMq => {
            let file = format!("/dev/mqueue/{}", name.trim_start_matches('/'));
            // Without the mqueue filesystem mounted the name is all there is to go by.
            if !same_file(Path::new(&file), object) {
                return Err(changed());
            }
            crate::mq::posix::remove(name)
        }
        Kind::Unix if name.starts_with('@') => Err(Error::new(
            ErrorKind::InvalidInput,
            "removing",
            "an abstract socket name has no file: it goes when its last socket is closed",
        )
        .object(&label)
        .hint("stop the process that holds it")),
        Kind::Unix | Kind::Fifo => {
            if !same_file(Path::new(name), object) {
                return Err(changed());
            }
            // A server may have bound the path since the scan: look again, just before.
            if object.kind == Kind::Unix
                && object.state == State::Stale
                && (procfs::bound_in_kernel(Path::new(name))
                    || !matches!(
                        super::sockets::probe(Path::new(name)),
                        super::sockets::Probe::Refused
                    ))
            {
                return Err(Error::new(
                    ErrorKind::Changed,
                    "removing",
                    "a socket is bound to it now",
                )
                .object(&label));
            }
            rustix::fs::unlink(name).map_err(|e| Error::os("removing", e).object(&label))
        }
        Kind::Pipe => Err(Error::new(
            ErrorKind::InvalidInput,
            "removing",
            "an anonymous pipe has no name: it goes when its last end is closed",
        )
        .object(&label)),
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
