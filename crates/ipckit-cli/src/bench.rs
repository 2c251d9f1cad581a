//! `ipckit bench`: runs the measurement engine with a progress bar, prints the table, writes
//! the JSON and HTML reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use ipckit_bench::{Config, PeerCommand, Report};

/// Flags of `ipckit bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
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
    let peer = PeerCommand {
        program: std::env::current_exe().context("finding this program to start its peer")?,
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
    let json_path = args
        .json
        .unwrap_or_else(|| Path::new(REPORT_DIR).join("report.json"));
    let html_path = args
        .html
        .unwrap_or_else(|| Path::new(REPORT_DIR).join("index.html"));
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
    let report = ipckit_bench::run(&cfg, &mut |done, total, job| {
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
    let table = ipckit_bench::report::table(&report);
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
    if failed.is_empty() {
        return Ok(());
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
