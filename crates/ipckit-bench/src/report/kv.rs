//! The kv section of a report: `ipckit bench kv`'s figures for `ipckit kv serve` against
//! `redis-server`, measured by the same redis-benchmark on identical Unix sockets in one run,
//! and the shared-memory read path against a GET over the socket.
//!
//! Every figure that decides something is a ratio of two rows of the same run (medians of
//! the rounds): [`targets`] computes them.
//!
//! ```
//! use ipckit_bench::report::kv::{KvRun, KvSection, targets};
//! let run = |server: &str, rps: f64| KvRun {
//!     server: server.into(),
//!     persistence: "off".into(),
//!     pipeline: 1,
//!     test: "SET".into(),
//!     rps,
//!     p50_ms: 0.2,
//!     p99_ms: 0.5,
//!     rounds: vec![rps],
//!     server_cpu_us_per_req: None,
//!     skipped: None,
//!     error: None,
//! };
//! let t = targets(&[run("ipckit-kv", 120_000.0), run("redis-server", 100_000.0)], None);
//! let set = t.iter().find(|t| t.target.starts_with("SET") && t.target.contains("-P 1")).unwrap();
//! assert_eq!(set.holds, Some(true));
//! assert!((set.ratio.unwrap() - 1.2).abs() < 1e-9);
//! ```

use serde::{Deserialize, Serialize};

/// The server under test: ours.
pub const IPCKIT: &str = "ipckit-kv";
/// The server people would pick instead.
pub const REDIS: &str = "redis-server";

/// What `ipckit bench kv` measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KvSection {
    /// redis-benchmark's `-c`: clients at once.
    pub clients: u32,
    /// redis-benchmark's `-n` at `-P 1` and at `-P 16`.
    pub requests: [u64; 2],
    /// How many times each row was measured (a fresh server each time, the two servers in
    /// alternating order): a row's figures are the round with the median requests/s.
    pub rounds: usize,
    /// The two servers: their versions, or why one was not run.
    pub servers: Vec<KvServer>,
    /// One row per server, persistence, pipeline depth and command.
    pub runs: Vec<KvRun>,
    /// The shared-memory GET against a GET over the socket.
    pub shm: Option<KvShm>,
    /// The issue's targets, each a ratio of this run's rows.
    pub targets: Vec<KvTarget>,
    /// The filesystem both servers' logs were on (`ext4`, `tmpfs`...): on tmpfs an fsync
    /// costs nothing, so the `everysec` rows measure no disk.
    #[serde(default)]
    pub log_filesystem: Option<String>,
}

/// A server and its version (`redis-server --version`), or why it was not run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvServer {
    /// [`IPCKIT`] or [`REDIS`].
    pub name: String,
    /// Its version line.
    pub version: Option<String>,
    /// Why it was not measured (not installed).
    pub skipped: Option<String>,
}

/// One redis-benchmark test against one server.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvRun {
    /// [`IPCKIT`] or [`REDIS`].
    pub server: String,
    /// `off`, or the append-only log's fsync policy (`everysec`).
    pub persistence: String,
    /// redis-benchmark's `-P`.
    pub pipeline: u32,
    /// The test as redis-benchmark names it (`SET`, `MSET (10 keys)`).
    pub test: String,
    /// Requests per second, of the median round.
    pub rps: f64,
    /// Latency percentiles of that round, milliseconds (redis-benchmark's, per request).
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Requests per second of every round, in the order run.
    pub rounds: Vec<f64>,
    /// The server's CPU time (user + system) per request in that round, microseconds: what
    /// a busy poll costs shows here.
    #[serde(default)]
    pub server_cpu_us_per_req: Option<f64>,
    /// Why it was not measured.
    #[serde(default)]
    pub skipped: Option<String>,
    /// Why the measurement failed (an error reply, a server that died): the run fails.
    #[serde(default)]
    pub error: Option<String>,
}

