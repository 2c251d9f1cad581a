//! What a descriptor is: the checks every `from_fd` makes before it wraps a descriptor as a
//! kind, and the words its error uses for what the descriptor is instead.

use std::os::fd::{AsRawFd, BorrowedFd};

use rustix::fs::{FileType, OFlags};
use rustix::net::{AddressFamily, SocketType};

use crate::error::{Context, Error, ErrorKind, Result};

/// The target of `/proc/self/fd/N`: `pipe:[INODE]`, `socket:[INODE]`, `anon_inode:[eventfd]`,
/// or a path. `None` when it cannot be read.
pub(crate) fn link(fd: BorrowedFd<'_>) -> Option<String> {
    std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// Says what `fd` is, for an error: "a regular file", "a Unix datagram socket",
/// "anon_inode:[signalfd]", ...
pub(crate) fn describe(fd: BorrowedFd<'_>) -> String {
    let Ok(st) = rustix::fs::fstat(fd) else {
        return "not an open descriptor".into();
    };
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => "a regular file".into(),
        FileType::Directory => "a directory".into(),
        FileType::CharacterDevice => "a character device".into(),
        FileType::BlockDevice => "a block device".into(),
        FileType::Symlink => "a symbolic link".into(),
        FileType::Fifo => match rustix::fs::fcntl_getfl(fd).map(|f| f & OFlags::RWMODE) {
            Ok(m) if m == OFlags::RDONLY => "the read end of a pipe or FIFO".into(),
            Ok(m) if m == OFlags::WRONLY => "the write end of a pipe or FIFO".into(),
            _ => "a FIFO open for reading and writing".into(),
        },
        FileType::Socket => {
            let family = rustix::net::sockopt::socket_domain(fd).ok();
            let ty = rustix::net::sockopt::socket_type(fd).ok();
            let family = match family {
                Some(AddressFamily::UNIX) => "Unix",
                Some(AddressFamily::INET) => "IPv4",
                Some(AddressFamily::INET6) => "IPv6",
                Some(AddressFamily::NETLINK) => "netlink",
                _ => "other-family",
            };
            let ty = match ty {
                Some(SocketType::STREAM) => "stream",
                Some(SocketType::DGRAM) => "datagram",
                Some(SocketType::SEQPACKET) => "seqpacket",
                Some(SocketType::RAW) => "raw",
                _ => "other-type",
            };
            format!("a {family} {ty} socket")
        }
        _ => link(fd).unwrap_or_else(|| "another kind of file".into()),
    }
}

/// The error of a `from_fd` given the wrong kind of descriptor.
fn refuse(fd: BorrowedFd<'_>, want: &'static str) -> Error {
    Error::new(
        ErrorKind::InvalidInput,
        "wrapping descriptor",
        format!(
            "descriptor {} is {}, not {want}",
            fd.as_raw_fd(),
            describe(fd)
        ),
    )
    .hint("pass the descriptor of the kind asked for (check which number the other process gave)")
}

/// Checks `fd` is a pipe or FIFO (`fstat`, `S_ISFIFO`) open with exactly `mode`
/// (`O_RDONLY` or `O_WRONLY`, from `F_GETFL`).
pub(crate) fn check_fifo(fd: BorrowedFd<'_>, mode: OFlags, want: &'static str) -> Result<()> {
    let st = rustix::fs::fstat(fd).during("checking descriptor", fd.as_raw_fd())?;
    let flags = rustix::fs::fcntl_getfl(fd).during("checking descriptor", fd.as_raw_fd())?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo || flags & OFlags::RWMODE != mode {
        return Err(refuse(fd, want));
    }
    Ok(())
}

/// Checks `fd` is a Unix socket (`SO_DOMAIN` `AF_UNIX`) of type `ty` (`SO_TYPE`), not a
/// listening one (`SO_ACCEPTCONN`).
pub(crate) fn check_unix_socket(
    fd: BorrowedFd<'_>,
    ty: SocketType,
    want: &'static str,
) -> Result<()> {
    let st = rustix::fs::fstat(fd).during("checking descriptor", fd.as_raw_fd())?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Socket {
        return Err(refuse(fd, want));
    }
    let family =
        rustix::net::sockopt::socket_domain(fd).during("checking socket", "(SO_DOMAIN)")?;
    let got = rustix::net::sockopt::socket_type(fd).during("checking socket", "(SO_TYPE)")?;
    if family != AddressFamily::UNIX || got != ty {
        return Err(refuse(fd, want));
    }
    // A listening socket accepts connections; it sends and receives nothing.
    let listening =
        rustix::net::sockopt::socket_acceptconn(fd).during("checking socket", "(SO_ACCEPTCONN)")?;
    if listening {
        return Err(
            refuse(fd, want).hint("it is a listening socket: pass a connection it accepted")
        );
    }
    Ok(())
}

/// Checks `fd` is the anonymous inode `name` (`readlink /proc/self/fd/N` gives
/// `anon_inode:[name]`).
pub(crate) fn check_anon_inode(fd: BorrowedFd<'_>, name: &str, want: &'static str) -> Result<()> {
    let link = link(fd).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidInput,
            "checking descriptor",
            format!(
                "/proc/self/fd/{} cannot be read: not an open descriptor, or /proc is not mounted",
                fd.as_raw_fd()
            ),
        )
    })?;
    if link != format!("anon_inode:[{name}]") {
        return Err(refuse(fd, want));
    }
    Ok(())
}
