//! The control channel between the bench and its peer process: a Unix seqpacket socket pair,
//! one JSON value per packet, descriptors passed beside them (SCM_RIGHTS). Every wait on it is
//! bounded.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use ipckit::socket::ancillary;
use ipckit::socket::unix::UnixSeqpacket;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// How long either side waits for the other on the control channel.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(20);

/// The largest control packet.
const MAX_PACKET: usize = 64 << 10;

/// A failure report, which can arrive in place of any message.
#[derive(serde::Serialize, serde::Deserialize)]
enum Failure {
    Failed { error: String, corrupt: bool },
}

/// One end of the control channel.
pub struct Control {
    sock: UnixSeqpacket,
}

impl Control {
    /// A connected pair: one end for the bench, one for the peer.
    pub fn pair() -> Result<(Control, Control)> {
        let (a, b) = UnixSeqpacket::pair()?;
        Ok((Control { sock: a }, Control { sock: b }))
    }

    /// The end a peer process inherited as descriptor `fd`.
    pub fn from_fd(fd: OwnedFd) -> Control {
        Control {
            // The runner checked it is a seqpacket socket before handing it over.
            sock: UnixSeqpacket::from_fd(fd).expect("a Unix seqpacket control socket"),
        }
    }

    /// Sends one value.
    pub fn send<T: Serialize>(&self, value: &T) -> Result<()> {
        self.send_fds(value, &[])
    }

    /// Sends one value with descriptors beside it.
    pub fn send_fds<T: Serialize>(&self, value: &T, fds: &[BorrowedFd<'_>]) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| Error::Peer(e.to_string()))?;
        ancillary::send_fds(&self.sock, &bytes, fds)?;
        Ok(())
    }

    /// Receives one value, waiting at most [`CONTROL_TIMEOUT`].
    pub fn recv<T: DeserializeOwned>(&self) -> Result<T> {
        let (value, fds) = self.recv_fds(0)?;
        drop(fds);
        Ok(value)
    }

    /// Receives one value, waiting at most `timeout`.
    pub fn recv_within<T: DeserializeOwned>(&self, timeout: Duration) -> Result<T> {
        Ok(self.recv_fds_within(0, timeout)?.0)
    }

    /// Receives one value and the `n` descriptors sent beside it.
    pub fn recv_fds<T: DeserializeOwned>(&self, n: usize) -> Result<(T, Vec<OwnedFd>)> {
        self.recv_fds_within(n, CONTROL_TIMEOUT)
    }

    fn recv_fds_within<T: DeserializeOwned>(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(T, Vec<OwnedFd>)> {
        if !ipckit::poll::readable_timeout(self.sock.as_fd(), timeout)? {
            return Err(Error::Peer(format!(
                "no word on the control channel for {timeout:?}"
            )));
        }
        let mut buf = vec![0u8; MAX_PACKET];
        let got = ancillary::recv(&self.sock, &mut buf, n)?;
        if got.bytes == 0 {
            return Err(Error::Peer(
                "the other process closed the control channel".into(),
            ));
        }
        if got.fds.len() != n {
            return Err(Error::Peer(format!(
                "expected {n} descriptors on the control channel, got {}",
                got.fds.len()
            )));
        }
        let packet = &buf[..got.bytes];
        let value = serde_json::from_slice(packet).map_err(|e| {
            // Whatever this side waited for, the other may have sent its failure instead.
            match serde_json::from_slice::<Failure>(packet) {
                Ok(Failure::Failed {
                    error,
                    corrupt: true,
                }) => Error::Corrupt(error),
                Ok(Failure::Failed { error, .. }) => Error::Reported(error),
                Err(_) => Error::Peer(format!("bad control message: {e}")),
            }
        })?;
        Ok((value, got.fds))
    }

    /// Tells the other side what failed here (it arrives there as the same kind of error).
    pub fn fail(&self, e: &Error) -> Result<()> {
        let failure = match e {
            Error::Corrupt(m) => Failure::Failed {
                error: m.clone(),
                corrupt: true,
            },
            Error::Peer(m) | Error::Reported(m) => Failure::Failed {
                error: m.clone(),
                corrupt: false,
            },
            other => Failure::Failed {
                error: other.to_string(),
                corrupt: false,
            },
        };
        self.send(&failure)
    }
}

impl AsFd for Control {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}
