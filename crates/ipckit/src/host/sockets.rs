//! Unix sockets: the bound ones from `/proc/net/unix`, and socket files on disk that no socket
//! is bound to any more (stale).
//!
//! `/proc/net/unix` lists only this process's network namespace. A socket file may be bound by
//! a process in another one (a container sharing a directory): the tables of every network
//! namespace a task is in are read too (`/proc/TID/net/unix`), and a file one of them is bound
//! to is live. A file that refuses connections and that no table lists is stale only when no
//! namespace that could hold it went unread: otherwise it is `unknown`, and `gc` keeps it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::io::Errno;
use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};

use super::process::{self, Processes, Use};
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
    list_with(procs, &procfs::net_tables(), extra_dirs, listing);
}

/// [`list`] with the network namespaces' tables given.
fn list_with(
    procs: &Processes,
    nets: &procfs::NetTables,
    extra_dirs: &[PathBuf],
    listing: &mut Listing,
) {
    let empty = Vec::new();
    let ours = nets
        .tables
        .iter()
        .find(|t| t.ours)
        .map_or(&empty, |t| &t.entries);
    // Named sockets, grouped by name: a listener and the connections it accepted share it.
    let mut named: BTreeMap<&OsStr, Vec<&procfs::UnixEntry>> = BTreeMap::new();
    for e in ours {
        if let Some(p) = e.os_path.as_deref() {
            named.entry(p).or_default().push(e);
        }
    }
    // Bound socket files by (device, inode), so a path reached through a symlink still
    // matches.
    let mut bound: HashSet<(u64, u64)> = HashSet::new();
    let mut relative_names: HashSet<OsString> = HashSet::new();
    for (name, group) in &named {
        let mut uses: BTreeMap<u32, Use> = BTreeMap::new();
        for e in group {
            for (&pid, u) in procs.sockets.get(&e.inode).into_iter().flatten() {
                uses.entry(pid).or_insert(*u);
            }
        }
        let mut o = Object::new(Kind::Unix);
        o.name = Some(name.to_os_string());
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
        let mut detail = describe(main);
        if connections > 0 && main.listening {
            detail.push_str(&format!(", {connections} connections"));
        }
        o.detail = Some(detail);
        o.state = State::Live;
        if !name.as_bytes().starts_with(b"@") {
            let path = Path::new(name);
            if path.is_relative()
                && let Some(file) = path.file_name()
            {
                relative_names.insert(file.to_os_string());
            }
            // As this process sees the path, and as each holder does (its root, or its
            // working directory for a relative path).
            let holders: Vec<u32> = o.holders.iter().map(|h| h.pid).collect();
            let files = procfs::bound_files(main, &holders);
            bound.extend(&files);
            let first = if path.is_absolute() {
                std::fs::symlink_metadata(path).ok()
            } else {
                None
            }
            .or_else(|| {
                holders.iter().find_map(|h| {
                    std::fs::symlink_metadata(PathBuf::from(format!("/proc/{h}/cwd")).join(path))
                        .ok()
                })
            });
            match first {
                Some(meta) => {
                    o.uid = Some(meta.uid());
                    o.perms = Some(meta.mode() & 0o7777);
                    o.ctime = Some(meta.ctime());
                    o.file = Some((meta.dev(), meta.ino()));
                }
                None if path.is_absolute() && files.is_empty() => {
                    o.reason = "bound, but its file was removed: nobody can connect by path".into();
                }
                None => {}
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

    // Sockets bound in the other network namespaces, by the files their paths lead to (as
    // this process sees the path, and as the task the table was read through and the
    // socket's holders see it).
    let mut foreign: HashMap<(u64, u64), (String, BTreeMap<u32, Use>)> = HashMap::new();
    for table in nets.tables.iter().filter(|t| !t.ours) {
        // By path, as for this namespace: a listener's accepted connections show its path.
        let mut by_path: BTreeMap<&OsStr, Vec<&procfs::UnixEntry>> = BTreeMap::new();
        for e in &table.entries {
            if let Some(p) = e.os_path.as_deref()
                && !p.as_bytes().starts_with(b"@")
            {
                by_path.entry(p).or_default().push(e);
            }
        }
        for (p, group) in by_path {
            let mut uses: BTreeMap<u32, Use> = BTreeMap::new();
            for e in &group {
                for (&pid, u) in procs.sockets.get(&e.inode).into_iter().flatten() {
                    uses.entry(pid).or_insert(*u);
                }
            }
            let main = group
                .iter()
                .find(|e| e.listening)
                .or_else(|| group.iter().find(|e| e.state != 3))
                .unwrap_or(&group[0]);
            let mut tids: Vec<u32> = uses.keys().copied().collect();
            tids.push(table.tid);
            let files = procfs::bound_files(main, &tids);
            if files.is_empty() {
                if Path::new(p).is_relative()
                    && let Some(file) = Path::new(p).file_name()
                {
                    relative_names.insert(file.to_os_string());
                }
                continue;
            }
            let by = if uses.is_empty() {
                // A descriptor in flight, or held by a process whose descriptors could not
                // be read: name the namespace's process the table was read through.
                let pid = procs_pid_of(table.tid);
                format!(
                    "no process seen holds it; read through {pid}({})",
                    procs.command(pid)
                )
            } else {
                let by: Vec<String> = uses
                    .keys()
                    .map(|&h| format!("{h}({})", procs.command(h)))
                    .collect();
                format!("by {}", by.join(", "))
            };
            let ns = table.ns.map_or_else(
                || format!("the one of thread {}", table.tid),
                |n| format!("net:[{n}]"),
            );
            let why = format!(
                "{} in another network namespace ({ns}), {by}",
                describe(main)
            );
            for f in files {
                foreign
                    .entry(f)
                    .or_insert_with(|| (why.clone(), uses.clone()));
            }
        }
    }

    // Socket files on disk that nothing in this namespace's table is bound to.
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
    let mut unseen = Unseen::new(procs, nets);
    for (path, meta) in files {
        let file = (meta.dev(), meta.ino());
        if bound.contains(&file) {
            continue;
        }
        let mut o = Object::new(Kind::Unix);
        o.name = Some(path.clone().into_os_string());
        o.uid = Some(meta.uid());
        o.perms = Some(meta.mode() & 0o7777);
        o.ctime = Some(meta.ctime());
        o.file = Some(file);
        o.detail = Some("socket file".into());
        if let Some((why, uses)) = foreign.get(&file) {
            o.state = State::Live;
            o.reason = why.clone();
            o.holders = procs.holders(Some(uses));
        } else if path.file_name().is_some_and(|f| relative_names.contains(f)) {
            o.state = State::Unknown;
            o.reason = "a socket is bound to a relative path with this name".into();
        } else {
            match probe(&path) {
                Probe::Refused => match unseen.why(meta.uid()) {
                    None => {
                        o.state = State::Stale;
                        o.reason = "no socket is bound to it: a connect is refused and no network \
                                    namespace's socket table lists it"
                            .into();
                    }
                    Some(why) => {
                        o.state = State::Unknown;
                        o.reason = format!(
                            "a connect is refused and no socket table read lists it, but {why}"
                        );
                    }
                },
                Probe::Denied => {
                    o.state = State::Unknown;
                    o.reason =
                        "not listed as bound, but its mode forbids a connect to check (EACCES)"
                            .into();
                }
                Probe::Answered(what) => {
                    o.state = State::Live;
                    o.reason = what;
                }
            }
        }
        listing.objects.push(o);
    }
}

/// `stream listening`, `seqpacket bound`, …: a socket's type and state.
fn describe(e: &procfs::UnixEntry) -> String {
    format!(
        "{} {}",
        e.ty.name(),
        if e.listening {
            "listening"
        } else {
            state_name(e.state)
        }
    )
}

/// The process of thread `tid` (its thread group), as /proc/TID/status says.
fn procs_pid_of(tid: u32) -> u32 {
    procfs::read_lossy(format!("/proc/{tid}/status"))
        .and_then(|t| {
            let line = t.lines().find(|l| l.starts_with("Tgid:"))?;
            line["Tgid:".len()..].trim().parse().ok()
        })
        .unwrap_or(tid)
}

/// What keeps a socket file that refuses connections and that no table read lists from being
/// called stale: a network namespace this scan could not read might have a socket bound to it.
struct Unseen<'a> {
    procs: &'a Processes,
    nets: &'a procfs::NetTables,
    /// A Unix socket a process holds that no table lists (its namespace has no task in it, so
    /// no /proc/PID/net shows it): found once, when first asked.
    homeless: Option<Option<String>>,
}

impl<'a> Unseen<'a> {
    fn new(procs: &'a Processes, nets: &'a procfs::NetTables) -> Self {
        Unseen {
            procs,
            nets,
            homeless: None,
        }
    }

    /// Why a socket file owned by `uid` might be bound in a namespace not seen, if it might.
    fn why(&mut self, uid: u32) -> Option<String> {
        let unread: Vec<&procfs::UnreadNet> = self.nets.unread_for(uid).collect();
        if let Some(first) = unread.first() {
            return Some(format!(
                "the network namespaces of {} processes could not be read ({} for pid {}): one \
                 may have a socket bound to it (run as root to see them)",
                unread.len(),
                crate::error::errno_name(first.errno),
                first.pid
            ));
        }
        if self.procs.hidden_others && uid != rustix::process::geteuid().as_raw() {
            return Some(
                "/proc hides other users' processes (hidepid): one in another network namespace \
                 may have a socket bound to it"
                    .into(),
            );
        }
        if process::nested_pid_namespace() {
            return Some(
                "processes outside this pid namespace are not seen: one in another network \
                 namespace may have a socket bound to it"
                    .into(),
            );
        }
        self.homeless
            .get_or_insert_with(|| homeless_socket(self.procs, self.nets))
            .clone()
    }
}

/// A Unix socket that a process holds but that no table read lists, in words: its network
/// namespace is one no task is in (kept alive by the socket itself, or a bind mount), so its
/// table cannot be read and it may be bound to any file.
fn homeless_socket(procs: &Processes, nets: &procfs::NetTables) -> Option<String> {
    let listed: HashSet<u64> = nets
        .tables
        .iter()
        .flat_map(|t| t.entries.iter().map(|e| e.inode))
        .collect();
    let mut held: Vec<(&u64, &PathBuf)> = procs
        .socket_fds
        .iter()
        .filter(|(inode, _)| !listed.contains(inode))
        .collect();
    held.sort();
    for (inode, fd) in held {
        // TCP, UDP, netlink and the rest are not in these tables: the socket's protocol
        // name tells a Unix socket (UNIX, UNIX-STREAM) from them.
        let mut buf = [0u8; 32];
        let Ok(n) = rustix::fs::getxattr(fd, "system.sockprotoname", &mut buf) else {
            continue;
        };
        if !buf[..n].starts_with(b"UNIX") {
            continue;
        }
        let pids: Vec<String> = procs
            .sockets
            .get(inode)
            .into_iter()
            .flat_map(|m| m.keys())
            .map(|&p| format!("{p}({})", procs.command(p)))
            .collect();
        return Some(format!(
            "{} holds Unix socket {inode}, which is in a network namespace no process is in (its \
             socket table cannot be read): it may be bound to this file",
            pids.join(", ")
        ));
    }
    None
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict on a socket file nothing is bound to, with `unread` tasks added to what
    /// the scan found.
    fn verdict(dir: &Path, path: &Path, unread: Vec<procfs::UnreadNet>) -> Object {
        let procs = Processes::scan(false, false);
        let mut nets = procfs::net_tables();
        nets.unread.extend(unread);
        let mut listing = Listing::default();
        list_with(&procs, &nets, &[dir.to_path_buf()], &mut listing);
        listing
            .objects
            .into_iter()
            .find(|o| o.name.as_deref() == Some(path.as_os_str()))
            .expect("the socket file is listed")
    }

    #[test]
    fn a_namespace_that_could_not_be_read_makes_a_refusing_file_unknown_not_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let me = rustix::process::geteuid().as_raw();
        let unread = |uid| procfs::UnreadNet {
            pid: 1,
            uid,
            errno: rustix::io::Errno::ACCESS,
        };
        if process::nested_pid_namespace() {
            // Processes outside are out of sight: never stale here.
            assert_eq!(verdict(dir.path(), &path, Vec::new()).state, State::Unknown);
            return;
        }
        assert_eq!(verdict(dir.path(), &path, Vec::new()).state, State::Stale);
        // A task of the file's owner, or of an unknown uid, might have it bound.
        for uid in [Some(me), None] {
            let o = verdict(dir.path(), &path, vec![unread(uid)]);
            assert_eq!(o.state, State::Unknown, "{o:?}");
            assert!(
                o.reason.contains("could not be read (EACCES"),
                "{}",
                o.reason
            );
        }
        // Another user's task did not make this file.
        let o = verdict(dir.path(), &path, vec![unread(Some(me.wrapping_add(1)))]);
        assert_eq!(o.state, State::Stale, "{o:?}");
    }

    #[test]
    fn a_file_bound_in_another_namespace_is_found_through_its_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let procs = Processes::scan(false, false);
        let mut nets = procfs::net_tables();
        // The same file, listed as bound (not listening) in a namespace of its own.
        nets.tables.push(procfs::NetTable {
            ours: false,
            tid: std::process::id(),
            ns: Some(7),
            entries: procfs::net_unix_bytes(
                format!(
                    "Num RefCount Protocol Flags Type St Inode Path\n\
                     0000000000000000: 00000002 00000000 00000000 0001 01 1 {}\n",
                    path.display()
                )
                .as_bytes(),
            ),
        });
        let mut listing = Listing::default();
        list_with(&procs, &nets, &[dir.path().to_path_buf()], &mut listing);
        let o = listing
            .objects
            .iter()
            .find(|o| o.name.as_deref() == Some(path.as_os_str()))
            .unwrap();
        assert_eq!(o.state, State::Live, "{o:?}");
        assert!(o.reason.contains("net:[7]"), "{}", o.reason);
    }
}
