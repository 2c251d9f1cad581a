//! Sockets: Unix domain (stream, seqpacket, datagram), ancillary data (descriptors and
//! credentials), and TCP loopback for comparison.

pub mod ancillary;
pub mod tcp;
pub mod unix;
