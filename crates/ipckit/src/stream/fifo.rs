//! FIFOs (named pipes): `mkfifo(3)` with the ownership model, and opens that cannot hang.
//!
//! Opening a FIFO blocks until the other side arrives: a reader waits for a writer and a writer
//! for a reader. Every open here also has a timed form and a non-blocking one:
//! - [`open_write_timeout`] (and `_deadline`) retries a non-blocking open (which fails with
//!   ENXIO while no reader is there) with a short back-off until the deadline, then fails with
//!   [`ErrorKind::TimedOut`]. [`try_open_write`] is one non-blocking open: with no reader it
//!   fails with ENXIO, and the error says why.
//! - [`open_read_timeout`] (and `_deadline`) opens without blocking (always possible for a
//!   reader) and polls until a writer has written or closed: the kernel tells a reader nothing
//!   when a writer merely opens, so a writer that opens and stays silent past the timeout
//!   counts as absent. [`try_open_read`] opens without waiting at all.
//!
//! Neither ever opens the other direction itself, so no other process blocked on the same
//! FIFO is disturbed.
//!
//! A reader that means to read its own FIFO (a server) uses [`try_open_read_or_create`]: it
//! makes the FIFO, or takes an existing one only if it is this user's and no wider than the
//! mode asked for (another user's FIFO, or one anybody may write, would feed it whatever they
//! write), and [`try_reopen_read`] opens that same FIFO again through the descriptor once its
//! writers have gone.
//!
//! The process that creates a FIFO owns its name: [`Fifo`] unlinks it on drop unless
//! [`Fifo::persist`] is called; [`Fifo::remove`] unlinks it now and reports the error.
//! Opening never removes anything.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use ipckit::stream::fifo::{self, Fifo};
//! let path = std::env::temp_dir().join(ipckit::name::unique("doc-fifo"));
//! let node = Fifo::create(&path, &fifo::Options::default()).unwrap();
//! // A non-blocking reader is there at once, so the writer's open does not wait.
//! let mut r = fifo::try_open_read(node.path()).unwrap();
//! let mut w = fifo::open_write_timeout(node.path(), Duration::from_secs(5)).unwrap();
//! w.write_all(b"hi").unwrap();
//! drop(w);
//! r.set_nonblocking(false).unwrap();
//! let mut s = String::new();
//! r.read_to_string(&mut s).unwrap();
//! assert_eq!(s, "hi");
//! node.remove().unwrap(); // or drop it: the creator unlinks the FIFO
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
use crate::object::check_mode;
use crate::poll::{self, Deadline};
use crate::stream::pipe::{PipeReader, PipeWriter};

/// How [`Fifo::create`] makes a FIFO: its mode (permission bits only, `0o600` by default,
/// applied exactly: the umask does not narrow it), and whether
/// [`try_open_read_or_create`] may take an existing FIFO that is not this user's own
/// ([`trust_existing`](crate::object::ModeOptions::trust_existing), default false).
pub use crate::object::ModeOptions as Options;

/// A FIFO this process created. Unlinks it on drop (only if the path still names the same
/// FIFO) unless [`persist`](Fifo::persist)ed.
#[derive(Debug)]
pub struct Fifo {
    owned: OwnedPath,
}

