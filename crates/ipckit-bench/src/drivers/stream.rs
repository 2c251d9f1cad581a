//! Byte streams: `pipe` and `fifo` through ipckit, `ref-pipe` through raw libc calls. A message
//! is `size` bytes written whole and read whole (`write_all` / `read_exact`): the reader knows
//! the size, so no framing is added.

use std::io::{Read, Write};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::PathBuf;

use ipckit::stream::{fifo, pipe};
use ipckit::transport::Duplex;

use crate::control::{CONTROL_TIMEOUT, Control};
use crate::driver::{Driver, Link, Role, Setup};
use crate::error::{Error, Result};

/// A message link over any reader and writer. `_keep` holds what must live as long as the link
/// (a FIFO's name and directory).
pub struct StreamLink<S> {
    stream: S,
    buf: Vec<u8>,
    _keep: Option<Box<dyn Send>>,
}

impl<S: Read + Write> StreamLink<S> {
    /// A link carrying `setup.size`-byte messages over `stream`.
    pub fn new(stream: S, setup: &Setup) -> Self {
        StreamLink {
            stream,
            buf: vec![0; setup.size],
            _keep: None,
        }
    }
}

impl<S: Read + Write> Link for StreamLink<S> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        self.stream.write_all(msg).map_err(Error::Io)
    }

    fn recv(&mut self) -> Result<&[u8]> {
        self.stream
            .read_exact(&mut self.buf)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => {
                    Error::Peer("end of stream: the other process closed its end".into())
                }
                _ => Error::Io(e),
            })?;
        Ok(&self.buf)
    }
}

/// `pipe`: two anonymous pipes (one each way), the peer's ends passed over the control channel.
pub struct Pipe;

impl Driver for Pipe {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::Pipe
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        pipes_parent(setup, ctl, || Ok(pipe::pipe()?))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        pipes_peer(
            setup,
            ctl,
            pipe::PipeReader::from_fd,
            pipe::PipeWriter::from_fd,
        )
    }
}

/// Two pipes made by `make`, one each way, the peer's ends passed over the control channel.
/// `pipe` and `ref-pipe` share it, so they differ only in the calls that move the bytes.
fn pipes_parent<R, W>(
    setup: &Setup,
    ctl: &Control,
    make: impl Fn() -> Result<(R, W)>,
) -> Result<Box<dyn Link>>
where
    R: Read + AsFd + 'static,
    W: Write + AsFd + 'static,
{
    let (down_r, down_w) = make()?;
    let (up_r, up_w) = make()?;
    ctl.send_fds(&"pipes", &[down_r.as_fd(), up_w.as_fd()])?;
    Ok(Box::new(StreamLink::new(
        Duplex {
            reader: up_r,
            writer: down_w,
        },
        setup,
    )))
}

/// The peer's ends of [`pipes_parent`]'s pipes, as `reader` and `writer` make them.
fn pipes_peer<R, W>(
    setup: &Setup,
    ctl: &Control,
    reader: impl Fn(OwnedFd) -> ipckit::Result<R>,
    writer: impl Fn(OwnedFd) -> ipckit::Result<W>,
) -> Result<Box<dyn Link>>
where
    R: Read + 'static,
    W: Write + 'static,
{
    let (_, fds) = ctl.recv_fds::<String>(2)?;
    let [r, w]: [OwnedFd; 2] = fds.try_into().expect("two descriptors");
    Ok(Box::new(StreamLink::new(
        Duplex {
            reader: reader(r)?,
            writer: writer(w)?,
        },
        setup,
    )))
}

/// `fifo`: two FIFOs in a private directory, opened by path from both sides (each open for
/// writing waits, bounded, for the other side's reader).
pub struct Fifo;

impl Driver for Fifo {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::Fifo
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let dir = tempfile::Builder::new().prefix("ipckit-bench-").tempdir()?;
        let down = fifo::Fifo::create(dir.path().join("down"), &fifo::Options::default())?;
        let up = fifo::Fifo::create(dir.path().join("up"), &fifo::Options::default())?;
        // Each side opens its reading end first, without waiting, so the other's open for
        // writing finds a reader; the reading end blocks again once both are open.
        let reader = fifo::try_open_read(up.path())?;
        ctl.send(&(down.path(), up.path()))?;
        let writer = fifo::open_write_timeout(down.path(), CONTROL_TIMEOUT)?;
        ipckit::poll::set_nonblocking(&reader, false)?;
        // Until a writer has opened it, a FIFO reads as end of file: the peer waits for this.
        ctl.send(&"opened")?;
        let mut link = StreamLink::new(Duplex { reader, writer }, setup);
        // The FIFOs go before their directory.
        link._keep = Some(Box::new((down, up, dir)));
        Ok(Box::new(link))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (down, up): (PathBuf, PathBuf) = ctl.recv()?;
        let reader = fifo::try_open_read(&down)?;
        let writer = fifo::open_write_timeout(&up, CONTROL_TIMEOUT)?;
        ipckit::poll::set_nonblocking(&reader, false)?;
        ctl.recv::<String>()?;
        Ok(Box::new(StreamLink::new(Duplex { reader, writer }, setup)))
    }
}

/// `ref-pipe`: the same as `pipe` with nothing of ipckit in the loop: pipe2(2), read(2) and
/// write(2) straight from libc, so `pipe / ref-pipe` is the library's own cost.
pub struct RefPipe;

/// A raw descriptor read and written with libc calls only.
struct RawFd(OwnedFd);

impl AsFd for RawFd {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl Read for RawFd {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: `buf` is writable for its length.
        let n = unsafe { libc::read(self.0.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }
}

impl Write for RawFd {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd;
        // SAFETY: `buf` is readable for its length.
        let n = unsafe { libc::write(self.0.as_raw_fd(), buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn raw_pipe() -> Result<(RawFd, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(Error::Io(std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two new descriptors that nothing else owns.
    Ok(unsafe {
        (
            RawFd(OwnedFd::from_raw_fd(fds[0])),
            RawFd(OwnedFd::from_raw_fd(fds[1])),
        )
    })
}

impl Driver for RefPipe {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::RefPipe
    }

    fn role(&self) -> Role {
        Role::Reference
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        pipes_parent(setup, ctl, raw_pipe)
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        pipes_peer(setup, ctl, |fd| Ok(RawFd(fd)), |fd| Ok(RawFd(fd)))
    }
}
