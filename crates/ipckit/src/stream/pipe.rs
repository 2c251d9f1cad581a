//! Anonymous pipes: `pipe2(2)` with `O_CLOEXEC`, owned read and write ends, capacity, splice.
//!
//! A pipe is one-way and has no message boundaries; writes of at most [`PIPE_BUF`] bytes are
//! atomic (never interleaved with another writer's). The reader sees end of file only when
//! *every* write end is closed, in every process: a forgotten write end means a reader that
//! waits for ever (use [`TimedRead::read_timeout`] to find out). Likewise a reader that stops
//! reading leaves a writer waiting for ever once the pipe is full: [`TimedWrite`]'s
//! `write_timeout` and `write_all_timeout` give up in time and say how much went.
//!
//! ```
//! use std::io::{Read, Write};
//! let (mut r, mut w) = ipckit::stream::pipe::pipe().unwrap();
//! w.write_all(b"hello").unwrap();
//! drop(w); // the last write end: the reader now sees EOF after the data
//! let mut s = String::new();
//! r.read_to_string(&mut s).unwrap();
//! assert_eq!(s, "hello");
//! ```

use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use rustix::pipe::{PipeFlags, SpliceFlags};

use crate::error::{Context, Result};
use crate::poll::{self, Deadline};
use crate::transport::{TimedRead, TimedWrite};

/// The largest write the kernel keeps whole (never interleaved): 4096 bytes on Linux.
pub const PIPE_BUF: usize = rustix::pipe::PIPE_BUF;

/// `pipe2(O_CLOEXEC)`: a new pipe, as (read end, write end).
/// See [pipe(2)](https://man7.org/linux/man-pages/man2/pipe.2.html).
pub fn pipe() -> Result<(PipeReader, PipeWriter)> {
    let (r, w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).during("creating pipe", "(pipe2)")?;
    Ok((PipeReader(r), PipeWriter(w)))
}

macro_rules! pipe_end {
    ($name:ident, $what:literal, $mode:expr) => {
        impl $name {
            /// `fcntl(F_GETPIPE_SZ)`: the pipe's capacity in bytes.
            /// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
            pub fn capacity(&self) -> Result<usize> {
                rustix::pipe::fcntl_getpipe_size(&self.0)
                    .during(concat!("reading capacity of ", $what), "(F_GETPIPE_SZ)")
            }

            /// `fcntl(F_SETPIPE_SZ)`: asks for at least `bytes` of capacity; returns what the
            /// kernel gave (rounded up to a power-of-two number of pages). Over
            /// `/proc/sys/fs/pipe-max-size` a process without `CAP_SYS_RESOURCE` (root in a
            /// container included) gets EPERM.
            /// See [fcntl(2)](https://man7.org/linux/man-pages/man2/fcntl.2.html).
            pub fn set_capacity(&self, bytes: usize) -> Result<usize> {
                rustix::pipe::fcntl_setpipe_size(&self.0, bytes).map_err(|e| {
                    crate::Error::os(concat!("setting capacity of ", $what), e)
                        .object(format!("to {bytes} bytes"))
                        .hint_if(
                            rustix::io::Errno::PERM,
                            "over /proc/sys/fs/pipe-max-size: raise it or ask for less",
                        )
                        .hint_if(
                            rustix::io::Errno::BUSY,
                            "the pipe holds more data than the new size: drain it first",
                        )
                })
            }
        }

        crate::impl_fd!($name, 0);
        crate::impl_nonblocking!($name, 0);

        impl $name {
            /// `fstat(2)` and `fcntl(F_GETFL)`: wraps a descriptor that is this end of a pipe or
            /// FIFO (one inherited or received). Anything else (another file type, or the
            /// other end) is refused with [`ErrorKind::InvalidInput`](crate::ErrorKind), the
            /// error saying what the descriptor is.
            /// See [fstat(2)](https://man7.org/linux/man-pages/man2/fstat.2.html).
            pub fn from_fd(fd: OwnedFd) -> Result<Self> {
                crate::sys::fd::check_fifo(fd.as_fd(), $mode, concat!("the ", $what))?;
                Ok($name(fd))
            }

            /// Wraps a descriptor this crate opened as this end.
            pub(crate) fn from_owned(fd: OwnedFd) -> Self {
                $name(fd)
            }

            /// Gives back the descriptor.
            pub fn into_fd(self) -> OwnedFd {
                self.0
            }
        }

        impl From<$name> for OwnedFd {
            fn from(end: $name) -> OwnedFd {
                end.0
            }
        }
    };
}

/// The read end of a pipe or FIFO.
#[derive(Debug)]
pub struct PipeReader(OwnedFd);

/// The write end of a pipe or FIFO.
#[derive(Debug)]
pub struct PipeWriter(OwnedFd);

pipe_end!(PipeReader, "pipe read end", rustix::fs::OFlags::RDONLY);
pipe_end!(PipeWriter, "pipe write end", rustix::fs::OFlags::WRONLY);

