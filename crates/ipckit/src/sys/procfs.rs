//! Parsers for the text the kernel writes under /proc (and, inside the crate, the readers of
//! `/proc/net/unix` that both a Unix bind and [`crate::host`] use). Each parser takes the text
//! and never panics: a line it cannot read is skipped, a field that is missing is `None`. They
//! are pure functions so that property tests can feed them odd input.

use std::collections::HashMap;

pub(crate) use super::lookup::{Looked, Mounts, View};

/// Reads a /proc file as text. Names in it (socket paths, abstract names, mapped files,
/// commands) may hold any bytes: those that are not UTF-8 become U+FFFD instead of making
/// the whole file unreadable. `None` when the file cannot be read.
pub fn read_lossy(path: impl AsRef<std::path::Path>) -> Option<String> {
    std::fs::read(path)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// One row of a `/proc/sysvipc/{msg,shm,sem}` table, by the header's column names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SysvRow {
    fields: HashMap<String, String>,
}

impl SysvRow {
    /// The column `name` as a decimal number.
    pub fn num(&self, name: &str) -> Option<i64> {
        self.fields.get(name)?.parse().ok()
    }

    /// The column `name` as an unsigned decimal number (sizes can pass `i64::MAX`).
    pub fn unsigned(&self, name: &str) -> Option<u64> {
        self.fields.get(name)?.parse().ok()
    }

    /// The `perms` column, which the kernel prints in octal.
    pub fn perms(&self) -> Option<u32> {
        u32::from_str_radix(self.fields.get("perms")?, 8).ok()
    }
}

/// Parses a `/proc/sysvipc` table: a header line of column names, then one line per object.
/// Lines with fewer fields than the header, or without a numeric key and id, are skipped.
pub fn sysv_table(text: &str) -> Vec<SysvRow> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let names: Vec<&str> = header.split_whitespace().collect();
    if names.len() < 3 {
        return Vec::new();
    }
    lines
        .filter_map(|line| {
            let values: Vec<&str> = line.split_whitespace().collect();
            if values.len() < names.len() {
                return None;
            }
            let row = SysvRow {
                fields: names
                    .iter()
                    .zip(&values)
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
            };
            // Column 0 is the key, column 1 the id (shmid, msqid or semid).
            let key_and_id =
                names[0] == "key" && row.num("key").is_some() && values[1].parse::<i32>().is_ok();
            key_and_id.then_some(row)
        })
        .collect()
}

/// The id column of a `/proc/sysvipc` row, whatever the table calls it.
pub fn sysv_id(row: &SysvRow) -> Option<i32> {
    ["shmid", "msqid", "semid"]
        .iter()
        .find_map(|c| row.num(c))
        .and_then(|v| i32::try_from(v).ok())
}

/// A socket type as `/proc/net/unix` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketType {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_DGRAM`.
    Datagram,
    /// `SOCK_SEQPACKET`.
    Seqpacket,
    /// Another number.
    Other(u32),
}

impl SocketType {
    /// The lower-case name: stream, dgram, seqpacket.
    pub fn name(self) -> String {
        match self {
            SocketType::Stream => "stream".into(),
            SocketType::Datagram => "dgram".into(),
            SocketType::Seqpacket => "seqpacket".into(),
            SocketType::Other(n) => format!("type {n}"),
        }
    }
}

/// One line of `/proc/net/unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixEntry {
    /// The socket's inode: `/proc/PID/fd` links to it as `socket:[INODE]`.
    pub inode: u64,
    /// Stream, datagram or seqpacket.
    pub ty: SocketType,
    /// Listening (`__SO_ACCEPTCON`).
    pub listening: bool,
    /// The kernel's state: 1 unconnected, 2 connecting, 3 connected, 4 disconnecting.
    pub state: u8,
    /// The bound path, `@name` for an abstract name (NUL bytes shown as `@`), `None` unbound.
    /// An accepted connection shows its listener's path. Text: bytes that are not UTF-8 are
    /// U+FFFD here; [`UnixEntry::os_path`] has them as they are.
    pub path: Option<String>,
    /// The same path with every byte as the kernel wrote it: what finds the file.
    pub os_path: Option<std::ffi::OsString>,
}

/// Parses `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`. The path is
/// the rest of the line after the inode, so a path with spaces stays whole. Lines end at `\n`
/// only (not `str::lines`, which would also drop a `\r` that ends a path). Text that went
/// through a lossy conversion has lost the bytes that are not UTF-8: [`net_unix_bytes`]
/// reads the file as it is.
pub fn net_unix(text: &str) -> Vec<UnixEntry> {
    net_unix_bytes(text.as_bytes())
}

/// [`net_unix`] on the file's bytes, so a path that is not UTF-8 keeps its bytes. The kernel
/// writes a path's bytes as they are, a newline too: a line that is not an entry continues the
/// path of the entry before it. (A path that holds a newline followed by text shaped like an
/// entry reads as two entries; the second only ever adds a binding, so a socket file is
/// never called stale because of it.)
pub fn net_unix_bytes(text: &[u8]) -> Vec<UnixEntry> {
    // The file's own last newline ends the last entry; any other belongs to a path.
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    let mut out: Vec<UnixEntry> = Vec::new();
    for line in text.split(|&b| b == b'\n').skip(1) {
        match unix_line(line) {
            Some(e) => out.push(e),
            None => {
                if let Some(prev) = out.last_mut()
                    && let Some(path) = prev.os_path.take()
                {
                    use std::os::unix::ffi::{OsStrExt, OsStringExt};
                    let mut bytes = path.into_vec();
                    bytes.push(b'\n');
                    bytes.extend_from_slice(line);
                    prev.path = Some(String::from_utf8_lossy(&bytes).into_owned());
                    prev.os_path = Some(std::ffi::OsStr::from_bytes(&bytes).to_os_string());
                }
            }
        }
    }
    out
}

fn unix_line(line: &[u8]) -> Option<UnixEntry> {
    use std::os::unix::ffi::OsStrExt;
    let mut rest = line;
    let mut fields: [&[u8]; 7] = [b""; 7];
    for f in fields.iter_mut() {
        while let [b' ', tail @ ..] = rest {
            rest = tail;
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    fn text(b: &[u8]) -> Option<&str> {
        std::str::from_utf8(b).ok()
    }
    let hex = |b: &[u8]| u32::from_str_radix(text(b)?, 16).ok();
    // The first field is the socket's address and a colon.
    text(fields[0])?.strip_suffix(':')?;
    let flags = hex(fields[3])?;
    let ty = match hex(fields[4])? {
        1 => SocketType::Stream,
        2 => SocketType::Datagram,
        5 => SocketType::Seqpacket,
        n => SocketType::Other(n),
    };
    let state = u8::from_str_radix(text(fields[5])?, 16).ok()?;
    let inode = text(fields[6])?.parse().ok()?;
    // One space separates the inode from the path.
    let path = rest.strip_prefix(b" ").filter(|p| !p.is_empty());
    Some(UnixEntry {
        inode,
        ty,
        listening: flags & 0x10000 != 0,
        state,
        path: path.map(|p| String::from_utf8_lossy(p).into_owned()),
        os_path: path.map(|p| std::ffi::OsStr::from_bytes(p).to_os_string()),
    })
}

/// One line of `/proc/PID/maps` that maps a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsEntry {
    /// The file's device, `makedev(major, minor)`.
    pub dev: u64,
    /// The file's inode (for System V shared memory, the segment's id).
    pub inode: u64,
    /// The path, with any ` (deleted)` suffix removed.
    pub path: String,
    /// The file was deleted (or is a System V segment).
    pub deleted: bool,
}

/// Parses `/proc/PID/maps`, keeping the lines that map a file with an inode. Lines end at `\n`
/// only, as in [`net_unix`]: a path may end in `\r`.
pub fn maps(text: &str) -> Vec<MapsEntry> {
    text.split('\n').filter_map(maps_line).collect()
}

fn maps_line(line: &str) -> Option<MapsEntry> {
    let mut rest = line;
    let mut fields = [""; 5];
    for f in fields.iter_mut() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let (major, minor) = fields[3].split_once(':')?;
    let major = u32::from_str_radix(major, 16).ok()?;
    let minor = u32::from_str_radix(minor, 16).ok()?;
    let inode: u64 = fields[4].parse().ok()?;
    let path = rest.trim_start_matches(' ');
    if inode == 0 || !path.starts_with('/') {
        return None;
    }
    let (path, deleted) = match path.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (path, false),
    };
    Some(MapsEntry {
        dev: rustix::fs::makedev(major, minor),
        inode,
        path: path.to_string(),
        deleted,
    })
}

