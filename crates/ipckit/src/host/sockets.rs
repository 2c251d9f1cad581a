//! Unix sockets: the bound ones from `/proc/net/unix`, and socket files on disk that no socket
//! is bound to any more (stale).

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::process::{Processes, Use};
use super::{Kind, Listing, Object, State};
use crate::sys::procfs;

/// How deep the default directories are searched for socket files, and how many entries at
/// most, so a huge tree cannot stall a listing.
const DEPTH: usize = 4;
const MAX_ENTRIES: usize = 200_000;

/// The directories searched for stale socket files.
pub(crate) fn default_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = ["/tmp", "/var/tmp", "/run", "/dev/shm"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        dirs.push(PathBuf::from(x));
    }
    if let Some(t) = std::env::var_os("TMPDIR") {
        dirs.push(PathBuf::from(t));
    }
    dirs
}

/// What a connect to a socket file says.
pub(crate) enum Probe {
    /// `ECONNREFUSED`: no socket is bound (or one is bound but not listening).
    Refused,
    /// Anything else: something is there. The text says what.
    Answered(String),
    /// `EACCES`: the file's mode forbids this user to connect, so nothing is known.
    Denied,
}

/// A non-blocking stream connect to `path`. A listening socket accepts (or, with a full
/// backlog, answers `EAGAIN`); a datagram socket answers `EPROTOTYPE`; nobody, `ECONNREFUSED`.
pub(crate) fn probe(path: &Path) -> Probe {
    let Ok(addr) = SocketAddrUnix::new(path) else {
        return Probe::Answered("the path is too long to connect to".into());
    };
    let Ok(sock) = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    ) else {
        return Probe::Answered("no socket could be made to probe it".into());
    };
    loop {
        match rustix::net::connect(&sock, &addr) {
            Err(Errno::INTR) => continue,
            Err(Errno::CONNREFUSED) => return Probe::Refused,
            Ok(()) => return Probe::Answered("a connect was accepted".into()),
            Err(Errno::ACCESS) => return Probe::Denied,
            Err(e) => {
                return Probe::Answered(format!("a connect got {}", crate::error::errno_name(e)));
            }
        }
    }
}