impl PipeReader {
    /// `ioctl(FIONREAD)`: bytes waiting in the pipe now.
    /// See [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html).
    pub fn available(&self) -> Result<usize> {
        rustix::io::ioctl_fionread(&self.0)
            .map(|n| n as usize)
            .during("counting bytes in pipe", "(FIONREAD)")
    }

    /// `splice(2)`: moves up to `len` bytes from this pipe to `out` (a file or socket) without
    /// copying through user space. Returns the bytes moved; 0 at end of file.
    /// See [splice(2)](https://man7.org/linux/man-pages/man2/splice.2.html).
    pub fn splice_to<Fd: AsFd>(&self, out: Fd, len: usize) -> Result<usize> {
        rustix::pipe::splice(&self.0, None, out, None, len, SpliceFlags::MOVE)
            .during("splicing from pipe", "(splice)")
    }
}

impl PipeWriter {
    /// `splice(2)`: moves up to `len` bytes from `input` (a file or socket) into this pipe
    /// without copying through user space. Returns the bytes moved; 0 at end of input.
    /// See [splice(2)](https://man7.org/linux/man-pages/man2/splice.2.html).
    pub fn splice_from<Fd: AsFd>(&self, input: Fd, len: usize) -> Result<usize> {
        rustix::pipe::splice(input, None, &self.0, None, len, SpliceFlags::MOVE)
            .during("splicing into pipe", "(splice)")
    }

    /// `vmsplice(2)`: hands the pages of `bufs` to the pipe without copying them; returns the
    /// bytes taken. See [vmsplice(2)](https://man7.org/linux/man-pages/man2/vmsplice.2.html).
    ///
    /// # Safety
    /// The kernel maps the caller's pages into the pipe (it does not copy them, with or without
    /// `SPLICE_F_GIFT`), so the reader sees the memory as it is when it reads, not as it was at
    /// this call. The caller must neither modify nor free `bufs` until the reader has consumed
    /// every byte of them.
    pub unsafe fn vmsplice(&self, bufs: &[IoSlice<'_>]) -> Result<usize> {
        let raw: Vec<rustix::pipe::IoSliceRaw<'_>> = bufs
            .iter()
            .map(|b| rustix::pipe::IoSliceRaw::from_slice(b))
            .collect();
        // SAFETY: the slices are valid for the call; keeping them unchanged until they are read
        // is this function's own contract with its caller.
        unsafe { rustix::pipe::vmsplice(&self.0, &raw, SpliceFlags::empty()) }
            .during("vmsplicing into pipe", "(vmsplice)")
    }

    /// `poll(POLLOUT)`: waits until a write would not block (or the reader is gone, so a
    /// write fails at once). See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn wait_writable(&self) -> Result<()> {
        self.wait_writable_deadline(Deadline::NEVER).map(drop)
    }

    /// `poll(POLLOUT)` with no wait: true when a write would not block now.
    /// See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn try_wait_writable(&self) -> Result<bool> {
        self.wait_writable_deadline(Deadline::now())
    }

    /// `poll(POLLOUT)`: waits at most `timeout` until a write would not block; `Ok(false)`
    /// when it still would. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn wait_writable_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_writable_deadline(Deadline::after(timeout))
    }

    /// `poll(POLLOUT)`: as [`wait_writable_timeout`](Self::wait_writable_timeout), giving up
    /// at `deadline`. See [poll(2)](https://man7.org/linux/man-pages/man2/poll.2.html).
    pub fn wait_writable_deadline(&self, deadline: impl Into<Deadline>) -> Result<bool> {
        poll::writable_deadline(&self.0, deadline)
    }
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.0, buf)?)
    }
}

impl Read for &PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(rustix::io::read(&self.0, buf)?)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::io::write(&self.0, buf)?)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Write for &PipeWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(rustix::io::write(&self.0, buf)?)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Two pipes as one duplex byte stream: what a parent and child use for a round trip.
pub type PipeDuplex = crate::transport::Duplex<PipeReader, PipeWriter>;

impl TimedRead for PipeReader {
    fn read_deadline(
        &mut self,
        buf: &mut [u8],
        deadline: crate::poll::Deadline,
    ) -> Result<Option<usize>> {
        poll::read_until(self.0.as_fd(), buf, deadline)
    }
}

/// `poll(POLLOUT)` then `write(2)`. On a blocking end (the default, and what the FIFO opens
/// return) each write after poll is at most [`PIPE_BUF`] bytes, so it never waits inside the
/// kernel; on an end made non-blocking (`set_nonblocking(true)`) the whole buffer is offered.
/// See [pipe(7)](https://man7.org/linux/man-pages/man7/pipe.7.html).
impl TimedWrite for PipeWriter {
    fn write_deadline(&mut self, buf: &[u8], deadline: Deadline) -> Result<Option<usize>> {
        poll::write_until(self.0.as_fd(), buf, deadline, "writing to pipe")
    }
}
