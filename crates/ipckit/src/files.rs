//! The files ipckit writes and reads on a user's behalf: reports, manual pages, a bench report
//! given back to it. Written so that a hostile local user cannot turn them against the caller.
//!
//! # The threat
//! Run as root in a world-writable directory (`/tmp`, a shared project directory), a program
//! that writes `ipckit-report/index.html` with a plain `open(O_CREAT|O_TRUNC)` writes wherever
//! another user's pre-planted symlink points: root overwrites a file of its choosing. A
//! directory another user owns or can write lets that user swap the file (or a directory on
//! the way to it) between the check and the write, or replace it afterwards. A parent made
//! "helpfully" with `create_dir_all` creates directories where nobody asked (`--html
//! /nonexistent/x.html` made `/nonexistent`). A reader that takes any path reads `/dev/zero`
//! until memory runs out, or waits for ever on a FIFO nobody writes.
//!
//! # The rules
//! - **Trusted directories only.** Every directory on the way to the file, the starting point
//!   included (`/` for an absolute path, the current directory for a relative one), must be
//!   owned by the caller (the effective uid) or by root (who can do anything anyway), and
//!   not writable by other users:
//!   - writable by every user: refused, unless the sticky bit is set (`/tmp`): there others can
//!     add entries but not rename or remove the caller's;
//!   - writable by its group: refused (unless sticky), except when the group is the owner's
//!     alone (a user private group, as `umask 002` systems make: `/etc/group` and
//!     `/etc/passwd` name the owner as its only member);
//!   - the directories are walked one name at a time with `openat(O_PATH|O_NOFOLLOW)`, each
//!     checked with `fstat` on what was opened, so none can be swapped between the check and
//!     the use. A symlink on the way is followed only when owned by the caller or root (what
//!     the kernel's `protected_symlinks` asks in sticky directories, asked everywhere), and
//!     what it points to is walked and checked the same way.
//! - **Missing directories are never made**, except the one [`create_dir`] is asked for (its
//!   parent must exist): a missing one is `ENOENT`, naming it.
//! - **A temporary file and a rename.** [`write()`] creates a new file in the same directory
//!   (`O_CREAT|O_EXCL|O_NOFOLLOW|O_CLOEXEC`, a fresh name), writes and `fsync`s it, and
//!   `renameat`s it over the target: the target is replaced whole (a reader never sees half a
//!   report), and a rename never follows a symlink at its destination (it replaces the link
//!   itself). The temporary file is removed on every failure.
//! - **Only a regular file is replaced.** An existing symlink at the target is refused (not
//!   followed, not replaced: a link the caller made on purpose is not silently broken, and a
//!   planted one is reported); so are a directory, a FIFO, a socket and a device (replacing
//!   `/dev/null` as root would be a disaster; opening a FIFO would block). In a sticky
//!   directory another user's file is refused too (the kernel refuses that rename to anyone
//!   but root, and root does not take it over either).
//! - **Reading takes a bounded regular file.** [`read_bounded`] follows symlinks (the caller
//!   named the file, and reading it changes nothing) but takes only a regular file: a
//!   directory, FIFO, socket or device is refused before it is opened (no open of a FIFO that
//!   blocks, no endless `/dev/zero`), and a file larger than the bound is refused with the
//!   numbers, even one that grows while read.
//!
//! Modes: files `0o644`, directories `0o755`, or `0o600` and `0o700` with
//! [`Options::private`]; the umask narrows them as it does any file a program creates.
//!
//! Errors name the file and, for a directory refused, which one and why. What the kernel
//! would say carries its errno: a missing directory `ENOENT`, a symlink at the target or on
//! the way `ELOOP`, a directory at the target `EISDIR`. What is ipckit's own rule (a
//! directory others control, a FIFO or device, a file too large) is
//! [`ErrorKind::InvalidInput`] with no errno.
//!
//! ```
//! use ipckit::files;
//! let dir = std::env::temp_dir().join(ipckit::name::unique("doc-files"));
//! files::create_dir(&dir).unwrap(); // the parent (/tmp) exists; nothing above is made
//! let report = dir.join("report.json");
//! files::write(&report, b"{\"version\": 1}").unwrap();
//! files::write(&report, b"{\"version\": 2}").unwrap(); // replaced whole
//! assert_eq!(files::read_bounded(&report, 1 << 20).unwrap(), b"{\"version\": 2}");
//!
//! // A symlink planted at the target is neither followed nor replaced.
//! let victim = dir.join("victim");
//! files::write(&victim, b"keep").unwrap();
//! let link = dir.join("index.html");
//! std::os::unix::fs::symlink(&victim, &link).unwrap();
//! let err = files::write(&link, b"<html>").unwrap_err();
//! assert_eq!(err.errno(), Some(ipckit::Errno::LOOP));
//! assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
//!
//! // A missing directory is an error, not made.
//! let err = files::write(dir.join("missing/x.html"), b"").unwrap_err();
//! assert_eq!(err.errno(), Some(ipckit::Errno::NOENT));
//! assert!(!dir.join("missing").exists());
//! std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

