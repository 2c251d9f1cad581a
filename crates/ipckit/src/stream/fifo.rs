//! FIFOs (named pipes): `mkfifo(3)` with the ownership model, and opens that cannot hang.
//!
//! Opening a FIFO blocks until the other side arrives: a reader waits for a writer and a writer
//! for a reader. Every open here has a timed form ([`open_read`], [`open_write`] with
//! `Some(timeout)`) and a non-blocking one. A non-blocking open for writing with no reader fails
//! with ENXIO, and the error says why.
//!
//! The process that creates a FIFO owns its name: [`Fifo`] unlinks it on drop unless
//! [`Fifo::persist`] is called. Opening never removes anything.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::time::Duration;
//! use ipckit::stream::fifo::{self, Fifo};
//! let dir = std::env::temp_dir().join(ipckit::name::unique("doc-fifo"));
//! let node = Fifo::create(&dir, 0o600).unwrap();
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
//! assert!(!dir.exists());
//! ```

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::fs::{FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::{Context, Error, ErrorKind, Result};
use crate::stream::pipe::{PipeReader, PipeWriter};

/// A FIFO this process created. Unlinks it on drop (only if the path still names the same
/// FIFO) unless [`persist`](Fifo::persist)ed.
#[derive(Debug)]
pub struct Fifo {
    path: PathBuf,
    dev_ino: (u64, u64),
    keep: bool,
}

impl Fifo {
    /// `mknod(S_IFIFO)` with `mode` (then `chmod`, so the umask does not narrow it). Fails with
    /// EEXIST if anything is at `path`: an existing FIFO is opened, never adopted.
    /// See [mkfifo(3)](https://man7.org/linux/man-pages/man3/mkfifo.3.html).
    pub fn create(path: impl AsRef<Path>, mode: u32) -> Result<Fifo> {
        let path = path.as_ref();
        let mode = Mode::from_bits_truncate(mode & 0o7777);
        rustix::fs::mknodat(rustix::fs::CWD, path, FileType::Fifo, mode, 0).map_err(|e| {
            Error::os("creating FIFO", e)
                .object(path.display())
                .hint_if(
                    Errno::EXIST,
                    "something is already there: open it, or remove it first",
                )
        })?;
        // From here on, a failure removes what we made.
        let mut made = Fifo {
            path: path.to_owned(),
            dev_ino: (0, 0),
            keep: false,
        };
        rustix::fs::chmod(path, mode).during("setting mode of FIFO", path.display())?;
        let st = rustix::fs::lstat(path).during("checking FIFO", path.display())?;
        made.dev_ino = (st.st_dev, st.st_ino);
        Ok(made)
    }

    /// The FIFO's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the FIFO after this handle is dropped; returns its path.
    pub fn persist(mut self) -> PathBuf {
        self.keep = true;
        std::mem::take(&mut self.path)
    }
}

impl Drop for Fifo {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Only unlink what we made: the path may have been replaced since (and a freed inode
        // number may be reused at once, so the type is checked too).
        if let Ok(st) = rustix::fs::lstat(&self.path) {
            let ours = (st.st_dev, st.st_ino) == self.dev_ino || self.dev_ino == (0, 0);
            if ours && FileType::from_raw_mode(st.st_mode) == FileType::Fifo {
                let _ = rustix::fs::unlink(&self.path);
            }
        }
    }
}

/// Opens `path` for reading, waiting for a writer at most `timeout` (`None`: for ever).
/// The returned end is blocking.
pub fn open_read(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<PipeReader> {
    open_timed(path.as_ref(), false, timeout).map(PipeReader::from_fd)
}

/// Opens `path` for writing, waiting for a reader at most `timeout` (`None`: for ever).
/// The returned end is blocking.
pub fn open_write(path: impl AsRef<Path>, timeout: Option<Duration>) -> Result<PipeWriter> {
    open_timed(path.as_ref(), true, timeout).map(PipeWriter::from_fd)
}

/// `open(O_RDONLY | O_NONBLOCK)`: succeeds at once whether or not a writer exists. The end stays
/// non-blocking (reads fail with `WouldBlock` while empty) until `set_nonblocking(false)`.
/// Note that until a writer has come, a read returns 0 (as at end of file).
pub fn open_read_nonblocking(path: impl AsRef<Path>) -> Result<PipeReader> {
    let path = path.as_ref();
    open_fifo(path, false, true).map(PipeReader::from_fd)
}

/// `open(O_WRONLY | O_NONBLOCK)`: fails at once with ENXIO when no process has the FIFO open for
/// reading. The end stays non-blocking until `set_nonblocking(false)`.
pub fn open_write_nonblocking(path: impl AsRef<Path>) -> Result<PipeWriter> {
    let path = path.as_ref();
    open_fifo(path, true, true).map(PipeWriter::from_fd)
}

fn open_fifo(path: &Path, write: bool, nonblock: bool) -> Result<OwnedFd> {
    let mut flags = OFlags::CLOEXEC | OFlags::NOFOLLOW;
    flags |= if write {
        OFlags::WRONLY
    } else {
        OFlags::RDONLY
    };
    if nonblock {
        flags |= OFlags::NONBLOCK;
    }
    let op = if write {
        "opening FIFO for writing"
    } else {
        "opening FIFO for reading"
    };
    let fd =
        loop {
            match rustix::fs::open(path, flags, Mode::empty()) {
                Ok(fd) => break fd,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    return Err(Error::os(op, e)
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
    let st = rustix::fs::fstat(&fd).during(op, path.display())?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        return Err(Error::new(ErrorKind::InvalidInput, op, "it is not a FIFO")
            .object(path.display())
            .hint("use a path made by mkfifo"));
    }
    Ok(fd)
}

fn open_timed(path: &Path, write: bool, timeout: Option<Duration>) -> Result<OwnedFd> {
    let op = if write {
        "opening FIFO for writing"
    } else {
        "opening FIFO for reading"
    };
    // Refuse a non-FIFO before any blocking open: opening a regular file would succeed, and
    // opening a missing path should fail now rather than after the timeout.
    let st = rustix::fs::lstat(path).map_err(|e| {
        Error::os(op, e)
            .object(path.display())
            .hint_if(Errno::NOENT, "no FIFO there: create it first (mkfifo)")
    })?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Fifo {
        return Err(Error::new(ErrorKind::InvalidInput, op, "it is not a FIFO")
            .object(path.display())
            .hint("use a path made by mkfifo"));
    }
    let Some(timeout) = timeout else {
        return open_fifo(path, write, false);
    };
    // Fast path: the peer is already there.
    let fast = if write {
        open_fifo(path, true, true)
    } else {
        Err(Error::os(op, Errno::AGAIN))
    };
    match fast {
        Ok(fd) => {
            crate::poll::set_nonblocking(&fd, false)?;
            return Ok(fd);
        }
        Err(e) if e.errno() == Some(Errno::NXIO) || e.errno() == Some(Errno::AGAIN) => {}
        Err(e) => return Err(e),
    }
    // A blocking open in a helper thread; on timeout we release it by briefly being the missing
    // peer ourselves (a non-blocking open of the other direction), then close both ends.
    let (tx, rx) = mpsc::channel();
    let owned = path.to_owned();
    std::thread::spawn(move || {
        let _ = tx.send(open_fifo(&owned, write, false));
    });
    match rx.recv_timeout(timeout) {
        Ok(result) => return result,
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            return Err(
                Error::new(ErrorKind::Os, op, "the opening thread died").object(path.display())
            );
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {}
    }
    let give_up = Instant::now() + Duration::from_secs(2);
    while Instant::now() < give_up {
        let releaser = open_fifo(path, !write, true);
        match rx.recv_timeout(Duration::from_millis(20)) {
            // The peer may have come at the same moment; we still report the timeout, and the
            // peer sees its other end closed.
            Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => drop(releaser),
        }
    }
    let peer = if write { "reading" } else { "writing" };
    Err(Error::timed_out(op, timeout)
        .object(path.display())
        .hint(format!(
            "no process opened it for {peer}: start the peer, or check it uses this path"
        )))
}
