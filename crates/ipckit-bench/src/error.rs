//! The bench's error: a library error, a payload that failed its check, a peer that went away,
//! or a bad argument.

/// What went wrong in a measurement or in the bench's arguments.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An IPC call failed.
    #[error(transparent)]
    Ipc(#[from] ipckit::Error),
    /// Starting or reaping the peer process failed.
    #[error("{}", ipckit::error::message(.0))]
    Io(#[from] std::io::Error),
    /// A message arrived changed, out of order, or short: the mechanism lost or damaged data.
    #[error("payload check failed: {0}")]
    Corrupt(String),
    /// The peer process failed, died or did not answer in time.
    #[error("peer: {0}")]
    Peer(String),
    /// The peer process reported this failure of its own.
    #[error("peer: {0}")]
    Reported(String),
    /// A bad argument (an unknown mechanism, a size that is not a size).
    #[error("{0}")]
    Usage(String),
}

/// The bench's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// The reason a wait gives up when the measurement is being abandoned; the runner replaces it
/// with the watchdog's reason (the peer died, or ran out of time).
pub const STOPPED: &str = "stopped waiting: the measurement was abandoned";
