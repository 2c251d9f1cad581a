//! Message queues: POSIX (`mq_open`: priorities, pollable) and System V (`msgget`: types).
//!
//! Both keep message boundaries and live in the kernel until removed, whatever happens to the
//! processes that use them: the creating handle removes its queue on drop unless
//! `persist()`ed.

pub mod posix;
pub mod sysv;
