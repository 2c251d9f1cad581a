//! `ipckit advise`: which mechanism for these constraints, ranked, with the calls, the
//! trade-off, the failure mode to guard against, who cleans up, the lab scenario that shows the
//! risk, and what each candidate measured on this host when a bench report is at hand. The
//! rules and the ranking are the `ipckit-advise` crate's; this module reads the report, and
//! prints the advice for people or as JSON.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use ipckit_advise::{self as advise, Advice, Candidate, Constraints, Fit, Measured};
use ipckit_bench::Row;
use ipckit_bench::report::{ReadError, Report, bandwidth_label, ns_label, rate_label, size_label};
use serde::Serialize;

/// Where `ipckit bench` writes its report, and where advise looks for one.
const DEFAULT_REPORT: &str = "ipckit-report/report.json";

/// The most a bench report may weigh: a full run's is a few hundred KiB, so a larger file is
/// not one (and `/dev/zero` is refused before a byte is read).
const MAX_REPORT: usize = 64 << 20;

/// How many candidates the human output shows in full; the rest get one line.
const IN_FULL: usize = 3;

/// Flags of `ipckit advise`.
#[derive(clap::Args)]
pub struct AdviseArgs {
    /// The processes share a parent: one fork()s the other, or both come from one.
    #[arg(long, conflicts_with = "unrelated")]
    related: bool,
    /// The processes do not share a parent: they meet by a name.
    #[arg(long)]
    unrelated: bool,
    /// One side sends, the other receives.
    #[arg(long, conflicts_with = "two_way")]
    one_way: bool,
    /// Both sides send.
    #[arg(long)]
    two_way: bool,
    /// The receiver must get each message whole, as it was sent.
    #[arg(long)]
    boundaries: bool,
    /// Payloads of tens of KiB and more.
    #[arg(long)]
    large_payloads: bool,
    /// The round trip matters more than anything else.
    #[arg(long)]
    latency_critical: bool,
    /// Open file descriptors must travel.
    #[arg(long)]
    fd_passing: bool,
    /// More than one process receives.
    #[arg(long)]
    many_readers: bool,
    /// More than one process sends.
    #[arg(long)]
    many_writers: bool,
    /// Some messages must overtake others.
    #[arg(long)]
    priorities: bool,
    /// A side may restart, and the channel (and what is in it) should still be there.
    #[arg(long)]
    survive_restart: bool,
    /// The receiver waits in poll/epoll (or an async runtime) with other descriptors.
    #[arg(long)]
    event_loop: bool,
    /// The processes run on different machines.
    #[arg(long)]
    remote: bool,
    /// The bench report to take this host's figures from: a regular file of at most 64 MiB
    /// [default: ipckit-report/report.json when it exists].
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// As JSON: constraints, conflicts, notes, and the candidates ranked.
    #[arg(long)]
    json: bool,
}

impl AdviseArgs {
    fn constraints(&self) -> Constraints {
        let pick = |yes: bool, no: bool| match (yes, no) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        };
        Constraints {
            related: pick(self.related, self.unrelated),
            two_way: pick(self.two_way, self.one_way),
            boundaries: self.boundaries,
            large_payloads: self.large_payloads,
            latency_critical: self.latency_critical,
            fd_passing: self.fd_passing,
            many_readers: self.many_readers,
            many_writers: self.many_writers,
            priorities: self.priorities,
            survive_restart: self.survive_restart,
            event_loop: self.event_loop,
            remote: self.remote,
            notify_only: false,
        }
    }
}

/// A bench report, and where it came from.
struct Loaded {
    path: PathBuf,
    report: Report,
}

