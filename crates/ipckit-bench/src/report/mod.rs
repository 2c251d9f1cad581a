//! The report: the JSON every run writes (stable field names, `version` 1), the claims check
//! computed from the run's own rows, and the terminal table.
//!
//! [`Report`] is the one type every reader uses: `ipckit bench` writes it, `ipckit advise` and
//! the HTML read it back with [`Report::from_json`], which refuses a report of another
//! [`VERSION`] by name rather than misreading it.
//!
//! ```
//! use ipckit_bench::report::{ReadError, Report};
//!
//! let err = Report::from_json(r#"{"version": 99, "runs": []}"#).unwrap_err();
//! assert!(matches!(err, ReadError::Version(99)));
//! assert!(err.to_string().contains("this ipckit reads version 1"));
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::rows::Row;

pub mod kv;

/// The version of the JSON layout. Fields are only ever added within a version.
pub const VERSION: u32 = 1;

/// What a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Ping-pong round trips, one message each way.
    Latency,
    /// One-way streaming from the parent to the peer.
    Throughput,
}

/// What a row is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// An IPC mechanism of ipckit.
    Mechanism,
    /// A raw baseline the mechanisms are compared with.
    Reference,
    /// Another project's IPC, for comparison.
    Peer,
}

/// One run of `ipckit bench`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// [`VERSION`].
    pub version: u32,
    /// The tool that wrote it (`ipckit 0.1.0`).
    pub tool: String,
    /// `quick`, `full` or `custom`.
    pub profile: String,
    /// Recording time per row, in milliseconds (warm-up not counted).
    pub duration_ms: u64,
    /// Where it ran.
    pub host: Host,
    /// One entry per mechanism, kind and size.
    pub runs: Vec<Run>,
    /// The folk claims, checked against this run's rows.
    pub claims: Vec<Claim>,
    /// What ipckit's own code costs: a mechanism's median round trip over its raw reference's.
    #[serde(default)]
    pub overhead: Vec<Overhead>,
    /// The run was stopped (SIGINT, SIGTERM) before its last row.
    #[serde(default)]
    pub interrupted: bool,
    /// `ipckit bench kv`'s section: ipckit kv against redis-server (absent when not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv: Option<kv::KvSection>,
}

/// Why [`Report::from_json`] refused a text.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The text is not JSON at all.
    #[error("not JSON: {0}")]
    NotJson(serde_json::Error),
    /// JSON, but not a bench report (no `version` number at its top).
    #[error("not an ipckit bench report: no \"version\" number")]
    NotReport,
    /// A bench report of another layout version.
    #[error(
        "a bench report of version {0} (this ipckit reads version {VERSION}): run ipckit bench again"
    )]
    Version(u64),
    /// A report of this version with a field missing or of the wrong type.
    #[error("not an ipckit bench report of version {VERSION}: {0}")]
    Layout(serde_json::Error),
}

impl Report {
    /// Reads a report as `ipckit bench` writes it: first its `version` (a report of another
    /// version is [`ReadError::Version`], whatever else it holds), then every field.
    pub fn from_json(text: &str) -> Result<Report, ReadError> {
        /// What every version has: the version.
        #[derive(Deserialize)]
        struct Probe {
            version: Option<u64>,
        }
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(ReadError::NotJson)?;
        let version = serde_json::from_str::<Probe>(text)
            .ok()
            .and_then(|p| p.version)
            .ok_or(ReadError::NotReport)?;
        if version != u64::from(VERSION) {
            return Err(ReadError::Version(version));
        }
        serde_json::from_str(text).map_err(ReadError::Layout)
    }

    /// The report as `ipckit bench` writes it: indented JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report is plain data")
    }

    /// The rows that failed (a payload check, a peer that died): the run as a whole failed.
    pub fn failed(&self) -> Vec<&Run> {
        self.runs.iter().filter(|r| r.error.is_some()).collect()
    }
}

/// A mechanism's median round trip against a raw reference of the same run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Overhead {
    /// The ipckit mechanism.
    pub mechanism: String,
    /// The raw reference.
    pub reference: String,
    /// The mechanism's message size.
    pub size: usize,
    /// Mechanism p50 over reference p50 (1.0: no cost of its own).
    pub ratio: f64,
}

