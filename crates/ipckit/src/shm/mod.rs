//! Shared memory: POSIX (`shm_open`), System V (`shmget`), memfd (anonymous, sealable) and
//! mappings of files or anonymous memory. The fastest way between processes, and the one where
//! you own the synchronisation: see [`crate::sync`].
//!
//! | you need | use | module |
//! |---|---|---|
//! | a name any process can open, listed in `/dev/shm` | POSIX shared memory | [`posix`] |
//! | a numeric key, or code that already speaks `shmget`/`shmat` | System V segment | [`sysv`] |
//! | no name at all, nothing to leak, sealable against change | memfd, inherited or passed | [`memfd`] |
//! | memory shared only with a `fork`ed child | anonymous shared mapping | [`mapping`] |
//!
//! Every kind is reached through a [`mapping::Mapping`].

pub mod mapping;
pub mod memfd;
pub mod posix;
pub mod sysv;

pub(crate) use crate::object::check_mode;