/// The report named by `--report` (it must be there and be one), else the default one when
/// it is there (a broken one is passed over with a warning).
fn load(arg: Option<&Path>) -> anyhow::Result<Option<Loaded>> {
    let read = |path: &Path| -> anyhow::Result<Loaded> {
        let text = ipckit::files::read_to_string_bounded(path, MAX_REPORT)
            .context("reading the bench report")?;
        let report = Report::from_json(&text).map_err(|e| match e {
            ReadError::NotJson(e) => {
                anyhow::anyhow!("{} is not a bench report: not JSON: {e}", path.display())
            }
            e => anyhow::anyhow!("{}: {e}", path.display()),
        })?;
        Ok(Loaded {
            path: path.to_path_buf(),
            report,
        })
    };
    match arg {
        Some(path) => read(path).map(Some),
        None => {
            let path = Path::new(DEFAULT_REPORT);
            let Ok(meta) = std::fs::metadata(path) else {
                return Ok(None);
            };
            // A report nobody named is taken only if this user or root wrote it: in a shared
            // directory another user could plant one to steer the advice.
            let me = rustix::process::geteuid().as_raw();
            let warn = |why: String| {
                let why = ipckit::name::escape_str(&why);
                let _ = writeln!(std::io::stderr(), "ipckit: {why}; going on without it");
            };
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != me && meta.uid() != 0 {
                warn(format!(
                    "{DEFAULT_REPORT} belongs to {}, not to you or root (name it with --report to use it)",
                    ipckit::host::user_name(meta.uid())
                        .unwrap_or_else(|| format!("uid {}", meta.uid()))
                ));
                return Ok(None);
            }
            match read(path) {
                Ok(r) => Ok(Some(r)),
                Err(e) => {
                    warn(format!("{e:#}"));
                    Ok(None)
                }
            }
        }
    }
}

pub fn run(args: AdviseArgs) -> anyhow::Result<()> {
    let c = args.constraints();
    let report = load(args.report.as_deref())?;
    let advice = advise::advise(&c);
    let measured: Vec<Option<Measured>> = advice
        .candidates
        .iter()
        .map(|cand| {
            report
                .as_ref()
                .and_then(|r| advise::measured_for(&r.report, cand.rule, &c))
        })
        .collect();
    let mut out = std::io::stdout().lock();
    if args.json {
        let v = to_json(&c, &advice, &measured, report.as_ref());
        serde_json::to_writer_pretty(&mut out, &v)?;
        writeln!(out)?;
    } else {
        write!(out, "{}", human(&c, &advice, &measured, report.as_ref()))?;
    }
    out.flush()?;
    Ok(())
}

fn flags(c: &Constraints) -> String {
    let needs = c.needs();
    if needs.is_empty() {
        return "no constraints given".into();
    }
    needs.iter().map(|n| n.flag()).collect::<Vec<_>>().join(" ")
}

/// `ipckit advise --json`. The fields of each struct are in alphabetical order: the order the
/// output has always had.
#[derive(Serialize)]
struct AdviceJson<'a> {
    candidates: Vec<CandidateJson>,
    conflicts: &'a [String],
    constraints: ConstraintsJson,
    notes: &'a [String],
    report: Option<String>,
}

/// The constraints as the flags set them.
#[derive(Serialize)]
struct ConstraintsJson {
    boundaries: bool,
    event_loop: bool,
    fd_passing: bool,
    large_payloads: bool,
    latency_critical: bool,
    many_readers: bool,
    many_writers: bool,
    priorities: bool,
    related: Option<bool>,
    remote: bool,
    survive_restart: bool,
    two_way: Option<bool>,
}

/// One ranked candidate.
#[derive(Serialize)]
struct CandidateJson {
    against: Vec<FitJson>,
    bench_rows: &'static [Row],
    calls: &'static str,
    cannot: Vec<FitJson>,
    cleanup: &'static str,
    failure_mode: &'static str,
    fits_all: bool,
    lab: &'static str,
    labs: Vec<&'static str>,
    measured: Option<MeasuredJson>,
    mechanism: &'static str,
    rank: usize,
    reasons: Vec<FitJson>,
    score: i32,
    tradeoff: &'static str,
    why: String,
}

/// A candidate against one constraint given.
#[derive(Serialize)]
struct FitJson {
    constraint: &'static str,
    fit: &'static str,
    lab: Option<&'static str>,
    why: &'static str,
}

/// A candidate's figures from the bench report.
#[derive(Serialize)]
struct MeasuredJson {
    bytes_per_sec: Option<f64>,
    msgs_per_sec: Option<f64>,
    p50_rtt_ns: Option<u64>,
    row: Row,
    size: usize,
    throughput_size: usize,
}

impl From<&Measured> for MeasuredJson {
    fn from(m: &Measured) -> MeasuredJson {
        MeasuredJson {
            bytes_per_sec: m.bytes_per_sec,
            msgs_per_sec: m.msgs_per_sec,
            p50_rtt_ns: m.p50_rtt_ns,
            row: m.row,
            size: m.size,
            throughput_size: m.throughput_size,
        }
    }
}

