//! `ipckit bench`: runs the measurement engine with a progress bar, prints the table, writes
//! the JSON and HTML reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ipckit_bench::{Config, PeerCommand, Report};

/// Which measurements a run makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Every IPC mechanism side by side (the default).
    Ipc,
    /// `ipckit kv serve` against redis-server with redis-benchmark, and the shared-memory GET
    /// against a socket GET (about two minutes; writes ipckit-report/kv.json and kv.html).
    Kv,
    /// Both, in one report.
    All,
}

/// Flags of `ipckit bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// What to measure: ipc (the default), kv, or all.
    #[arg(value_enum, value_name = "SUITE")]
    suite: Option<Suite>,
    /// kv: redis-benchmark's -n for each test at -P 1 (four times as many at -P 16, at
    /// least 100000 there: fewer end too fast to time) [default: 50000].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(100..=100_000_000))]
    requests: Option<u64>,
    /// kv: rounds per row, each on a fresh server; the median is reported [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=99))]
    rounds: Option<u64>,
    /// The default profile: latency at 64 B and 4 KiB, throughput at 64 B, 4 KiB, 64 KiB and
    /// 1 MiB, 0.4 s per row (about a minute on two cores).
    #[arg(long, conflicts_with = "full")]
    quick: bool,
    /// Every size from 64 B to 1 MiB, 2 s per row (several minutes).
    #[arg(long)]
    full: bool,
    /// Only these mechanisms, comma-separated (e.g. pipe,unix-stream,shm-futex).
    #[arg(long, value_name = "NAME,...", value_parser = parse_only)]
    only: Option<Names>,
    /// Message sizes for both latency and throughput rows, comma-separated (e.g. 64,4k,1m).
    #[arg(long, value_name = "SIZES", value_parser = parse_sizes)]
    sizes: Option<Sizes>,
    /// Recording time per row, in seconds (warm-up comes on top).
    #[arg(long, value_name = "SECONDS", value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Where to write the JSON report ('-': standard output, the table then goes to standard
    /// error); its directory must exist [default: ipckit-report/report.json, the directory
    /// made if missing].
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Where to write the HTML report; its directory must exist [default:
    /// ipckit-report/index.html, the directory made if missing].
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Do not pin the two processes to two CPUs.
    #[arg(long)]
    no_pin: bool,
}

/// `--only`'s list (one value to clap, so a usage error names it whole).
#[derive(Clone)]
struct Names(Vec<ipckit_bench::Row>);

/// `--sizes`' list.
#[derive(Clone)]
struct Sizes(Vec<usize>);

fn parse_only(s: &str) -> Result<Names, String> {
    ipckit_bench::config::parse_only(s)
        .map(Names)
        .map_err(|e| e.to_string())
}

fn parse_sizes(s: &str) -> Result<Sizes, String> {
    ipckit_bench::config::parse_sizes(s)
        .map(Sizes)
        .map_err(|e| e.to_string())
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if (0.01..=3600.0).contains(&secs) => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!(
            "'{s}' is not a number of seconds between 0.01 and 3600"
        )),
    }
}