/// `pipe / ref-pipe` at each latency size both have, and `shm-futex / ref-futex` at
/// shm-futex's smallest latency size (ref-futex carries 8 bytes only).
pub fn overheads(runs: &[Run]) -> Vec<Overhead> {
    let p50 = |row: Row| -> Vec<(usize, u64)> {
        runs.iter()
            .filter(|r| r.mechanism == row && r.kind == Kind::Latency && r.measured())
            .filter_map(|r| r.rtt_ns.map(|t| (r.size, t.p50.max(1))))
            .collect()
    };
    let mut out = Vec::new();
    let refs = p50(Row::RefPipe);
    for (size, mine) in p50(Row::Pipe) {
        if let Some((_, theirs)) = refs.iter().find(|(s, _)| *s == size) {
            out.push(Overhead {
                mechanism: Row::Pipe.to_string(),
                reference: Row::RefPipe.to_string(),
                size,
                ratio: mine as f64 / *theirs as f64,
            });
        }
    }
    if let (Some((size, mine)), Some((_, theirs))) = (
        p50(Row::ShmFutex).first().copied(),
        p50(Row::RefFutex).first().copied(),
    ) {
        out.push(Overhead {
            mechanism: Row::ShmFutex.to_string(),
            reference: Row::RefFutex.to_string(),
            size,
            ratio: mine as f64 / theirs as f64,
        });
    }
    out
}

/// The machine the numbers belong to.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Host {
    /// CPUs this process may run on.
    pub cpus: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Whether the two processes were pinned to two different CPUs.
    pub pinned: bool,
    /// The CPUs used for the bench and its peer, when pinned.
    pub pinned_cpus: Option<[usize; 2]>,
}

/// Round-trip percentiles, nanoseconds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Rtt {
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p999: u64,
    /// Slowest round trip.
    pub max: u64,
}

/// One row: a mechanism, a kind of measurement and a message size.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Run {
    /// The driver's name.
    pub mechanism: String,
    /// Mechanism, reference or peer.
    pub role: Role,
    /// Latency (round trips) or throughput (one-way streaming).
    pub kind: Kind,
    /// Bytes per message.
    pub size: usize,
    /// Messages recorded (round trips for latency rows), warm-up not counted.
    pub messages: u64,
    /// Round-trip percentiles (latency rows).
    pub rtt_ns: Option<Rtt>,
    /// Messages per second (round trips per second for latency rows).
    pub msgs_per_s: Option<f64>,
    /// Payload bytes per second, one way.
    pub bytes_per_s: Option<f64>,
    /// CPU time of both processes (user + system) per message (per round trip for latency
    /// rows), nanoseconds.
    pub cpu_ns_per_msg: Option<f64>,
    /// Every message arrived whole, in order and unchanged.
    pub verified: bool,
    /// Why this row was not measured (a kernel limit, named with its value).
    #[serde(default)]
    pub skipped: Option<String>,
    /// Why the measurement failed, when it did (the run then exits non-zero).
    #[serde(default)]
    pub error: Option<String>,
    /// How many times the row was measured: the row is the median run by messages per second
    /// (3 for throughput rows, each a third of the row's time; 1 for latency rows).
    #[serde(default)]
    pub repeats: usize,
}

impl Run {
    /// A row that was not measured, and why.
    pub fn skipped(mechanism: &str, role: Role, kind: Kind, size: usize, why: String) -> Run {
        Run {
            mechanism: mechanism.to_string(),
            role,
            kind,
            size,
            messages: 0,
            rtt_ns: None,
            msgs_per_s: None,
            bytes_per_s: None,
            cpu_ns_per_msg: None,
            verified: false,
            skipped: Some(why),
            error: None,
            repeats: 0,
        }
    }

    /// Whether the row holds numbers.
    pub fn measured(&self) -> bool {
        self.skipped.is_none() && self.error.is_none()
    }
}

/// A folk claim and what this run says of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claim {
    /// The claim, as people say it.
    pub claim: String,
    /// The ratio this run measured (how many times faster the claimed winner was), when both
    /// sides were measured.
    pub measured_ratio: Option<f64>,
    /// Whether the claim holds on this host (`None`: not measured in this run).
    pub holds: Option<bool>,
    /// What was compared, and what "holds" means.
    pub basis: String,
    /// The ratio at each message size it was computed from.
    pub by_size: BTreeMap<usize, f64>,
}

/// A figure of a row for which larger is better.
fn speed(run: &Run) -> Option<f64> {
    match run.kind {
        Kind::Throughput => run.bytes_per_s,
        Kind::Latency => run.rtt_ns.map(|r| 1.0 / r.p50.max(1) as f64),
    }
}

