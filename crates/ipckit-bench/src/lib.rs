//! ipckit's measurement engine: every Linux IPC mechanism measured between two real processes,
//! side by side with raw reference rows of the same run.
//!
//! A run is a list of rows (mechanism × latency or throughput × message size). Each row starts
//! a fresh peer process (the same program, which calls [`runner::peer_main`] when
//! [`runner::is_peer`]), sets up the mechanism's two ends through its [`driver::Driver`], warms
//! up, then records: round trips into an HdrHistogram for latency, one-way streaming for
//! throughput, and the CPU time of both processes. Every message is checked on arrival
//! ([`payload`]); a row whose check fails, or whose peer dies, fails the run.

pub mod config;
pub mod control;
pub mod driver;
pub mod drivers;
pub mod error;
pub mod html;
pub mod payload;
pub mod report;
pub mod runner;
pub mod system;

pub use config::{Config, PeerCommand};
pub use error::{Error, Result};
pub use report::Report;
pub use runner::{is_peer, peer_main, run};
