//! Object names: validation, unique names, and the ipckit ownership tag.
//!
//! ```
//! let a = ipckit::name::unique("demo");
//! let b = ipckit::name::unique("demo");
//! assert_ne!(a, b);
//! assert!(a.starts_with("ipckit-demo-"));
//! ```

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use rustix::fs::{FileType, Mode, OFlags};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Context, Error, ErrorKind, Result};
use crate::object::Ownership;

/// The prefix ipckit puts on the names it makes up, so `ipckit ls` can tell its objects apart.
pub const TAG: &str = "ipckit";

/// The longest filesystem path a Unix socket can be bound to (`sun_path` less its NUL).
pub const SOCKET_PATH_MAX: usize = 107;

/// The longest abstract socket name (`sun_path` less the leading NUL).
pub const ABSTRACT_NAME_MAX: usize = 107;

/// A name unique on this host for this process's lifetime: `ipckit-PURPOSE-PID-N-NANOS`.
pub fn unique(purpose: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{TAG}-{purpose}-{}-{n}-{nanos:x}", std::process::id())
}

/// Checks a path for a Unix socket: not empty, no NUL byte, at most [`SOCKET_PATH_MAX`] bytes.
pub fn check_socket_path(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = path.as_os_str().as_bytes();
    let bad =
        |why: String| {
            Err(Error::new(ErrorKind::InvalidInput, "checking Unix socket path", why)
            .object(path.display())
            .hint("use a shorter path, or an abstract name (abstract:NAME), which has no file"))
        };
    if bytes.is_empty() {
        return bad("the path is empty".into());
    }
    if bytes.contains(&0) {
        return bad("the path contains a NUL byte".into());
    }
    if bytes.len() > SOCKET_PATH_MAX {
        return bad(format!(
            "{} bytes is longer than the {SOCKET_PATH_MAX} a socket address holds",
            bytes.len()
        ));
    }
    Ok(())
}

/// Checks an abstract socket name: at most [`ABSTRACT_NAME_MAX`] bytes.
pub fn check_abstract_name(name: &[u8]) -> Result<()> {
    if name.len() > ABSTRACT_NAME_MAX {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "checking abstract socket name",
            format!("{} bytes is longer than {ABSTRACT_NAME_MAX}", name.len()),
        )
        .object(String::from_utf8_lossy(name)));
    }
    Ok(())
}

/// The longest POSIX IPC name (shm, semaphore, message queue), leading slash included.
pub const POSIX_NAME_MAX: usize = 255;

/// Checks a POSIX IPC object name (`shm_open`, `sem_open`, `mq_open`): `/` then 1 to 254 bytes
/// with no other `/` and no NUL. Returns it as a C string.
pub fn check_posix_name(name: &str) -> Result<std::ffi::CString> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorKind::InvalidInput,
            "checking POSIX IPC name",
            why.to_string(),
        )
        .object(format!("{name:?}"))
        .hint("a POSIX name is a slash and a file name, like /app-queue"))
    };
    if !name.starts_with('/') {
        return bad("it must start with /");
    }
    if name.len() < 2 {
        return bad("it has nothing after the /");
    }
    if name[1..].contains('/') {
        return bad("it may contain no / after the first");
    }
    if name.len() > POSIX_NAME_MAX {
        return bad("it is longer than 255 bytes");
    }
    // "/." and "/.." name the directory /dev/shm (or /dev/mqueue) itself and its parent.
    if name == "/." || name == "/.." {
        return bad("'.' and '..' name a directory, not an object");
    }
    std::ffi::CString::new(name).or_else(|_| bad("it contains a NUL byte"))
}