use crate::error::{Context, Error, ErrorKind, Result};

const WRITING: &str = "writing";
const CREATING_DIR: &str = "creating directory";
const OPENING: &str = "opening";
const READING: &str = "reading";

/// How many symlinks one walk follows before it gives up with `ELOOP` (the kernel's limit).
const MAX_LINKS: usize = 40;

/// How many fresh temporary names [`write()`] tries before giving up (each is unique already:
/// only a name another user planted on purpose is taken).
const TEMP_TRIES: usize = 32;

/// The permission bits of what [`write_with`] and [`create_dir_with`] make: readable by
/// everyone (`0o644` files, `0o755` directories) unless [`private`](Options::private).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    private: bool,
}

impl Options {
    /// Readable by the owner only: files `0o600`, directories `0o700`.
    pub fn private(mut self, private: bool) -> Self {
        self.private = private;
        self
    }

    fn file_mode(&self) -> Mode {
        Mode::from_raw_mode(if self.private { 0o600 } else { 0o644 })
    }

    fn dir_mode(&self) -> Mode {
        Mode::from_raw_mode(if self.private { 0o700 } else { 0o755 })
    }
}

/// Writes `bytes` to `path` as a new regular file (`0o644`, narrowed by the umask) that
/// replaces any regular file there, never through a symlink and never in a directory another
/// user controls; see the [module docs](self) for the rules.
///
/// A temporary file in the same directory, `openat(2)` with `O_CREAT|O_EXCL|O_NOFOLLOW`,
/// `fsync(2)`ed, then `renameat(2)` over `path`.
pub fn write(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    write_with(path, bytes, &Options::default())
}

/// [`write()`] with the mode `options` say.
pub fn write_with(path: impl AsRef<Path>, bytes: &[u8], options: &Options) -> Result<()> {
    let path = path.as_ref();
    let (parent, name) = split(path, WRITING)?;
    let dir = open_dir(parent, WRITING, path)?;
    check_target(&dir, name, path)?;
    replace(&dir, name, bytes, options.file_mode(), path)
}

/// Checks now everything [`write()`] would check before writing `path`: its directories and
/// what is there already. For a long job to fail before it starts rather than at its end
/// (`write` checks again: a directory can change in between).
pub fn check_write(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let (parent, name) = split(path, WRITING)?;
    let dir = open_dir(parent, WRITING, path)?;
    check_target(&dir, name, path)
}

/// A file [`open_append`] opened: the file, and its directory held open for the files that
/// later replace it there (a log's compaction: `openat`, `renameat` and `fsync` of the
/// directory through this descriptor, so no name on the way is looked up again).
#[derive(Debug)]
pub struct Appending {
    /// The file, open for reading and appending.
    pub file: File,
    /// Its directory (an `O_PATH` descriptor), walked and checked as [`write()`] does.
    pub dir: OwnedFd,
}

/// Opens `path` for reading and appending (a log), making it (`0o644`, or `0o600`
/// [`private`](Options::private), narrowed by the umask) when it is missing, under the rules
/// [`write()`] keeps: every directory on the way trusted, never through a symlink, only a
/// regular file (of the caller's, in a sticky directory).
///
/// An existing file must be the caller's and writable by no other user (unless the mode asked
/// for lets them).
///
/// `openat(2)` with `O_RDWR|O_APPEND|O_CREAT|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC` in the checked
/// directory, then `fstat(2)` of what was opened (a FIFO or another user's file put at the name
/// since the check is refused; `O_NONBLOCK` keeps such an open from waiting).
pub fn open_append(path: impl AsRef<Path>, options: &Options) -> Result<Appending> {
    const APPENDING: &str = "opening for appending";
    let path = path.as_ref();
    let (parent, name) = split(path, APPENDING)?;
    let dir = open_dir(parent, APPENDING, path)?;
    check_target(&dir, name, path)?;
    let flags = OFlags::RDWR
        | OFlags::APPEND
        | OFlags::CREATE
        | OFlags::NOFOLLOW
        | OFlags::NONBLOCK
        | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(&dir.fd, name, flags, options.file_mode()).map_err(|e| {
        Error::os(APPENDING, e).object(show(path)).hint_if(
            Errno::LOOP,
            "it is a symbolic link, which ipckit does not write through: remove it, or give \
                 the path of the file it points to",
        )
    })?;
    let st = rustix::fs::fstat(&fd).during(APPENDING, show(path))?;
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile || (sticky(&dir.stat) && st.st_uid != euid()) {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            APPENDING,
            format!(
                "a {} of {} was put there while it was opened",
                kind(ft),
                user(st.st_uid)
            ),
        )
        .object(show(path))
        .hint("another user is interfering with the directory: write elsewhere"));
    }
    // An existing file is taken only as this user's, and writable by nobody else unless the
    // mode asked says so: another user who may write it could append what the next reader
    // replays. (Read bits are the owner's choice: Redis makes its log 0644.)
    let asked = options.file_mode().as_raw_mode() & 0o777;
    let mode = st.st_mode & 0o7777;
    if st.st_uid != euid() || mode & 0o022 & !asked != 0 {
        let why = if st.st_uid != euid() {
            format!("it belongs to {}, not to you", user(st.st_uid))
        } else {
            format!("its mode {mode:04o} lets other users write it (asked for {asked:04o})")
        };
        return Err(Error::new(ErrorKind::InvalidInput, APPENDING, why)
            .object(show(path))
            .hint(format!(
                "other users could change what is appended: `chmod {asked:o}` it and make it yours \
                 if it is, or give another path"
            )));
    }
    Ok(Appending {
        file: File::from(fd),
        dir: dir.fd,
    })
}

