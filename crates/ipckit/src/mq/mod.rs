//! Message queues: POSIX (`mq_open`: priorities, pollable) and System V (`msgget`: types).
//!
//! Both keep message boundaries and live in the kernel until removed, whatever happens to the
//! processes that use them: the creating handle removes its queue on drop unless
//! `persist()`ed. Both have one shape: `create(name or key, &Options)`, `open(.., Access)`,
//! `open_or_create(.., Access, &Options)` (which refuses an existing queue another user owns,
//! or one wider than the mode asked for: see [`crate::object`]), `send(msg, meta)` (a priority, a type) with `try_send`, `send_timeout` and `send_deadline`,
//! and the same four forms of `recv`.
//!
//! | you need | use | module |
//! |---|---|---|
//! | priorities, a descriptor to poll, a name in `/dev/mqueue` | POSIX queue | [`posix`] |
//! | receivers that choose messages by type, or code that speaks `msgget` | System V queue | [`sysv`] |
//!
//! ```
//! use ipckit::mq::{posix, sysv};
//! use ipckit::name::SysvKey;
//! use std::time::Duration;
//!
//! let name = ipckit::name::unique_posix("doc-mq-mod");
//! let p = posix::PosixMq::create(&name, &posix::Options::default()).unwrap();
//! p.send(b"hello", 5).unwrap(); // priority 5
//! let mut buf = Vec::new();
//! assert_eq!(p.recv_timeout(&mut buf, Duration::from_secs(1)).unwrap(), Some(5));
//!
//! let s = sysv::SysvMq::create(SysvKey::Private, &sysv::Options::default()).unwrap();
//! s.send(b"hello", 5).unwrap(); // type 5
//! let mut buf = [0u8; 16];
//! let m = s.recv_timeout(&mut buf, sysv::TypeFilter::Any, false, Duration::from_secs(1));
//! assert_eq!(m.unwrap().map(|m| m.mtype), Some(5));
//! // Both creators remove their queues on drop.
//! ```

pub mod posix;
pub mod sysv;
