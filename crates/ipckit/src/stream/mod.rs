//! Byte streams: anonymous pipes and FIFOs (named pipes).
//!
//! ```
//! use std::io::Write;
//! use std::time::Duration;
//! use ipckit::transport::TimedRead;
//! let (mut r, mut w) = ipckit::stream::pipe::pipe().unwrap();
//! w.write_all(b"x").unwrap();
//! let mut buf = [0u8; 4];
//! assert_eq!(r.read_timeout(&mut buf, Duration::from_secs(5)).unwrap(), Some(1));
//! assert_eq!(r.try_read(&mut buf).unwrap(), None); // nothing more, and no wait
//! ```

pub mod fifo;
pub mod pipe;