/// Makes the directory `path` (`0o755`, narrowed by the umask) if it is missing; its parent
/// must exist (nothing above it is made) and be trusted, as every directory on the way. An
/// existing one is taken only if it is a real directory (not a symlink to one) that passes
/// the same checks: owned by the caller or root, not writable by other users.
///
/// `mkdirat(2)`; for an existing one, `openat(2)` with `O_NOFOLLOW` and `fstat(2)`.
pub fn create_dir(path: impl AsRef<Path>) -> Result<()> {
    create_dir_with(path, &Options::default())
}

/// [`create_dir`] with the mode `options` say (for a directory it makes).
pub fn create_dir_with(path: impl AsRef<Path>, options: &Options) -> Result<()> {
    let path = path.as_ref();
    let (parent, name) = split(path, CREATING_DIR)?;
    let dir = open_dir(parent, CREATING_DIR, path)?;
    match rustix::fs::mkdirat(&dir.fd, name, options.dir_mode()) {
        Ok(()) => Ok(()),
        Err(Errno::EXIST) => {
            let fd = rustix::fs::openat(&dir.fd, name, path_flags(), Mode::empty())
                .during(CREATING_DIR, show(path))?;
            let st = rustix::fs::fstat(&fd).during(CREATING_DIR, show(path))?;
            match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => match distrust(&st, &fd) {
                    None => Ok(()),
                    Some(why) => Err(untrusted(CREATING_DIR, path, &dir.path.join(name), &why)),
                },
                FileType::Symlink => Err(Error::os(CREATING_DIR, Errno::LOOP)
                    .object(show(path))
                    .hint(
                        "it is a symbolic link, which ipckit does not follow to a directory it \
                         writes in: remove it, or give the directory it points to",
                    )),
                other => Err(Error::os(CREATING_DIR, Errno::EXIST)
                    .object(show(path))
                    .hint(format!(
                        "it exists and is a {}, not a directory: remove it or give another name",
                        kind(other)
                    ))),
            }
        }
        Err(Errno::NOENT) => Err(missing(CREATING_DIR, path, parent)),
        Err(e) => Err(Error::os(CREATING_DIR, e).object(show(path))),
    }
}

