//! Sockets: Unix domain (stream, seqpacket, datagram), ancillary data (descriptors and
//! credentials), and TCP loopback for comparison.
//!
//! ```
//! use std::time::Duration;
//! use ipckit::socket::unix::UnixSeqpacket;
//! let (a, b) = UnixSeqpacket::pair().unwrap();
//! let mut buf = [0u8; 16];
//! assert_eq!(b.try_recv(&mut buf).unwrap(), None);
//! a.send(b"one packet").unwrap();
//! assert_eq!(b.recv_timeout(&mut buf, Duration::from_secs(5)).unwrap(), Some(10));
//! ```

pub mod ancillary;
pub mod tcp;
pub mod unix;