impl From<&Fit> for FitJson {
    fn from(f: &Fit) -> FitJson {
        FitJson {
            constraint: f.need.flag(),
            fit: f.level.name(),
            lab: f.lab,
            why: f.why,
        }
    }
}

fn to_json<'a>(
    c: &Constraints,
    advice: &'a Advice,
    measured: &[Option<Measured>],
    report: Option<&Loaded>,
) -> AdviceJson<'a> {
    let fits =
        |it: &mut dyn Iterator<Item = &Fit>| -> Vec<FitJson> { it.map(FitJson::from).collect() };
    let candidates = advice
        .candidates
        .iter()
        .zip(measured)
        .enumerate()
        .map(|(i, (cand, m))| {
            let r = cand.rule;
            CandidateJson {
                against: fits(&mut cand.against()),
                bench_rows: r.rows,
                calls: r.calls,
                cannot: fits(&mut cand.cannot()),
                cleanup: r.cleanup,
                failure_mode: r.failure_mode,
                fits_all: cand.fits_all(),
                lab: r.lab,
                labs: cand.labs(),
                measured: m.as_ref().map(MeasuredJson::from),
                mechanism: r.mechanism,
                rank: i + 1,
                reasons: fits(&mut cand.reasons.iter()),
                score: cand.score,
                tradeoff: r.tradeoff,
                why: cand.why(),
            }
        })
        .collect();
    AdviceJson {
        candidates,
        conflicts: &advice.conflicts,
        constraints: ConstraintsJson {
            boundaries: c.boundaries,
            event_loop: c.event_loop,
            fd_passing: c.fd_passing,
            large_payloads: c.large_payloads,
            latency_critical: c.latency_critical,
            many_readers: c.many_readers,
            many_writers: c.many_writers,
            priorities: c.priorities,
            related: c.related,
            remote: c.remote,
            survive_restart: c.survive_restart,
            two_way: c.two_way,
        },
        notes: &advice.notes,
        report: report.map(|r| r.path.display().to_string()),
    }
}

/// `text` folded to `width` columns, every line after the first indented by `indent`.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut col = indent;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        if col > indent && col + 1 + len > width {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            col = indent;
        } else if col > indent {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
    }
    out
}

const WIDTH: usize = 80;
const LABEL: usize = 18;

/// `   label:          text`, folded.
fn field(out: &mut String, label: &str, text: &str) {
    let head = if label.is_empty() {
        String::new()
    } else {
        format!("   {label}:")
    };
    out.push_str(&format!("{head:<LABEL$}"));
    out.push_str(&wrap(text, LABEL, WIDTH));
    out.push('\n');
}

/// Several lines under one label.
fn fields(out: &mut String, label: &str, lines: &[String]) {
    for (i, line) in lines.iter().enumerate() {
        field(out, if i == 0 { label } else { "" }, line);
    }
}

fn measured_line(m: &Measured) -> String {
    let mut parts = Vec::new();
    if let Some(p50) = m.p50_rtt_ns {
        parts.push(format!("p50 RTT {}", ns_label(p50 as f64)));
    }
    match (m.msgs_per_sec, m.bytes_per_sec) {
        (Some(msgs), Some(bytes)) => parts.push(format!(
            "{} msgs/s ({})",
            rate_label(msgs),
            bandwidth_label(bytes)
        )),
        (Some(msgs), None) => parts.push(format!("{} msgs/s", rate_label(msgs))),
        (None, Some(bytes)) => parts.push(bandwidth_label(bytes)),
        (None, None) => parts.push("no throughput row".into()),
    }
    if m.throughput_size != m.size && parts.len() == 2 {
        return format!(
            "{} at {}, {} at {} (bench row {})",
            parts[0],
            size_label(m.size),
            parts[1],
            size_label(m.throughput_size),
            m.row
        );
    }
    format!(
        "{} at {} (bench row {})",
        parts.join(", "),
        size_label(m.size),
        m.row
    )
}

