//! Everything the CLI prints for a program to read: one typed struct per JSON shape, a file
//! per command, and how a received message is printed.
//!
//! Field names are the interface: `ls --json`, `gc --json`, `limits --json`, `lab --json`,
//! `sem value --json` and `recv --json` keep them. Every struct also derives `Deserialize`,
//! so a test (or a program in Rust) reads the output back into the same type.

pub mod gc;
pub mod lab;
pub mod limits;
pub mod ls;
pub mod message;
pub mod sem;

use std::io::Write;

use serde::Serialize;

pub use message::{Peer, emit};

/// Writes `value` as pretty JSON and a newline, as `ls`, `gc`, `limits` and `lab` print it.
pub fn write_pretty(out: &mut impl Write, value: &impl Serialize) -> anyhow::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}
