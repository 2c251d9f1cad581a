//! FIFOs (named pipes): `mkfifo(3)` with the ownership model, and opens that cannot hang.
//!
//! Opening a FIFO blocks until the other side arrives: a reader waits for a writer and a writer
//! for a reader. Every open here also has a timed form and a non-blocking one:
//! - [`open_write`] with a timeout retries a non-blocking open (which fails with ENXIO while no
//!   reader is there) with a short back-off until the deadline. A non-blocking open for writing
//!   with no reader fails with ENXIO, and the error says why.
//! - [`open_read`] with a timeout opens without blocking (always possible for a reader) and
//!   polls until a writer has written or closed: the kernel tells a reader nothing when a writer
//!   merely opens, so a writer that opens and stays silent past the timeout counts as absent.
//!
//! Neither ever opens the other direction itself, so no other process blocked on the same
//! FIFO is disturbed.
//!
//! The process that creates a FIFO owns its name: [`Fifo`] unlinks it on drop unless
//! [`Fifo::persist`] is called. Opening never removes anything.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use ipckit::stream::fifo::{self, Fifo};
//! let path = std::env::temp_dir().join(ipckit::name::unique("doc-fifo"));
//! let node = Fifo::create(&path, 0o600).unwrap();
//! // A non-blocking reader is there at once, so the writer's open does not wait.
//! let mut r = fifo::open_read_nonblocking(node.path()).unwrap();
//! let mut w = fifo::open_write(node.path(), Some(Duration::from_secs(5))).unwrap();
//! w.write_all(b"hi").unwrap();
//! drop(w);
//! r.set_nonblocking(false).unwrap();
//! let mut s = String::new();
//! r.read_to_string(&mut s).unwrap();
//! assert_eq!(s, "hi");
//! drop(node); // unlinks the FIFO
//! assert!(!path.exists());
//! ```

use std::os::fd::OwnedFd;
use std::path::Path;
use std::time::Duration;

use rustix::event::PollFlags;
use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, ErrorKind, Result};
use crate::name::OwnedPath;
use crate::poll;
use crate::stream::pipe::{PipeReader, PipeWriter};

/// A FIFO this process created. Unlinks it on drop (only if the path still names the same
/// FIFO) unless [`persist`](Fifo::persist)ed.
#[derive(Debug)]
pub struct Fifo {
    owned: OwnedPath,
}

impl Fifo {
    /// `mknod(S_IFIFO)` then the exact `mode` (so the umask does not narrow it). Fails with
    /// EEXIST if anything is at `path`: an existing FIFO is opened, never adopted.
    /// See [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html).
    pub fn create(path: impl AsRef<Path>, mode: u32) -> Result<Fifo> {
        let path = path.as_ref();
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::Fifo,
            Mode::from_bits_truncate(mode & 0o7777),
            0,
        )
        .map_err(|e| {
            Error::os("creating FIFO", e)
                .object(path.display())
                .hint_if(
                    Errno::EXIST,
                    "something is already there: open it, or remove it first",
                )
        })?;
        // From here on, a failure removes what we made.
        let owned = OwnedPath::adopt(path, FileType::Fifo)?;
        owned.set_mode(mode)?;
        Ok(Fifo { owned })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        self.owned.path()
    }

    /// Keeps the FIFO after this handle is dropped.
    pub fn persist(&mut self) {
        self.owned.persist();
    }
}

fn op(write: bool) -> &'static str {
    if write {
        "opening FIFO for writing"
    } else {
        "opening FIFO for reading"
    }
}

fn not_a_fifo(write: bool, path: &Path) -> Error {
    Error::new(ErrorKind::InvalidInput, op(write), "it is not a FIFO")
        .object(path.display())
        .hint("use a path made by mkfifo")
}