/// Reads the regular file `path` whole, if it has at most `max` bytes: a directory, FIFO,
/// socket or device is refused before it is opened (a FIFO's open would wait for a writer,
/// `/dev/zero` never ends), a larger file is refused with both numbers, and so is one that
/// grows past `max` while it is read. Symlinks are followed: the caller named the file.
///
/// `open(2)` with `O_PATH` (which opens nothing: no FIFO waits, no device acts), `fstat(2)`
/// of that descriptor, then, for a regular file within `max`, `open(2)` of the same file
/// through `/proc/self/fd` with `O_RDONLY|O_NONBLOCK|O_NOCTTY|O_CLOEXEC`, and `read(2)` of at most
/// `max + 1` bytes: what is read is the file checked, not one put at the path since.
pub fn read_bounded(path: impl AsRef<Path>, max: usize) -> Result<Vec<u8>> {
    use std::os::fd::AsRawFd;
    let path = path.as_ref();
    let pinned = rustix::fs::open(path, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .during(OPENING, show(path))?;
    let st = rustix::fs::fstat(&pinned).during(OPENING, show(path))?;
    regular_within(&st, path, max)?;
    let via = format!("/proc/self/fd/{}", pinned.as_raw_fd());
    let fd = rustix::fs::open(
        via.as_str(),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .during(OPENING, show(path))?;
    let st = rustix::fs::fstat(&fd).during(READING, show(path))?;
    regular_within(&st, path, max)?;
    let mut bytes = Vec::with_capacity((st.st_size.max(0) as usize).min(max).saturating_add(1));
    File::from(fd)
        .take((max as u64).saturating_add(1))
        .read_to_end(&mut bytes)
        .during(READING, show(path))?;
    if bytes.len() > max {
        return Err(too_large(
            path,
            format!("it grew past {} while it was read", bytes_label(max)),
        ));
    }
    Ok(bytes)
}

/// [`read_bounded`] for a text file: UTF-8 or an error that says where it is not.
pub fn read_to_string_bounded(path: impl AsRef<Path>, max: usize) -> Result<String> {
    let path = path.as_ref();
    String::from_utf8(read_bounded(path, max)?).map_err(|e| {
        Error::new(
            ErrorKind::InvalidInput,
            READING,
            format!(
                "it is not UTF-8 text (byte {} is not)",
                e.utf8_error().valid_up_to()
            ),
        )
        .object(show(path))
        .hint("give the path of a text file")
    })
}

// ---------------------------------------------------------------------------------------------
// Reading

fn regular_within(st: &Stat, path: &Path, max: usize) -> Result<()> {
    let ft = FileType::from_raw_mode(st.st_mode);
    if ft != FileType::RegularFile {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            READING,
            format!("it is a {}, not a regular file", kind(ft)),
        )
        .object(show(path))
        .hint("give the path of a regular file"));
    }
    let size = st.st_size.max(0) as u64;
    if size > max as u64 {
        return Err(too_large(
            path,
            format!(
                "it has {size} bytes, over the limit of {}",
                bytes_label(max)
            ),
        ));
    }
    Ok(())
}

fn too_large(path: &Path, why: String) -> Error {
    Error::new(ErrorKind::InvalidInput, READING, why)
        .object(show(path))
        .hint("a file this large is not the one meant: give the right one")
}

/// `67108864 bytes (64 MiB)`.
fn bytes_label(n: usize) -> String {
    const UNITS: [(&str, usize); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    match UNITS.iter().find(|(_, u)| n >= *u && n.is_multiple_of(*u)) {
        Some((name, u)) => format!("{n} bytes ({} {name})", n / u),
        None => format!("{n} bytes"),
    }
}

// ---------------------------------------------------------------------------------------------
// Writing

/// `path` as its directory (`.` for a bare name) and its last name.
fn split<'a>(path: &'a Path, op: &'static str) -> Result<(&'a Path, &'a OsStr)> {
    let bytes = path.as_os_str().as_bytes();
    let name = match path.file_name() {
        Some(name) if !bytes.ends_with(b"/") && !bytes.ends_with(b"/.") => name,
        _ => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                op,
                "the path names no file in a directory",
            )
            .object(show(path))
            .hint("give a path that ends in a file name"));
        }
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    Ok((parent, name))
}

/// What may be at the target before it is replaced: nothing, or a regular file (of the
/// caller's, in a sticky directory).
fn check_target(dir: &Dir, name: &OsStr, path: &Path) -> Result<()> {
    let st = match rustix::fs::statat(&dir.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(Error::os(WRITING, e).object(show(path))),
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => {
            let me = euid();
            if sticky(&dir.stat) && st.st_uid != me {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    WRITING,
                    format!(
                        "the file there belongs to {}, in the shared (sticky) directory {}",
                        user(st.st_uid),
                        show_dir(&dir.path)
                    ),
                )
                .object(show(path))
                .hint("it is not taken over: write elsewhere, or have its owner remove it"));
            }
            Ok(())
        }
        FileType::Symlink => Err(Error::os(WRITING, Errno::LOOP).object(show(path)).hint(
            "it is a symbolic link, which ipckit neither writes through nor replaces: remove \
             it, or give the path of the file it points to",
        )),
        FileType::Directory => Err(Error::os(WRITING, Errno::ISDIR)
            .object(show(path))
            .hint("it is a directory: give the name of a file in it")),
        other => Err(Error::new(
            ErrorKind::InvalidInput,
            WRITING,
            format!("it is a {}, not a regular file", kind(other)),
        )
        .object(show(path))
        .hint("ipckit replaces only regular files: give another name")),
    }
}

/// Removes the temporary file on drop unless it was renamed into place.
struct TempFile<'a> {
    dir: &'a OwnedFd,
    name: OsString,
    armed: bool,
}

impl Drop for TempFile<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = rustix::fs::unlinkat(self.dir, &self.name, AtFlags::empty());
        }
    }
}

