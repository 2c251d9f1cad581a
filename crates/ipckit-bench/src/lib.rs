//! ipckit's measurement engine: every Linux IPC mechanism measured between two real processes,
//! side by side with raw reference rows of the same run.

pub mod control;
pub mod driver;
pub mod drivers;
pub mod error;
pub mod report;

pub use error::{Error, Result};