/// Per size, the best speed among `names` for `kind`.
fn best(runs: &[Run], rows: &[Row], kind: Kind) -> BTreeMap<usize, f64> {
    let mut out = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == kind && r.measured() && r.verified)
        .filter(|r| rows.iter().any(|row| r.mechanism == *row))
    {
        // A zero (or broken) figure would make an infinite ratio: such a row says nothing.
        if let Some(v) = speed(r).filter(|v| v.is_finite() && *v > 0.0) {
            let e = out.entry(r.size).or_insert(v);
            *e = e.max(v);
        }
    }
    out
}

/// `winner / loser` at each size both have, and their geometric mean.
fn compare(
    runs: &[Run],
    winner: &[Row],
    loser: &[Row],
    kind: Kind,
) -> (Option<f64>, BTreeMap<usize, f64>) {
    let w = best(runs, winner, kind);
    let l = best(runs, loser, kind);
    let by_size: BTreeMap<usize, f64> = w
        .iter()
        .filter_map(|(size, wv)| l.get(size).map(|lv| (*size, wv / lv)))
        .collect();
    if by_size.is_empty() {
        return (None, by_size);
    }
    let mean = (by_size.values().map(|r| r.ln()).sum::<f64>() / by_size.len() as f64).exp();
    (Some(mean), by_size)
}

fn claim(
    text: &str,
    basis: &str,
    (ratio, by_size): (Option<f64>, BTreeMap<usize, f64>),
    holds: impl Fn(f64) -> bool,
) -> Claim {
    Claim {
        claim: text.to_string(),
        measured_ratio: ratio,
        holds: ratio.map(holds),
        basis: basis.to_string(),
        by_size,
    }
}

/// Checks the folk claims against `runs`. Each ratio is the geometric mean over the message
/// sizes both sides were measured at.
pub fn claims(runs: &[Run]) -> Vec<Claim> {
    use Kind::{Latency, Throughput};
    use Row::{
        Channel, ChannelBlocking, ChannelSpin, Iceoryx2, Pipe, RefFutex, RefMemcpy, RefSpin,
        TcpLoopback, UnixStream,
    };
    vec![
        claim(
            "shared memory is 5-10x faster than pipes",
            "throughput (bytes/s) of the fastest ipckit shared-memory mechanism over pipe; holds when at least 5x",
            compare(runs, Row::SHARED_MEMORY, &[Pipe], Throughput),
            |r| r >= 5.0,
        ),
        claim(
            "Unix domain sockets are 2-5x faster than TCP loopback",
            "throughput (bytes/s) of unix-stream over tcp-loopback; holds when at least 2x",
            compare(runs, &[UnixStream], &[TcpLoopback], Throughput),
            |r| r >= 2.0,
        ),
        claim(
            "Unix domain sockets have about 50% lower latency than TCP loopback",
            "median round trip of tcp-loopback over unix-stream (50% lower is 2x); holds between 1.5x and 2.5x",
            compare(runs, &[UnixStream], &[TcpLoopback], Latency),
            |r| (1.5..=2.5).contains(&r),
        ),
        claim(
            "message queues are slower than pipes",
            "throughput (bytes/s) of pipe over the faster of posix-mq and sysv-mq; holds when above 1x",
            compare(runs, &[Pipe], Row::QUEUES, Throughput),
            |r| r > 1.0,
        ),
        claim(
            "shared memory is the fastest IPC",
            "throughput (bytes/s) of the fastest ipckit shared-memory mechanism over the fastest kernel-copy mechanism (pipes, FIFOs, sockets, queues); holds when above 1x",
            compare(runs, Row::SHARED_MEMORY, Row::KERNEL_COPY, Throughput),
            |r| r > 1.0,
        ),
        // ipckit's own targets for its channel (issue #5): the same check, on its own rows.
        claim(
            "target: channel-spin round trip within 1.3x of the hardware's (ref-spin)",
            "median round trip of channel-spin at 64 B over that of ref-spin (8 B, one cache line each way); holds at 1.3x or less",
            figure_ratio(
                runs,
                (ChannelSpin, Latency, 64),
                (RefSpin, Latency, 8),
                Figure::Rtt,
            ),
            |r| r <= 1.3,
        ),
        claim(
            "target: channel (adaptive) round trip at most 0.8x iceoryx2's",
            "median round trip of channel over that of iceoryx2, both at 64 B; holds at 0.8x or less",
            figure_ratio(
                runs,
                (Channel, Latency, 64),
                (Iceoryx2, Latency, 64),
                Figure::Rtt,
            ),
            |r| r <= 0.8,
        ),
        claim(
            "target: channel-blocking round trip within 1.2x of a raw futex (ref-futex)",
            "median round trip of channel-blocking at 64 B over that of ref-futex (8 B); holds at 1.2x or less",
            figure_ratio(
                runs,
                (ChannelBlocking, Latency, 64),
                (RefFutex, Latency, 8),
                Figure::Rtt,
            ),
            |r| r <= 1.2,
        ),
        claim(
            "target: channel-blocking CPU per message within 1.2x of a raw futex (ref-futex)",
            "CPU time per round trip (both processes) of channel-blocking at 64 B over that of ref-futex (8 B); holds at 1.2x or less",
            figure_ratio(
                runs,
                (ChannelBlocking, Latency, 64),
                (RefFutex, Latency, 8),
                Figure::Cpu,
            ),
            |r| r <= 1.2,
        ),
        claim(
            "target: channel throughput at 1 MiB at least 0.7x of memcpy",
            "bytes/s of channel (adaptive) at 1 MiB over ref-memcpy's at 1 MiB (one core copying); holds at 0.7x or more",
            figure_ratio(
                runs,
                (Channel, Throughput, 1 << 20),
                (RefMemcpy, Throughput, 1 << 20),
                Figure::Bandwidth,
            ),
            |r| r >= 0.7,
        ),
    ]
}

