//! Sockets: Unix stream, datagram and seqpacket (a connected pair, the peer's end passed over
//! the control channel) and TCP over loopback (a real listen, connect and accept,
//! `TCP_NODELAY` on).

use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

use ipckit::socket::tcp;
use ipckit::socket::unix::{UnixDatagram, UnixSeqpacket, UnixStream};

use crate::control::{CONTROL_TIMEOUT, Control};
use crate::driver::{Driver, Kind, Link, STEP, Setup};
use crate::drivers::stream::StreamLink;
use crate::error::{Error, Result};
use crate::system::sysctl;

/// `unix-stream`: a connected Unix stream socket pair.
pub struct UnixStreamDriver;

impl Driver for UnixStreamDriver {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::UnixStream
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let (mine, theirs) = UnixStream::pair()?;
        ctl.send_fds(&crate::rows::Row::UnixStream.as_str(), &[theirs.as_fd()])?;
        Ok(Box::new(StreamLink::new(mine, setup)))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let sock = UnixStream::from_fd(one_fd(ctl)?)?;
        Ok(Box::new(StreamLink::new(sock, setup)))
    }
}

fn one_fd(ctl: &Control) -> Result<OwnedFd> {
    let (_, mut fds) = ctl.recv_fds::<String>(1)?;
    Ok(fds.pop().expect("one descriptor"))
}

/// A socket that keeps message boundaries.
trait Packet: Send + 'static {
    fn send_packet(&self, msg: &[u8]) -> ipckit::Result<usize>;
    fn recv_packet(&self, buf: &mut [u8]) -> ipckit::Result<usize>;
}

impl Packet for UnixSeqpacket {
    fn send_packet(&self, msg: &[u8]) -> ipckit::Result<usize> {
        self.send(msg)
    }
    fn recv_packet(&self, buf: &mut [u8]) -> ipckit::Result<usize> {
        self.recv(buf)
    }
}

impl Packet for UnixDatagram {
    fn send_packet(&self, msg: &[u8]) -> ipckit::Result<usize> {
        self.send(msg)
    }
    fn recv_packet(&self, buf: &mut [u8]) -> ipckit::Result<usize> {
        self.recv(buf)
    }
}

/// A message socket; waits in receive are bounded by `SO_RCVTIMEO` (no extra call per
/// message) so the stop flag is seen: a datagram socket does not wake a reader when its peer
/// closes.
struct PacketLink<P> {
    sock: P,
    buf: Vec<u8>,
    setup: Setup,
}

impl<P: Packet + AsFd> PacketLink<P> {
    fn new(sock: P, setup: &Setup) -> Result<Self> {
        rustix::net::sockopt::set_socket_timeout(
            &sock,
            rustix::net::sockopt::Timeout::Recv,
            Some(STEP),
        )
        .map_err(std::io::Error::from)?;
        Ok(PacketLink {
            sock,
            buf: vec![0; setup.size],
            setup: setup.clone(),
        })
    }
}

impl<P: Packet> Link for PacketLink<P> {
    fn send(&mut self, msg: &[u8]) -> Result<()> {
        let n = self.sock.send_packet(msg)?;
        if n != msg.len() {
            return Err(Error::Corrupt(format!("sent {n} of {} bytes", msg.len())));
        }
        Ok(())
    }

    fn recv(&mut self) -> Result<&[u8]> {
        // SO_RCVTIMEO ran out: EAGAIN.
        let n = self
            .setup
            .wait_for(|| match self.sock.recv_packet(&mut self.buf) {
                Ok(n) => Ok(Some(n)),
                Err(e) if e.errno() == Some(ipckit::Errno::AGAIN) => Ok(None),
                Err(e) => Err(e),
            })?;
        if n == 0 {
            return Err(Error::Peer(
                "end of stream: the other process closed its end".into(),
            ));
        }
        Ok(&self.buf[..n])
    }
}

/// The largest Unix datagram or packet: the kernel refuses one over the sender's buffer less
/// 32 bytes, and the buffer is at most twice `net.core.wmem_max`.
fn unix_packet_limit(size: usize) -> std::result::Result<(), String> {
    let wmem_max = sysctl("/proc/sys/net/core/wmem_max").unwrap_or(212_992);
    let limit = 2 * wmem_max - 32 - 512;
    if size > limit {
        return Err(format!(
            "over the {limit}-byte limit of a Unix datagram (its send buffer: twice net.core.wmem_max = {wmem_max})"
        ));
    }
    Ok(())
}

/// Raises both buffers so a message of `size` bytes fits (the kernel caps at wmem_max).
fn grow_buffers<Fd: AsFd>(fd: Fd, size: usize) -> Result<()> {
    let want = (2 * size).max(256 << 10);
    rustix::net::sockopt::set_socket_send_buffer_size(&fd, want).map_err(std::io::Error::from)?;
    rustix::net::sockopt::set_socket_recv_buffer_size(&fd, want).map_err(std::io::Error::from)?;
    Ok(())
}

macro_rules! packet_driver {
    ($driver:ident, $row:expr, $sock:ty) => {
        #[doc = concat!("A connected `", stringify!($sock), "` pair, buffers raised to fit the message.")]
        pub struct $driver;

        impl Driver for $driver {
            fn name(&self) -> crate::rows::Row {
                $row
            }

            fn check(&self, size: usize, _kind: Kind) -> std::result::Result<(), String> {
                unix_packet_limit(size)
            }

            fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
                let (mine, theirs) = <$sock>::pair()?;
                grow_buffers(&mine, setup.size)?;
                grow_buffers(&theirs, setup.size)?;
                ctl.send_fds(&$row.as_str(), &[theirs.as_fd()])?;
                Ok(Box::new(PacketLink::new(mine, setup)?))
            }

            fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
                Ok(Box::new(PacketLink::new(
                    <$sock>::from_fd(one_fd(ctl)?)?,
                    setup,
                )?))
            }
        }
    };
}

packet_driver!(UnixDgramDriver, crate::rows::Row::UnixDgram, UnixDatagram);
packet_driver!(
    UnixSeqpacketDriver,
    crate::rows::Row::UnixSeqpacket,
    UnixSeqpacket
);

/// `tcp-loopback`: TCP over 127.0.0.1, listen on a free port, connect, accept.
pub struct TcpLoopback;

impl Driver for TcpLoopback {
    fn name(&self) -> crate::rows::Row {
        crate::rows::Row::TcpLoopback
    }

    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let listener = tcp::listen("127.0.0.1:0", false)?;
        let port = listener.local_addr()?.port();
        ctl.send(&port)?;
        if !ipckit::poll::readable_timeout(&listener, CONTROL_TIMEOUT)? {
            return Err(Error::Peer("the peer did not connect over TCP".into()));
        }
        let (sock, _) = listener.accept()?;
        sock.set_nodelay(true)?;
        Ok(Box::new(StreamLink::new(sock, setup)))
    }

    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>> {
        let port: u16 = ctl.recv()?;
        let sock =
            tcp::connect_timeout(&format!("127.0.0.1:{port}"), false, Duration::from_secs(10))?;
        Ok(Box::new(StreamLink::new(sock, setup)))
    }
}