/// A new file in `dir` under a fresh name, `bytes` in it, fsynced, renamed to `name`. Checks
/// nothing about `name` (the caller did): unit tests drive the failure paths through here.
fn replace(dir: &Dir, name: &OsStr, bytes: &[u8], mode: Mode, path: &Path) -> Result<()> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut tries = 0;
    let (mut temp, fd) = loop {
        let name = OsString::from(format!(".{}.tmp", crate::name::unique("write")));
        match rustix::fs::openat(&dir.fd, &name, flags, mode) {
            Ok(fd) => {
                let temp = TempFile {
                    dir: &dir.fd,
                    name,
                    armed: true,
                };
                break (temp, fd);
            }
            Err(Errno::EXIST) if tries < TEMP_TRIES => tries += 1,
            Err(e) => {
                return Err(Error::os(WRITING, e).object(show(path)).hint_if(
                    Errno::ACCESS,
                    "the directory is not writable by you: write elsewhere",
                ));
            }
        }
    };
    let mut file = File::from(fd);
    file.write_all(bytes).during(WRITING, show(path))?;
    file.sync_all().during(WRITING, show(path))?;
    drop(file);
    rustix::fs::renameat(&dir.fd, &temp.name, &dir.fd, name).map_err(|e| {
        let e = Error::os(WRITING, e).object(show(path));
        match e.errno() {
            Some(Errno::ISDIR) => e.hint("a directory appeared there: give another name"),
            Some(Errno::PERM) => e.hint(
                "another user's file is there, in a shared (sticky) directory: write elsewhere",
            ),
            _ => e,
        }
    })?;
    temp.armed = false;
    // Best effort: makes the rename durable; O_PATH descriptors cannot be fsynced.
    if let Ok(d) = rustix::fs::openat(
        &dir.fd,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::fs::fsync(d);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Walking to a trusted directory

/// A directory reached by a checked walk: its descriptor (`O_PATH`), its status, and the path
/// it was reached by (for messages).
struct Dir {
    fd: OwnedFd,
    stat: Stat,
    path: PathBuf,
}

fn path_flags() -> OFlags {
    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn sticky(st: &Stat) -> bool {
    st.st_mode & 0o1000 != 0
}

/// Opens `dir` one name at a time, checking every directory on the way (see the module docs);
/// errors are about `op` on `target`.
fn open_dir(dir: &Path, op: &'static str, target: &Path) -> Result<Dir> {
    let start = |absolute: bool| -> Result<Dir> {
        let (from, shown) = if absolute { ("/", "/") } else { (".", ".") };
        let fd = rustix::fs::openat(CWD, from, path_flags() | OFlags::DIRECTORY, Mode::empty())
            .during(op, show(target))?;
        let stat = rustix::fs::fstat(&fd).during(op, show(target))?;
        let dir = Dir {
            fd,
            stat,
            path: PathBuf::from(shown),
        };
        trust(&dir, op, target)?;
        Ok(dir)
    };
    let mut cur = start(dir.is_absolute())?;
    // Names still to walk, the next one last.
    let mut todo: Vec<OsString> = names(dir);
    let mut links = 0;
    while let Some(name) = todo.pop() {
        let fd = match rustix::fs::openat(&cur.fd, &name, path_flags(), Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Err(missing(op, target, &cur.path.join(&name))),
            Err(e) => return Err(Error::os(op, e).object(show(target))),
        };
        let stat = rustix::fs::fstat(&fd).during(op, show(target))?;
        let path = cur.path.join(&name);
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Directory => {
                cur = Dir { fd, stat, path };
                trust(&cur, op, target)?;
            }
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Error::os(op, Errno::LOOP).object(show(target)).hint(
                        "too many symbolic links on the way: give the real directory's path",
                    ));
                }
                let me = euid();
                if stat.st_uid != me && stat.st_uid != 0 {
                    return Err(untrusted(
                        op,
                        target,
                        &path,
                        &format!(
                            "is a symbolic link that belongs to {}, not to you or root",
                            user(stat.st_uid)
                        ),
                    ));
                }
                // The link just opened, read through its own descriptor: not a name that could
                // be swapped since.
                let to = rustix::fs::readlinkat(&fd, "", Vec::new()).during(op, show(target))?;
                let to = PathBuf::from(OsString::from_vec(to.into_bytes()));
                todo.extend(names(&to));
                if to.is_absolute() {
                    cur = start(true)?;
                }
            }
            other => {
                return Err(Error::os(op, Errno::NOTDIR)
                    .object(show(target))
                    .hint(format!(
                        "{} is a {}, not a directory",
                        show_dir(&path),
                        kind(other)
                    )));
            }
        }
    }
    Ok(cur)
}

/// The names of `path` to walk, last one first (`.` dropped, `..` kept: the walk opens it
/// like any name, and checks what it reaches).
fn names(path: &Path) -> Vec<OsString> {
    let mut names: Vec<OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some(OsString::from("..")),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => None,
        })
        .collect();
    names.reverse();
    names
}

fn trust(dir: &Dir, op: &'static str, target: &Path) -> Result<()> {
    match distrust(&dir.stat, &dir.fd) {
        None => Ok(()),
        Some(why) => Err(untrusted(op, target, &dir.path, &why)),
    }
}