const REPORT_DIR: &str = "ipckit-report";

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    let suite = args.suite.unwrap_or(Suite::Ipc);
    if suite == Suite::Kv {
        let ipc_only = [
            ("--quick", args.quick),
            ("--full", args.full),
            ("--only", args.only.is_some()),
            ("--sizes", args.sizes.is_some()),
            ("--duration", args.duration.is_some()),
            ("--no-pin", args.no_pin),
        ];
        if let Some((flag, _)) = ipc_only.iter().find(|(_, given)| *given) {
            crate::usage_bail!(
                "{flag} is for the ipc rows: `ipckit bench kv` takes --requests, --rounds, --json and --html"
            );
        }
    } else if suite == Suite::Ipc && (args.requests.is_some() || args.rounds.is_some()) {
        crate::usage_bail!(
            "--requests and --rounds are for the kv suite: `ipckit bench kv` or `ipckit bench all`"
        );
    }
    let peer_program = std::env::current_exe().context("finding this program to start its peer")?;
    let peer = PeerCommand {
        program: peer_program.clone(),
        args: Vec::new(),
    };
    let mut cfg = if args.full {
        Config::full(peer)
    } else {
        Config::quick(peer)
    };
    if let Some(Sizes(sizes)) = args.sizes {
        cfg.latency_sizes = sizes.clone();
        cfg.throughput_sizes = sizes;
    }
    if let Some(d) = args.duration {
        cfg.duration = d;
        cfg.warmup = (d / 3).min(Duration::from_millis(500));
    }
    cfg.only = args.only.map(|n| n.0).unwrap_or_default();
    cfg.pin = !args.no_pin;

    let (json_given, html_given) = (args.json.is_some(), args.html.is_some());
    // The kv suite alone has files of its own: it does not replace the ipc report.
    let (json_name, html_name) = match suite {
        Suite::Kv => ("kv.json", "kv.html"),
        _ => ("report.json", "index.html"),
    };
    let json_path = args
        .json
        .unwrap_or_else(|| Path::new(REPORT_DIR).join(json_name));
    let html_path = args
        .html
        .unwrap_or_else(|| Path::new(REPORT_DIR).join(html_name));
    let to_stdout = json_path == Path::new("-");

    // Where the reports go is checked before anything is measured (and again when they are
    // written): a run never ends unable to write them, and none is written through a symlink,
    // into a directory another user controls, or into one that is not there. The places given
    // first, so a refused one leaves no report directory made for nothing.
    let json = (!to_stdout).then_some((json_given, &json_path, Place::Json));
    let places: Vec<_> = json
        .into_iter()
        .chain([(html_given, &html_path, Place::Html)])
        .collect();
    for (_, path, place) in places.iter().filter(|(given, _, _)| *given) {
        ipckit::files::check_write(path).map_err(|e| refused(e, *place))?;
    }
    if places.iter().any(|(given, _, _)| !given) {
        ipckit::files::create_dir(REPORT_DIR).map_err(|e| refused(e, Place::Dir))?;
    }
    for (_, path, place) in places.iter().filter(|(given, _, _)| !given) {
        ipckit::files::check_write(path).map_err(|e| refused(e, *place))?;
    }

    // SIGINT, SIGTERM and SIGHUP stop the run cleanly: the row in progress is abandoned, its
    // peer killed, every object removed, and the rows measured so far reported; a second one
    // ends the process at once. Blocked here, before any thread starts, so every thread (and
    // every peer, across exec) has them blocked and only the signalfd sees them. A signal
    // already ignored (nohup, a background job) stays ignored.
    let interrupt = crate::interrupt::Interrupt::catch(cfg.interrupt.clone())?;

    let bar = indicatif::ProgressBar::new(0).with_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} rows  {elapsed}  {msg}")
            .expect("a valid template"),
    );
    if suite == Suite::Kv {
        cfg.only = vec![ipckit_bench::Row::RefSpin];
        cfg.latency_sizes = vec![64];
        cfg.throughput_sizes = Vec::new();
        cfg.duration = Duration::from_millis(200);
        cfg.warmup = Duration::from_millis(100);
    }
    let mut report = ipckit_bench::run(&cfg, &mut |done, total, job| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(format!(
            "{} {:?} {}",
            job.mechanism,
            job.kind,
            ipckit_bench::report::size_label(job.size)
        ));
    });
    bar.finish_and_clear();
    if suite != Suite::Ipc && !report.interrupted {
        let mut kv = ipckit_bench::kv::KvConfig::quick(peer_program.clone());
        if let Some(n) = args.requests {
            kv.requests = [n, n.saturating_mul(4).max(100_000)];
        }
        if let Some(r) = args.rounds {
            kv.rounds = r as usize;
        }
        kv.interrupt = cfg.interrupt.clone();
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(200));
        let section =
            ipckit_bench::kv::run(&kv, &mut |what| spinner.set_message(format!("kv: {what}")));
        spinner.finish_and_clear();
        report.interrupted |= cfg.interrupt.load(std::sync::atomic::Ordering::SeqCst);
        report.kv = Some(section);
    }

    // The reports first: after a hang-up the terminal may be gone, and printing to it fail.
    // One that cannot be written still leaves the table printed (the run is not lost).
    let written = if to_stdout {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", report.to_json()).map_err(anyhow::Error::from)
    } else {
        write(&json_path, &report.to_json(), Place::Json)
    }
    .and_then(|()| {
        write(
            &html_path,
            &ipckit_bench::html::render(&report),
            Place::Html,
        )
    });
    let mut table = ipckit_bench::report::table(&report);
    if suite == Suite::Kv {
        // Only the host line: the one ipc row (ref-spin) is there for the report's host
        // figures, and its claims check would say "not measured" for every claim.
        table = table
            .lines()
            .next()
            .map(|l| format!("{l}\n"))
            .unwrap_or_default();
    }
    if let Some(kv) = &report.kv {
        table += &ipckit_bench::report::kv::table(kv);
    }
    if to_stdout {
        let _ = write!(std::io::stderr(), "{table}");
    } else if written.is_ok() {
        let _ = writeln!(
            std::io::stdout(),
            "{table}reports: {} and {}",
            json_path.display(),
            html_path.display()
        );
    } else {
        let _ = write!(std::io::stdout(), "{table}");
    }
    written?;
    if report.interrupted {
        let signo = interrupt.caught().unwrap_or(libc::SIGINT);
        anyhow::bail!(
            "stopped by {}: {} rows measured, reports written",
            ipckit::notify::signal::name(signo),
            report.runs.iter().filter(|r| r.measured()).count()
        );
    }
    failures(&report)
}