/// The System V segment id a maps entry stands for: the kernel names a segment's mapping
/// `/SYSV` and its key in hex, with the id as the inode.
pub fn sysv_segment(entry: &MapsEntry) -> Option<i32> {
    let key = entry.path.strip_prefix("/SYSV")?;
    (key.len() == 8 && key.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| i32::try_from(entry.inode).ok())
        .flatten()
}

/// From `/proc/PID/stat`: the command (between the first `(` and the last `)`, so it may hold
/// spaces and parentheses) and the start time in clock ticks after boot (field 22).
pub fn stat_line(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    if close < open {
        return None;
    }
    let command = text[open + 1..close].to_string();
    // Fields after the command start at field 3 (state); starttime is field 22.
    let start = text[close + 1..].split_whitespace().nth(19)?.parse().ok()?;
    Some((command, start))
}

/// From `/proc/PID/syscall` of a process blocked in a system call: the call's number and its
/// first argument (for `msgrcv`, `msgsnd`, `semop` and `semtimedop`, the object's id; for
/// `read` and `write`, the descriptor). `None` when it is running (`running`) or not in a
/// call (`-1 …`).
pub fn blocked_syscall(text: &str) -> Option<(i64, u64)> {
    let mut fields = text.split_whitespace();
    let nr: i64 = fields.next()?.parse().ok()?;
    let arg = fields.next()?.strip_prefix("0x")?;
    let arg = u64::from_str_radix(arg, 16).ok()?;
    (nr >= 0).then_some((nr, arg))
}

/// The state letter of `/proc/PID/stat` (R running, S sleeping, T stopped, Z zombie, …): the
/// field after the command, which may itself hold spaces and parentheses.
pub fn stat_state(text: &str) -> Option<char> {
    let close = text.rfind(')')?;
    text[close + 1..].trim_start().chars().next()
}

/// The effective uid from `/proc/PID/status` (`Uid: real effective saved fs`).
pub fn status_euid(text: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.starts_with("Uid:"))?;
    line["Uid:".len()..].split_whitespace().nth(1)?.parse().ok()
}

/// The `flags:` of `/proc/PID/fdinfo/FD`, an octal number; its low two bits are the access mode.
pub fn fdinfo_flags(text: &str) -> Option<u32> {
    let line = text.lines().find(|l| l.starts_with("flags:"))?;
    u32::from_str_radix(line["flags:".len()..].trim(), 8).ok()
}

/// `btime` from `/proc/stat`: the boot time in seconds since the epoch.
pub fn boot_time(text: &str) -> Option<i64> {
    let line = text.lines().find(|l| l.starts_with("btime "))?;
    line["btime ".len()..].trim().parse().ok()
}

/// `QSIZE` from a file in the mqueue filesystem: the bytes of all queued messages.
pub fn mqueue_qsize(text: &str) -> Option<u64> {
    let rest = text.split("QSIZE:").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A name made by [`crate::name::unique`], `ipckit-PURPOSE-PID-N-NANOS`: the purpose and the
/// creator's pid. `None` for any other name.
pub fn ipckit_tag(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix(crate::name::TAG)?.strip_prefix('-')?;
    let mut parts = rest.rsplitn(4, '-');
    let nanos = parts.next()?;
    let n = parts.next()?;
    let pid = parts.next()?;
    let purpose = parts.next()?;
    let ok =
        !purpose.is_empty() && u64::from_str_radix(nanos, 16).is_ok() && n.parse::<u64>().is_ok();
    let pid = pid.parse().ok().filter(|&p| p > 0)?;
    ok.then(|| (purpose.to_string(), pid))
}

/// The Unix socket table of one network namespace, read through a task that is in it.
#[derive(Debug, Clone)]
pub(crate) struct NetTable {
    /// This process's own namespace (`/proc/self/net/unix`, what `/proc/net/unix` shows).
    pub ours: bool,
    /// The thread it was read through (`/proc/TID/net/unix`); this process's pid for ours.
    pub tid: u32,
    /// The namespace's inode (`/proc/TID/ns/net` reads `net:[INODE]`), when that link could
    /// be read (it needs ptrace-read rights; the table itself does not).
    pub ns: Option<u64>,
    /// Its sockets.
    pub entries: Vec<UnixEntry>,
}

/// A task whose network namespace could not be read, so its sockets are not seen.
#[derive(Debug, Clone)]
pub(crate) struct UnreadNet {
    /// Its process.
    pub pid: u32,
    /// Its process's effective uid, if readable.
    pub uid: Option<u32>,
    /// Why: the errno of opening its `net/unix`.
    pub errno: rustix::io::Errno,
}

/// The Unix socket tables of every network namespace a task visible in /proc is in.
#[derive(Debug, Clone, Default)]
pub(crate) struct NetTables {
    /// One per namespace, this process's first.
    pub tables: Vec<NetTable>,
    /// Tasks whose namespace could not be read.
    pub unread: Vec<UnreadNet>,
}

impl NetTables {
    /// Tasks whose unread namespace might hold a socket bound to a file owned by `uid`: a
    /// socket file is made by its binder, so tasks of that uid (or of an unknown one). As
    /// for every other kind, a root process that bound a file and gave it to another user is
    /// not assumed.
    pub(crate) fn unread_for(&self, uid: u32) -> impl Iterator<Item = &UnreadNet> {
        self.unread
            .iter()
            .filter(move |u| u.uid.is_none_or(|p| p == uid))
    }
}

/// Reads `/proc/self/net/unix` and, for every other network namespace, the table of the first
/// thread found in it (`/proc/PID/task/TID/net/unix` shows the namespace of that thread: a
/// thread may have unshared its own). `/proc/net/unix` alone lists only this process's
/// namespace, so a socket bound in a container that shares a directory would look unbound.
/// Namespaces are told apart by the inode of that per-namespace file, which needs no ptrace
/// rights. A network namespace that no task is in (kept by a bind mount or by a socket a
/// process holds) is not reachable here.
pub(crate) fn net_tables() -> NetTables {
    use std::collections::HashSet;
    let mut out = NetTables::default();
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let me = std::process::id();
    // Ours first, so its table is the one kept for this process's own namespace.
    if let Ok(Some(entries)) = read_new_net_unix("/proc/self/net/unix".as_ref(), &mut seen) {
        out.tables.push(NetTable {
            ours: true,
            tid: me,
            ns: ns_inode(std::path::Path::new("/proc/self/ns/net")),
            entries,
        });
    }
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let tids: Vec<u32> = match std::fs::read_dir(format!("/proc/{pid}/task")) {
            Ok(tasks) => tasks
                .flatten()
                .filter_map(|t| t.file_name().to_str()?.parse().ok())
                .collect(),
            Err(_) => vec![pid],
        };
        let mut unread = None;
        for tid in tids {
            let base = format!("/proc/{pid}/task/{tid}");
            match read_new_net_unix(format!("{base}/net/unix").as_ref(), &mut seen) {
                Ok(Some(entries)) => {
                    out.tables.push(NetTable {
                        ours: false,
                        tid,
                        ns: ns_inode(format!("{base}/ns/net").as_ref()),
                        entries,
                    });
                }
                Ok(None) => {}
                // Gone meanwhile, or a zombie (it has no namespaces left).
                Err(rustix::io::Errno::NOENT | rustix::io::Errno::SRCH) => {}
                Err(e) => unread = Some(e),
            }
        }
        if let Some(errno) = unread {
            let uid = read_lossy(format!("/proc/{pid}/status")).and_then(|t| status_euid(&t));
            out.unread.push(UnreadNet { pid, uid, errno });
        }
    }
    out
}

/// Opens a `net/unix` file; reads it only when its namespace (the file's inode) is new.
fn read_new_net_unix(
    path: &std::path::Path,
    seen: &mut std::collections::HashSet<(u64, u64)>,
) -> Result<Option<Vec<UnixEntry>>, rustix::io::Errno> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
    let st = rustix::fs::fstat(&fd)?;
    if !seen.insert((st.st_dev, st.st_ino)) {
        return Ok(None);
    }
    let mut file = std::fs::File::from(fd);
    let mut text = Vec::new();
    std::io::Read::read_to_end(&mut file, &mut text)
        .map_err(|e| rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))?;
    Ok(Some(net_unix_bytes(&text)))
}