/// Why a directory with status `st` (open as `fd`) is not to be written in, if it is not: its
/// owner, its mode, and the entries of its POSIX access ACL, which can let a named user or
/// group write where the mode alone would not (the mode's group bits are then the ACL's mask).
fn distrust(st: &Stat, fd: &OwnedFd) -> Option<String> {
    let me = euid();
    let owner = st.st_uid;
    if owner != me && owner != 0 {
        return Some(format!("belongs to {}, not to you or root", user(owner)));
    }
    let mode = st.st_mode & 0o7777;
    if sticky(st) {
        return None;
    }
    if mode & 0o002 != 0 {
        return Some(format!(
            "is writable by every user (mode {mode:04o}, not sticky)"
        ));
    }
    // Without the mask's write bit no ACL entry beyond the owner's can write.
    let acl = if mode & 0o020 != 0 {
        access_acl(fd)
    } else {
        Vec::new()
    };
    if acl.is_empty() {
        if mode & 0o020 != 0 && !private_group(st.st_gid, owner) {
            return Some(format!(
                "is writable by its group {} (mode {mode:04o}, not sticky), which has other \
                 members than its owner",
                group(st.st_gid)
            ));
        }
        return None;
    }
    acl_distrust(&acl, st.st_gid, owner, me)
}

/// One entry of a POSIX ACL: its tag, its permission bits (4 read, 2 write, 1 execute) and,
/// for a named user or group, its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct AclEntry {
    tag: u16,
    perm: u16,
    id: u32,
}

const ACL_USER: u16 = 0x02;
const ACL_GROUP_OBJ: u16 = 0x04;
const ACL_GROUP: u16 = 0x08;
const ACL_WRITE: u16 = 0x02;

/// The directory's access ACL, `getxattr(2)` of `system.posix_acl_access` through
/// `/proc/self/fd` (the walk holds `O_PATH` descriptors, which `fgetxattr` refuses): empty
/// when it has none (the mode says it all) or the filesystem keeps none.
fn access_acl(fd: &OwnedFd) -> Vec<AclEntry> {
    use std::os::fd::AsRawFd;
    let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let mut buf = vec![0u8; 4 + 8 * 64];
    match rustix::fs::getxattr(via.as_str(), "system.posix_acl_access", &mut buf) {
        Ok(n) => parse_acl(&buf[..n]),
        Err(Errno::RANGE) => {
            // More than 64 entries: read it at its size.
            let n =
                rustix::fs::getxattr(via.as_str(), "system.posix_acl_access", &mut [0u8; 0][..])
                    .unwrap_or(0);
            buf.resize(n, 0);
            rustix::fs::getxattr(via.as_str(), "system.posix_acl_access", &mut buf)
                .map(|n| parse_acl(&buf[..n]))
                .unwrap_or_default()
        }
        Err(_) => Vec::new(),
    }
}

/// The kernel's xattr form of an ACL: a little-endian version (2), then 8-byte entries of tag
/// (u16), permissions (u16) and id (u32). Anything else parses to no entries.
fn parse_acl(bytes: &[u8]) -> Vec<AclEntry> {
    if bytes.len() < 4 || u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) != 2 {
        return Vec::new();
    }
    bytes[4..]
        .chunks_exact(8)
        .map(|e| AclEntry {
            tag: u16::from_le_bytes([e[0], e[1]]),
            perm: u16::from_le_bytes([e[2], e[3]]),
            id: u32::from_le_bytes([e[4], e[5], e[6], e[7]]),
        })
        .collect()
}

/// Why an ACL lets someone other than the owner, the caller and root write, if it does (the
/// mask, the mode's group bits, is known to allow writing).
fn acl_distrust(acl: &[AclEntry], gid: u32, owner: u32, me: u32) -> Option<String> {
    for e in acl.iter().filter(|e| e.perm & ACL_WRITE != 0) {
        match e.tag {
            ACL_USER if e.id != owner && e.id != me && e.id != 0 => {
                return Some(format!(
                    "lets {} write in it by an ACL entry (getfacl shows it)",
                    user(e.id)
                ));
            }
            ACL_GROUP_OBJ if !private_group(gid, owner) => {
                return Some(format!(
                    "lets its group {} write in it by its ACL, and the group has other members \
                     than its owner",
                    group(gid)
                ));
            }
            ACL_GROUP if !private_group(e.id, owner) => {
                return Some(format!(
                    "lets the group {} write in it by an ACL entry (getfacl shows it)",
                    group(e.id)
                ));
            }
            _ => {}
        }
    }
    None
}

fn untrusted(op: &'static str, target: &Path, dir: &Path, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        op,
        format!("the directory {} {why}", show_dir(dir)),
    )
    .object(show(target))
    .hint(
        "another user could swap what is written there: write elsewhere, or make the \
         directory yours and not writable by others (chown, chmod go-w)",
    )
}