impl Fifo {
    /// `mknod(path, S_IFIFO | mode)` then `chmod` to the exact mode (so the umask does not
    /// narrow it). Fails with EEXIST if anything is at `path`: an existing FIFO is opened,
    /// never adopted. A mode with bits outside `0o777` is refused with
    /// [`ErrorKind::InvalidInput`]. See [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html).
    pub fn create(path: impl AsRef<Path>, opts: &Options) -> Result<Fifo> {
        let path = path.as_ref();
        check_mode("creating FIFO", opts.mode)?;
        rustix::fs::mknodat(
            rustix::fs::CWD,
            path,
            FileType::Fifo,
            Mode::from_bits_truncate(opts.mode),
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
        owned.set_mode(opts.mode)?;
        Ok(Fifo { owned })
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        self.owned.path()
    }

    /// Keeps the FIFO after this handle is dropped: the handle then never removes it.
    #[must_use]
    pub fn persist(mut self) -> Self {
        self.owned.release();
        self
    }

    /// `unlink(2)`: removes the FIFO now, if the path still names the FIFO made (else an error
    /// of kind [`Changed`](ErrorKind::Changed)). Processes that have it open keep their ends.
    /// See [unlink(2)](https://man7.org/linux/man-pages/man2/unlink.2.html).
    pub fn remove(mut self) -> Result<()> {
        self.owned.remove("removing FIFO")
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

/// `open(path, O_RDONLY)`: opens the FIFO for reading, blocking until a writer opens it.
/// The returned end is blocking. See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_read(path: impl AsRef<Path>) -> Result<PipeReader> {
    open_fifo(path.as_ref(), false, false).map(PipeReader::from_owned)
}

/// `open(path, O_RDONLY | O_NONBLOCK)` then `poll(2)`: opens the FIFO for reading, waiting at
/// most `timeout` for a writer to write or close (see the module notes). Fails with
/// [`ErrorKind::TimedOut`] when none did. The returned end is blocking.
/// See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_read_timeout(path: impl AsRef<Path>, timeout: Duration) -> Result<PipeReader> {
    let path = path.as_ref();
    open_read_until(path, Deadline::after(timeout))?
        .ok_or_else(|| no_writer(path, Error::timed_out(op(false), timeout)))
}

/// `open(path, O_RDONLY | O_NONBLOCK)` then `poll(2)`: as [`open_read_timeout`], giving up
/// at `deadline`. See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_read_deadline(
    path: impl AsRef<Path>,
    deadline: impl Into<Deadline>,
) -> Result<PipeReader> {
    let path = path.as_ref();
    open_read_until(path, deadline.into())?
        .ok_or_else(|| no_writer(path, Error::deadline_passed(op(false))))
}

/// `open(path, O_RDONLY | O_NONBLOCK)`: succeeds at once whether or not a writer exists. The
/// end stays non-blocking (reads fail with `WouldBlock` while empty) until
/// `set_nonblocking(false)`. Until a writer has come, a read returns 0 (as at end of file),
/// but poll does not report it readable.
/// See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn try_open_read(path: impl AsRef<Path>) -> Result<PipeReader> {
    open_fifo(path.as_ref(), false, true).map(PipeReader::from_owned)
}

/// `mknod(path, S_IFIFO | mode)` if nothing is there, else the FIFO that is, then
/// `open(path, O_RDONLY | O_NONBLOCK)` as [`try_open_read`]: the reader of a FIFO this program
/// means to be its own. The [`Fifo`] is `Some` when this call made it (it unlinks it on drop,
/// unless [`persist`](Fifo::persist)ed), `None` when it was there already.
///
/// An existing FIFO, and one found in place of the one just made (a directory others can
/// write lets them swap it), must pass [`check_existing`](crate::object::check_existing):
/// owned by this user, no wider than `opts`' mode. Otherwise the reader is closed at once and
/// the error names the owner and mode: another user's FIFO (or one anybody may write) would
/// hand this reader whatever that user writes. The check is made on the descriptor opened
/// (`fstat`), never on the path looked up before. [`Options::trust_existing`] skips it.
/// Anything but a FIFO at `path` is refused with [`ErrorKind::InvalidInput`].
/// See [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html),
/// [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
///
/// ```
/// use ipckit::stream::fifo;
/// let path = std::env::temp_dir().join(ipckit::name::unique("doc-fifo-ooc"));
/// let (reader, made) = fifo::try_open_read_or_create(&path, &fifo::Options::default()).unwrap();
/// assert!(made.is_some()); // this call made it: removed when `made` drops
/// // A later run finds its own FIFO (this user's, mode 0o600) and reads it.
/// let (again, none) = fifo::try_open_read_or_create(&path, &fifo::Options::default()).unwrap();
/// assert!(none.is_none());
/// // One asking for less (0o400) refuses what has more.
/// let narrow = fifo::Options::default().mode(0o400);
/// assert!(fifo::try_open_read_or_create(&path, &narrow).is_err());
/// drop((reader, again, made));
/// assert!(!path.exists());
/// ```
pub fn try_open_read_or_create(
    path: impl AsRef<Path>,
    opts: &Options,
) -> Result<(PipeReader, Option<Fifo>)> {
    let path = path.as_ref();
    let made = match Fifo::create(path, opts) {
        Ok(f) => Some(f),
        Err(e) if e.errno() == Some(Errno::EXIST) => None,
        Err(e) => return Err(e),
    };
    let fd = open_fifo(path, false, true)?;
    let shown = crate::name::escape(path.as_os_str());
    let found = crate::object::Existing::of_fd(&fd).during(op(false), &shown)?;
    crate::object::check_existing(
        op(false),
        &shown,
        &format!("fifo:{shown}"),
        found,
        opts.mode,
        opts.trust_existing,
    )?;
    Ok((PipeReader::from_owned(fd), made))
}