/// `INODE` of a `/proc/…/ns/net` link, which reads `net:[INODE]`.
fn ns_inode(link: &std::path::Path) -> Option<u64> {
    let target = std::fs::read_link(link).ok()?;
    target
        .to_str()?
        .strip_prefix("net:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// One line of `/proc/PID/mountinfo`:
/// `ID PARENT MAJOR:MINOR ROOT POINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPER-OPTIONS`
/// (see [proc_pid_mountinfo(5)](https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The mount's id: unique on the system at any one time, and what `mnt_id:` in
    /// `/proc/PID/fdinfo/FD` names.
    pub id: u64,
    /// Where it is mounted, as the task whose file was read sees it (relative to its root),
    /// with the kernel's octal escapes (`\040` for a space, `\012` for a newline, …) undone.
    pub point: std::ffi::OsString,
    /// The filesystem type: `ext4`, `tmpfs`, `nfs4`, `fuse.sshfs`, …
    pub fstype: String,
}

/// Parses `/proc/PID/mountinfo`. A line without the ` - ` separator after the six fixed
/// fields, a numeric id, an absolute mount point or a filesystem type is skipped.
pub fn mountinfo(text: &[u8]) -> Vec<Mount> {
    text.split(|&b| b == b'\n').filter_map(mount_line).collect()
}

fn mount_line(line: &[u8]) -> Option<Mount> {
    use std::os::unix::ffi::OsStringExt;
    let fields: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
    // Six fixed fields, optional ones, then `-` and the filesystem type.
    let sep = 6 + fields.get(6..)?.iter().position(|f| *f == &b"-"[..])?;
    let id = std::str::from_utf8(fields[0]).ok()?.parse().ok()?;
    std::str::from_utf8(fields[1]).ok()?.parse::<u64>().ok()?;
    let point = unescape_octal(fields[4]);
    let fstype = unescape_octal(fields.get(sep + 1)?);
    if point.first() != Some(&b'/') || fstype.is_empty() {
        return None;
    }
    Some(Mount {
        id,
        point: std::ffi::OsString::from_vec(point),
        fstype: String::from_utf8_lossy(&fstype).into_owned(),
    })
}

/// Undoes the kernel's `\ooo` escapes (three octal digits) of mountinfo; anything else stays.
fn unescape_octal(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && let Some(d) = field.get(i + 1..i + 4)
            && d.iter().all(|b| (b'0'..=b'7').contains(b))
            && d[0] <= b'3'
        {
            out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

/// Filesystem types on which a lookup or a `stat` may wait for ever, so ipckit never looks up
/// a socket path on them: network filesystems (the server may be gone, and a `hard` NFS mount
/// waits for it), cluster filesystems (a lock manager), the automounter (a daemon), and the
/// hypervisor shares. Every type that starts with `fuse` (`fuse`, `fuseblk`, `fuse.sshfs`,
/// `fuse.fuse-overlayfs`, …) counts too: a FUSE daemon is a process, any user may mount one
/// (`fusermount`), and a stopped one never answers.
pub const MAY_BLOCK: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ncpfs",
    "9p",
    "ceph",
    "glusterfs",
    "lustre",
    "gfs2",
    "ocfs2",
    "orangefs",
    "pvfs2",
    "beegfs",
    "gpfs",
    "afs",
    "coda",
    "davfs",
    "sshfs",
    "virtiofs",
    "vboxsf",
    "vmhgfs",
    "autofs",
];

/// Whether a lookup on a filesystem of type `fstype` may block for ever: [`MAY_BLOCK`], or a
/// type that starts with `fuse`.
pub fn may_block(fstype: &str) -> bool {
    fstype.starts_with("fuse") || MAY_BLOCK.contains(&fstype)
}

/// The mount that `path` (absolute, in the frame of `mounts`, with no symbolic link in it)
/// is on: the one with the longest mount point that is `path` or a directory above it. When
/// several are mounted at that point, a blocking one wins (the one on top is the last listed,
/// but a table read at one moment is not trusted to say which that is).
pub fn mount_under<'a>(mounts: &'a [Mount], path: &[u8]) -> Option<&'a Mount> {
    use std::os::unix::ffi::OsStrExt;
    let mut best: Option<&Mount> = None;
    for m in mounts {
        let point = m.point.as_bytes();
        let covers = point == b"/"
            || (path.starts_with(point)
                && (path.len() == point.len() || path[point.len()] == b'/'));
        if !covers {
            continue;
        }
        best = match best {
            Some(b) if b.point.len() > m.point.len() => Some(b),
            Some(b) if b.point.len() == m.point.len() && may_block(&b.fstype) => Some(b),
            _ => Some(m),
        };
    }
    best
}

/// Whether `path` (absolute, in the frame of `mounts`, no symbolic link in it) may be looked
/// up without risking a hang: `Err` says why not, as the end of a sentence about a socket
/// file ("… is on a fuse.sshfs filesystem …").
pub fn may_look_up(mounts: &[Mount], path: &[u8]) -> Result<(), String> {
    match mount_under(mounts, path) {
        None => {
            Err("not under any mount its mount table lists, so its filesystem is not known".into())
        }
        Some(m) if may_block(&m.fstype) => Err(format!(
            "on a {} filesystem (mounted at {}), which ipckit does not stat (it could hang)",
            crate::name::escape_str(&m.fstype),
            crate::name::escape(&m.point)
        )),
        Some(_) => Ok(()),
    }
}

/// `mnt_id:` of `/proc/PID/fdinfo/FD`: the id of the mount the descriptor's file is on.
pub fn fdinfo_mnt_id(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("mnt_id:"))?;
    line["mnt_id:".len()..].trim().parse().ok()
}

/// What the views of one bound path found.
#[derive(Debug, Default)]
pub(crate) struct BoundFiles {
    /// The socket files (device, inode) found, each once, in the order of the views.
    pub files: Vec<(u64, u64)>,
    /// The first socket file's status.
    pub first: Option<rustix::fs::Stat>,
    /// The views that found a socket file: `None` for this process's, else the task's.
    pub found_by: Vec<Option<u32>>,
    /// The views not looked in (a filesystem that may block, a root or table that could not
    /// be read), with why.
    pub skipped: Vec<(Option<u32>, String)>,
}

impl BoundFiles {
    /// Why the socket file of this bound path cannot be told, when it cannot: one of the
    /// `binders` (the tasks that may have bound it; `None` is this process's view) was not
    /// looked in, or, with `need_found`, none of them found a socket file. Then any socket
    /// file with the same name may be the bound one and must not be called stale.
    pub(crate) fn unmatched(&self, binders: &[Option<u32>], need_found: bool) -> Option<String> {
        if let Some((who, why)) = self.skipped.iter().find(|(w, _)| binders.contains(w)) {
            return Some(match who {
                None => format!("its path is {why}"),
                Some(t) => format!("its path, as task {t} sees it, is {why}"),
            });
        }
        (need_found && !self.found_by.iter().any(|w| binders.contains(w))).then(|| {
            let tasks: Vec<String> = binders.iter().flatten().map(u32::to_string).collect();
            format!(
                "its path leads to no socket file through the root of {}",
                if tasks.is_empty() {
                    "this process".to_string()
                } else {
                    format!("task {}", tasks.join(", "))
                }
            )
        })
    }
}

