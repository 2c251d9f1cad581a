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

/// The driver of `row`, the test-only ones included. [`Row::RefMemcpy`] has none: it copies
/// within one process, no peer, and the runner measures it itself.
pub fn find(row: Row) -> Option<&'static dyn Driver> {
    all().into_iter().chain(hidden()).find(|d| d.name() == row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_row_has_a_driver_and_every_driver_a_row() {
        for row in Row::ALL.iter().chain(Row::TEST) {
            let driver = find(*row);
            if *row == Row::RefMemcpy {
                assert!(driver.is_none(), "the runner measures {row} itself");
            } else {
                assert!(driver.is_some(), "no driver for the row {row}");
            }
        }
        for d in hidden() {
            assert!(Row::TEST.contains(&d.name()), "{} is a test row", d.name());
        }
        // The drivers users can select come in report order, one per row.
        let listed: Vec<Row> = all().iter().map(|d| d.name()).collect();
        let ordered: Vec<Row> = Row::ALL
            .iter()
            .copied()
            .filter(|r| *r != Row::RefMemcpy)
            .collect();
        assert_eq!(listed, ordered);
    }
}
