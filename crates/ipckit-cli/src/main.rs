//! `ipckit`: every Linux IPC mechanism, measured side by side, listed, cleaned up, explained.
//!
//! This file parses the command line and hands each subcommand to its module: every module
//! has its clap arguments struct and a `run`.

mod advise;
mod args;
mod bench;
mod channel;
mod completions;
mod endpoint;
mod gc;
mod interrupt;
mod kv;
mod lab;
mod limits;
mod listen;
mod ls;
mod man;
mod objects;
mod output;
mod recv;
mod rm;
mod sem;
mod send;
mod serve;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "ipckit",
    version,
    about = "Linux IPC: every mechanism measured side by side, sent over, listened on; every object listed, and the orphans cleaned up"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands, in `--help` order; each one's help is its arguments struct's doc.
#[derive(Subcommand)]
enum Command {
    /// Measure every IPC mechanism on this machine, side by side (the main job).
    ///
    /// Each row runs between two real processes pinned to two CPUs, after a warm-up, with
    /// every message checked on arrival. Prints a table and writes ipckit-report/report.json
    /// and ipckit-report/index.html. Exits 1 if any row failed its check.
    Bench(bench::BenchArgs),
    Send(send::CliArgs),
    Recv(recv::RecvArgs),
    Sem(sem::SemArgs),
    Ls(ls::LsArgs),
    Rm(rm::RmArgs),
    Gc(gc::GcArgs),
    Lab(lab::LabArgs),
    Limits(limits::LimitsArgs),
    Listen(listen::ListenArgs),
    Kv(kv::KvArgs),
    /// Which IPC mechanism for your constraints: a ranked recommendation.
    ///
    /// Each candidate comes with the calls to use, why it fits, the trade-off, the failure mode
    /// to guard against, who cleans up, the lab scenario that shows the risk, and its round
    /// trip and throughput on this host when a bench report is at hand (`ipckit bench`).
    /// Constraints that cannot all hold are named first.
    Advise(advise::AdviseArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

fn main() -> ExitCode {
    // Even a bug must end as one line and exit 1, never a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        // Never a panic inside the panic hook: stderr may be gone (a hang-up).
        let _ = writeln!(
            std::io::stderr(),
            "ipckit: internal error{at}: {}",
            what.replace('\n', " ")
        );
    }));
    // The bench starts this program again as its peer process.
    if ipckit_bench::is_peer() {
        ipckit_bench::peer_main();
    }
    // A lab scenario starts this program again for its other processes.
    if ipckit_lab::is_child() {
        ipckit_lab::child_main();
    }
    let cli = Cli::parse();
    // Unwinding (not exiting in the hook) so destructors still remove socket files and FIFOs.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(cli)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("stopped by the internal error above")));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "ipckit: {}", describe(&e));
            // 2 for a command line that asks for what cannot be, as clap's own errors.
            let usage = e.chain().any(|c| c.downcast_ref::<args::Usage>().is_some());
            ExitCode::from(if usage { 2 } else { 1 })
        }
    }
}

/// The error and its causes on one line, as `{:#}` prints them, but every system error
/// named by its errno with a hint (`ipckit::error::message`; std prints "(os error 104)"), and every control
/// character escaped: a name in a message cannot write escape sequences to the terminal.
fn describe(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = ipckit::error::message(cause);
        // anyhow's chain repeats an inner error that a context's text already ends with.
        if parts.last().is_some_and(|p| p.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    ipckit::name::escape_str(&parts.join(": ")).into_owned()
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Bench(args) => bench::run(args),
        Command::Send(args) => send::run(args.into()),
        Command::Recv(args) => recv::run(args),
        Command::Sem(args) => sem::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Lab(args) => lab::run(args),
        Command::Limits(args) => limits::run(args),
        Command::Listen(args) => listen::run(args),
        Command::Kv(args) => kv::run(args),
        Command::Advise(args) => advise::run(args),
        Command::Completions(args) => completions::run(args),
        Command::Man(args) => man::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;
    use anyhow::Context;

    #[test]
    fn a_system_error_is_named_by_its_errno_with_a_hint() {
        let io: std::io::Result<()> = Err(std::io::Error::from_raw_os_error(libc::ECONNRESET));
        let e = io.context("reading from unix:/tmp/x").unwrap_err();
        let line = describe(&e);
        assert!(!line.contains("os error"), "{line}");
        assert!(
            line.starts_with("reading from unix:/tmp/x: Connection reset by peer (ECONNRESET); "),
            "{line}"
        );
    }

    #[test]
    fn control_characters_are_escaped_and_causes_not_repeated() {
        let e = anyhow::anyhow!("inner \x1b[2J").context("outer: inner \x1b[2J");
        assert_eq!(describe(&e), "outer: inner \\u{1b}[2J");
    }
}
