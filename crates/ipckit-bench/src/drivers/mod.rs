//! One driver per mechanism, and the registry `--only` chooses from.

pub mod channel;
pub mod faulty;
pub mod iceoryx;
pub mod mq;
pub mod notify;
pub mod shm;
pub mod socket;
pub mod stream;

use crate::driver::Driver;

/// `ref-memcpy`: copies within one process, no peer. The runner measures it itself; this is its
/// entry in the registry.
pub const REF_MEMCPY: &str = "ref-memcpy";

/// Every driver, in the order the report lists them: references first, then the mechanisms by
/// family, then the peer.
pub fn all() -> Vec<&'static dyn Driver> {
    vec![
        &shm::RefSpin,
        &shm::RefFutex,
        &stream::RefPipe,
        &stream::Pipe,
        &stream::Fifo,
        &socket::UnixStreamDriver,
        &socket::UnixDgramDriver,
        &socket::UnixSeqpacketDriver,
        &socket::TcpLoopback,
        &mq::PosixMqDriver,
        &mq::SysvMqDriver,
        &shm::PosixShmSem,
        &shm::SysvShmSem,
        &shm::ShmFutex,
        &shm::MmapFileFutex,
        &notify::EventFdDriver,
        &notify::SignalDriver,
        &channel::Channel(ipckit::channel::Wait::Spin),
        &channel::Channel(ipckit::channel::Wait::Adaptive),
        &channel::Channel(ipckit::channel::Wait::Blocking),
        &iceoryx::Iceoryx2,
    ]
}

/// The drivers that only the tests use.
fn hidden() -> Vec<&'static dyn Driver> {
    vec![
        &faulty::Faulty(faulty::Fault::Corrupt),
        &faulty::Faulty(faulty::Fault::Drop),
    ]
}

/// The names `--only` accepts, in report order.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = all().iter().map(|d| d.name()).collect();
    names.insert(3, REF_MEMCPY);
    names
}

/// The driver called `name`, the test-only ones included.
pub fn find(name: &str) -> Option<&'static dyn Driver> {
    all().into_iter().chain(hidden()).find(|d| d.name() == name)
}