/// The socket files (device, inode) that `entry`'s bound path leads to: as this process sees
/// the path, and as each task in `tids` sees it (from `/proc/TID/root`, in that task's mount
/// namespace, or its working directory for a relative path), each looked up with
/// [`Mounts::lstat`], which never asks a filesystem that may block. Empty for an abstract
/// name. Only ever more files than the binder's own, never fewer when one of `tids` is the
/// binder: a file is kept rather than lost; what was not looked at is in
/// [`BoundFiles::skipped`].
pub(crate) fn bound_files(entry: &UnixEntry, tids: &[u32], mounts: &mut Mounts) -> BoundFiles {
    use std::os::unix::ffi::OsStrExt;
    let mut out = BoundFiles::default();
    let Some(path) = entry.os_path.as_deref() else {
        return out;
    };
    if path.as_bytes().first() == Some(&b'@') {
        return out;
    }
    let path = std::path::Path::new(path);
    let mut views: Vec<(Option<u32>, View)> = Vec::new();
    if path.is_absolute() {
        views.push((None, View::Ours));
        views.extend(tids.iter().map(|&t| (Some(t), View::Root(t))));
    } else {
        views.extend(tids.iter().map(|&t| (Some(t), View::Cwd(t))));
    }
    for (who, view) in views {
        match mounts.lstat(view, path) {
            Looked::File(st)
                if rustix::fs::FileType::from_raw_mode(st.st_mode)
                    == rustix::fs::FileType::Socket =>
            {
                let file = (st.st_dev, st.st_ino);
                if !out.files.contains(&file) {
                    out.files.push(file);
                }
                out.first.get_or_insert(st);
                out.found_by.push(who);
            }
            Looked::File(_) | Looked::Absent => {}
            Looked::Skipped(why) => out.skipped.push((who, why)),
        }
    }
    out
}

/// Whether a socket may be bound to the socket file at `path`, in any network namespace: a
/// table lists it (by the path as given or made absolute, or by the file the listed path
/// leads to), a relative path with its file name is listed (its binder's directory is not
/// known), a path with its file name is listed whose file could not be told (on a filesystem
/// that may block, or, in another namespace, not found through the root of the task the table
/// was read through), or the namespace of a task of the file's owner could not be read. What
/// a take-over of a socket file that refuses connections, and a removal of a stale one, ask
/// before they unlink the file.
pub(crate) fn bound_in_kernel(path: &std::path::Path) -> bool {
    bound_in_kernel_with(path, &net_tables(), &mut Mounts::read())
}