/// Which figure of two rows [`figure_ratio`] compares.
enum Figure {
    /// Median round trip.
    Rtt,
    /// CPU time per message.
    Cpu,
    /// Bytes per second.
    Bandwidth,
}

/// `a`'s figure over `b`'s, each row named by (mechanism, kind, size): for comparing a row
/// with a fixed-size reference, which the by-size [`compare`] cannot.
fn figure_ratio(
    runs: &[Run],
    a: (Row, Kind, usize),
    b: (Row, Kind, usize),
    figure: Figure,
) -> (Option<f64>, BTreeMap<usize, f64>) {
    let value = |(row, kind, size): (Row, Kind, usize)| {
        let r = runs.iter().find(|r| {
            r.mechanism == row && r.kind == kind && r.size == size && r.measured() && r.verified
        })?;
        let v = match figure {
            Figure::Rtt => r.rtt_ns.map(|t| t.p50 as f64),
            Figure::Cpu => r.cpu_ns_per_msg,
            Figure::Bandwidth => r.bytes_per_s,
        }?;
        (v.is_finite() && v > 0.0).then_some(v)
    };
    match (value(a), value(b)) {
        (Some(x), Some(y)) => (Some(x / y), BTreeMap::from([(a.2, x / y)])),
        _ => (None, BTreeMap::new()),
    }
}