fn missing(op: &'static str, target: &Path, dir: &Path) -> Error {
    Error::os(op, Errno::NOENT)
        .object(show(target))
        .hint(format!(
            "the directory {} does not exist (ipckit makes no missing directory): create it, or \
             write elsewhere",
            show_dir(dir)
        ))
}

/// A path for a message: escaped.
fn show(path: &Path) -> String {
    crate::name::escape(path.as_os_str())
}

/// A directory the walk reached, for a message: `./x` shown as `x`, `.` as the current
/// directory.
fn show_dir(path: &Path) -> String {
    match path.strip_prefix(".") {
        Ok(rest) if rest.as_os_str().is_empty() => "'.' (the current directory)".into(),
        Ok(rest) => show(rest),
        Err(_) => show(path),
    }
}

fn kind(ft: FileType) -> &'static str {
    match ft {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        _ => "file of unknown type",
    }
}

// ---------------------------------------------------------------------------------------------
// Users and groups, from /etc/passwd and /etc/group (users only NSS knows are not seen: a
// group with such members does not count as private, the safe side)

/// The system's account files, read once per question; missing ones are empty.
fn account_file(path: &str) -> String {
    read_to_string_bounded(path, 16 << 20).unwrap_or_default()
}

/// `uid 65534 (nobody)`, or `uid 1234` for one without a name.
fn user(uid: u32) -> String {
    match user_name(&account_file("/etc/passwd"), uid) {
        Some(name) => format!("uid {uid} ({name})"),
        None => format!("uid {uid}"),
    }
}

fn group(gid: u32) -> String {
    let groups = account_file("/etc/group");
    match groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[2].parse() == Ok(gid))
    {
        Some(f) => format!("gid {gid} ({})", f[0]),
        None => format!("gid {gid}"),
    }
}

fn user_name(passwd: &str, uid: u32) -> Option<String> {
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 4 && f[2].parse() == Ok(uid))
        .map(|f| f[0].to_string())
}

/// Whether group `gid` is `owner`'s alone: `owner` is its only member, by primary group or by
/// the group's member list.
fn private_group(gid: u32, owner: u32) -> bool {
    private_group_in(
        &account_file("/etc/passwd"),
        &account_file("/etc/group"),
        gid,
        owner,
    )
}

