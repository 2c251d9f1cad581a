//! Byte streams: anonymous pipes and FIFOs (named pipes).

pub mod fifo;
pub mod pipe;