fn candidate(
    out: &mut String,
    rank: usize,
    cand: &Candidate,
    m: &Option<Measured>,
    has_report: bool,
) {
    let r = cand.rule;
    out.push_str(&format!("{rank}. {}\n", r.mechanism));
    field(out, "calls", r.calls);
    let why: Vec<String> = cand
        .speaks_for()
        .map(|f| format!("{}: {}", f.need.flag(), f.why))
        .collect();
    if why.is_empty() {
        field(out, "why", r.summary);
    } else {
        fields(out, "why", &why);
    }
    let line = |f: &Fit| format!("{}: {}", f.need.flag(), f.why);
    fields(
        out,
        "against it",
        &cand.against().map(line).collect::<Vec<_>>(),
    );
    fields(out, "cannot", &cand.cannot().map(line).collect::<Vec<_>>());
    field(out, "trade-off", r.tradeoff);
    field(out, "guard against", r.failure_mode);
    field(out, "cleanup", r.cleanup);
    let labs = cand.labs();
    let mut see = format!("ipckit lab {}", labs[0]);
    if labs.len() > 1 {
        see += &format!(" (also: {})", labs[1..].join(", "));
    }
    field(out, "see", &see);
    match m {
        Some(m) => field(out, "measured here", &measured_line(m)),
        None if has_report => field(
            out,
            "measured here",
            &format!(
                "not in this report (rows {}: a full `ipckit bench` measures them)",
                r.rows
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        None => {}
    }
    out.push('\n');
}

fn human(
    c: &Constraints,
    advice: &Advice,
    measured: &[Option<Measured>],
    report: Option<&Loaded>,
) -> String {
    let mut out = String::new();
    out.push_str(&format!("ranked for: {}\n", flags(c)));
    if !advice.conflicts.is_empty() {
        out.push_str("cannot all hold:\n");
        for conflict in &advice.conflicts {
            out.push_str(&format!("  - {}\n", wrap(conflict, 4, WIDTH)));
        }
    }
    for note in &advice.notes {
        out.push_str(&format!("note: {}\n", wrap(note, 6, WIDTH)));
    }
    out.push('\n');
    for (i, (cand, m)) in advice
        .candidates
        .iter()
        .zip(measured)
        .enumerate()
        .take(IN_FULL)
    {
        candidate(&mut out, i + 1, cand, m, report.is_some());
    }
    let rest: Vec<String> = advice
        .candidates
        .iter()
        .enumerate()
        .skip(IN_FULL)
        .map(|(i, cand)| format!("{}. {}", i + 1, cand.rule.mechanism))
        .collect();
    if !rest.is_empty() {
        out.push_str(&format!(
            "{}\n",
            wrap(
                &format!("also possible: {} (details: --json)", rest.join("; ")),
                2,
                WIDTH
            )
        ));
    }
    if c.latency_critical
        && let Some(line) = fastest(advice, measured)
    {
        out.push_str(&wrap(&line, 2, WIDTH));
        out.push('\n');
    }
    let source = match report {
        Some(r) => format!("figures from {}{}", r.path.display(), describe(&r.report)),
        None => format!(
            "no bench report at {DEFAULT_REPORT}: run `ipckit bench` (about a minute) to see \
             each candidate's round trip and throughput on this host"
        ),
    };
    out.push_str(&wrap(&source, 2, WIDTH));
    out.push('\n');
    out
}

/// With `--latency-critical`: when another candidate measured a lower median round trip here
/// than the first one (at the same message size), say so: the ranking is the rules', the
/// figures are this host's.
fn fastest(advice: &Advice, measured: &[Option<Measured>]) -> Option<String> {
    let (size, top) = measured
        .first()?
        .as_ref()
        .and_then(|m| Some((m.size, m.p50_rtt_ns?)))?;
    let (rank, cand, p50) = advice
        .candidates
        .iter()
        .zip(measured)
        .enumerate()
        .filter_map(|(i, (cand, m))| {
            let m = m.as_ref().filter(|m| m.size == size)?;
            Some((i + 1, cand, m.p50_rtt_ns?))
        })
        .min_by_key(|(_, _, p50)| *p50)?;
    (rank > 1 && p50 < top).then(|| {
        format!(
            "note: on this host {} ({rank}.) measured a lower round trip at {} than {} (1.): p50 \
             {} against {}; the figures are one run (ipckit bench again to check), the ranking \
             is the rules'",
            cand.rule.mechanism,
            size_label(size),
            advice.candidates[0].rule.mechanism,
            ns_label(p50 as f64),
            ns_label(top as f64)
        )
    })
}

/// ` (ipckit 0.1.0, quick profile, on CPU, an interrupted run)` from a report's header.
fn describe(report: &Report) -> String {
    let mut parts = vec![
        report.tool.clone(),
        format!("{} profile", report.profile),
        report.host.cpu_model.clone(),
    ];
    if report.interrupted {
        parts.push("an interrupted run: some rows missing".into());
    }
    format!(" ({})", parts.join(", "))
}