/// A name from the system made fit to print on one line of a terminal: printable UTF-8 as it
/// is, `\\` doubled, control characters (newline, escape, DEL, C1) and the bidirectional
/// overrides as `\\n`, `\\t`, `\\r` or `\\u{XX}`, and bytes that are not UTF-8 as `\\xNN`.
/// A crafted name cannot move the cursor, recolour root's terminal, reorder what follows it or
/// forge a second line; two different names never print the same.
///
/// ```
/// use std::ffi::OsStr;
/// use std::os::unix::ffi::OsStrExt;
/// assert_eq!(ipckit::name::escape(OsStr::new("plain-name")), "plain-name");
/// assert_eq!(ipckit::name::escape(OsStr::new("a\nb\x1b[31m")), "a\\nb\\u{1b}[31m");
/// assert_eq!(ipckit::name::escape(OsStr::from_bytes(b"x\xff")), "x\\xff");
/// assert_eq!(ipckit::name::escape(OsStr::new("a\\xff")), "a\\\\xff");
/// ```
pub fn escape(name: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::with_capacity(name.len());
    for chunk in name.as_bytes().utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c => push_char(&mut out, c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Text that is already a `str` (an error message, a line to print) with its control
/// characters escaped as [`escape`] does; backslashes are left alone, so names already escaped
/// inside it are not escaped twice.
///
/// ```
/// assert_eq!(ipckit::name::escape_str("rm /dev/shm/a\x1b]0;x\x07"), "rm /dev/shm/a\\u{1b}]0;x\\u{7}");
/// assert_eq!(ipckit::name::escape_str("already \\xff"), "already \\xff");
/// ```
pub fn escape_str(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        push_char(&mut out, c);
    }
    std::borrow::Cow::Owned(out)
}

/// Control characters, and the invisible marks that reorder the text around them.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        c => out.push(c),
    }
}

/// A unique POSIX IPC name: `/ipckit-PURPOSE-PID-N-NANOS`.
pub fn unique_posix(purpose: &str) -> String {
    format!("/{}", unique(purpose))
}

/// A System V IPC key: the name `msgget`, `shmget` and `semget` find an object by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SysvKey {
    /// `IPC_PRIVATE`: always a new object, reachable only by its id (or by inheritance).
    Private,
    /// A key shared by agreement (or made by [`SysvKey::ftok`]).
    Key(i32),
}

impl SysvKey {
    /// `ftok(3)`: a key from an existing file's inode and a project id (only its low 8 bits
    /// count). Two paths to the same file give the same key; a file re-created gets another.
    pub fn ftok(path: &Path, proj_id: u8) -> Result<Self> {
        use std::os::unix::ffi::OsStrExt;
        let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                "making System V key from",
                "the path contains a NUL byte",
            )
            .object(path.display())
        })?;
        // SAFETY: `c` is a valid C string for the duration of the call.
        let k = unsafe { libc::ftok(c.as_ptr(), proj_id as libc::c_int) };
        if k == -1 {
            return Err(crate::error::last_os(
                "making System V key from",
                path.display(),
            ));
        }
        Ok(SysvKey::Key(k))
    }

    /// The key a raw `key_t` stands for (`IPC_PRIVATE`, 0, is [`SysvKey::Private`]).
    pub fn from_raw(raw: i32) -> Self {
        if raw == libc::IPC_PRIVATE {
            SysvKey::Private
        } else {
            SysvKey::Key(raw)
        }
    }

    /// The raw `key_t` (`IPC_PRIVATE` is 0).
    pub fn raw(self) -> i32 {
        match self {
            SysvKey::Private => libc::IPC_PRIVATE,
            SysvKey::Key(k) => k,
        }
    }
}

impl std::str::FromStr for SysvKey {
    type Err = Error;

    /// Decimal (`1234`, `-5`), `0x`-hex (`0x4d2`) or `private`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::new(ErrorKind::InvalidInput, "reading System V key", "not a key")
                .object(format!("{s:?}"))
                .hint("write a key in decimal or 0x-hex (as ipcs shows it), or 'private'")
        };
        if s == "private" {
            return Ok(SysvKey::Private);
        }
        let k = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => u32::from_str_radix(hex, 16)
                .map(|v| v as i32)
                .map_err(|_| bad())?,
            None => s.parse::<i32>().map_err(|_| bad())?,
        };
        Ok(SysvKey::from_raw(k))
    }
}

impl std::fmt::Display for SysvKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SysvKey::Private => f.write_str("private"),
            SysvKey::Key(k) => write!(f, "0x{:08x}", *k as u32),
        }
    }
}