/// [`bound_in_kernel`] with the tables and mounts given.
pub(crate) fn bound_in_kernel_with(
    path: &std::path::Path,
    tables: &NetTables,
    mounts: &mut Mounts,
) -> bool {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok();
    let file = meta.as_ref().map(|m| (m.dev(), m.ino()));
    let absolute = std::path::absolute(path).ok();
    let name = path.file_name();
    let listed = tables.tables.iter().any(|t| {
        t.entries.iter().any(|e| {
            let Some(p) = e.os_path.as_deref() else {
                return false;
            };
            let p = std::path::Path::new(p);
            if p == path || Some(p) == absolute.as_deref() {
                return true;
            }
            if p.as_os_str().as_bytes().first() == Some(&b'@') {
                return false;
            }
            let same_name = p.file_name().is_some() && p.file_name() == name;
            if p.is_relative() && same_name {
                return true;
            }
            let tids = if t.ours { Vec::new() } else { vec![t.tid] };
            let found = bound_files(e, &tids, mounts);
            if file.is_some_and(|f| found.files.contains(&f)) {
                return true;
            }
            let binders = if t.ours {
                vec![None]
            } else {
                vec![Some(t.tid)]
            };
            same_name && found.unmatched(&binders, !t.ours).is_some()
        })
    });
    listed
        || meta
            .as_ref()
            .is_some_and(|m| tables.unread_for(m.uid()).next().is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysv_shm_table() {
        let text = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                    1234567890          5  1600                  4096  100   200      1     0     0     0     0          0          0 1700000000                     0                     0\n\
                    broken line\n";
        let rows = sysv_table(text);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].num("key"), Some(1234567890));
        assert_eq!(sysv_id(&rows[0]), Some(5));
        assert_eq!(rows[0].perms(), Some(0o1600));
        assert_eq!(rows[0].num("cpid"), Some(100));
        assert_eq!(rows[0].num("nope"), None);
    }

    #[test]
    fn unix_table_with_spaces_and_abstract() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                    0000000000000000: 00000002 00000000 00010000 0001 01 12345 /tmp/a b.sock\n\
                    0000000000000000: 00000002 00000000 00000000 0002 01   77 @abs\n\
                    0000000000000000: 00000003 00000000 00000000 0005 03 99\n";
        let e = net_unix(text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].path.as_deref(), Some("/tmp/a b.sock"));
        assert!(e[0].listening);
        assert_eq!(e[0].ty, SocketType::Stream);
        assert_eq!(e[1].path.as_deref(), Some("@abs"));
        assert_eq!(e[1].inode, 77);
        assert_eq!(e[2].path, None);
        assert_eq!(e[2].ty, SocketType::Seqpacket);
        assert_eq!(e[2].state, 3);
    }

    #[test]
    fn unix_paths_keep_their_bytes_and_their_newlines() {
        let mut text = b"Num RefCount Protocol Flags Type St Inode Path\n".to_vec();
        text.extend_from_slice(
            b"0000000000000000: 00000002 00000000 00000000 0001 01 5 /tmp/a\xff\x1b.sock\n",
        );
        // A path with two newlines in it, one at its end, then an entry with no path.
        text.extend_from_slice(
            b"0000000000000000: 00000002 00000000 00000000 0001 01 6 /tmp/b\nc\n\n",
        );
        text.extend_from_slice(b"0000000000000000: 00000003 00000000 00000000 0001 03 7\n");
        let e = net_unix_bytes(&text);
        assert_eq!(e.len(), 3, "{e:?}");
        use std::os::unix::ffi::OsStrExt;
        assert_eq!(
            e[0].os_path.as_deref().map(|p| p.as_bytes()),
            Some(&b"/tmp/a\xff\x1b.sock"[..])
        );
        assert_eq!(e[0].path.as_deref(), Some("/tmp/a\u{fffd}\x1b.sock"));
        assert_eq!(
            e[1].os_path.as_deref().map(|p| p.as_bytes()),
            Some(&b"/tmp/b\nc\n"[..])
        );
        assert_eq!(e[2].inode, 7);
        assert_eq!(e[2].os_path, None);
    }

    #[test]
    fn a_socket_bound_in_a_threads_own_network_namespace_is_found() {
        use std::time::Duration;
        if !rustix::process::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root");
            println!("SKIPPED: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sock");
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let p = path.clone();
        // A thread may unshare its own network namespace: /proc/PID/net/unix then does not
        // show its sockets, /proc/PID/task/TID/net/unix does.
        let t = std::thread::spawn(move || {
            // SAFETY: plain system call; it changes this thread's namespace only.
            assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0);
            let sock = rustix::net::socket(
                rustix::net::AddressFamily::UNIX,
                rustix::net::SocketType::STREAM,
                None,
            )
            .unwrap();
            rustix::net::bind(&sock, &rustix::net::SocketAddrUnix::new(&p).unwrap()).unwrap();
            bound_tx.send(()).unwrap();
            let _ = done_rx.recv_timeout(Duration::from_secs(20));
        });
        bound_rx.recv_timeout(Duration::from_secs(20)).unwrap();
        let ours = read_lossy("/proc/self/net/unix").unwrap();
        assert!(!ours.contains(&path.display().to_string()), "{ours}");
        let tables = net_tables();
        assert!(tables.tables.len() >= 2, "{tables:?}");
        assert!(
            bound_in_kernel(&path),
            "not found in the thread's namespace"
        );
        done_tx.send(()).unwrap();
        t.join().unwrap();
        assert!(
            !bound_in_kernel(&path),
            "still bound after the socket closed"
        );
    }

    const MOUNTINFO: &[u8] = b"27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw\n\
        60 27 0:50 / /mnt/my\\040share rw,relatime shared:9 master:2 - fuse.sshfs me@host:/ rw\n\
        61 27 0:51 / /srv/nfs rw - nfs4 server:/export rw,hard\n\
        62 27 0:52 /sub /srv/nfs rw - tmpfs tmpfs rw\n\
        63 27 0:53 / /mnt/a\\012b rw - tmpfs tmpfs rw\n\
        garbage line\n\
        64 27 0:54 / relative rw - tmpfs tmpfs rw\n\
        65 27 0:55 / /no/separator rw tmpfs tmpfs rw\n";

    #[test]
    fn mountinfo_lines() {
        use std::os::unix::ffi::OsStrExt;
        let m = mountinfo(MOUNTINFO);
        let points: Vec<&[u8]> = m.iter().map(|x| x.point.as_bytes()).collect();
        assert_eq!(
            points,
            [
                &b"/"[..],
                b"/dev/shm",
                b"/mnt/my share",
                b"/srv/nfs",
                b"/srv/nfs",
                b"/mnt/a\nb"
            ]
        );
        assert_eq!(m[0].id, 27);
        assert_eq!(m[0].fstype, "ext4");
        // Optional fields before the separator are skipped.
        assert_eq!(m[2].fstype, "fuse.sshfs");
        assert_eq!(m[2].id, 60);
        assert_eq!(unescape_octal(br"a\134b\1\999\0401"), b"a\\b\\1\\999 1");
        assert_eq!(
            fdinfo_mnt_id("pos:\t0\nflags:\t02\nmnt_id:\t27\nino:\t5\n"),
            Some(27)
        );
        assert_eq!(fdinfo_mnt_id("pos:\t0\n"), None);
    }

    #[test]
    fn which_mount_and_may_it_block() {
        let m = mountinfo(MOUNTINFO);
        let fstype = |p: &[u8]| mount_under(&m, p).map(|x| x.fstype.as_str());
        assert_eq!(fstype(b"/tmp/x.sock"), Some("ext4"));
        assert_eq!(fstype(b"/dev/shm/x"), Some("tmpfs"));
        assert_eq!(
            fstype(b"/dev/shmx/y"),
            Some("ext4"),
            "a prefix must end at a /"
        );
        assert_eq!(
            fstype(b"/mnt/my share"),
            Some("fuse.sshfs"),
            "the mount point itself"
        );
        assert_eq!(fstype(b"/mnt/my share/d/s.sock"), Some("fuse.sshfs"));
        // Two mounts at one point: the blocking one counts, whichever is on top.
        assert_eq!(fstype(b"/srv/nfs/s"), Some("nfs4"));
        assert_eq!(mount_under(&[], b"/x"), None);
        for t in [
            "fuse",
            "fuseblk",
            "fuse.sshfs",
            "fuse.fuse-overlayfs",
            "nfs",
            "nfs4",
            "cifs",
        ] {
            assert!(may_block(t), "{t}");
        }
        for t in [
            "smb3",
            "sshfs",
            "9p",
            "ceph",
            "glusterfs",
            "afs",
            "davfs",
            "autofs",
        ] {
            assert!(may_block(t), "{t}");
        }
        for t in [
            "ext4", "tmpfs", "xfs", "btrfs", "overlay", "proc", "nfsd", "devtmpfs",
        ] {
            assert!(!may_block(t), "{t}");
        }
        assert_eq!(may_look_up(&m, b"/tmp/a"), Ok(()));
        let why = may_look_up(&m, b"/mnt/my share/a").unwrap_err();
        assert!(
            why.contains("fuse.sshfs") && why.contains("could hang"),
            "{why}"
        );
        assert!(why.contains("/mnt/my share"), "{why}");
        let why = may_look_up(&[], b"/tmp/a").unwrap_err();
        assert!(why.contains("not known"), "{why}");
    }

    /// This process's mount table with a `fstype` mount at `point` added.
    fn with_mount(point: &std::path::Path, fstype: &str) -> Vec<u8> {
        let mut text = std::fs::read("/proc/self/mountinfo").unwrap();
        text.extend_from_slice(
            format!(
                "999999 1 0:999 / {} rw - {fstype} x rw\n",
                point.display().to_string().replace(' ', "\\040")
            )
            .as_bytes(),
        );
        text
    }

    #[test]
    fn a_lookup_stops_before_a_filesystem_that_may_block() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let sock = real.join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
        symlink(&real, dir.path().join("link")).unwrap();
        symlink("../real/../real/s.sock", real.join("rel")).unwrap();
        symlink("..", real.join("up")).unwrap();
        let socket = |l: Looked| match l {
            Looked::File(st) => {
                rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket
            }
            other => panic!("{other:?}"),
        };
        let mut plain = Mounts::read();
        assert!(socket(plain.lstat(View::Ours, &sock)));
        assert!(socket(
            plain.lstat(View::Ours, &dir.path().join("link/s.sock"))
        ));
        // The last component is not followed, the others are.
        assert!(!socket(plain.lstat(View::Ours, &real.join("rel"))));
        assert!(socket(plain.lstat(
            View::Ours,
            &dir.path().join("link/up/real/./../link/s.sock")
        )));
        assert!(matches!(
            plain.lstat(View::Ours, &real.join("none")),
            Looked::Absent
        ));
        // As the kernel: a component after a file that is not a directory finds nothing.
        assert!(matches!(
            plain.lstat(View::Ours, &real.join("rel/../s.sock")),
            Looked::Absent
        ));
        // Through this process's root and working directory, as another task's view.
        let me = std::process::id();
        assert!(socket(plain.lstat(View::Root(me), &sock)));
        let cwd = std::env::current_dir().unwrap();
        if let Ok(rel) = sock.strip_prefix(&cwd) {
            assert!(socket(plain.lstat(View::Cwd(me), rel)));
        }
        // "real" on a FUSE mount: not looked up, by its own path nor through the link.
        let mut fuse = Mounts::from_text(&with_mount(&real, "fuse.sshfs"));
        for p in [sock.clone(), dir.path().join("link/s.sock"), real.clone()] {
            match fuse.lstat(View::Ours, &p) {
                Looked::Skipped(why) => {
                    assert!(
                        why.contains("fuse.sshfs") && why.contains("could hang"),
                        "{why}"
                    )
                }
                other => panic!("{}: {other:?}", p.display()),
            }
        }
        assert!(matches!(
            fuse.lstat(View::Ours, dir.path()),
            Looked::File(_)
        ));
        // A mount the table does not list (every id changed): caught by the descriptor's
        // own mount id, after a lookup the paths alone would allow.
        let shifted: String =
            String::from_utf8_lossy(&std::fs::read("/proc/self/mountinfo").unwrap())
                .lines()
                .map(|l| format!("9{l}\n"))
                .collect();
        match Mounts::from_text(shifted.as_bytes()).lstat(View::Ours, &sock) {
            Looked::Skipped(why) => assert!(why.contains("no mount table read lists"), "{why}"),
            other => panic!("{other:?}"),
        }
        // No table at all: nothing is known, nothing is looked up.
        assert!(matches!(
            Mounts::from_text(b"").lstat(View::Ours, &sock),
            Looked::Skipped(_)
        ));
    }

    #[test]
    fn a_path_that_may_block_or_leads_nowhere_in_another_namespace_counts_as_bound() {
        let dir = tempfile::tempdir().unwrap();
        let fuse_dir = dir.path().join("fuse");
        std::fs::create_dir(&fuse_dir).unwrap();
        let name = format!("ipckit-test-{}-k.sock", std::process::id());
        let mine = dir.path().join(&name);
        drop(std::os::unix::net::UnixListener::bind(&mine).unwrap());
        let table = |ours: bool, path: &std::path::Path| NetTables {
            tables: vec![NetTable {
                ours,
                tid: std::process::id(),
                ns: Some(7),
                entries: net_unix_bytes(
                    format!(
                        "Num RefCount Protocol Flags Type St Inode Path\n\
                         0000000000000000: 00000002 00000000 00000000 0001 01 1 {}\n",
                        path.display()
                    )
                    .as_bytes(),
                ),
            }],
            unread: Vec::new(),
        };
        let mut mounts = Mounts::from_text(&with_mount(&fuse_dir, "fuse"));
        // Another name: nothing to do with this file.
        let other = std::path::Path::new("/ipckit-absent/other.sock");
        assert!(!bound_in_kernel_with(
            &mine,
            &table(false, other),
            &mut mounts
        ));
        // In another namespace, at a path that leads to no file through its task's root.
        let elsewhere = std::path::Path::new("/ipckit-absent").join(&name);
        assert!(bound_in_kernel_with(
            &mine,
            &table(false, &elsewhere),
            &mut mounts
        ));
        // In this namespace, at a path on a filesystem that may block.
        let on_fuse = fuse_dir.join(&name);
        assert!(bound_in_kernel_with(
            &mine,
            &table(true, &on_fuse),
            &mut mounts
        ));
        let found = bound_files(
            &table(true, &on_fuse).tables[0].entries[0],
            &[],
            &mut mounts,
        );
        assert!(found.files.is_empty());
        assert!(found.unmatched(&[None], false).is_some());
        // A path this namespace sees removed is known: not bound.
        let gone = dir.path().join("gone").join(&name);
        assert!(!bound_in_kernel_with(
            &mine,
            &table(true, &gone),
            &mut mounts
        ));
    }

    #[test]
    fn maps_lines() {
        let text = "7f0000000000-7f0000001000 rw-s 00000000 00:01 32769                      /SYSV0000abcd (deleted)\n\
                    7f0000001000-7f0000002000 rw-s 00000000 00:1a 5                          /dev/shm/my file\n\
                    7f0000002000-7f0000003000 r-xp 00000000 00:00 0                          [vdso]\n";
        let m = maps(text);
        assert_eq!(m.len(), 2);
        assert_eq!(sysv_segment(&m[0]), Some(32769));
        assert!(m[0].deleted);
        assert_eq!(m[1].path, "/dev/shm/my file");
        assert_eq!(m[1].dev, rustix::fs::makedev(0, 0x1a));
        assert_eq!(sysv_segment(&m[1]), None);
    }

    #[test]
    fn stat_with_odd_command() {
        let line = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        assert_eq!(stat_line(line), Some(("a) b (c".into(), 777)));
        assert_eq!(stat_line("42 (x"), None);
        assert_eq!(stat_state(line), Some('S'));
        assert_eq!(stat_state("42 (x) "), None);
        assert_eq!(stat_line(") ("), None);
    }

    #[test]
    fn blocked_calls() {
        assert_eq!(
            blocked_syscall("70 0x8001 0x7ffd 0x2000 0x0 0x0 0x0 0x7ffd 0x7f00\n"),
            Some((70, 0x8001))
        );
        assert_eq!(blocked_syscall("running\n"), None);
        assert_eq!(blocked_syscall("-1 0x7ffd 0x7f00\n"), None);
        assert_eq!(blocked_syscall(""), None);
    }

    #[test]
    fn small_fields() {
        assert_eq!(status_euid("Name:\tx\nUid:\t1\t2\t3\t4\n"), Some(2));
        assert_eq!(fdinfo_flags("pos:\t0\nflags:\t0100001\n"), Some(0o100001));
        assert_eq!(boot_time("cpu 1\nbtime 1700000000\n"), Some(1_700_000_000));
        assert_eq!(
            mqueue_qsize("QSIZE:129        NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n"),
            Some(129)
        );
    }

    #[test]
    fn tags() {
        let name = crate::name::unique("bench-shm");
        let (purpose, pid) = ipckit_tag(&name).unwrap();
        assert_eq!(purpose, "bench-shm");
        assert_eq!(pid, std::process::id());
        assert_eq!(ipckit_tag("ipckit-x"), None);
        assert_eq!(ipckit_tag("other-a-1-2-3"), None);
        assert_eq!(ipckit_tag("ipckit--1-2-3"), None);
    }
}

