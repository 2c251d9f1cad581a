//! Notification: eventfd counters, signals (signalfd, sigqueue, self-pipe) and pidfds.
//!
//! ```
//! use std::time::Duration;
//! use ipckit::notify::eventfd::{EventFd, Mode};
//! let ev = EventFd::new(0, Mode::Semaphore).unwrap();
//! assert_eq!(ev.read_timeout(Duration::from_millis(10)).unwrap(), None);
//! ev.add(1).unwrap();
//! assert_eq!(ev.read().unwrap(), 1);
//! ```

pub mod eventfd;
pub mod pidfd;
pub mod signal;
