//! What a run measures: the profile's sizes and durations, `--only`, `--sizes`, pinning, and how
//! to start the peer process.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::rows::Row;

/// How the bench starts its peer: normally itself again (`ipckit __bench-peer`); a test binary
/// starts itself with the arguments that run its peer test.
#[derive(Clone, Debug)]
pub struct PeerCommand {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
}

/// One run's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// `quick`, `full` or `custom`, as the report names it.
    pub profile: String,
    /// Message sizes of the latency rows.
    pub latency_sizes: Vec<usize>,
    /// Message sizes of the throughput rows.
    pub throughput_sizes: Vec<usize>,
    /// Recording time per row.
    pub duration: Duration,
    /// Warm-up time per row, before recording.
    pub warmup: Duration,
    /// Pin the bench and its peer to two different CPUs (when there are two).
    pub pin: bool,
    /// The rows to measure (empty: all of [`Row::ALL`]).
    pub only: Vec<Row>,
    /// How to start the peer.
    pub peer: PeerCommand,
    /// How long past warm-up and recording a row may take before its peer is killed.
    pub grace: Duration,
    /// Set (from a signal handler's thread, say) to stop the run: the row in progress is
    /// abandoned, its peer killed, and no further row starts.
    pub interrupt: Arc<AtomicBool>,
}

const KIB: usize = 1 << 10;
const MIB: usize = 1 << 20;

impl Config {
    /// The default: latency at 64 B and 4 KiB, throughput at 64 B, 4 KiB, 64 KiB and 1 MiB,
    /// 0.4 s per row after 0.1 s of warm-up (a throughput row: three runs of a third of that,
    /// each warmed up). About a minute on two cores.
    pub fn quick(peer: PeerCommand) -> Config {
        Config {
            profile: "quick".into(),
            latency_sizes: vec![64, 4 * KIB],
            throughput_sizes: vec![64, 4 * KIB, 64 * KIB, MIB],
            duration: Duration::from_millis(400),
            warmup: Duration::from_millis(100),
            pin: true,
            only: Vec::new(),
            peer,
            grace: Duration::from_secs(20),
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Every size from 64 B to 1 MiB by fours, 2 s per row after 0.5 s of warm-up.
    pub fn full(peer: PeerCommand) -> Config {
        let sizes = vec![64, 256, KIB, 4 * KIB, 16 * KIB, 64 * KIB, 256 * KIB, MIB];
        Config {
            profile: "full".into(),
            latency_sizes: sizes[..6].to_vec(),
            throughput_sizes: sizes,
            duration: Duration::from_secs(2),
            warmup: Duration::from_millis(500),
            ..Config::quick(peer)
        }
    }
}

/// The largest message `--sizes` takes: 64 MiB.
pub const MAX_SIZE: usize = 64 * MIB;

/// Parses `64,4k,1m` (also `4KiB`, `1MB`: binary units either way) into byte counts.
pub fn parse_sizes(text: &str) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim) {
        let lower = part.to_ascii_lowercase();
        let digits = lower.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &lower[digits.len()..];
        let scale = match unit {
            "" | "b" => 1,
            "k" | "kb" | "kib" => KIB,
            "m" | "mb" | "mib" => MIB,
            _ => return Err(bad_size(part, "the unit is not one of B, k, m")),
        };
        let n: usize = digits
            .trim()
            .parse()
            .map_err(|_| bad_size(part, "not a number"))?;
        let size = n
            .checked_mul(scale)
            .filter(|s| *s <= MAX_SIZE)
            .ok_or_else(|| bad_size(part, "over 64 MiB"))?;
        if size < crate::payload::MIN_SIZE {
            return Err(bad_size(
                part,
                "under 8 bytes: a message holds its sequence number",
            ));
        }
        if !out.contains(&size) {
            out.push(size);
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn bad_size(part: &str, why: &str) -> Error {
    Error::Usage(format!(
        "invalid size '{part}' in --sizes: {why} (example: --sizes 64,4k,1m)"
    ))
}

/// Checks `--only` names against the rows there are ([`Row::ALL`]: not the test rows).
pub fn parse_only(text: &str) -> Result<Vec<Row>> {
    let valid = Row::ALL
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.parse::<Row>() {
            Ok(row) if Row::ALL.contains(&row) => out.push(row),
            _ => {
                return Err(Error::Usage(format!(
                    "unknown mechanism '{name}' in --only; valid names: {valid}"
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(Error::Usage(format!(
            "--only needs at least one name; valid names: {valid}"
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units_and_refuse_nonsense() {
        assert_eq!(parse_sizes("64,4k,1m").unwrap(), vec![64, 4096, 1 << 20]);
        assert_eq!(parse_sizes("4KiB, 4096,1MB").unwrap(), vec![4096, 1 << 20]);
        for bad in ["", "x", "4q", "-1", "4", "65m", "99999999999999999999"] {
            let e = parse_sizes(bad).unwrap_err().to_string();
            assert!(e.contains("--sizes"), "{bad}: {e}");
        }
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let (pipe, shm) = (Row::Pipe.as_str(), Row::ShmFutex.as_str());
        assert_eq!(
            parse_only(&format!("{pipe},{shm}")).unwrap(),
            vec![Row::Pipe, Row::ShmFutex]
        );
        let e = parse_only(&format!("{pipe},carrier-pigeon"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("carrier-pigeon")
                && e.contains(Row::UnixStream.as_str())
                && e.contains(Row::RefMemcpy.as_str())
        );
        assert!(
            parse_only(Row::TestCorrupt.as_str()).is_err(),
            "test drivers are not for users"
        );
    }
}
