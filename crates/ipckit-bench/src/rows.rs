//! The one registry of bench row names: every driver's name, the report's `mechanism` field,
//! the claims, the HTML and `ipckit advise` all spell a row through [`Row`], so a name is
//! written once, here.
//!
//! ```
//! use ipckit_bench::rows::Row;
//!
//! assert_eq!(Row::ShmFutex.as_str(), "shm-futex");
//! assert_eq!("shm-futex".parse::<Row>(), Ok(Row::ShmFutex));
//! assert!("carrier-pigeon".parse::<Row>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! rows {
    ($($(#[$doc:meta])* $row:ident = $name:literal,)*) => {
        /// A bench row: one mechanism (or raw reference, or peer project) the bench measures.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Row {
            $($(#[$doc])* $row,)*
        }

        impl Row {
            /// Every row, the test-only ones included, in declaration order.
            const EVERY: &'static [Row] = &[$(Row::$row,)*];

            /// The name the report, `--only` and the tables use: `shm-futex`, …
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Row::$row => $name,)*
                }
            }
        }
    };
}

rows! {
    /// A raw atomic ping-pong in shared memory: the hardware's round trip.
    RefSpin = "ref-spin",
    /// A raw futex ping-pong: the kernel's cheapest sleep and wake.
    RefFutex = "ref-futex",
    /// A raw libc pipe, no ipckit code.
    RefPipe = "ref-pipe",
    /// Single-core memcpy bandwidth, in one process (the runner measures it itself).
    RefMemcpy = "ref-memcpy",
    /// `ipckit::stream::pipe`.
    Pipe = "pipe",
    /// `ipckit::stream::fifo`.
    Fifo = "fifo",
    /// A Unix stream socket pair.
    UnixStream = "unix-stream",
    /// A Unix datagram socket pair.
    UnixDgram = "unix-dgram",
    /// A Unix seqpacket socket pair.
    UnixSeqpacket = "unix-seqpacket",
    /// TCP over the loopback interface.
    TcpLoopback = "tcp-loopback",
    /// A POSIX message queue each way.
    PosixMq = "posix-mq",
    /// A System V message queue.
    SysvMq = "sysv-mq",
    /// POSIX shared memory with a POSIX semaphore each way.
    PosixShmSem = "posix-shm-sem",
    /// System V shared memory with a System V semaphore set.
    SysvShmSem = "sysv-shm-sem",
    /// A memfd mapping with a futex each way.
    ShmFutex = "shm-futex",
    /// A mapped file with a futex each way.
    MmapFileFutex = "mmap-file-futex",
    /// An eventfd each way (8-byte counts).
    EventFd = "eventfd",
    /// Queued real-time signals with a value.
    Signal = "signal",
    /// The ipckit channel, both sides spinning.
    ChannelSpin = "channel-spin",
    /// The ipckit channel, adaptive waiting (its default).
    Channel = "channel",
    /// The ipckit channel, always sleeping on a futex.
    ChannelBlocking = "channel-blocking",
    /// iceoryx2's zero-copy publish-subscribe.
    Iceoryx2 = "iceoryx2",
    /// Test only: `pipe` with one byte of message 50 flipped.
    TestCorrupt = "test-corrupt",
    /// Test only: `pipe` with message 50 dropped.
    TestDrop = "test-drop",
}

impl Row {
    /// The rows `--only` accepts, in report order: references first, then the mechanisms by
    /// family, then the peer. The test-only rows are not among them.
    pub const ALL: &'static [Row] = Row::EVERY.split_at(Row::EVERY.len() - Row::TEST.len()).0;

    /// The rows only the tests use: drivers that break on purpose.
    pub const TEST: &'static [Row] = &[Row::TestCorrupt, Row::TestDrop];

    /// The ipckit mechanisms built on shared memory.
    pub const SHARED_MEMORY: &'static [Row] = &[
        Row::PosixShmSem,
        Row::SysvShmSem,
        Row::ShmFutex,
        Row::MmapFileFutex,
        Row::ChannelSpin,
        Row::Channel,
        Row::ChannelBlocking,
    ];

    /// The ipckit mechanisms that copy through the kernel.
    pub const KERNEL_COPY: &'static [Row] = &[
        Row::Pipe,
        Row::Fifo,
        Row::UnixStream,
        Row::UnixDgram,
        Row::UnixSeqpacket,
        Row::TcpLoopback,
        Row::PosixMq,
        Row::SysvMq,
    ];

    /// The message queues.
    pub const QUEUES: &'static [Row] = &[Row::PosixMq, Row::SysvMq];
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no bench row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownRow(pub String);

impl fmt::Display for UnknownRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no bench row is called '{}'", self.0)
    }
}

impl std::error::Error for UnknownRow {}

impl FromStr for Row {
    type Err = UnknownRow;

    /// Any registered row, the test-only ones included.
    fn from_str(s: &str) -> Result<Row, UnknownRow> {
        Row::EVERY
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRow(s.to_string()))
    }
}

impl PartialEq<Row> for str {
    fn eq(&self, row: &Row) -> bool {
        self == row.as_str()
    }
}

impl PartialEq<Row> for &str {
    fn eq(&self, row: &Row) -> bool {
        *self == row.as_str()
    }
}

impl PartialEq<Row> for String {
    fn eq(&self, row: &Row) -> bool {
        self == row.as_str()
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Row, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        for (i, row) in Row::EVERY.iter().enumerate() {
            assert_eq!(row.as_str().parse::<Row>(), Ok(*row));
            assert!(
                Row::EVERY[..i].iter().all(|r| r.as_str() != row.as_str()),
                "{row} twice"
            );
        }
        assert_eq!(Row::ALL.len() + Row::TEST.len(), Row::EVERY.len());
        assert!(Row::TEST.iter().all(|t| !Row::ALL.contains(t)));
        let json = serde_json::to_string(&Row::ChannelSpin).unwrap();
        assert_eq!(json, format!("\"{}\"", Row::ChannelSpin.as_str()));
        assert_eq!(
            serde_json::from_str::<Row>(&json).unwrap(),
            Row::ChannelSpin
        );
        assert!(serde_json::from_str::<Row>(r#""carrier-pigeon""#).is_err());
    }

    #[test]
    fn the_families_are_disjoint_mechanisms() {
        for row in Row::SHARED_MEMORY.iter().chain(Row::KERNEL_COPY) {
            assert!(Row::ALL.contains(row) && !row.as_str().starts_with("ref-"));
        }
        assert!(
            Row::SHARED_MEMORY
                .iter()
                .all(|r| !Row::KERNEL_COPY.contains(r))
        );
        assert!(Row::QUEUES.iter().all(|q| Row::KERNEL_COPY.contains(q)));
    }
}
