//! Shared memory: POSIX (`shm_open`), System V (`shmget`), memfd (anonymous, sealable) and
//! mappings of files or anonymous memory. The fastest way between processes, and the one where
//! you own the synchronisation: see [`crate::sync`].

pub mod mapping;