/// A file this process made (a FIFO, a socket file): removed on drop if the path still names
/// that same file, unless released. Shared by every owner of a path.
#[derive(Debug)]
pub(crate) struct OwnedPath {
    path: PathBuf,
    dev_ino: (u64, u64),
    kind: FileType,
    ownership: Ownership,
}

impl OwnedPath {
    /// Takes ownership of the `kind` file this process just made at `path`. If it cannot be
    /// identified, it is removed at once and the error returned.
    pub(crate) fn adopt(path: &Path, kind: FileType) -> Result<Self> {
        match rustix::fs::lstat(path) {
            Ok(st) if FileType::from_raw_mode(st.st_mode) == kind => Ok(OwnedPath {
                path: path.to_owned(),
                dev_ino: (st.st_dev, st.st_ino),
                kind,
                ownership: Ownership::created(),
            }),
            Ok(_) => Err(Error::new(
                ErrorKind::Os,
                "checking new file",
                "it was replaced at once",
            )
            .object(path.display())),
            Err(e) => {
                let _ = rustix::fs::unlink(path);
                Err(Error::os("checking new file", e).object(path.display()))
            }
        }
    }

    /// Sets the file's mode without following a symbolic link that may have replaced it: the
    /// file is pinned with `O_PATH | O_NOFOLLOW`, checked to be the one made, then changed
    /// through `/proc/self/fd`.
    pub(crate) fn set_mode(&self, mode: u32) -> Result<()> {
        let op = "setting mode of";
        let pinned = rustix::fs::open(
            &self.path,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .during(op, self.path.display())?;
        let st = rustix::fs::fstat(&pinned).during(op, self.path.display())?;
        if (st.st_dev, st.st_ino) != self.dev_ino {
            return Err(
                Error::new(ErrorKind::Os, op, "the file was replaced since it was made")
                    .object(self.path.display()),
            );
        }
        let via = format!("/proc/self/fd/{}", pinned.as_raw_fd());
        rustix::fs::chmod(via.as_str(), Mode::from_bits_truncate(mode & 0o7777))
            .during(op, self.path.display())
    }

    /// The path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the file after the owner is dropped.
    pub(crate) fn release(&mut self) {
        self.ownership.release();
    }

    /// `unlink(2)` now, if the path still names the file made (the same check the drop makes):
    /// an error of kind [`Changed`](ErrorKind::Changed) when it names another file, the errno
    /// when the unlink fails. The drop then leaves the path alone.
    pub(crate) fn remove(&mut self, op: &'static str) -> Result<()> {
        self.ownership.release();
        match unlink_if(&self.path, |st| self.is_ours(st)).during(op, self.path.display())? {
            Unlinked::Removed => Ok(()),
            Unlinked::Gone => {
                Err(Error::os(op, rustix::io::Errno::NOENT).object(self.path.display()))
            }
            Unlinked::Changed => Err(Error::new(
                ErrorKind::Changed,
                op,
                "the path names another file now: it was removed and made again by someone else",
            )
            .object(self.path.display())
            .hint("remove that file yourself if it is yours")),
        }
    }

    fn is_ours(&self, st: &rustix::fs::Stat) -> bool {
        (st.st_dev, st.st_ino) == self.dev_ino && FileType::from_raw_mode(st.st_mode) == self.kind
    }
}

impl Drop for OwnedPath {
    fn drop(&mut self) {
        if !self.ownership.owns() {
            return;
        }
        // Only what we made: the path may have been replaced since, and a freed inode number
        // may be reused at once, so the type is checked too.
        let _ = unlink_if(&self.path, |st| self.is_ours(st));
    }
}

/// What [`unlink_if`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unlinked {
    /// The file was the one expected and is removed.
    Removed,
    /// Nothing is at the path (or its directory is gone).
    Gone,
    /// Another file is at the path now: it is left alone.
    Changed,
}