/// Bytes as the report writes them: `64 B`, `4 KiB`, `1 MiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// Nanoseconds as `850 ns`, `12.3 µs`, `4.56 ms`.
pub fn ns_label(ns: f64) -> String {
    if ns < 999.5 {
        format!("{ns:.0} ns")
    } else if ns < 999_950.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 999_995_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A rate with an SI prefix: `1.23 M`, `456 k`.
pub fn rate_label(v: f64) -> String {
    if v >= 999_995_000.0 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 999_950.0 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 999.5 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

/// Bytes per second in binary units: `1.2 GiB/s`.
pub fn bandwidth_label(v: f64) -> String {
    if v >= (1u64 << 30) as f64 {
        format!("{:.2} GiB/s", v / (1u64 << 30) as f64)
    } else if v >= (1u64 << 20) as f64 {
        format!("{:.1} MiB/s", v / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KiB/s", v / 1024.0)
    }
}

/// The terminal report: a latency table, a throughput table, the claims and the overheads.
pub fn table(report: &Report) -> String {
    use comfy_table::{CellAlignment, Table, presets::UTF8_BORDERS_ONLY};
    let note = |r: &Run| match (&r.skipped, &r.error) {
        (Some(why), _) => format!("skipped: {why}"),
        (_, Some(e)) => format!("FAILED: {e}"),
        _ if r.role != Role::Mechanism => format!("{:?}", r.role).to_lowercase(),
        _ => String::new(),
    };
    let mut out = String::new();
    let h = &report.host;
    out += &format!(
        "{} on {} ({} CPUs, Linux {}), {}; {} ms per row, every message checked\n",
        report.tool,
        h.cpu_model,
        h.cpus,
        h.kernel,
        match h.pinned_cpus {
            Some([a, b]) => format!("pinned to CPUs {a} and {b}"),
            None => "not pinned".into(),
        },
        report.duration_ms
    );
    let mut lat = Table::new();
    lat.load_style(UTF8_BORDERS_ONLY).set_header(vec![
        "latency (RTT)",
        "size",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "CPU/RTT",
        "",
    ]);
    let mut thr = Table::new();
    thr.load_style(UTF8_BORDERS_ONLY).set_header(vec![
        "throughput",
        "size",
        "msgs/s",
        "bandwidth",
        "CPU/msg",
        "",
    ]);
    let dash = || "-".to_string();
    for r in &report.runs {
        let cpu = r.cpu_ns_per_msg.map_or_else(dash, ns_label);
        match r.kind {
            Kind::Latency => {
                let t = r.rtt_ns;
                let q = |f: fn(&Rtt) -> u64| t.map_or_else(dash, |t| ns_label(f(&t) as f64));
                lat.add_row(vec![
                    r.mechanism.clone(),
                    size_label(r.size),
                    q(|t| t.p50),
                    q(|t| t.p90),
                    q(|t| t.p99),
                    q(|t| t.p999),
                    q(|t| t.max),
                    cpu,
                    note(r),
                ]);
            }
            Kind::Throughput => {
                thr.add_row(vec![
                    r.mechanism.clone(),
                    size_label(r.size),
                    r.msgs_per_s.map_or_else(dash, rate_label),
                    r.bytes_per_s.map_or_else(dash, bandwidth_label),
                    cpu,
                    note(r),
                ]);
            }
        }
    }
    for t in [&mut lat, &mut thr] {
        for i in 1..t.column_count().saturating_sub(1) {
            if let Some(c) = t.column_mut(i) {
                c.set_cell_alignment(CellAlignment::Right);
            }
        }
        if t.row_count() > 0 {
            out += &format!("{t}\n");
        }
    }
    if !report.claims.is_empty() {
        out += "claims, checked against this run:\n";
    }
    for c in &report.claims {
        let verdict = match c.holds {
            Some(true) => "holds",
            Some(false) => "does not hold",
            None => "not measured",
        };
        let ratio = c
            .measured_ratio
            .map_or_else(String::new, |r| format!(" (measured {r:.2}x)"));
        out += &format!("  {verdict:>13}: {}{ratio}\n", c.claim);
    }
    for o in &report.overhead {
        out += &format!(
            "  library overhead: {} / {} at {} = {:.2}x (median RTT)\n",
            o.mechanism,
            o.reference,
            size_label(o.size),
            o.ratio
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mechanism: Row, kind: Kind, size: usize, bytes_per_s: f64, p50: u64) -> Run {
        let mut r = Run::skipped(
            mechanism.as_str(),
            Role::Mechanism,
            kind,
            size,
            String::new(),
        );
        r.skipped = None;
        r.verified = true;
        r.bytes_per_s = Some(bytes_per_s);
        r.rtt_ns = Some(Rtt {
            p50,
            p90: p50,
            p99: p50,
            p999: p50,
            max: p50,
        });
        r
    }

    #[test]
    fn channel_targets_compare_the_named_rows_across_sizes() {
        use Kind::{Latency, Throughput};
        let mut blocking = row(Row::ChannelBlocking, Latency, 64, 0.0, 1100);
        blocking.cpu_ns_per_msg = Some(1300.0);
        let mut futex = row(Row::RefFutex, Latency, 8, 0.0, 1000);
        futex.cpu_ns_per_msg = Some(1000.0);
        let runs = vec![
            row(Row::ChannelSpin, Latency, 64, 0.0, 260),
            row(Row::RefSpin, Latency, 8, 0.0, 200),
            row(Row::Channel, Latency, 64, 0.0, 300),
            row(Row::Iceoryx2, Latency, 64, 0.0, 1000),
            blocking,
            futex,
            row(Row::Channel, Throughput, 1 << 20, 60.0, 0),
            row(Row::RefMemcpy, Throughput, 1 << 20, 100.0, 0),
        ];
        let c = claims(&runs);
        let target = |what: &str| {
            c.iter()
                .find(|c| c.claim.starts_with("target:") && c.claim.contains(what))
                .unwrap()
        };
        let spin = target(Row::ChannelSpin.as_str());
        assert!((spin.measured_ratio.unwrap() - 1.3).abs() < 1e-9);
        assert_eq!(spin.holds, Some(true), "1.3x is within 1.3x");
        assert_eq!(target(Row::Iceoryx2.as_str()).holds, Some(true));
        assert!((target("round trip within 1.2x").measured_ratio.unwrap() - 1.1).abs() < 1e-9);
        let cpu = target("CPU");
        assert!((cpu.measured_ratio.unwrap() - 1.3).abs() < 1e-9);
        assert_eq!(cpu.holds, Some(false));
        let thr = target("1 MiB");
        assert!((thr.measured_ratio.unwrap() - 0.6).abs() < 1e-9);
        assert_eq!(thr.holds, Some(false));
        // Without its rows a target is not measured, rather than failed.
        let none = claims(&runs[..2]);
        assert!(
            none.iter()
                .filter(|c| c.claim.contains(Row::Iceoryx2.as_str()))
                .all(|c| c.holds.is_none())
        );
    }

    #[test]
    fn claims_are_geometric_means_of_same_size_ratios() {
        use Kind::{Latency, Throughput};
        let runs = vec![
            row(Row::ShmFutex, Throughput, 64, 800.0, 0),
            row(Row::ShmFutex, Throughput, 4096, 200.0, 0),
            row(Row::Pipe, Throughput, 64, 100.0, 0),
            row(Row::Pipe, Throughput, 4096, 100.0, 0),
            row(Row::Pipe, Throughput, 1 << 20, 100.0, 0),
            row(Row::UnixStream, Latency, 64, 0.0, 1000),
            row(Row::TcpLoopback, Latency, 64, 0.0, 2000),
        ];
        let c = claims(&runs);
        // sqrt(8 * 2) = 4: under the claimed 5x.
        assert!((c[0].measured_ratio.unwrap() - 4.0).abs() < 1e-9);
        assert_eq!(c[0].holds, Some(false));
        assert_eq!(c[0].by_size.len(), 2, "1 MiB has no shared-memory row");
        assert_eq!(c[1].holds, None, "no throughput rows for sockets");
        assert!((c[2].measured_ratio.unwrap() - 2.0).abs() < 1e-9);
        assert_eq!(c[2].holds, Some(true));
    }

    #[test]
    fn zero_and_unverified_rows_make_no_ratio() {
        let mut bad = row(Row::Pipe, Kind::Throughput, 64, 100.0, 0);
        bad.verified = false;
        let runs = vec![
            row(Row::ShmFutex, Kind::Throughput, 64, 800.0, 0),
            row(Row::Pipe, Kind::Throughput, 64, 0.0, 0),
            bad,
        ];
        let c = claims(&runs);
        assert_eq!(c[0].measured_ratio, None);
        assert_eq!(c[0].holds, None);
        let json = serde_json::to_string(&c).unwrap();
        let back: Vec<Claim> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.len(), c.len());
    }

    #[test]
    fn the_reader_knows_a_report_from_other_json() {
        for (text, what) in [
            ("hello", "not JSON"),
            ("[1, 2]", "no \"version\""),
            (r#"{"runs": []}"#, "no \"version\""),
            (r#"{"version": "1"}"#, "no \"version\""),
            (
                r#"{"version": 2, "runs": 3}"#,
                "of version 2 (this ipckit reads version 1)",
            ),
            (r#"{"version": 1, "runs": []}"#, "missing field `tool`"),
        ] {
            let e = Report::from_json(text).unwrap_err().to_string();
            assert!(e.contains(what), "{text}: {e}");
        }
        let report = Report {
            version: VERSION,
            tool: "ipckit 0.1.0".into(),
            profile: "quick".into(),
            duration_ms: 1,
            host: Host {
                cpus: 1,
                kernel: "6.1".into(),
                cpu_model: "x".into(),
                pinned: false,
                pinned_cpus: None,
            },
            runs: vec![row(Row::Pipe, Kind::Latency, 64, 0.0, 10)],
            claims: Vec::new(),
            overhead: Vec::new(),
            interrupted: false,
            kv: None,
        };
        let back = Report::from_json(&report.to_json()).unwrap();
        assert_eq!(back.runs[0].mechanism, Row::Pipe);
        assert_eq!(back.runs[0].rtt_ns, report.runs[0].rtt_ns);
    }

    #[test]
    fn labels_do_not_round_up_into_the_next_unit() {
        assert_eq!(ns_label(999.7), "1.0 µs");
        assert_eq!(ns_label(999_960.0), "1.00 ms");
        assert_eq!(rate_label(999_960.0), "1.00 M");
        assert_eq!(size_label(4096), "4 KiB");
        assert_eq!(size_label(1000), "1000 B");
    }
}