/// `open("/proc/self/fd/N", O_RDONLY | O_NONBLOCK)`: a new non-blocking read end of the very
/// FIFO `reader` has open, found through the descriptor, never the path. For a reader that
/// opens again once every writer has closed (a read then returns 0 at once, for ever): the
/// path may name another FIFO by then (one swapped in by whoever can write the directory),
/// this cannot. See [proc(5)](https://man7.org/linux/man-pages/man5/proc.5.html).
///
/// ```
/// use ipckit::stream::fifo;
/// let path = std::env::temp_dir().join(ipckit::name::unique("doc-fifo-reopen"));
/// let (reader, _made) = fifo::try_open_read_or_create(&path, &fifo::Options::default()).unwrap();
/// let again = fifo::try_reopen_read(&reader).unwrap();
/// let (a, b) = (rustix::fs::fstat(&reader).unwrap(), rustix::fs::fstat(&again).unwrap());
/// assert_eq!((a.st_dev, a.st_ino), (b.st_dev, b.st_ino));
/// ```
pub fn try_reopen_read(reader: &PipeReader) -> Result<PipeReader> {
    use std::os::fd::AsRawFd;
    let via = format!("/proc/self/fd/{}", reader.as_raw_fd());
    let fd = rustix::fs::open(
        via.as_str(),
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .during("opening FIFO again for reading", &via)?;
    Ok(PipeReader::from_owned(fd))
}

fn open_read_until(path: &Path, deadline: Deadline) -> Result<Option<PipeReader>> {
    let fd = open_fifo(path, false, true)?;
    if poll::wait_deadline(&fd, PollFlags::IN, deadline)?.is_empty() {
        return Ok(None);
    }
    poll::set_nonblocking(&fd, false)?;
    Ok(Some(PipeReader::from_owned(fd)))
}

fn no_writer(path: &Path, e: Error) -> Error {
    e.object(path.display()).hint(
        "no process opened it for writing and wrote: start the writer, or check it uses this path",
    )
}

fn no_reader(path: &Path, e: Error) -> Error {
    e.object(path.display())
        .hint("no process opened it for reading: start the reader, or check it uses this path")
}

/// `open(path, O_WRONLY)`: opens the FIFO for writing, blocking until a reader opens it. The
/// returned end is blocking. See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_write(path: impl AsRef<Path>) -> Result<PipeWriter> {
    open_fifo(path.as_ref(), true, false).map(PipeWriter::from_owned)
}

/// `open(path, O_WRONLY | O_NONBLOCK)`, retried: opens the FIFO for writing, waiting at most
/// `timeout` for a reader. Fails with [`ErrorKind::TimedOut`] when none came. The returned end
/// is blocking. See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_write_timeout(path: impl AsRef<Path>, timeout: Duration) -> Result<PipeWriter> {
    let path = path.as_ref();
    open_write_until(path, Deadline::after(timeout))?
        .ok_or_else(|| no_reader(path, Error::timed_out(op(true), timeout)))
}

/// `open(path, O_WRONLY | O_NONBLOCK)`, retried: as [`open_write_timeout`], giving up at
/// `deadline`. See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn open_write_deadline(
    path: impl AsRef<Path>,
    deadline: impl Into<Deadline>,
) -> Result<PipeWriter> {
    let path = path.as_ref();
    open_write_until(path, deadline.into())?
        .ok_or_else(|| no_reader(path, Error::deadline_passed(op(true))))
}

/// `open(path, O_WRONLY | O_NONBLOCK)`: fails at once with ENXIO when no process has the FIFO
/// open for reading. The end stays non-blocking until `set_nonblocking(false)`.
/// See [fifo(7)](https://man7.org/linux/man-pages/man7/fifo.7.html).
pub fn try_open_write(path: impl AsRef<Path>) -> Result<PipeWriter> {
    open_fifo(path.as_ref(), true, true).map(PipeWriter::from_owned)
}

fn open_write_until(path: &Path, deadline: Deadline) -> Result<Option<PipeWriter>> {
    let opened = poll::with_backoff(deadline, || match open_fifo(path, true, true) {
        Ok(fd) => Ok(Some(fd)),
        Err(e) if e.errno() == Some(Errno::NXIO) => Ok(None),
        Err(e) => Err(e),
    })?;
    let Some(fd) = opened else { return Ok(None) };
    poll::set_nonblocking(&fd, false)?;
    Ok(Some(PipeWriter::from_owned(fd)))
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