/// Opens `path` for reading, waiting at most `timeout` (`None`: for ever, in a blocking open)
/// for a writer. With a timeout it returns once a writer has written or closed (see the module
/// notes). The returned end is blocking.
pub fn open_read(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<PipeReader> {
    let path = path.as_ref();
    let Some(timeout) = timeout else {
        return open_fifo(path, false, false).map(PipeReader::from_fd);
    };
    let fd = open_fifo(path, false, true)?;
    if poll::wait_deadline(
        &fd,
        PollFlags::IN,
        poll::Deadline::from_timeout(Some(timeout)),
    )?
    .is_empty()
    {
        return Err(Error::timed_out(op(false), timeout)
            .object(path.display())
            .hint("no process opened it for writing and wrote: start the writer, or check it uses this path"));
    }
    poll::set_nonblocking(&fd, false)?;
    Ok(PipeReader::from_fd(fd))
}

/// Opens `path` for writing, waiting at most `timeout` (`None`: for ever, in a blocking open)
/// for a reader. The returned end is blocking.
pub fn open_write(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<PipeWriter> {
    let path = path.as_ref();
    let Some(timeout) = timeout else {
        return open_fifo(path, true, false).map(PipeWriter::from_fd);
    };
    let opened = poll::with_backoff(
        poll::Deadline::from_timeout(Some(timeout)),
        || match open_fifo(path, true, true) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.errno() == Some(Errno::NXIO) => Ok(None),
            Err(e) => Err(e),
        },
    )?;
    let fd = opened.ok_or_else(|| {
        Error::timed_out(op(true), timeout)
            .object(path.display())
            .hint("no process opened it for reading: start the reader, or check it uses this path")
    })?;
    poll::set_nonblocking(&fd, false)?;
    Ok(PipeWriter::from_fd(fd))
}

/// `open(O_RDONLY | O_NONBLOCK)`: succeeds at once whether or not a writer exists. The end stays
/// non-blocking (reads fail with `WouldBlock` while empty) until `set_nonblocking(false)`.
/// Until a writer has come, a read returns 0 (as at end of file), but poll does not report it
/// readable.
pub fn open_read_nonblocking(path: impl AsRef<Path>) -> Result<PipeReader> {
    open_fifo(path.as_ref(), false, true).map(PipeReader::from_fd)
}

/// `open(O_WRONLY | O_NONBLOCK)`: fails at once with ENXIO when no process has the FIFO open for
/// reading. The end stays non-blocking until `set_nonblocking(false)`.
pub fn open_write_nonblocking(path: impl AsRef<Path>) -> Result<PipeWriter> {
    open_fifo(path.as_ref(), true, true).map(PipeWriter::from_fd)
}

fn open_fifo(path: &Path, write: bool, nonblock: bool) -> Result<OwnedFd> {
    // Refuse a non-FIFO before a blocking open: opening a regular file would succeed, and
    // opening a missing path should fail now.
    let st = rustix::fs::lstat(path).map_err(|e| {
        Error::os(op(write), e)
            .object(path.display())
            .hint_if(Errno::NOENT, "no FIFO there: create it first (mkfifo)")
    })?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        return Err(not_a_fifo(write, path));
    }
    let mut flags = OFlags::CLOEXEC | OFlags::NOFOLLOW;
    flags |= if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    if nonblock {
        flags |= OFlags::NONBLOCK;
    }
    let fd =
        loop {
            match rustix::fs::open(path, flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::os(op(write), e)
                    .object(path.display())
                    .hint_if(
                        Errno::NXIO,
                        "no process has it open for reading: open it for reading first, or open \
                         without O_NONBLOCK to wait for a reader",
                    )
                    .hint_if(Errno::NOENT, "no FIFO there: create it first (mkfifo)")
                    .hint_if(Errno::LOOP, "it is a symbolic link, which ipckit does not follow"));
                }
            }
        };
    // The path may have changed between the check and the open.
    let st = rustix::fs::fstat(&fd).during(op(write), path.display())?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        return Err(not_a_fifo(write, path));
    }
    Ok(fd)
}
