//! The report: the JSON every run writes (stable field names, `version` 1), the claims check
//! computed from the run's own rows, and the terminal table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::driver::{Kind, Role};

/// The version of the JSON layout. Fields are only ever added within a version.
pub const VERSION: u32 = 1;

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
    pub skipped: Option<String>,
    /// Why the measurement failed, when it did (the run then exits non-zero).
    #[serde(default)]
    pub error: Option<String>,
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

/// The ipckit mechanisms built on shared memory.
pub const SHARED_MEMORY: &[&str] = &[
    "posix-shm-sem",
    "sysv-shm-sem",
    "shm-futex",
    "mmap-file-futex",
];
/// The ipckit mechanisms that copy through the kernel.
pub const KERNEL_COPY: &[&str] = &[
    "pipe",
    "fifo",
    "unix-stream",
    "unix-dgram",
    "unix-seqpacket",
    "tcp-loopback",
    "posix-mq",
    "sysv-mq",
];
const QUEUES: &[&str] = &["posix-mq", "sysv-mq"];

/// A figure of a row for which larger is better.
fn speed(run: &Run) -> Option<f64> {
    match run.kind {
        Kind::Throughput => run.bytes_per_s,
        Kind::Latency => run.rtt_ns.map(|r| 1.0 / r.p50.max(1) as f64),
    }
}

/// Per size, the best speed among `names` for `kind`.
fn best(runs: &[Run], names: &[&str], kind: Kind) -> BTreeMap<usize, f64> {
    let mut out = BTreeMap::new();
    for r in runs
        .iter()
        .filter(|r| r.kind == kind && r.measured() && names.contains(&r.mechanism.as_str()))
    {
        if let Some(v) = speed(r) {
            let e = out.entry(r.size).or_insert(v);
            *e = e.max(v);
        }
    }
    out
}

/// `winner / loser` at each size both have, and their geometric mean.
fn compare(
    runs: &[Run],
    winner: &[&str],
    loser: &[&str],
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
    vec![
        claim(
            "shared memory is 5-10x faster than pipes",
            "throughput (bytes/s) of the fastest ipckit shared-memory mechanism over pipe; holds when at least 5x",
            compare(runs, SHARED_MEMORY, &["pipe"], Throughput),
            |r| r >= 5.0,
        ),
        claim(
            "Unix domain sockets are 2-5x faster than TCP loopback",
            "throughput (bytes/s) of unix-stream over tcp-loopback; holds when at least 2x",
            compare(runs, &["unix-stream"], &["tcp-loopback"], Throughput),
            |r| r >= 2.0,
        ),
        claim(
            "Unix domain sockets have about 50% lower latency than TCP loopback",
            "median round trip of tcp-loopback over unix-stream (50% lower is 2x); holds between 1.5x and 2.5x",
            compare(runs, &["unix-stream"], &["tcp-loopback"], Latency),
            |r| (1.5..=2.5).contains(&r),
        ),
        claim(
            "message queues are slower than pipes",
            "throughput (bytes/s) of pipe over the faster of posix-mq and sysv-mq; holds when above 1x",
            compare(runs, &["pipe"], QUEUES, Throughput),
            |r| r > 1.0,
        ),
        claim(
            "shared memory is the fastest IPC",
            "throughput (bytes/s) of the fastest ipckit shared-memory mechanism over the fastest kernel-copy mechanism (pipes, FIFOs, sockets, queues); holds when above 1x",
            compare(runs, SHARED_MEMORY, KERNEL_COPY, Throughput),
            |r| r > 1.0,
        ),
    ]
}

/// Bytes as the report writes them: `64 B`, `4 KiB`, `1 MiB`.
pub fn size_label(size: usize) -> String {
    if size >= 1 << 20 && size % (1 << 20) == 0 {
        format!("{} MiB", size >> 20)
    } else if size >= 1 << 10 && size % (1 << 10) == 0 {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

/// Nanoseconds as `850 ns`, `12.3 µs`, `4.56 ms`.
pub fn ns_label(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1e9 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// A rate with an SI prefix: `1.23 M`, `456 k`.
pub fn rate_label(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
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