pub(crate) fn list(procs: &Processes, extra_dirs: &[PathBuf], listing: &mut Listing) {
    let entries = procfs::unix_sockets();
    // Named sockets, grouped by name: a listener and the connections it accepted share it.
    let mut named: BTreeMap<&str, Vec<&procfs::UnixEntry>> = BTreeMap::new();
    for e in &entries {
        if let Some(p) = e.path.as_deref() {
            named.entry(p).or_default().push(e);
        }
    }
    // Bound socket files by (device, inode), so a path reached through a symlink, or not
    // UTF-8, still matches.
    let mut bound: HashSet<(u64, u64)> = HashSet::new();
    let mut relative_names: HashSet<std::ffi::OsString> = HashSet::new();
    for (name, group) in &named {
        let mut uses: BTreeMap<u32, Use> = BTreeMap::new();
        for e in group {
            for (&pid, u) in procs.sockets.get(&e.inode).into_iter().flatten() {
                uses.entry(pid).or_insert(*u);
            }
        }
        let mut o = Object::new(Kind::Unix);
        o.name = Some(name.to_string());
        o.holders = procs.holders(Some(&uses));
        // The bound socket is the listener, else the one not connected, else the first.
        let main = group
            .iter()
            .find(|e| e.listening)
            .or_else(|| group.iter().find(|e| e.state != 3))
            .unwrap_or(&group[0]);
        let connections = group
            .iter()
            .filter(|e| e.state == 3 && !e.listening)
            .count();
        let mut detail = format!(
            "{} {}",
            main.ty.name(),
            if main.listening {
                "listening"
            } else {
                state_name(main.state)
            }
        );
        if connections > 0 && main.listening {
            detail.push_str(&format!(", {connections} connections"));
        }
        o.detail = Some(detail);
        o.state = State::Live;
        if !name.starts_with('@') {
            let path = Path::new(name);
            let mut candidates = Vec::new();
            if path.is_absolute() {
                candidates.push(path.to_path_buf());
            } else {
                // Relative to the binder's directory: try each holder's working directory.
                if let Some(file) = path.file_name() {
                    relative_names.insert(file.to_os_string());
                }
                for h in &o.holders {
                    if let Ok(cwd) = std::fs::read_link(format!("/proc/{}/cwd", h.pid)) {
                        candidates.push(cwd.join(path));
                    }
                }
            }
            for c in &candidates {
                if let Ok(meta) = std::fs::symlink_metadata(c)
                    && meta.file_type().is_socket()
                {
                    bound.insert((meta.dev(), meta.ino()));
                }
            }
            match std::fs::symlink_metadata(candidates.first().map_or(path, |c| c.as_path())) {
                Ok(meta) => {
                    o.uid = Some(meta.uid());
                    o.perms = Some(meta.mode() & 0o7777);
                    o.ctime = Some(meta.ctime());
                    o.file = Some((meta.dev(), meta.ino()));
                }
                Err(_) if path.is_absolute() => {
                    o.reason = "bound, but its file was removed: nobody can connect by path".into();
                }
                Err(_) => {}
            }
        } else {
            o.uid = o
                .holders
                .first()
                .and_then(|h| procs.all.get(&h.pid))
                .and_then(|p| p.uid);
        }
        if o.reason.is_empty() {
            o.reason = if o.holders.is_empty() {
                "bound; no process holds it (a descriptor in flight?)".into()
            } else {
                let by: Vec<String> = o
                    .holders
                    .iter()
                    .map(|h| format!("{}({})", h.pid, h.command))
                    .collect();
                format!("bound by {}", by.join(", "))
            };
        }
        listing.objects.push(o);
    }

    // Socket files on disk that nothing in the table is bound to.
    let mut dirs = default_dirs();
    dirs.extend(
        extra_dirs
            .iter()
            .map(|d| std::path::absolute(d).unwrap_or_else(|_| d.clone())),
    );
    let mut seen = HashSet::new();
    let mut files = Vec::new();
    let mut budget = MAX_ENTRIES;
    let remote = remote_mounts();
    for dir in &dirs {
        walk(dir, DEPTH, &remote, &mut budget, &mut seen, &mut files);
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, meta) in files {
        if bound.contains(&(meta.dev(), meta.ino())) {
            continue;
        }
        let mut o = Object::new(Kind::Unix);
        o.name = Some(path.display().to_string());
        o.uid = Some(meta.uid());
        o.perms = Some(meta.mode() & 0o7777);
        o.ctime = Some(meta.ctime());
        o.file = Some((meta.dev(), meta.ino()));
        o.detail = Some("socket file".into());
        if path.file_name().is_some_and(|f| relative_names.contains(f)) {
            o.state = State::Unknown;
            o.reason = "a socket is bound to a relative path with this name".into();
        } else {
            match probe(&path) {
                Probe::Refused => {
                    o.state = State::Stale;
                    o.reason = "no socket is bound to it: a connect is refused and /proc/net/unix does not list it".into();
                }
                Probe::Denied => {
                    o.state = State::Unknown;
                    o.reason =
                        "not listed as bound, but its mode forbids a connect to check (EACCES)"
                            .into();
                }
                Probe::Answered(what) => {
                    o.state = State::Live;
                    o.reason = format!("{what} (bound in another network namespace?)");
                }
            }
        }
        listing.objects.push(o);
    }
}

/// Mount points of network and user-space filesystems, where a lookup can hang on a dead
/// server: never walked. Read from /proc/self/mountinfo, so the mounts themselves are not
/// touched.
fn remote_mounts() -> Vec<PathBuf> {
    const REMOTE: [&str; 10] = [
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "ceph",
        "9p",
        "afs",
        "lustre",
        "glusterfs",
    ];
    let Some(info) = procfs::read_lossy("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| {
            let point = line.split_whitespace().nth(4)?;
            let fstype = line.split(" - ").nth(1)?.split_whitespace().next()?;
            let remote = REMOTE.contains(&fstype) || fstype.starts_with("fuse");
            // mountinfo escapes spaces and the like as octal: \040.
            remote.then(|| PathBuf::from(point.replace("\\040", " ")))
        })
        .collect()
}

fn state_name(state: u8) -> &'static str {
    match state {
        1 => "bound",
        2 => "connecting",
        3 => "connected",
        4 => "disconnecting",
        _ => "unknown state",
    }
}

/// Socket files under `dir`, `depth` levels down, never following a symlink.
fn walk(
    dir: &Path,
    depth: usize,
    remote: &[PathBuf],
    budget: &mut usize,
    seen: &mut HashSet<(u64, u64)>,
    out: &mut Vec<(PathBuf, std::fs::Metadata)>,
) {
    if remote.iter().any(|m| dir.starts_with(m)) {
        return;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let Ok(ft) = entry.file_type() else { continue };
        if ft.is_socket() {
            if let Ok(meta) = entry.metadata()
                && seen.insert((meta.dev(), meta.ino()))
            {
                out.push((entry.path(), meta));
            }
        } else if ft.is_dir()
            && depth > 1
            && !remote.iter().any(|m| entry.path().starts_with(m))
            && let Ok(meta) = entry.metadata()
            && seen.insert((meta.dev(), meta.ino()))
        {
            walk(&entry.path(), depth - 1, remote, budget, seen, out);
        }
    }
}