fn private_group_in(passwd: &str, groups: &str, gid: u32, owner: u32) -> bool {
    let users: Vec<(&str, Option<u32>, Option<u32>)> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .map(|f| (f[0], f[2].parse().ok(), f[3].parse().ok()))
        .collect();
    let Some(listed) = groups
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 3 && f[2].parse() == Ok(gid))
    else {
        return false;
    };
    let mut members = 0;
    for (_, uid, primary) in &users {
        if *primary == Some(gid) {
            if *uid != Some(owner) {
                return false;
            }
            members += 1;
        }
    }
    for name in listed
        .get(3)
        .into_iter()
        .flat_map(|m| m.split(','))
        .map(str::trim)
        .filter(|m| !m.is_empty())
    {
        match users.iter().find(|(n, _, _)| *n == name) {
            Some((_, Some(uid), _)) if *uid == owner => members += 1,
            _ => return false,
        }
    }
    members > 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
                          alice:x:1000:1000::/home/alice:/bin/sh\n\
                          bob:x:1001:100::/home/bob:/bin/sh\n\
                          carol:x:1002:100::/home/carol:/bin/sh\n\
                          nobody:x:65534:65534::/:/usr/sbin/nologin\n";
    const GROUP: &str = "root:x:0:\n\
                         alice:x:1000:\n\
                         users:x:100:\n\
                         shared:x:2000:alice,bob\n\
                         solo:x:2001:alice\n\
                         empty:x:2002:\n\
                         ghost:x:2003:someone\n";

    #[test]
    fn a_private_group_has_its_owner_as_only_member() {
        assert!(private_group_in(PASSWD, GROUP, 1000, 1000), "primary");
        assert!(private_group_in(PASSWD, GROUP, 2001, 1000), "listed alone");
        assert!(private_group_in(PASSWD, GROUP, 0, 0));
        assert!(!private_group_in(PASSWD, GROUP, 1000, 1001), "not bob's");
        assert!(!private_group_in(PASSWD, GROUP, 100, 1001), "bob and carol");
        assert!(
            !private_group_in(PASSWD, GROUP, 2000, 1000),
            "alice and bob"
        );
        assert!(
            !private_group_in(PASSWD, GROUP, 2002, 1000),
            "no member at all"
        );
        assert!(
            !private_group_in(PASSWD, GROUP, 2003, 1000),
            "a member unknown here"
        );
        assert!(
            !private_group_in(PASSWD, GROUP, 4242, 1000),
            "no such group"
        );
        assert!(!private_group_in("", "", 1000, 1000));
    }

    #[test]
    fn sizes_are_labelled_in_the_largest_exact_unit() {
        assert_eq!(bytes_label(64 << 20), "67108864 bytes (64 MiB)");
        assert_eq!(bytes_label(1000), "1000 bytes");
        assert_eq!(bytes_label(2048), "2048 bytes (2 KiB)");
    }

    fn tempdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("ipckit-files-unit-")
            .tempdir()
            .unwrap()
    }

    fn entries(dir: &Path) -> Vec<OsString> {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    }

    /// A failure after the temporary file exists (the rename: a directory appeared at the
    /// target after the check) leaves no temporary file behind.
    #[test]
    fn a_failed_rename_removes_the_temporary_file() {
        let tmp = tempdir();
        std::fs::create_dir(tmp.path().join("target")).unwrap();
        std::fs::write(tmp.path().join("target/inside"), b"x").unwrap();
        let dir = open_dir(tmp.path(), WRITING, tmp.path()).unwrap();
        let err = replace(
            &dir,
            OsStr::new("target"),
            b"data",
            Mode::from_raw_mode(0o644),
            &tmp.path().join("target"),
        )
        .unwrap_err();
        assert!(
            matches!(err.errno(), Some(Errno::ISDIR) | Some(Errno::NOTEMPTY)),
            "{err}"
        );
        assert_eq!(entries(tmp.path()), ["target"]);
    }

    #[test]
    fn a_split_path_needs_a_file_name() {
        assert_eq!(
            split(Path::new("x.html"), WRITING).unwrap(),
            (Path::new("."), OsStr::new("x.html"))
        );
        assert_eq!(
            split(Path::new("/a/b"), WRITING).unwrap(),
            (Path::new("/a"), OsStr::new("b"))
        );
        for bad in ["/", "a/", "a/..", "a/.", ""] {
            assert!(split(Path::new(bad), WRITING).is_err(), "{bad:?}");
        }
    }

    fn acl_bytes(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut b = 2u32.to_le_bytes().to_vec();
        for &(tag, perm, id) in entries {
            b.extend_from_slice(&tag.to_le_bytes());
            b.extend_from_slice(&perm.to_le_bytes());
            b.extend_from_slice(&id.to_le_bytes());
        }
        b
    }

    #[test]
    fn acl_entries_that_let_others_write_are_found() {
        let acl = parse_acl(&acl_bytes(&[
            (0x01, 7, u32::MAX),
            (ACL_USER, 7, 65534),
            (0x20, 5, u32::MAX),
        ]));
        assert_eq!(acl.len(), 3);
        assert_eq!(
            acl[1],
            AclEntry {
                tag: ACL_USER,
                perm: 7,
                id: 65534
            }
        );
        assert!(acl_distrust(&acl, 0, 0, 0).is_some_and(|w| w.contains("ACL")));
        // A named entry for the owner or the caller, or a read-only one, is harmless.
        let mine = parse_acl(&acl_bytes(&[(ACL_USER, 7, 0), (ACL_USER, 5, 65534)]));
        assert_eq!(acl_distrust(&mine, 0, 0, 0), None);
        // Not version 2, or too short: no entries, never a panic.
        assert!(parse_acl(&[1, 0, 0, 0, 2, 0, 7, 0, 0, 0, 0, 0]).is_empty());
        assert!(parse_acl(&[2, 0]).is_empty());
    }

    #[test]
    fn a_directory_an_acl_lets_another_user_write_in_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let acl = acl_bytes(&[
            (0x01, 7, u32::MAX),
            (ACL_USER, 7, 65534),
            (ACL_GROUP_OBJ, 5, u32::MAX),
            (0x10, 7, u32::MAX),
            (0x20, 5, u32::MAX),
        ]);
        if let Err(e) = rustix::fs::setxattr(
            dir.path(),
            "system.posix_acl_access",
            &acl,
            rustix::fs::XattrFlags::empty(),
        ) {
            eprintln!("skipped: this filesystem keeps no ACL ({e})");
            return;
        }
        let err = write(dir.path().join("report.html"), b"x").unwrap_err();
        assert!(err.to_string().contains("ACL"), "{err}");
        assert!(!dir.path().join("report.html").exists());
    }

    #[test]
    fn an_existing_log_others_may_write_or_of_another_user_is_not_appended_to() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("a.log");
        let private = Options::default().private(true);
        drop(open_append(&log, &private).unwrap());
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = open_append(&log, &private).unwrap_err();
        assert!(
            err.to_string().contains("lets other users write it"),
            "{err}"
        );
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(open_append(&log, &private).unwrap());
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&log, Some(65534), None).unwrap();
            let err = open_append(&log, &private).unwrap_err();
            assert!(err.to_string().contains("not to you"), "{err}");
        }
    }
}
