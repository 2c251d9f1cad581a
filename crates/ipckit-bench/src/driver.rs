//! What a driver is: the two ends of one mechanism, set up in two processes, each a [`Link`]
//! that sends and receives whole messages of one size.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::control::Control;
use crate::error::{Error, Result, STOPPED};
use crate::rows::Row;

/// How long one of a driver's waits lasts before it looks at the stop flag again. Drivers use
/// the timed form of their call, which costs what the blocking form does.
pub const STEP: Duration = Duration::from_millis(100);

pub use crate::report::{Kind, Role};

/// Facts both ends of a measurement know.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Bytes in every message.
    pub size: usize,
    /// What is measured.
    pub kind: Kind,
    /// Set when the measurement is being abandoned (the peer died or ran out of time): a
    /// driver that waits in a loop checks it.
    pub stop: Arc<AtomicBool>,
}

impl Setup {
    /// Whether the measurement is being abandoned.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// The error that ends a wait once the measurement is being abandoned.
    pub fn check(&self) -> Result<()> {
        if self.stopped() {
            return Err(Error::Peer(STOPPED.into()));
        }
        Ok(())
    }

    /// Repeats a timed wait (`Ok(None)`: its [`STEP`] ran out) until it gives a value or the
    /// measurement is abandoned.
    pub fn wait_for<T>(&self, mut f: impl FnMut() -> ipckit::Result<Option<T>>) -> Result<T> {
        loop {
            if let Some(v) = f()? {
                return Ok(v);
            }
            self.check()?;
        }
    }

    /// [`wait_for`](Setup::wait_for) for a timed call that says only whether it succeeded.
    pub fn wait(&self, mut f: impl FnMut() -> ipckit::Result<bool>) -> Result<()> {
        self.wait_for(|| Ok(f()?.then_some(())))
    }
}

/// Unblocks a [`Link::recv`] or [`Link::send`] of the parent that waits on a peer that is
/// gone, for a mechanism where the peer's death wakes nobody (a queue, shared memory). Called
/// from another thread.
pub type Abort = Box<dyn Fn() + Send>;

/// One end of a mechanism in one process.
pub trait Link {
    /// Sends `msg`, whole.
    fn send(&mut self, msg: &[u8]) -> Result<()>;
    /// Receives one message, whole, into a buffer of the link's own.
    fn recv(&mut self) -> Result<&[u8]>;
    /// Receives one message and hands it to `check`. A mechanism that can lend the message in
    /// place (ipckit's channel) does so here, without the copy [`Link::recv`] makes.
    fn recv_with(&mut self, check: &mut dyn FnMut(&[u8]) -> Result<u64>) -> Result<u64> {
        check(self.recv()?)
    }
    /// What unblocks this end when the peer is gone, if its death does not (pipes and sockets
    /// see end-of-file, so they need none).
    fn abort(&self) -> Option<Abort> {
        None
    }
}

/// One mechanism: how each end is made.
pub trait Driver: Sync {
    /// Its row: the name `--only` takes and the report shows.
    fn name(&self) -> Row;
    /// What the row is for.
    fn role(&self) -> Role {
        Role::Mechanism
    }
    /// The bytes a message always is, for a mechanism that carries a value rather than a payload
    /// (an eventfd counter, a signal's value). `None`: any size.
    fn fixed_size(&self) -> Option<usize> {
        None
    }
    /// Why this mechanism cannot carry `size`-byte messages for `kind` (a kernel limit, named
    /// with its value), or `Ok`.
    fn check(&self, _size: usize, _kind: Kind) -> std::result::Result<(), String> {
        Ok(())
    }
    /// The parent's end: makes the objects (the parent owns them) and tells the peer over
    /// `ctl` how to reach them.
    fn parent(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>>;
    /// The peer's end, from what the parent sent over `ctl`.
    fn peer(&self, setup: &Setup, ctl: &Control) -> Result<Box<dyn Link>>;
}
