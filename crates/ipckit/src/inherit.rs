//! Hand a descriptor to a child started with [`std::process::Command`], under a name, and take
//! it up in the child by that name.
//!
//! Every descriptor ipckit opens is `O_CLOEXEC`, so a child that execs a program gets none of
//! them by accident. To give one on purpose (a socket end, a memfd, a pipe end, anything
//! [`AsFd`]), the parent calls [`pass`] on the `Command` before spawning it, and the child calls
//! [`take`] with the same name: it gets an [`OwnedFd`] to build its handle from (a channel end
//! comes over a passed socket with `Receiver::receive_over`). This is systemd's
//! `LISTEN_FDS`/`LISTEN_FDNAMES` shape: the descriptor is inherited at a number the parent
//! picks, and the environment variable [`ENV`] records `NAME=N` (with the file's device and
//! inode, so that a stale record never hands out another file).
//!
//! - Only the child sees the descriptor without `FD_CLOEXEC`: the parent's own descriptors do
//!   not change, and other children started meanwhile do not get it.
//! - [`take`] hands each name out once, sets `FD_CLOEXEC` again on every descriptor passed (so
//!   none leaks into the child's own children) and removes the record from the environment
//!   when the process has one thread (call it first thing in `main`); a grandchild that
//!   inherits a record anyway cannot take a descriptor from it, since the numbers are closed
//!   across its exec.
//!
//! ```standalone_crate
//! use std::io::{Read, Write};
//! use std::os::unix::net::UnixStream;
//! use std::process::Command;
//! use ipckit::inherit;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     if std::env::var_os("DEMO_CHILD").is_some() {
//!         // The child: the socket end the parent passed as "control".
//!         let mut sock = UnixStream::from(inherit::take("control")?);
//!         sock.write_all(b"hello from the child")?;
//!         return Ok(());
//!     }
//!     let (mut mine, theirs) = UnixStream::pair()?;
//!     let mut cmd = Command::new(std::env::current_exe()?);
//!     cmd.env("DEMO_CHILD", "1");
//!     inherit::pass(&mut cmd, "control", &theirs)?;
//!     let mut child = cmd.spawn()?;
//!     drop((cmd, theirs)); // only the child holds that end now: its exit is our end of file
//!     let mut said = String::new();
//!     mine.read_to_string(&mut said)?;
//!     assert_eq!(said, "hello from the child");
//!     assert!(child.wait()?.success());
//!     Ok(())
//! }
//! ```
//!
//! `examples/inherit_channel.rs` hands a channel's receiver to an exec'd child this way.

use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::process::Command;

use ipckit_spawn::{TakeError, fds};

use crate::error::{Error, ErrorKind, Result};

/// The environment variable that records the descriptors a parent passed: `NAME=N:DEV:INO`
/// entries separated by commas.
pub const ENV: &str = fds::RECORD_ENV;

/// `fcntl(fd, F_DUPFD_CLOEXEC, 3)` in the parent, then, in the child between fork and exec,
/// `dup2` of that copy onto its own number (which clears `FD_CLOEXEC` there only): hands `fd`
/// to the child that `cmd` starts, under `name`, and records `name` in [`ENV`] for [`take`].
/// Returns the descriptor's number in the child. The copy stays open in this process as long
/// as `cmd` does: drop `cmd` after spawning, so that only the child holds it.
/// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html) and
/// [dup2(2)](https://man7.org/linux/man-pages/man2/dup2.2.html).
///
/// Fails for a name that is empty or holds `,`, `=` or NUL, and for a name passed to `cmd`
/// already.
pub fn pass(cmd: &mut Command, name: &str, fd: impl AsFd) -> Result<RawFd> {
    fds::pass(cmd, name, fd.as_fd()).map_err(|e| {
        let err = match e.raw_os_error() {
            Some(errno) => Error::os("passing descriptor", crate::Errno::from_raw_os_error(errno))
                .hint_if(
                    crate::Errno::MFILE,
                    "this process has as many descriptors open as it may: close some, or raise \
                     RLIMIT_NOFILE",
                ),
            None => Error::new(ErrorKind::InvalidInput, "passing descriptor", e.to_string()),
        };
        err.object(name)
    })
}

/// `fcntl(N, F_SETFD, FD_CLOEXEC)`: takes ownership, in the child, of the descriptor the parent
/// passed under `name` with [`pass`]. See
/// [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
///
/// The first call reads [`ENV`], sets `FD_CLOEXEC` again on every descriptor it lists, and
/// removes it from the environment when this process has one thread (changing the
/// environment while another thread may read it is not sound, so with more threads it stays;
/// a grandchild still cannot take from it). Fails with [`ErrorKind::InvalidInput`] for a name
/// the parent did not pass (the error lists the names it did) and for a name taken already,
/// and with [`ErrorKind::Changed`] when the recorded number is closed or holds another file.
pub fn take(name: &str) -> Result<OwnedFd> {
    const OP: &str = "taking inherited descriptor";
    fds::take(name).map_err(|e| {
        let (kind, hint) = match &e {
            TakeError::NotPassed { .. } => (
                ErrorKind::InvalidInput,
                "the parent passes it with ipckit::inherit::pass(&mut cmd, NAME, fd) before \
                 spawning the child; names are case-sensitive",
            ),
            TakeError::Taken { .. } => (
                ErrorKind::InvalidInput,
                "a passed descriptor has one owner: keep the OwnedFd the first take gave, or \
                 try_clone it",
            ),
            TakeError::Gone { .. } => (
                ErrorKind::Changed,
                "call take first thing in main, before anything else opens or closes \
                 descriptors; a record inherited from further up than the parent is not for \
                 this process",
            ),
            _ => (
                ErrorKind::InvalidInput,
                "the record is written by ipckit::inherit::pass: unset it if something else set it",
            ),
        };
        Error::new(kind, OP, e.to_string()).object(name).hint(hint)
    })
}