/// `unlinkat(2)` of `path`'s last component if `same` accepts the `fstatat(2)` (without
/// following a symbolic link) of what is there now, both through one descriptor of its
/// directory (`O_PATH`): a directory swapped for a symbolic link between the check and the
/// removal cannot send the removal to another directory's file, and the name checked is the
/// name removed. Every removal of a file ipckit listed or made goes through here.
/// See [unlinkat(2)](https://man7.org/linux/man-pages/man2/unlinkat.2.html).
pub(crate) fn unlink_if(
    path: &Path,
    same: impl FnOnce(&rustix::fs::Stat) -> bool,
) -> rustix::io::Result<Unlinked> {
    use rustix::fs::{AtFlags, CWD};
    use rustix::io::Errno;
    let Some(base) = path.file_name() else {
        return Err(Errno::INVAL);
    };
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = match rustix::fs::openat(
        CWD,
        dir,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(d) => d,
        Err(Errno::NOENT) => return Ok(Unlinked::Gone),
        Err(e) => return Err(e),
    };
    let st = match rustix::fs::statat(&dir, base, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(Unlinked::Gone),
        Err(e) => return Err(e),
    };
    if !same(&st) {
        return Ok(Unlinked::Changed);
    }
    match rustix::fs::unlinkat(&dir, base, AtFlags::empty()) {
        Ok(()) => Ok(Unlinked::Removed),
        Err(Errno::NOENT) => Ok(Unlinked::Gone),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_path_limits() {
        assert!(check_socket_path(Path::new("/tmp/x.sock")).is_ok());
        assert!(check_socket_path(Path::new("")).is_err());
        let long = format!("/tmp/{}", "a".repeat(200));
        let err = check_socket_path(Path::new(&long)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("abstract"));
        assert!(check_abstract_name(&[b'a'; 108]).is_err());
        assert!(check_abstract_name(b"ok").is_ok());
    }

    #[test]
    fn sysv_keys() {
        assert_eq!("0x4d2".parse::<SysvKey>().unwrap(), SysvKey::Key(1234));
        assert_eq!("1234".parse::<SysvKey>().unwrap(), SysvKey::Key(1234));
        assert_eq!("0xffffffff".parse::<SysvKey>().unwrap(), SysvKey::Key(-1));
        assert_eq!("0".parse::<SysvKey>().unwrap(), SysvKey::Private);
        assert_eq!(SysvKey::Key(1234).to_string(), "0x000004d2");
        assert!("0xzz".parse::<SysvKey>().is_err());
        assert!("".parse::<SysvKey>().is_err());
    }

    #[test]
    fn posix_names() {
        assert!(check_posix_name("/q").is_ok());
        for bad in ["q", "/", "/a/b", "/a\0b"] {
            assert!(check_posix_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_posix_name(&format!("/{}", "x".repeat(255))).is_err());
        assert!(unique_posix("t").starts_with("/ipckit-t-"));
    }

    #[test]
    fn unlink_if_removes_the_file_checked_even_when_its_directory_is_swapped_for_a_link() {
        let root = tempfile::tempdir().unwrap();
        let (d, moved, other) = (
            root.path().join("d"),
            root.path().join("moved"),
            root.path().join("other"),
        );
        std::fs::create_dir(&d).unwrap();
        std::fs::create_dir(&other).unwrap();
        std::fs::write(d.join("s"), b"listed").unwrap();
        std::fs::write(other.join("s"), b"someone else's").unwrap();
        let listed = rustix::fs::lstat(d.join("s")).unwrap();
        // Between the check and the removal, `d` becomes a link to `other`: the removal must
        // still be of the file checked, through the directory that was open.
        let got = unlink_if(&d.join("s"), |st| {
            std::fs::rename(&d, &moved).unwrap();
            std::os::unix::fs::symlink(&other, &d).unwrap();
            (st.st_dev, st.st_ino) == (listed.st_dev, listed.st_ino)
        })
        .unwrap();
        assert_eq!(got, Unlinked::Removed);
        assert!(!moved.join("s").exists(), "the file checked is removed");
        assert_eq!(std::fs::read(other.join("s")).unwrap(), b"someone else's");
        // Another file at the path is left alone; nothing there is `Gone`.
        assert_eq!(
            unlink_if(&d.join("s"), |_| false).unwrap(),
            Unlinked::Changed
        );
        assert!(other.join("s").exists());
        assert_eq!(
            unlink_if(&moved.join("s"), |_| true).unwrap(),
            Unlinked::Gone
        );
        assert_eq!(
            unlink_if(&root.path().join("none/s"), |_| true).unwrap(),
            Unlinked::Gone
        );
    }
}