impl KvRun {
    /// Whether it holds figures.
    pub fn measured(&self) -> bool {
        self.skipped.is_none() && self.error.is_none()
    }
}

/// A GET through the shared-memory mirror against a GET over the Unix socket, one client,
/// the same key and value.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvShm {
    /// Bytes of the value read.
    pub value_size: usize,
    /// Median time of one GET from shared memory, nanoseconds (timed in batches, so the
    /// clock's own cost is not counted).
    pub shm_get_p50_ns: f64,
    /// GETs per second from one reader.
    pub shm_gets_per_s: f64,
    /// Median round trip of one GET over the socket (redis protocol, one client), ns.
    pub socket_get_p50_ns: f64,
    /// GETs per second over the socket, one client, one at a time.
    pub socket_gets_per_s: f64,
}

/// One target of the issue and what this run says of it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KvTarget {
    /// The target, as the issue states it.
    pub target: String,
    /// The measured ratio.
    pub ratio: Option<f64>,
    /// Whether it is met (`None`: a side was not measured).
    pub holds: Option<bool>,
    /// What the ratio compares.
    pub basis: String,
}

/// The issue's targets: SET and GET requests/s of ipckit kv at least 1.0x redis-server's at
/// `-P 1` and `-P 16` (persistence off), and a shared-memory GET's p50 at most 1/100 of a
/// socket GET's.
pub fn targets(runs: &[KvRun], shm: Option<&KvShm>) -> Vec<KvTarget> {
    let rps = |server: &str, test: &str, p: u32| {
        runs.iter()
            .find(|r| {
                r.server == server
                    && r.test == test
                    && r.pipeline == p
                    && r.persistence == "off"
                    && r.measured()
            })
            .map(|r| r.rps)
            .filter(|v| v.is_finite() && *v > 0.0)
    };
    let mut out = Vec::new();
    for test in ["SET", "GET"] {
        for p in [1, 16] {
            let ratio = rps(IPCKIT, test, p)
                .zip(rps(REDIS, test, p))
                .map(|(a, b)| a / b);
            out.push(KvTarget {
                target: format!("{test} requests/s at -P {p}: at least 1.0x redis-server"),
                ratio,
                holds: ratio.map(|r| r >= 1.0),
                basis: format!(
                    "ipckit-kv over redis-server requests/s, redis-benchmark -t {} -P {p}, \
                     persistence off, median round",
                    test.to_lowercase()
                ),
            });
        }
    }
    let ratio = shm
        .filter(|s| s.shm_get_p50_ns > 0.0 && s.socket_get_p50_ns > 0.0)
        .map(|s| s.socket_get_p50_ns / s.shm_get_p50_ns);
    out.push(KvTarget {
        target: "a shared-memory GET's p50 at most 1/100 of a socket GET's".into(),
        ratio,
        holds: ratio.map(|r| r >= 100.0),
        basis: "socket GET p50 over shared-memory GET p50 (at least 100 meets it)".into(),
    });
    out
}

/// One line of the comparison: a test at one persistence and `-P`, with each server's row.
pub struct Pair<'a> {
    /// The first row of the line (it names the test, persistence and `-P`).
    pub row: &'a KvRun,
    /// ipckit kv's row, if there is one.
    pub ours: Option<&'a KvRun>,
    /// redis-server's row, if there is one.
    pub theirs: Option<&'a KvRun>,
}

impl Pair<'_> {
    /// ipckit kv's requests/s over redis-server's, when both were measured.
    pub fn ratio(&self) -> Option<f64> {
        match (self.ours, self.theirs) {
            (Some(a), Some(b)) if a.measured() && b.measured() && b.rps > 0.0 => {
                Some(a.rps / b.rps)
            }
            _ => None,
        }
    }
}

