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
use crate::rows::Row;

/// `ref-memcpy`: copies within one process, no peer. The runner measures it itself: the one
/// row with no driver.
pub const REF_MEMCPY: &str = Row::RefMemcpy.as_str();

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

/// The names `--only` accepts, in report order ([`Row::ALL`]).
pub fn names() -> Vec<&'static str> {
    Row::ALL.iter().map(|r| r.as_str()).collect()
}

/// The driver called `name`, the test-only ones included.
pub fn find(name: &str) -> Option<&'static dyn Driver> {
    all().into_iter().chain(hidden()).find(|d| d.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_driver_and_every_driver_a_row() {
        for row in Row::ALL.iter().chain(Row::TEST) {
            let driver = find(row.as_str());
            if *row == Row::RefMemcpy {
                assert!(driver.is_none(), "the runner measures {row} itself");
            } else {
                assert!(driver.is_some(), "no driver for the row {row}");
            }
        }
        for d in all().into_iter().chain(hidden()) {
            let row: Row = d.name().parse().unwrap();
            assert_eq!(
                Row::TEST.contains(&row),
                hidden().iter().any(|h| h.name() == d.name())
            );
        }
        // The drivers come in report order.
        let listed: Vec<&str> = all().iter().map(|d| d.name()).collect();
        let ordered: Vec<&str> = names().into_iter().filter(|n| *n != REF_MEMCPY).collect();
        assert_eq!(listed, ordered);
    }
}