/// Which of the bench's outputs a refusal is about.
#[derive(Clone, Copy)]
enum Place {
    Dir,
    Json,
    Html,
}

/// Writes a report: a new file renamed over the old one, never through a symlink, only in a
/// directory that is there and that no other user controls (`ipckit::files`).
fn write(path: &Path, text: &str, place: Place) -> anyhow::Result<()> {
    ipckit::files::write(path, text.as_bytes()).map_err(|e| refused(e, place))
}

/// A report's place refused, naming the flag that chooses another.
fn refused(e: ipckit::Error, place: Place) -> anyhow::Error {
    anyhow::Error::new(e).context(match place {
        Place::Dir => "the report directory (--json FILE and --html FILE write elsewhere)",
        Place::Json => "the JSON report (--json FILE writes elsewhere, - to standard output)",
        Place::Html => "the HTML report (--html FILE writes elsewhere)",
    })
}

fn failures(report: &Report) -> anyhow::Result<()> {
    let failed = report.failed();
    let kv_failed: Vec<_> = report
        .kv
        .iter()
        .flat_map(|kv| &kv.runs)
        .filter(|r| r.error.is_some())
        .collect();
    for r in &kv_failed {
        let _ = writeln!(
            std::io::stderr(),
            "ipckit: kv {} {} -P {} ({}): {}",
            r.server,
            r.test,
            r.pipeline,
            r.persistence,
            ipckit::name::escape_str(r.error.as_deref().unwrap_or(""))
        );
    }
    if failed.is_empty() && kv_failed.is_empty() {
        return Ok(());
    }
    if failed.is_empty() {
        anyhow::bail!("{} kv rows failed", kv_failed.len());
    }
    for r in &failed {
        let _ = writeln!(
            std::io::stderr(),
            "ipckit: {} {:?} {}: {}",
            r.mechanism,
            r.kind,
            ipckit_bench::report::size_label(r.size),
            r.error.as_deref().unwrap_or("")
        );
    }
    anyhow::bail!("{} of {} rows failed", failed.len(), report.runs.len())
}