/// The lines of the comparison, each test, persistence and `-P` once, in the order run
/// (what the terminal table and the HTML both show).
pub fn pairs(kv: &KvSection) -> Vec<Pair<'_>> {
    let find = |server: &str, r: &KvRun| {
        kv.runs.iter().find(|o| {
            o.server == server
                && o.test == r.test
                && o.pipeline == r.pipeline
                && o.persistence == r.persistence
        })
    };
    let mut out: Vec<Pair<'_>> = Vec::new();
    for r in &kv.runs {
        let same = |p: &Pair<'_>| {
            (
                p.row.test.as_str(),
                p.row.persistence.as_str(),
                p.row.pipeline,
            ) == (r.test.as_str(), r.persistence.as_str(), r.pipeline)
        };
        if !out.iter().any(same) {
            out.push(Pair {
                row: r,
                ours: find(IPCKIT, r),
                theirs: find(REDIS, r),
            });
        }
    }
    out
}

/// A row's server CPU per request, `-` when not measured.
pub fn cpu_label(r: Option<&KvRun>) -> String {
    r.and_then(|r| r.server_cpu_us_per_req)
        .map(|c| format!("{c:.2}"))
        .unwrap_or_else(|| "-".into())
}

/// The section as the terminal shows it.
pub fn table(kv: &KvSection) -> String {
    use comfy_table::{CellAlignment, Table, presets::UTF8_BORDERS_ONLY};
    let mut out = format!(
        "kv: redis-benchmark -c {} (-n {} at -P 1, {} at -P 16), {} rounds, on identical Unix sockets\n",
        kv.clients, kv.requests[0], kv.requests[1], kv.rounds
    );
    if let Some(fs) = &kv.log_filesystem {
        out += &format!("  logs (everysec rows) on {fs}\n");
    }
    for s in &kv.servers {
        match (&s.version, &s.skipped) {
            (_, Some(why)) => out += &format!("  {}: skipped: {why}\n", s.name),
            (Some(v), None) => out += &format!("  {}: {v}\n", s.name),
            (None, None) => {}
        }
    }
    let mut t = Table::new();
    t.load_style(UTF8_BORDERS_ONLY).set_header(vec![
        "test",
        "persistence",
        "-P",
        "ipckit-kv req/s",
        "redis req/s",
        "ratio",
        "ipckit p50/p99 ms",
        "redis p50/p99 ms",
        "server CPU us/req",
    ]);
    let cell = |r: Option<&KvRun>| match r {
        Some(r) if r.measured() => (
            format!("{:.0}", r.rps),
            format!("{:.3}/{:.3}", r.p50_ms, r.p99_ms),
        ),
        Some(r) => {
            let why = r.error.as_deref().or(r.skipped.as_deref()).unwrap_or("");
            (why.chars().take(40).collect(), String::new())
        }
        None => ("-".into(), String::new()),
    };
    for pair in pairs(kv) {
        let r = pair.row;
        let ratio = pair.ratio().map(|q| format!("{q:.2}x")).unwrap_or_default();
        let (a, al) = cell(pair.ours);
        let (b, bl) = cell(pair.theirs);
        t.add_row(vec![
            r.test.clone(),
            r.persistence.clone(),
            r.pipeline.to_string(),
            a,
            b,
            ratio,
            al,
            bl,
            format!("{} / {}", cpu_label(pair.ours), cpu_label(pair.theirs)),
        ]);
    }
    for i in 2..6 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    out += &format!("{t}\n");
    if let Some(s) = &kv.shm {
        out += &format!(
            "shm GET ({} B): p50 {:.0} ns, {:.2}M GETs/s; socket GET: p50 {:.1} us, {:.0} GETs/s\n",
            s.value_size,
            s.shm_get_p50_ns,
            s.shm_gets_per_s / 1e6,
            s.socket_get_p50_ns / 1e3,
            s.socket_gets_per_s
        );
    }
    for t in &kv.targets {
        let verdict = match t.holds {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "not measured",
        };
        let ratio = t.ratio.map(|r| format!(" ({r:.2}x)")).unwrap_or_default();
        out += &format!("target: {}: {verdict}{ratio}\n", t.target);
    }
    out
}
