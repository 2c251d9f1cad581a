//! ipckit's measurement engine: every Linux IPC mechanism measured between two real processes,
//! side by side with raw reference rows of the same run.
//!
//! A run is a list of rows (mechanism × latency or throughput × message size). Each row starts
//! a fresh peer process (the same program, which calls [`runner::peer_main`] when
//! [`runner::is_peer`]), sets up the mechanism's two ends through its [`driver::Driver`], warms
//! up, then records: round trips into an HdrHistogram for latency, one-way streaming for
//! throughput, and the CPU time of both processes. Every message is checked on arrival
//! ([`payload`]); a row whose check fails, or whose peer dies, fails the run.
//!
//! What a run produces is a [`report::Report`], read back with [`report::Report::from_json`];
//! its rows are named by [`rows::Row`]. Those two modules and [`html`] are all a reader needs:
//! without the default `engine` feature the crate is only them, and depends on neither
//! `ipckit` nor iceoryx2 (`ipckit-advise` reads reports that way).

// Without the engine, the links above to its modules have nothing to point at.
#![cfg_attr(not(feature = "engine"), allow(rustdoc::broken_intra_doc_links))]

#[cfg(feature = "engine")]
pub mod config;
#[cfg(feature = "engine")]
pub mod control;
#[cfg(feature = "engine")]
pub mod driver;
#[cfg(feature = "engine")]
pub mod drivers;
#[cfg(feature = "engine")]
pub mod error;
pub mod html;
#[cfg(feature = "engine")]
pub mod kv;
#[cfg(feature = "engine")]
pub mod payload;
pub mod report;
pub mod rows;
#[cfg(feature = "engine")]
pub mod runner;
#[cfg(feature = "engine")]
pub mod system;

#[cfg(feature = "engine")]
pub use config::{Config, PeerCommand};
#[cfg(feature = "engine")]
pub use error::{Error, Result};
pub use report::Report;
pub use rows::Row;
#[cfg(feature = "engine")]
pub use runner::{is_peer, peer_main, run};