/// Property tests: the parsers never panic on any text, and what the kernel writes reads back.
#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;
    use proptest::sample::{Index, select, subsequence};

    /// Runs every parser on `text`, and the accessors on all that comes back.
    fn exercise(text: &str) {
        for row in sysv_table(text) {
            let _ = (row.perms(), sysv_id(&row));
            for name in row.fields.keys() {
                let _ = (row.num(name), row.unsigned(name));
            }
        }
        for e in net_unix(text) {
            let _ = e.ty.name();
        }
        for m in maps(text) {
            let _ = sysv_segment(&m);
        }
        let _ = stat_line(text);
        let _ = status_euid(text);
        let _ = fdinfo_flags(text);
        let _ = boot_time(text);
        let _ = mqueue_qsize(text);
        let _ = ipckit_tag(text);
        let _ = fdinfo_mnt_id(text);
        let mounts = mountinfo(text.as_bytes());
        for line in text.lines() {
            let _ = mount_under(&mounts, line.as_bytes());
            let _ = may_look_up(&mounts, line.as_bytes());
        }
        // The same text behind a header (net_unix and sysv_table skip or read the first line),
        // after a tag prefix, and each line and word on its own.
        let _ = net_unix(&format!(
            "Num RefCount Protocol Flags Type St Inode Path\n{text}"
        ));
        let _ = sysv_table(&format!("key shmid perms size\n{text}"));
        let _ = ipckit_tag(&format!("ipckit-{text}"));
        for line in text.lines() {
            let _ = (stat_line(line), ipckit_tag(line), maps(line));
            for word in line.split_whitespace() {
                let _ = ipckit_tag(word);
            }
        }
    }

    const SHM: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n\
                       1234567890          5  1600                  4096  100   200      1     0     0     0     0          0          0 1700000000                     0                     0\n";
    const UNIX: &str = "Num       RefCount Protocol Flags    Type St Inode Path\n\
                        0000000000000000: 00000002 00000000 00010000 0001 01 12345 /tmp/a b.sock\n\
                        0000000000000000: 00000002 00000000 00000000 0002 01    77 @abs\n\
                        0000000000000000: 00000003 00000000 00000000 0005 03 99\n";
    const MAPS: &str = "7f0000000000-7f0000001000 rw-s 00000000 00:01 32769                      /SYSV0000abcd (deleted)\n\
                        7f0000001000-7f0000002000 rw-s 00000000 00:1a 5                          /dev/shm/my file\n\
                        7f0000002000-7f0000003000 r-xp 00000000 00:00 0                          [vdso]\n";
    const STAT: &str = "42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0\n";
    const STATUS: &str = "Name:\tx\nUmask:\t0022\nState:\tS (sleeping)\nUid:\t1000\t1001\t1002\t1003\nGid:\t5\t5\t5\t5\n";
    const FDINFO: &str = "pos:\t0\nflags:\t0100002\nmnt_id:\t24\nino:\t1234\n";
    const PROC_STAT: &str =
        "cpu  1 2 3 4 5 6 7 0 0 0\nintr 1 2\nctxt 99\nbtime 1700000000\nprocesses 5\n";
    const MQUEUE: &str = "QSIZE:129        NOTIFY:0     SIGNO:0     NOTIFY_PID:0     \n";
    const TAG: &str = "ipckit-bench-shm-4242-7-1f2e3d";
    const MOUNTS: &str = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                          60 27 0:50 / /mnt/my\\040share rw master:2 - fuse.sshfs me@h:/ rw\n";
    const SAMPLES: [&str; 10] = [
        SHM, UNIX, MAPS, STAT, STATUS, FDINFO, PROC_STAT, MQUEUE, TAG, MOUNTS,
    ];

    /// Pieces of /proc text, put together in any order: gets further into the parsers than
    /// random characters do.
    fn procfs_ish() -> impl Strategy<Value = String> {
        const FIXED: [&str; 30] = [
            " ",
            "  ",
            "     ",
            "\t",
            "\n",
            "\r\n",
            "(",
            ")",
            "@",
            ":",
            "-",
            "/",
            "0",
            "+",
            "Uid:",
            "flags:",
            "btime ",
            "QSIZE:",
            "key",
            "shmid",
            "msqid",
            "semid",
            "perms",
            "ipckit",
            "ipckit-",
            "/SYSV",
            "/SYSV0000abcd",
            " (deleted)",
            "00:1a",
            "ffffffff",
        ];
        // One flat tuple per piece rather than a `prop_oneof!`, which is slow to generate.
        let piece =
            (0u8..10, any::<Index>(), any::<u64>(), any::<char>()).prop_map(|(kind, i, n, c)| {
                match kind {
                    0..=4 => FIXED[i.index(FIXED.len())].to_string(),
                    5 => n.to_string(),
                    6 => (n as i64).to_string(),
                    7 => format!("{n:x}"),
                    8 => format!("{:o}", n as u32),
                    _ => c.to_string(),
                }
            });
        prop::collection::vec(piece, 0..200).prop_map(|t| t.concat())
    }

    /// Real samples with a few characters deleted, inserted, replaced, or the text cut short.
    fn mutated() -> impl Strategy<Value = String> {
        let ch = prop_oneof![
            any::<char>(),
            select(vec![
                ' ', '\t', '\n', '(', ')', '-', ':', '@', '/', '0', '9', 'f', 'é'
            ]),
        ];
        let edits = prop::collection::vec((any::<Index>(), 0u8..4, ch), 0..8);
        (select(SAMPLES.to_vec()), edits).prop_map(|(sample, edits)| {
            let mut c: Vec<char> = sample.chars().collect();
            for (i, op, ch) in edits {
                match op {
                    0 if !c.is_empty() => {
                        c.remove(i.index(c.len()));
                    }
                    1 => c.insert(i.index(c.len() + 1), ch),
                    2 => c.truncate(i.index(c.len() + 1)),
                    _ if !c.is_empty() => {
                        let k = i.index(c.len());
                        c[k] = ch;
                    }
                    _ => {}
                }
            }
            c.into_iter().collect()
        })
    }

    proptest! {
        #[test]
        fn no_panic_on_printable(text in "\\PC*") {
            exercise(&text);
        }

        #[test]
        fn no_panic_on_any_line(text in ".*") {
            exercise(&text);
        }

        #[test]
        fn no_panic_on_any_string(text in any::<String>()) {
            exercise(&text);
        }

        #[test]
        fn no_panic_on_procfs_pieces(text in procfs_ish()) {
            exercise(&text);
        }

        #[test]
        fn no_panic_on_damaged_samples(text in mutated()) {
            exercise(&text);
        }
    }

    proptest! {
        // Several KB each: fewer cases, so the run stays short.
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn no_panic_on_whitespace(text in "[ \t\n]{0,64}", n in 0usize..4000) {
            // Long runs of spaces and tabs, with and without fields around them.
            let spaces = " ".repeat(n);
            exercise(&text);
            exercise(&spaces);
            exercise(&format!("{spaces}{text}{spaces}"));
            exercise(&format!("key{spaces}shmid\t{text}perms\n1{spaces}2\t3"));
            exercise(&format!("Uid:{spaces}\nflags:{text}\nbtime{spaces}\nQSIZE:{spaces}"));
        }

        #[test]
        fn no_panic_on_long_text(text in "\\PC{2000,8000}") {
            exercise(&text);
        }

        #[test]
        fn no_panic_on_long_pieces(parts in prop::collection::vec(procfs_ish(), 5..20)) {
            exercise(&parts.concat());
        }

        #[test]
        fn no_panic_on_many_lines(lines in prop::collection::vec(".{0,40}", 100..400)) {
            exercise(&lines.join("\n"));
        }
    }

    /// A socket's path as /proc/net/unix shows it: none, a filesystem path (any characters but
    /// a newline, spaces included, even leading ones), or `@` and an abstract name.
    fn unix_path() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            "[^\n]{1,107}".prop_map(Some),
            "[ /a-z()@.-]{1,107}".prop_map(Some),
            "@[^\n]{0,106}".prop_map(Some),
        ]
    }

    #[derive(Debug, Clone)]
    struct UnixLine {
        num: u64,
        refs: u32,
        flags: u32,
        ty: u32,
        state: u8,
        inode: u64,
        path: Option<String>,
    }

    fn unix_entry() -> impl Strategy<Value = UnixLine> {
        (
            any::<u64>(),
            any::<u32>(),
            any::<u32>(),
            select(vec![1u32, 2, 5]),
            1u8..=4,
            any::<u64>(),
            unix_path(),
        )
            .prop_map(|(num, refs, flags, ty, state, inode, path)| UnixLine {
                num,
                refs,
                flags,
                ty,
                state,
                inode,
                path,
            })
    }

    /// `/proc/net/unix` as `unix_seq_show` writes it.
    fn unix_text(entries: &[UnixLine]) -> String {
        let mut text = String::from("Num       RefCount Protocol Flags    Type St Inode Path\n");
        for e in entries {
            text.push_str(&format!(
                "{:016x}: {:08X} {:08X} {:08X} {:04X} {:02X} {:5}",
                e.num, e.refs, 0, e.flags, e.ty, e.state, e.inode
            ));
            if let Some(p) = &e.path {
                text.push(' ');
                text.push_str(p);
            }
            text.push('\n');
        }
        text
    }

    proptest! {
        #[test]
        fn net_unix_round_trip(entries in prop::collection::vec(unix_entry(), 0..8)) {
            let got = net_unix(&unix_text(&entries));
            prop_assert_eq!(got.len(), entries.len());
            for (g, e) in got.iter().zip(&entries) {
                let ty = match e.ty {
                    1 => SocketType::Stream,
                    2 => SocketType::Datagram,
                    _ => SocketType::Seqpacket,
                };
                prop_assert_eq!(g.inode, e.inode);
                prop_assert_eq!(g.ty, ty);
                prop_assert_eq!(g.listening, e.flags & 0x10000 != 0);
                prop_assert_eq!(g.state, e.state);
                prop_assert_eq!(&g.path, &e.path);
            }
        }
    }

    const SHM_COLUMNS: [&str; 16] = [
        "key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid", "cuid", "cgid",
        "atime", "dtime", "ctime", "rss", "swap",
    ];

    /// One shm segment's values, in `SHM_COLUMNS` order.
    #[derive(Debug, Clone)]
    struct ShmRow {
        key: i32,
        shmid: i32,
        perms: u32,
        /// size cpid lpid nattch uid gid cuid cgid atime dtime ctime rss swap.
        rest: [u64; 13],
    }

    fn shm_row() -> impl Strategy<Value = ShmRow> {
        (
            any::<i32>(),
            0..=i32::MAX,
            0u32..=0o7777,
            any::<u64>(),
            prop::array::uniform4(any::<u32>()),
            any::<u64>(),
            prop::array::uniform4(any::<u32>()),
            prop::array::uniform5(any::<u64>()),
        )
            .prop_map(|(key, shmid, perms, size, pids, nattch, ids, times)| {
                let [cpid, lpid, _, _] = pids.map(u64::from);
                let [uid, gid, cuid, cgid] = ids.map(u64::from);
                let [atime, dtime, ctime, rss, swap] = times;
                ShmRow {
                    key,
                    shmid,
                    perms,
                    rest: [
                        size, cpid, lpid, nattch, uid, gid, cuid, cgid, atime, dtime, ctime, rss,
                        swap,
                    ],
                }
            })
    }

    impl ShmRow {
        /// The 16 fields as the kernel prints them (perms in octal).
        fn fields(&self) -> Vec<String> {
            let mut f = vec![
                self.key.to_string(),
                self.shmid.to_string(),
                format!("{:o}", self.perms),
            ];
            f.extend(self.rest.iter().map(u64::to_string));
            f
        }
    }

    /// Fields right-aligned with the given extra padding (the kernel pads to fixed widths, but
    /// a value wider than its column just pushes the rest along).
    fn padded(fields: &[String], pad: &[usize]) -> String {
        fields
            .iter()
            .zip(pad.iter().cycle())
            .map(|(f, p)| format!("{}{f}", " ".repeat(*p)))
            .collect()
    }

    /// A row written whole (`None`), or with only some of its fields (the rest cut off).
    fn shm_line() -> impl Strategy<Value = (ShmRow, Vec<usize>, Option<Vec<usize>>)> {
        (
            shm_row(),
            prop::collection::vec(1usize..12, 16),
            prop_oneof![
                3 => Just(None),
                1 => subsequence((0..16).collect::<Vec<_>>(), 0..16).prop_map(Some),
            ],
        )
    }

    proptest! {
        #[test]
        fn sysv_shm_round_trip(
            header_pad in prop::collection::vec(1usize..12, 16),
            lines in prop::collection::vec(shm_line(), 0..8),
        ) {
            let names: Vec<String> = SHM_COLUMNS.iter().map(|s| s.to_string()).collect();
            let mut text = padded(&names, &header_pad);
            text.push('\n');
            for (row, pad, kept) in &lines {
                let fields = row.fields();
                let fields: Vec<String> = match kept {
                    None => fields,
                    Some(k) => k.iter().map(|&i| fields[i].clone()).collect(),
                };
                text.push_str(&padded(&fields, pad));
                text.push('\n');
            }
            let want: Vec<&ShmRow> =
                lines.iter().filter(|(_, _, kept)| kept.is_none()).map(|(r, _, _)| r).collect();
            let got = sysv_table(&text);
            prop_assert_eq!(got.len(), want.len(), "{}", text);
            for (g, w) in got.iter().zip(want) {
                prop_assert_eq!(g.num("key"), Some(i64::from(w.key)));
                prop_assert_eq!(sysv_id(g), Some(w.shmid));
                prop_assert_eq!(g.perms(), Some(w.perms));
                for (name, v) in SHM_COLUMNS[3..].iter().zip(w.rest) {
                    prop_assert_eq!(g.unsigned(name), Some(v), "column {}", name);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn stat_round_trip(
            pid in 1u32..=4_194_304,
            command in prop_oneof!["[^\n]{0,64}", "[ ()a-z]{0,64}"],
            state in select(vec!['R', 'S', 'D', 'Z', 'T', 't', 'X', 'I']),
            before in prop::collection::vec(any::<i64>(), 18),
            start in any::<u64>(),
            after in prop::collection::vec(any::<u64>(), 0..32),
        ) {
            // pid (comm) state, fields 4 to 21, starttime (22), then the rest.
            let mut line = format!("{pid} ({command}) {state}");
            for v in &before {
                line.push_str(&format!(" {v}"));
            }
            line.push_str(&format!(" {start}"));
            for v in &after {
                line.push_str(&format!(" {v}"));
            }
            line.push('\n');
            prop_assert_eq!(stat_line(&line), Some((command, start)));
        }
    }

    #[derive(Debug, Clone)]
    enum MapsLine {
        File {
            major: u32,
            minor: u32,
            inode: u64,
            path: String,
            deleted: bool,
        },
        /// Anonymous memory or a pseudo-file: inode 0, no path or a `[name]`.
        Anon(Option<&'static str>),
    }

    fn maps_path() -> impl Strategy<Value = String> {
        prop_oneof!["/[^\n]{0,200}", "/[ /a-z()._-]{0,60}", "/SYSV[0-9a-f]{8}"]
            // A path that itself ends in " (deleted)" cannot be told from a deleted file.
            .prop_filter("ends like a deleted file", |p| !p.ends_with(" (deleted)"))
    }

    fn maps_line() -> impl Strategy<Value = MapsLine> {
        prop_oneof![
            3 => (0u32..4096, 0u32..(1 << 20), 1..=u64::MAX, maps_path(), any::<bool>())
                .prop_map(|(major, minor, inode, path, deleted)| MapsLine::File {
                    major,
                    minor,
                    inode,
                    path,
                    deleted,
                }),
            1 => select(vec![None, Some("[heap]"), Some("[stack]"), Some("[vdso]")])
                .prop_map(MapsLine::Anon),
        ]
    }

    proptest! {
        #[test]
        fn maps_round_trip(
            lines in prop::collection::vec(
                (maps_line(), any::<u64>(), any::<u64>(), "[r-][w-][x-][sp]", 1usize..40),
                0..8,
            ),
        ) {
            let mut text = String::new();
            for (line, start, offset, perms, pad) in &lines {
                let end = start.wrapping_add(4096);
                let (major, minor, inode) = match line {
                    MapsLine::File { major, minor, inode, .. } => (*major, *minor, *inode),
                    MapsLine::Anon(_) => (0, 0, 0),
                };
                text.push_str(&format!(
                    "{start:08x}-{end:08x} {perms} {offset:08x} {major:02x}:{minor:02x} {inode} "
                ));
                match line {
                    MapsLine::File { path, deleted, .. } => {
                        text.push_str(&" ".repeat(*pad));
                        text.push_str(path);
                        if *deleted {
                            text.push_str(" (deleted)");
                        }
                    }
                    MapsLine::Anon(Some(name)) => {
                        text.push_str(&" ".repeat(*pad));
                        text.push_str(name);
                    }
                    MapsLine::Anon(None) => {}
                }
                text.push('\n');
            }
            let want: Vec<MapsEntry> = lines
                .iter()
                .filter_map(|(line, ..)| match line {
                    MapsLine::File { major, minor, inode, path, deleted } => Some(MapsEntry {
                        dev: rustix::fs::makedev(*major, *minor),
                        inode: *inode,
                        path: path.clone(),
                        deleted: *deleted,
                    }),
                    MapsLine::Anon(_) => None,
                })
                .collect();
            prop_assert_eq!(maps(&text), want);
        }
    }

    /// A mount point as the kernel writes it in mountinfo: space, tab, newline and backslash
    /// as `\ooo`.
    fn mount_escape(point: &str) -> String {
        point
            .chars()
            .map(|c| match c {
                ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
                c => c.to_string(),
            })
            .collect()
    }

    proptest! {
        #[test]
        fn mountinfo_round_trip(
            mounts in prop::collection::vec(
                (
                    any::<u64>(),
                    any::<u32>(),
                    prop_oneof!["/[^\n]{0,60}", "/[ \t\\\\a-z/]{0,30}"],
                    "[a-z0-9]{1,8}(\\.[a-z0-9-]{1,8})?",
                    prop::collection::vec("(shared|master|propagate_from):[0-9]{1,3}|unbindable", 0..3),
                ),
                0..8,
            ),
        ) {
            let mut text = String::new();
            for (id, parent, point, fstype, optional) in &mounts {
                text.push_str(&format!("{id} {parent} 0:42 / {} rw,relatime", mount_escape(point)));
                for o in optional {
                    text.push(' ');
                    text.push_str(o);
                }
                text.push_str(&format!(" - {fstype} src\\040x rw,size=4k\n"));
            }
            let got = mountinfo(text.as_bytes());
            prop_assert_eq!(got.len(), mounts.len(), "{}", text);
            for (g, (id, _, point, fstype, _)) in got.iter().zip(&mounts) {
                prop_assert_eq!(g.id, *id);
                prop_assert_eq!(g.point.to_str(), Some(point.as_str()));
                prop_assert_eq!(&g.fstype, fstype);
                // The mount point itself and a path below it are on it (or on one mounted
                // at the same point, or below).
                let m = mount_under(&got, point.as_bytes()).unwrap();
                prop_assert!(m.point.len() >= g.point.len());
            }
        }
    }

    /// Found by the round trips above: `str::lines` took the `\r` off a path that ends in one.
    #[test]
    fn path_ending_in_carriage_return() {
        let unix = "Num RefCount Protocol Flags Type St Inode Path\n\
                    0000000000000000: 00000002 00000000 00000000 0001 01 7 @a\r\n\
                    0000000000000000: 00000002 00000000 00000000 0001 01 8 /tmp/b\r\n";
        let e = net_unix(unix);
        assert_eq!(e[0].path.as_deref(), Some("@a\r"));
        assert_eq!(e[1].path.as_deref(), Some("/tmp/b\r"));
        let m = maps("7f00-7f01 rw-s 00000000 00:01 5   /dev/shm/c\r\n");
        assert_eq!(m[0].path, "/dev/shm/c\r");
    }

    proptest! {
        #[test]
        fn tag_of_unique_name(purpose in "[a-z][a-z0-9-]{0,20}") {
            let name = crate::name::unique(&purpose);
            prop_assert_eq!(ipckit_tag(&name), Some((purpose, std::process::id())));
        }

        #[test]
        fn tag_round_trip(
            purpose in "[a-z][a-z0-9-]{0,20}",
            pid in 1..=u32::MAX,
            n in any::<u64>(),
            nanos in any::<u32>(),
        ) {
            let name = format!("ipckit-{purpose}-{pid}-{n}-{nanos:x}");
            prop_assert_eq!(ipckit_tag(&name), Some((purpose, pid)));
        }

        #[test]
        fn small_fields_round_trip(
            name in "[^\n]{0,16}",
            uids in prop::array::uniform4(any::<u32>()),
            flags in any::<u32>(),
            pos in any::<u64>(),
            btime in any::<u32>(),
            qsize in any::<u64>(),
            notify in any::<i32>(),
        ) {
            let [r, e, s, f] = uids;
            let status = format!(
                "Name:\t{name}\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t1\nUid:\t{r}\t{e}\t{s}\t{f}\nGid:\t0\t0\t0\t0\n"
            );
            prop_assert_eq!(status_euid(&status), Some(e));
            let fdinfo = format!("pos:\t{pos}\nflags:\t0{flags:o}\nmnt_id:\t24\nino:\t99\n");
            prop_assert_eq!(fdinfo_flags(&fdinfo), Some(flags));
            let stat = format!("cpu  1 2 3\ncpu0 1 2 3\nintr 5 0\nctxt 7\nbtime {btime}\nprocesses 9\n");
            prop_assert_eq!(boot_time(&stat), Some(i64::from(btime)));
            let mq = format!(
                "QSIZE:{qsize:<10} NOTIFY:{notify:<5} SIGNO:{notify:<5} NOTIFY_PID:{notify:<6}\n"
            );
            prop_assert_eq!(mqueue_qsize(&mq), Some(qsize));
        }
    }
}
