//! Parsers for the text the kernel writes under /proc. Each one takes the text and never
//! panics: a line it cannot read is skipped, a field that is missing is `None`. They are pure
//! functions so that property tests can feed them odd input.

use std::collections::HashMap;

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
    /// An accepted connection shows its listener's path.
    pub path: Option<String>,
}

/// Parses `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`. The path is
/// the rest of the line after the inode, so a path with spaces stays whole.
pub fn net_unix(text: &str) -> Vec<UnixEntry> {
    text.lines().skip(1).filter_map(unix_line).collect()
}

fn unix_line(line: &str) -> Option<UnixEntry> {
    let mut rest = line;
    let mut fields = [""; 7];
    for f in fields.iter_mut() {
        rest = rest.trim_start_matches(' ');
        let end = rest.find(' ').unwrap_or(rest.len());
        *f = &rest[..end];
        rest = &rest[end..];
    }
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    let flags = hex(fields[3])?;
    let ty = match hex(fields[4])? {
        1 => SocketType::Stream,
        2 => SocketType::Datagram,
        5 => SocketType::Seqpacket,
        n => SocketType::Other(n),
    };
    let state = u8::from_str_radix(fields[5], 16).ok()?;
    let inode = fields[6].parse().ok()?;
    // One space separates the inode from the path.
    let path = rest.strip_prefix(' ').filter(|p| !p.is_empty());
    Some(UnixEntry {
        inode,
        ty,
        listening: flags & 0x10000 != 0,
        state,
        path: path.map(str::to_string),
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

/// Parses `/proc/PID/maps`, keeping the lines that map a file with an inode.
pub fn maps(text: &str) -> Vec<MapsEntry> {
    text.lines().filter_map(maps_line).collect()
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
        assert_eq!(stat_line(") ("), None);
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
