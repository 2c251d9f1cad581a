//! Notification: eventfd counters, signals (signalfd, sigqueue, self-pipe) and pidfds.

pub mod eventfd;
pub mod pidfd;
pub mod signal;
