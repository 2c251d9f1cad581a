//! Unix sockets: the bound ones from `/proc/net/unix`, and socket files on disk that no socket
//! is bound to any more (stale).
//!
//! `/proc/net/unix` lists only this process's network namespace. A socket file may be bound by
//! a process in another one (a container sharing a directory): the tables of every network
//! namespace a task is in are read too (`/proc/TID/net/unix`), and a file one of them is bound
//! to is live. A file that refuses connections and that no table lists is stale only when no
//! namespace that could hold it went unread: otherwise it is `unknown`, and `gc` keeps it.
//!
//! A bound path is looked up as its binder may see it (this process, the holders, the task a
//! table was read through) with [`crate::sys::lookup`], which never asks a filesystem that
//! may block ([`procfs::MAY_BLOCK`]: a stuck FUSE daemon or NFS server would hang the scan).
//! A path that was not looked up for that reason, or one bound in another namespace that
//! leads to no socket file through any of its binders' roots, cannot be matched to its file:
//! every socket file with the same name is then `unknown` (the file may be that one, seen
//! here at another path through a shared directory).

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
    let mut mounts = procfs::Mounts::read();
    list_with(
        procs,
        &procfs::net_tables(),
        &mut mounts,
        extra_dirs,
        listing,
    );
}

/// [`list`] with the network namespaces' tables and the mount tables given.
fn list_with(
    procs: &Processes,
    nets: &procfs::NetTables,
    mounts: &mut procfs::Mounts,
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
    // File names of bound paths whose socket file could not be told (a filesystem that may
    // block, a view that could not be read, a foreign path that leads nowhere): a socket
    // file with that name may be the bound one. With why.
    let mut unmatched: HashMap<OsString, String> = HashMap::new();
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
        let mut skipped = None;
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
            let found = procfs::bound_files(main, &holders, mounts);
            bound.extend(&found.files);
            let mut binders: Vec<Option<u32>> = vec![None];
            binders.extend(holders.iter().map(|&h| Some(h)));
            let why = found.unmatched(&binders, false);
            match &found.first {
                Some(st) => {
                    o.uid = Some(st.st_uid);
                    o.perms = Some(st.st_mode & 0o7777);
                    o.ctime = Some(st.st_ctime);
                    o.file = Some((st.st_dev, st.st_ino));
                }
                None if path.is_absolute() && found.skipped.is_empty() => {
                    o.reason = "bound, but its file was removed: nobody can connect by path".into();
                }
                None => {}
            }
            if let Some(why) = why
                && let Some(file) = path.file_name()
            {
                unmatched.entry(file.to_os_string()).or_insert_with(|| {
                    format!(
                        "a socket in this network namespace is bound to {}, whose file ipckit \
                         could not tell: {why}; this file may be it",
                        crate::name::escape(name)
                    )
                });
                skipped = Some(why);
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
        if let Some(why) = skipped {
            o.reason = format!("{}; its file is not looked at: {why}", o.reason);
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
            let found = procfs::bound_files(main, &tids, mounts);
            let ns = table.ns.map_or_else(
                || format!("the one of thread {}", table.tid),
                |n| format!("net:[{n}]"),
            );
            // The path is the binder's, in its mount namespace and under its root: the view
            // of one of the holders or of the task the table was read through (the binder
            // may be a thread that unshared its namespaces) must have found its file, and
            // none of theirs may have gone unread. Else a file of ours with the same name
            // may be the very one (a shared directory seen at another place): not stale.
            let binders: Vec<Option<u32>> = tids.iter().map(|&t| Some(t)).collect();
            if let Some(why) = found.unmatched(&binders, true)
                && let Some(file) = Path::new(p).file_name()
            {
                unmatched.entry(file.to_os_string()).or_insert_with(|| {
                    format!(
                        "a socket in another network namespace ({ns}) is bound to {}, whose \
                         file ipckit could not match: {why}; this file may be it",
                        crate::name::escape(p)
                    )
                });
            }
            let files = found.files;
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
    let remote = remote_mounts(mounts.ours());
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
        } else if let Some(why) = path.file_name().and_then(|f| unmatched.get(f)) {
            o.state = State::Unknown;
            o.reason = why.clone();
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
        // TCP, UDP, netlink and the rest are not in these tables.
        if !is_unix_socket(fd, *inode) {
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

/// Whether the socket `inode`, which the scan found at `fd_link` (`/proc/PID/fd/N`), is a
/// Unix socket: its protocol name, the `system.sockprotoname` attribute sockfs gives (UNIX,
/// UNIX-STREAM, …; TCP, UDP, NETLINK, … are not in the Unix tables).
///
/// The number N may have been closed and given to another file since the scan, on any
/// filesystem: a getxattr(2) of `/proc/PID/fd/N` would then ask that filesystem (a FUSE
/// daemon or an NFS server that may never answer) and read another object. So the link is
/// opened with `O_PATH`, which asks the file's filesystem for nothing (no open, no read), and
/// only when it reads `socket:[INODE]` just before. The descriptor got is this process's own
/// and cannot change: its own link, `/proc/self/fd/M`, reading `socket:[INODE]` proves it is
/// that very socket, and only then is the attribute read, through that link, from sockfs.
/// (fgetxattr(2) would be the direct call, but it refuses an `O_PATH` descriptor with EBADF on
/// Linux 6.18 still; a descriptor opened for reading cannot be had for a socket at all.)
fn is_unix_socket(fd_link: &Path, inode: u64) -> bool {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let want = format!("socket:[{inode}]");
    let is_it =
        |link: &Path| std::fs::read_link(link).is_ok_and(|t| t.as_os_str() == want.as_str());
    if !is_it(fd_link) {
        return false;
    }
    let Ok(held) = rustix::fs::open(fd_link, OFlags::PATH | OFlags::CLOEXEC, Mode::empty()) else {
        return false;
    };
    let own = PathBuf::from(format!("/proc/self/fd/{}", held.as_raw_fd()));
    if !is_it(&own) {
        return false;
    }
    let mut buf = [0u8; 32];
    rustix::fs::getxattr(&own, "system.sockprotoname", &mut buf)
        .is_ok_and(|n| buf[..n].starts_with(b"UNIX"))
}

/// Mount points of filesystems where a lookup may hang ([`procfs::may_block`]: network and
/// FUSE filesystems, the automounter, …): never walked. From the mount table already read,
/// so the mounts themselves are not touched.
fn remote_mounts(mounts: &[procfs::Mount]) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| procfs::may_block(&m.fstype))
        .map(|m| PathBuf::from(&m.point))
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
        if ft.is_socket() && !remote.iter().any(|m| entry.path().starts_with(m)) {
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
        list_with(
            &procs,
            &nets,
            &mut procfs::Mounts::read(),
            &[dir.to_path_buf()],
            &mut listing,
        );
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
        list_with(
            &procs,
            &nets,
            &mut procfs::Mounts::read(),
            &[dir.path().to_path_buf()],
            &mut listing,
        );
        let o = listing
            .objects
            .iter()
            .find(|o| o.name.as_deref() == Some(path.as_os_str()))
            .unwrap();
        assert_eq!(o.state, State::Live, "{o:?}");
        assert!(o.reason.contains("net:[7]"), "{}", o.reason);
    }

    /// A listing of `dir` with `nets` and `mounts`, and the object named `path` in it.
    fn listed(
        dir: &Path,
        path: &Path,
        nets: &procfs::NetTables,
        mounts: &mut procfs::Mounts,
    ) -> Option<Object> {
        let procs = Processes::scan(false, false);
        let mut listing = Listing::default();
        list_with(&procs, nets, mounts, &[dir.to_path_buf()], &mut listing);
        listing
            .objects
            .into_iter()
            .find(|o| o.name.as_deref() == Some(path.as_os_str()))
    }

    /// One entry of a `/proc/net/unix` table: a bound, not listening stream socket.
    fn bound_entry(path: &Path, inode: u64) -> Vec<procfs::UnixEntry> {
        procfs::net_unix_bytes(
            format!(
                "Num RefCount Protocol Flags Type St Inode Path\n\
                 0000000000000000: 00000002 00000000 00000000 0001 01 {inode} {}\n",
                path.display()
            )
            .as_bytes(),
        )
    }

    /// This process's mount table with a `fstype` mount at `point` added, as this process
    /// and as its own task (a holder of its sockets, seen through /proc/PID/root) read it.
    fn with_mount(point: &Path, fstype: &str) -> procfs::Mounts {
        let mut text = std::fs::read("/proc/self/mountinfo").unwrap();
        text.extend_from_slice(
            format!("999999 1 0:999 / {} rw - {fstype} x rw\n", point.display()).as_bytes(),
        );
        let mut mounts = procfs::Mounts::from_text(&text);
        mounts.set_task(std::process::id(), &text);
        mounts
    }

    #[test]
    fn a_socket_file_whose_bound_path_is_on_a_filesystem_that_may_block_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let fuse = dir.path().join("fuse");
        let seen = dir.path().join("seen");
        std::fs::create_dir(&fuse).unwrap();
        std::fs::create_dir(&seen).unwrap();
        // A socket bound (not listening: a connect is refused) to a path under "fuse", and
        // its file seen at another path too (as through a bind mount; here a hard link).
        let bound = fuse.join("s.sock");
        let sock = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
        rustix::net::bind(&sock, &SocketAddrUnix::new(&bound).unwrap()).unwrap();
        let other = seen.join("s.sock");
        std::fs::hard_link(&bound, &other).unwrap();
        assert!(matches!(probe(&other), Probe::Refused));
        let nets = procfs::net_tables();
        // With the real mounts, the bound path finds the file: it is the bound one.
        let mut real = procfs::Mounts::read();
        assert!(listed(dir.path(), &other, &nets, &mut real).is_none());
        // With "fuse" a FUSE mount, the path is not looked up: the file cannot be told from
        // the bound one, so it is unknown, never stale.
        let mut mounts = with_mount(&fuse, "fuse.sshfs");
        let o = listed(dir.path(), &other, &nets, &mut mounts).expect("listed");
        assert_eq!(o.state, State::Unknown, "{o:?}");
        assert!(
            o.reason.contains("fuse.sshfs") && o.reason.contains("could hang"),
            "{}",
            o.reason
        );
        let b = listed(dir.path(), &bound, &nets, &mut mounts).expect("the bound socket");
        assert_eq!(b.state, State::Live);
        assert!(b.reason.contains("not looked at"), "{}", b.reason);
        assert_eq!(b.file, None);
        drop(sock);
    }

    #[test]
    fn a_path_bound_in_another_namespace_that_cannot_be_matched_makes_a_same_named_file_unknown() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("ipckit-test-{}-ns.sock", std::process::id());
        let path = dir.path().join(&name);
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let mut nets = procfs::net_tables();
        // Bound in another namespace, at a path under a root that is not this process's
        // (a container's /run seen here under another directory): through the root of the
        // task the table was read through, it leads to no file.
        nets.tables.push(procfs::NetTable {
            ours: false,
            tid: std::process::id(),
            ns: Some(7),
            entries: bound_entry(&Path::new("/ipckit-absent-root/run").join(&name), 1),
        });
        let o = listed(dir.path(), &path, &nets, &mut procfs::Mounts::read()).expect("listed");
        assert_eq!(o.state, State::Unknown, "{o:?}");
        assert!(o.reason.contains("net:[7]"), "{}", o.reason);
        assert!(o.reason.contains("could not match"), "{}", o.reason);
        // Its own file, found through that root, is matched: the same-named file elsewhere
        // is judged on its own (stale unless something else is unseen).
        let found = dir.path().join("found");
        std::fs::create_dir(&found).unwrap();
        let theirs = found.join(&name);
        drop(std::os::unix::net::UnixListener::bind(&theirs).unwrap());
        nets.tables.last_mut().unwrap().entries = bound_entry(&theirs, 1);
        let o = listed(dir.path(), &path, &nets, &mut procfs::Mounts::read()).expect("listed");
        assert!(!o.reason.contains("could not match"), "{o:?}");
        let t = listed(dir.path(), &theirs, &nets, &mut procfs::Mounts::read()).unwrap();
        assert_eq!(t.state, State::Live, "{t:?}");
        // That task's view on a filesystem that may block: not looked at, so unknown again.
        let mut mounts = with_mount(&found, "nfs4");
        let o = listed(dir.path(), &path, &nets, &mut mounts).expect("listed");
        assert_eq!(o.state, State::Unknown, "{o:?}");
        assert!(
            o.reason.contains("nfs4") && o.reason.contains("net:[7]"),
            "{}",
            o.reason
        );
    }

    #[test]
    fn the_protocol_of_a_held_socket_is_read_through_a_descriptor_of_its_own() {
        use std::os::fd::AsRawFd;
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(dir.path().join("p.sock")).unwrap();
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let link = |fd: i32| PathBuf::from(format!("/proc/self/fd/{fd}"));
        let inode = |fd: i32| std::fs::metadata(link(fd)).unwrap().ino();
        let (u, t) = (unix.as_raw_fd(), tcp.as_raw_fd());
        assert!(is_unix_socket(&link(u), inode(u)));
        assert!(!is_unix_socket(&link(t), inode(t)));
        // The descriptor now holds another socket than the scan saw: not read.
        assert!(!is_unix_socket(&link(u), inode(t)));
        // Not a socket at all.
        let file = std::fs::File::open("/proc/self/status").unwrap();
        assert!(!is_unix_socket(&link(file.as_raw_fd()), inode(u)));
    }

    #[test]
    fn a_socket_in_a_threads_own_network_and_mount_namespaces_is_matched_through_its_root() {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        use std::sync::mpsc::channel;
        use std::time::Duration;
        if !rustix::process::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            println!("SKIPPED: needs root (unshare of network and mount namespaces, mount)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("priv");
        let ours = dir.path().join("ours");
        std::fs::create_dir(&private).unwrap();
        std::fs::create_dir(&ours).unwrap();
        let name = format!("ipckit-test-{}-mnt.sock", std::process::id());
        let theirs = private.join(&name);
        let (up_tx, up_rx) = channel::<Result<u32, String>>();
        let (cmd_tx, cmd_rx) = channel::<&str>();
        let (p, t) = (private.clone(), theirs.clone());
        // A thread with network and mount namespaces of its own and a tmpfs on "priv" that
        // only it sees, with a socket bound (not listening) in it: what a container that
        // shares nothing looks like from here.
        let thread = std::thread::spawn(move || {
            let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).unwrap();
            let (root, tmpfs, target) = (c(Path::new("/")), c(Path::new("tmpfs")), c(&p));
            // SAFETY: plain system calls on valid C strings; unshare changes this thread's
            // namespaces only, and the mounts are made in the new mount namespace only.
            let err = unsafe {
                if libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) != 0 {
                    Some("unshare")
                } else if libc::mount(
                    std::ptr::null(),
                    root.as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    Some("mount --make-rprivate /")
                } else if libc::mount(
                    tmpfs.as_ptr(),
                    target.as_ptr(),
                    tmpfs.as_ptr(),
                    0,
                    std::ptr::null(),
                ) != 0
                {
                    Some("mount tmpfs")
                } else {
                    None
                }
            };
            if let Some(what) = err {
                let e = std::io::Error::last_os_error();
                up_tx.send(Err(format!("{what}: {e}"))).unwrap();
                return;
            }
            let sock = rustix::net::socket(AddressFamily::UNIX, SocketType::STREAM, None).unwrap();
            rustix::net::bind(&sock, &SocketAddrUnix::new(&t).unwrap()).unwrap();
            up_tx
                .send(Ok(rustix::thread::gettid().as_raw_nonzero().get() as u32))
                .unwrap();
            while let Ok(cmd) = cmd_rx.recv_timeout(Duration::from_secs(20)) {
                match cmd {
                    "unlink" => std::fs::remove_file(&t).unwrap(),
                    _ => break,
                }
                up_tx.send(Ok(0)).unwrap();
            }
            drop(sock);
        });
        let tid = match up_rx.recv_timeout(Duration::from_secs(20)).unwrap() {
            Ok(tid) => tid,
            Err(why) => {
                thread.join().unwrap();
                assert!(std::env::var_os("CI").is_none(), "{why}");
                println!("SKIPPED: {why}");
                return;
            }
        };
        let done = |tx: &std::sync::mpsc::Sender<&str>| {
            let _ = tx.send("done");
        };
        // A socket file of ours with the same name, that nothing is bound to.
        let mine = ours.join(&name);
        drop(std::os::unix::net::UnixListener::bind(&mine).unwrap());
        assert!(!theirs.exists(), "the tmpfs is the thread's alone");
        let nets = procfs::net_tables();
        assert!(
            nets.tables.iter().any(|t| !t.ours
                && t.entries
                    .iter()
                    .any(|e| e.os_path.as_deref() == Some(theirs.as_os_str()))),
            "the thread's table is read"
        );
        let judge =
            |mounts: &mut procfs::Mounts| listed(dir.path(), &mine, &nets, mounts).expect("listed");
        // Through the thread's root, in its mount namespace, the bound path leads to its own
        // file: ours is judged on its own.
        let o = judge(&mut procfs::Mounts::read());
        assert!(!o.reason.contains("could not"), "{o:?}");
        // Another process on the machine may hold a socket no table shows (then ours is
        // rightly unknown, for that process): only the thread's namespace must not be blamed.
        let thread_net = std::fs::read_link(format!("/proc/{tid}/ns/net"))
            .map(|l| l.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !process::nested_pid_namespace() {
            assert!(
                o.state == State::Stale
                    || (o.state == State::Unknown
                        && !o.reason.contains(&thread_net)
                        && !o.reason.contains(&format!("{tid}("))
                        && !o.reason.contains(&format!("{}(", std::process::id()))),
                "{o:?}"
            );
        }
        // The thread's "priv" on a FUSE mount: its view is not looked at, so ours is unknown.
        let mut mounts = procfs::Mounts::read();
        let mut text = std::fs::read(format!("/proc/{tid}/mountinfo")).unwrap();
        text.extend_from_slice(
            format!("999999 1 0:999 / {} rw - fuse x rw\n", private.display()).as_bytes(),
        );
        mounts.set_task(tid, &text);
        let o = judge(&mut mounts);
        assert_eq!(o.state, State::Unknown, "{o:?}");
        assert!(
            o.reason.contains("fuse") && o.reason.contains("net:["),
            "{}",
            o.reason
        );
        // Its file removed in its namespace (still bound): nothing matches the path, so a
        // file of ours with that name may be it.
        cmd_tx.send("unlink").unwrap();
        up_rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap()
            .unwrap();
        let nets = procfs::net_tables();
        let o = listed(dir.path(), &mine, &nets, &mut procfs::Mounts::read()).expect("listed");
        done(&cmd_tx);
        thread.join().unwrap();
        assert_eq!(o.state, State::Unknown, "{o:?}");
        assert!(o.reason.contains("could not match"), "{}", o.reason);
    }
}
